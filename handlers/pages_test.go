package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/handlers"
	"github.com/dreamseed/messenger/store"
)

// TestThreadAccess: a member reads the thread (oldest first, with the page hooks); a
// non-member of the same organization and a user of another organization get 404.
func TestThreadAccess(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	member := e.signInBrowser("m1", "김민준", "org-a")
	outsider := e.signInBrowser("m2", "이서연", "org-a")
	foreign := e.signInBrowser("f1", "최유나", "org-b")
	me := mustUser(t, e.db, "m1", "김민준", "org-a")
	friend := mustUser(t, e.db, "m3", "박지호", "org-a")

	var convID int64
	err := e.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
		var err error
		if convID, _, err = tx.DirectConversation(ctx, friend.ID); err != nil {
			return err
		}
		for _, body := range []string{"첫 번째 <script>alert(1)</script>", "두 번째 https://school.example/a"} {
			if _, err := tx.InsertMessage(ctx, convID, store.NewMessage{Kind: messenger.MessageText, Body: body}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/c/%d", convID)

	resp := e.do(member, "GET", path, nil, nil)
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("member: status %d", resp.StatusCode)
	}
	_, thread, _ := strings.Cut(body, `id="messages"`)
	first, second := strings.Index(thread, "첫 번째"), strings.Index(thread, "두 번째")
	if first < 0 || second < 0 || first > second {
		t.Errorf("messages missing or not oldest first")
	}
	if strings.Contains(body, "<script>alert(1)</script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Error("message text is not escaped")
	}
	if !strings.Contains(body, `href="https://school.example/a" target="_blank" rel="noopener noreferrer"`) {
		t.Error("URL in a message is not a safe link")
	}
	if !strings.Contains(body, `data-seq="2"`) || !strings.Contains(body, `data-sender="m1"`) {
		t.Error("message elements lack data-seq / data-sender")
	}
	if !strings.Contains(body, `aria-current="page"`) {
		t.Error("the open conversation is not highlighted in the list")
	}

	for name, c := range map[string]*http.Client{"same organization, not a member": outsider, "other organization": foreign} {
		if resp := e.do(c, "GET", path, nil, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", name, resp.StatusCode)
		}
	}
	for _, bad := range []string{"/c/abc", "/c/-1", "/c/99999999", "/c/1?before_seq=x"} {
		if resp := e.do(member, "GET", bad, nil, nil); resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 404 or 400", bad, resp.StatusCode)
		}
	}
}

// TestConversationListPaging: the list is most recent first, 50 a page, and the cursor
// walks every conversation once.
func TestConversationListPaging(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	me := mustUser(t, e.db, "lister", "정하준", "org-a")
	const n = 53
	for i := 0; i < n; i++ {
		other := mustUser(t, e.db, fmt.Sprintf("friend-%d", i), fmt.Sprintf("친구%d", i), "org-a")
		err := e.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
			id, _, err := tx.DirectConversation(ctx, other.ID)
			if err != nil {
				return err
			}
			_, err = tx.InsertMessage(ctx, id, store.NewMessage{Kind: messenger.MessageText, Body: fmt.Sprintf("msg %d", i)})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	token := sign(t, validClaims("lister", "정하준", "org-a"))
	seen := map[float64]bool{}
	cursor, pages := "", 0
	for {
		resp := e.do(nil, "GET", "/api/v1/conversations?cursor="+url.QueryEscape(cursor), nil, map[string]string{"Authorization": "Bearer " + token})
		var page struct {
			Conversations []map[string]any `json:"conversations"`
			NextCursor    *string          `json:"next_cursor"`
		}
		if err := jsonDecode(resp, &page); err != nil {
			t.Fatal(err)
		}
		pages++
		for _, c := range page.Conversations {
			id := c["id"].(float64)
			if seen[id] {
				t.Fatalf("conversation %v on two pages", id)
			}
			seen[id] = true
		}
		if pages == 1 && (len(page.Conversations) != 50 || page.Conversations[0]["title"] != "친구52") {
			t.Fatalf("first page: %d conversations, first %v; want 50, newest first", len(page.Conversations), page.Conversations[0]["title"])
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	// The zone's announcement conversation is the oldest and last.
	if len(seen) != n+1 || pages != 2 {
		t.Errorf("walked %d conversations in %d pages, want %d in 2", len(seen), pages, n+1)
	}
	resp := e.do(nil, "GET", "/api/v1/conversations?cursor=bm90LWEtY3Vyc29y", nil, map[string]string{"Authorization": "Bearer " + token})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad cursor: status %d, want 400", resp.StatusCode)
	}
}

// TestOperations: health, readiness and metrics answer, and the metrics name routes.
func TestOperations(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/healthz", "/readyz"} {
		if resp := e.do(nil, "GET", path, nil, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", path, resp.StatusCode)
		}
	}
	e.do(nil, "GET", "/api/v1/me", nil, nil)
	body := e.metrics()
	if !strings.Contains(body, `messenger_http_request_duration_seconds_count{method="GET",route="/api/v1/me",status="401"} 1`) {
		t.Errorf("metrics lack the request histogram by route and status")
	}
	e.server.Drain()
	if resp := e.do(nil, "GET", "/readyz", nil, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz while shutting down: status %d, want 503", resp.StatusCode)
	}
	if resp := e.do(nil, "GET", "/healthz", nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz while shutting down: status %d, want 200", resp.StatusCode)
	}
	resp := e.do(nil, "GET", "/static/app.css?v=1", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("static asset: status %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	if resp := e.do(nil, "GET", "/static/", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("static directory listing: status %d, want 404", resp.StatusCode)
	}
}

// TestDevLogin exists only in dev mode, and signs in through the portal path.
func TestDevLogin(t *testing.T) {
	off := newEnv(t, nil)
	if resp := off.do(nil, "GET", "/dev/login", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("dev login without dev mode: status %d, want 404", resp.StatusCode)
	}

	on := newEnv(t, func(c *handlers.Config) { c.Dev = true })
	c := on.client()
	resp := on.do(c, "GET", "/", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dev/login" {
		t.Errorf("signed out in dev mode: status %d to %q, want 303 to /dev/login", resp.StatusCode, resp.Header.Get("Location"))
	}
	page := readBody(t, on.do(c, "GET", "/dev/login", nil, nil))
	if !strings.Contains(page, "김선영") || !strings.Contains(page, "새싹중학교") {
		t.Error("dev login page does not list the demo users of both schools")
	}
	resp = on.do(c, "POST", "/dev/login", strings.NewReader("sub=demo-teacher-kim"), map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Origin": on.srv.URL,
	})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("dev sign-in: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	if body := readBody(t, on.do(c, "GET", "/", nil, nil)); !strings.Contains(body, "김선영") {
		t.Error("after dev sign-in the list is not the demo teacher's")
	}
}

// TestLocale: Korean by default, English by the browser's language or the portal's claim.
func TestLocale(t *testing.T) {
	e := newEnv(t, nil)
	c := e.signInBrowser("l1", "Jane Doe", "org-a")
	if body := readBody(t, e.do(c, "GET", "/", nil, nil)); !strings.Contains(body, `lang="ko"`) {
		t.Error("default page is not Korean")
	}
	if body := readBody(t, e.do(c, "GET", "/", nil, map[string]string{"Accept-Language": "en-US,en;q=0.9"})); !strings.Contains(body, `lang="en"`) || !strings.Contains(body, "Conversations") {
		t.Error("Accept-Language en does not give English")
	}
}
