package backup

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path"

	_ "github.com/lib/pq" // the owner's connection

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/storage"
)

// openOwner opens the owner's connection pool (DATABASE_URL) and checks that it answers.
func openOwner(ctx context.Context, dsn string) (*sql.DB, error) {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("database: %w", err)
	}
	return db, nil
}

// snapshot is a read-only transaction on one snapshot of the database, with row-level
// security off: as the owner (superuser or BYPASSRLS) every row is seen, and any other role
// gets an error rather than a silently filtered, smaller database.
type snapshot struct {
	db   *sql.DB // the owner's pool, open until close
	conn *sql.Conn
	tx   *sql.Tx
}

// openSnapshot opens the owner's pool at dsn and begins the snapshot on a connection of it.
func openSnapshot(ctx context.Context, dsn string) (*snapshot, error) {
	db, err := openOwner(ctx, dsn)
	if err != nil {
		return nil, err
	}
	s := &snapshot{db: db}
	if s.conn, err = db.Conn(ctx); err == nil {
		s.tx, err = s.conn.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	}
	if err == nil {
		_, err = s.tx.ExecContext(ctx, `SET LOCAL row_security = off`)
	}
	if err != nil {
		s.close()
		return nil, fmt.Errorf("database: %w", err)
	}
	return s, nil
}

// close ends the transaction (a rollback after a commit does nothing) and the pool.
func (s *snapshot) close() {
	if s.tx != nil {
		s.tx.Rollback()
	}
	if s.conn != nil {
		s.conn.Close()
	}
	s.db.Close()
}

// readCounts answers the rows the manifest counts.
func readCounts(ctx context.Context, tx *sql.Tx) (Counts, error) {
	var c Counts
	err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM conversations),
		(SELECT count(*) FROM messages) + (SELECT count(*) FROM messages_archive), (SELECT count(*) FROM files)`).
		Scan(&c.Users, &c.Conversations, &c.Messages, &c.Files)
	if err != nil {
		return c, fmt.Errorf("count rows: %w (the check and the backup run as the database's owner, a superuser or a role with BYPASSRLS)", err)
	}
	return c, nil
}

// schemaVersion answers the last migration applied.
func schemaVersion(ctx context.Context, tx *sql.Tx) (int, string, error) {
	var v int
	var name string
	err := tx.QueryRowContext(ctx, `SELECT version, name FROM schema_migrations ORDER BY version DESC LIMIT 1`).Scan(&v, &name)
	if err != nil {
		return 0, "", fmt.Errorf("schema version: %w", err)
	}
	return v, name, nil
}

// wantedObject is an object a file row needs in storage.
type wantedObject struct {
	Key         string
	FileID      string
	Size        int64 // -1 when the row does not say (a thumbnail)
	ContentType string
}

// fileObjects is what the file rows say about storage.
type fileObjects struct {
	// Wanted are the objects of the files that are live (uploaded, scanning or clean): the
	// original and each thumbnail recorded. A deleted, infected or failed file's objects are
	// being removed by a job, so they are neither needed nor extra.
	Wanted []wantedObject
	// Dirs are the folders of every file row's objects (original and thumbnails side by
	// side): an object outside all of them belongs to no row.
	Dirs map[string]string
}

// readFileObjects reads every file row's objects.
func readFileObjects(ctx context.Context, tx *sql.Tx) (fileObjects, error) {
	fo := fileObjects{Dirs: map[string]string{}}
	rows, err := tx.QueryContext(ctx, `SELECT id, storage_key, state, size, content_type, variants FROM files ORDER BY storage_key`)
	if err != nil {
		return fo, fmt.Errorf("read files: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, key, state, contentType string
		var size int64
		var raw []byte
		if err := rows.Scan(&id, &key, &state, &size, &contentType, &raw); err != nil {
			return fo, fmt.Errorf("read files: %w", err)
		}
		fo.Dirs[path.Dir(key)] = id
		if state != messenger.FileUploaded && state != messenger.FileScanning && state != messenger.FileClean {
			continue
		}
		fo.Wanted = append(fo.Wanted, wantedObject{Key: key, FileID: id, Size: size, ContentType: contentType})
		var variants []messenger.Variant
		if err := json.Unmarshal(raw, &variants); err != nil {
			return fo, fmt.Errorf("file %s variants: %w", id, err)
		}
		for _, v := range variants {
			fo.Wanted = append(fo.Wanted, wantedObject{Key: storage.VariantKey(key, v.Size+".webp"), FileID: id, Size: -1, ContentType: "image/webp"})
		}
	}
	return fo, rows.Err()
}

// fileStillLive re-reads, outside the check's snapshot, whether a file is live now: an
// object missing from a running system is a problem only if its file was not deleted since.
func fileStillLive(ctx context.Context, db *sql.DB, fileID string) (bool, error) {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SET LOCAL row_security = off`); err != nil {
		return false, err
	}
	var live bool
	err = tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM files WHERE id = $1 AND state IN ($2, $3, $4))`,
		fileID, messenger.FileUploaded, messenger.FileScanning, messenger.FileClean).Scan(&live)
	return live, err
}
