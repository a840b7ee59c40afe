package store_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/dreamseed/messenger/store/storetest"
)

// TestAppSessionsRunWithoutJIT checks that the application's sessions have JIT off, whatever
// the server's default (on, on this one): a statement whose estimate grows with the
// history must not compile for 200 ms what runs in a few (sql/023_history_reads.sql).
func TestAppSessionsRunWithoutJIT(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)

	// Several connections of the server's own pool, held at once so that each is new.
	pool := db.Pool()
	var conns []*sql.Conn
	for range 3 {
		c, err := pool.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		var jit, role string
		if err := c.QueryRowContext(ctx, `SELECT current_setting('jit'), current_user`).Scan(&jit, &role); err != nil {
			t.Fatal(err)
		}
		if jit != "off" || role != "messenger_app" {
			t.Errorf("the app's connection %d: jit = %q as %s, want off as messenger_app", i, jit, role)
		}
		c.Close()
	}

}
