// Package storetest gives tests a fresh, migrated PostgreSQL database of their own, on the
// server named by TEST_DATABASE_URL or, when it is unset, on a private server started for
// the test binary.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/pgserver"
)

var (
	mu        sync.Mutex
	serverDSN string // superuser DSN of the server the databases are made on
	embedded  *pgserver.Server
	tempDir   string // holds the private server's cluster; removed at the end
)

// Main runs a test binary's tests and then stops the private PostgreSQL server, if one was
// started. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	mu.Lock()
	if embedded != nil {
		embedded.Stop()
		os.RemoveAll(tempDir)
	}
	mu.Unlock()
	os.Exit(code)
}

func server(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if serverDSN != "" {
		return serverDSN
	}
	if dsn := os.Getenv("TEST_DATABASE_URL"); dsn != "" {
		serverDSN = dsn
		return dsn
	}
	dir, err := os.MkdirTemp("", "messenger-test-pg-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	srv, err := pgserver.Start(context.Background(), filepath.Join(dir, "postgres"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("no TEST_DATABASE_URL and the private PostgreSQL did not start: %v", err)
	}
	embedded, tempDir = srv, dir
	serverDSN = srv.DSN("postgres")
	return serverDSN
}

// Database is a fresh migrated database.
type Database struct {
	OwnerDSN string // the migrating superuser
	AppDSN   string // the messenger_app role, subject to row-level security
}

// NewDatabase creates a fresh database, applies the migrations and drops it when the test
// ends.
func NewDatabase(t testing.TB) Database {
	t.Helper()
	owner := NewEmptyDatabase(t)
	if err := store.Migrate(context.Background(), owner, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatalf("migrate test database: %v", err)
	}
	password := ""
	if embedded != nil {
		password = "messenger-test"
		if err := store.SetAppPassword(context.Background(), owner, password); err != nil {
			t.Fatal(err)
		}
	}
	app, err := store.AppDSN(owner, password)
	if err != nil {
		t.Fatal(err)
	}
	return Database{OwnerDSN: owner, AppDSN: app}
}

// NewEmptyDatabase creates a fresh database without migrations (what a restore starts
// from), drops it when the test ends, and answers the superuser's DSN of it.
func NewEmptyDatabase(t testing.TB) string {
	t.Helper()
	base := server(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "messenger_test_" + hex.EncodeToString(b[:])

	admin, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`CREATE DATABASE ` + name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("postgres", base)
		if err != nil {
			return
		}
		defer admin.Close()
		admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
	})

	u.Path = "/" + name
	return u.String()
}

// NewDB opens the application's pool on a fresh database.
func NewDB(t testing.TB) (*store.DB, Database) {
	t.Helper()
	d := NewDatabase(t)
	db, err := store.Open(context.Background(), d.AppDSN)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, d
}

// Conn opens a plain connection pool to dsn (one of a Database's), closed when the test
// ends: the owner's, to check or arrange what the application's role may not see.
func Conn(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	c, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// MustSignIn signs a user in as a verified portal token would, in organization org.
func MustSignIn(t testing.TB, db *store.DB, sub, name, org, zone, role string) messenger.User {
	t.Helper()
	u, err := db.SignIn(context.Background(), store.SignInParams{
		Issuer: "dreamseed-portal", Sub: sub, OrgID: org, ZoneID: zone, Name: name, Role: role, Locale: "ko",
	})
	if err != nil {
		t.Fatalf("sign in %s: %v", sub, err)
	}
	return u
}
