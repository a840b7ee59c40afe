package e2e

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq"
)

// storeUnannounced stores a message of sub in a conversation as a send does, but
// announces it to nobody: a message whose live event was lost.
func storeUnannounced(t *testing.T, srv *server, convID int64, sub, body string) int64 {
	t.Helper()
	db, err := sql.Open("postgres", srv.env("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var seq int64
	// The messages_number trigger gives the row the conversation's next seq, as for a send.
	err = db.QueryRow(`INSERT INTO messages (conversation_id, org_id, sender_id, kind, body)
	     SELECT c.id, c.org_id, u.id, 'text', $3 FROM conversations c JOIN users u ON u.sub = $2 AND u.org_id = c.org_id
	      WHERE c.id = $1
	     RETURNING seq`, convID, sub, body).Scan(&seq)
	if err != nil {
		t.Fatalf("store a message without announcing it: %v", err)
	}
	return seq
}

// TestThreadFillsHole: the open thread misses a message (stored, its live event never
// delivered) and then gets the next one live. The page notices the hole and fetches from
// it, not after the row that just arrived: both messages are shown, once each, in order.
func TestThreadFillsHole(t *testing.T) {
	srv := startServer(t)
	teacher := newLiveAPI(t, srv, demoTeacher)
	direct, _ := demoConversationIDs(t, teacher)
	nonce := strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
	browser := newBrowser(t)
	tb := newLiveTab(t, browser, "ko")
	signInDev(tb, srv.URL, demoParent.Name)
	openThread(tb, fmt.Sprintf("%s/c/%d", srv.URL, direct))

	for round := 1; round <= 2; round++ {
		lost := fmt.Sprintf("전달되지 않은 메시지 %d %s", round, nonce)
		next := fmt.Sprintf("그다음 메시지 %d %s", round, nonce)
		hole := storeUnannounced(t, srv, direct, demoTeacher.Sub, lost)
		if m := teacher.send(t, direct, next); m.Seq != hole+1 {
			t.Fatalf("round %d: the next message has seq %d, want %d", round, m.Seq, hole+1)
		}
		waitJS(tb, "the next message arrives live", countTextJS(next)+" === 1", 5*time.Second)
		waitJS(tb, "the page fetches the message it missed", countTextJS(lost)+" >= 1", 5*time.Second)
		time.Sleep(300 * time.Millisecond) // a second copy would be in by now
		for _, text := range []string{lost, next} {
			if n := eval[int](tb, countTextJS(text)); n != 1 {
				t.Errorf("round %d: %q is shown %d times, want once", round, text, n)
			}
		}
		checkThreadOrder(t, threadRows(tb))
		checkUniqueIDs(tb)
		fetches := eval[[]string](tb, `window.__e2e.fetches`)
		want := fmt.Sprintf("/c/%d/messages?after_seq=%d", direct, hole-1)
		found := false
		for _, f := range fetches {
			found = found || strings.HasSuffix(f, want)
		}
		if !found {
			t.Errorf("round %d: the page did not fetch from the hole (%s); fetches %q", round, want, fetches)
		}
	}
	checkConsole(tb)
}
