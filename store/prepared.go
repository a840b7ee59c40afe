package store

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// The statements of every send (and of every request's identity) run prepared: PostgreSQL
// parses and plans them once per connection instead of at every execution, which under
// row-level security is about a third of their cost (pgbench: 1,150 → 1,670 sends/s).
//
// They are prepared on the pool the first time a transaction begins, before it takes its
// connection (a goroutine holding a connection while waiting for another could deadlock an
// exhausted pool); database/sql then prepares each on every connection it runs on, once.
// Until they are prepared (or if preparing failed, e.g. before the schema exists) the same
// SQL runs unprepared.
type preparedStatements struct {
	mu    sync.Mutex
	ready atomic.Bool
	stmts map[string]*sql.Stmt
}

// hotStatements are the queries run prepared.
var hotStatements = []string{sqlSetIdentity, sqlCheckMessage, sqlInsertMessage}

// prepare prepares the hot statements on the pool, once.
func (db *DB) prepare(ctx context.Context) {
	p := &db.prepared
	if p.ready.Load() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ready.Load() {
		return
	}
	stmts := make(map[string]*sql.Stmt, len(hotStatements))
	for _, q := range hotStatements {
		s, err := db.db.PrepareContext(ctx, q)
		if err != nil {
			for _, s := range stmts {
				s.Close()
			}
			return // run them unprepared; the next transaction tries again
		}
		stmts[q] = s
	}
	p.stmts = stmts
	p.ready.Store(true)
}

func (db *DB) closePrepared() {
	p := &db.prepared
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.stmts {
		s.Close()
	}
	p.stmts = nil
	p.ready.Store(false)
}

// stmt answers query as a statement of this transaction, prepared if it is a hot one.
func (tx *Tx) stmt(ctx context.Context, query string) *sql.Stmt {
	if !tx.db.prepared.ready.Load() {
		return nil
	}
	s := tx.db.prepared.stmts[query]
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
