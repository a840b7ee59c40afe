package store

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// The statements of every send, of the history's reads (a page, the list, the unread
// counts) and of every request's identity run prepared: PostgreSQL
// parses and plans them once per connection instead of at every execution, which under
// row-level security is about a third of their cost (pgbench: 1,150 → 1,670 sends/s).
//
// They are prepared on the pool the first time a transaction begins, before it takes its
// connection (a goroutine holding a connection while waiting for another could deadlock an
// exhausted pool); database/sql then prepares each on every connection it runs on, once.
// Until they are prepared, or while preparing fails (then tried again at most every
// prepareRetry, never making a transaction wait), the same SQL runs unprepared.
type preparedStatements struct {
	mu        sync.Mutex // held while preparing; transactions only TryLock it
	stmts     atomic.Pointer[map[string]*sql.Stmt]
	lastTried time.Time
}

const prepareRetry = 30 * time.Second

// hotStatements are the queries run prepared.
var hotStatements = []string{sqlSetIdentity, sqlCheckMessage, sqlInsertMessage, sqlSendBatch,
	sqlPageBefore, sqlPageFrom, sqlReadMarks, sqlConversations, sqlListMembers, sqlMembers, sqlPreviews, sqlUnreadCounts}

// prepare prepares the hot statements on the pool, once.
func (db *DB) prepare(ctx context.Context) {
	p := &db.prepared
	if p.stmts.Load() != nil || !p.mu.TryLock() {
		return
	}
	defer p.mu.Unlock()
	if p.stmts.Load() != nil || time.Since(p.lastTried) < prepareRetry {
		return
	}
	p.lastTried = time.Now()
	stmts := make(map[string]*sql.Stmt, len(hotStatements))
	for _, q := range hotStatements {
		s, err := db.db.PrepareContext(ctx, q)
		if err != nil {
			for _, s := range stmts {
				s.Close()
			}
			slog.Default().Warn("prepare statements: running them unprepared", slog.String("error", err.Error()))
			return
		}
		stmts[q] = s
	}
	p.stmts.Store(&stmts)
}

func (db *DB) closePrepared() {
	p := &db.prepared
	p.mu.Lock()
	defer p.mu.Unlock()
	if stmts := p.stmts.Swap(nil); stmts != nil {
		for _, s := range *stmts {
			s.Close()
		}
	}
}

// stmt answers query as a statement of this transaction, prepared if it is a hot one.
func (tx *Tx) stmt(ctx context.Context, query string) *sql.Stmt {
	stmts := tx.db.prepared.stmts.Load()
	if stmts == nil {
		return nil
	}
	s := (*stmts)[query]
	if s == nil {
		return nil
	}
	return tx.tx.StmtContext(ctx, s)
}

// queryRow runs a query expected to return one row, prepared if it is a hot statement.
func (tx *Tx) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if s := tx.stmt(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return tx.tx.QueryRowContext(ctx, query, args...)
}

// query runs a query, prepared if it is a hot statement.
func (tx *Tx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := tx.stmt(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return tx.tx.QueryContext(ctx, query, args...)
}
