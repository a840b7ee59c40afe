package e2e

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dreamseed/messenger/push/pushtest"
)

// TestPushEndToEnd: the real binary (dev keys generated under its data directory, a 1 s
// push delay, private endpoints allowed) pushes a message to a parent who is away; the local
// push service verifies the VAPID token and decrypts the text; once the parent reads at once,
// the next message pushes nothing.
func TestPushEndToEnd(t *testing.T) {
	svc := pushtest.New(t)
	s := startServer(t, "MESSENGER_PUSH_ALLOW_PRIVATE=1", "MESSENGER_PUSH_DELAY=1s")
	org := "org-push-" + deliveryNonce()
	teacher := newUser(t, "push-teacher", "김민지", org, "teacher")
	parent := newUser(t, "push-parent", "이준호", org, "parent")
	conv := s.api(teacher).directWith(s.api(parent))

	var dsn string
	for _, kv := range s.Env {
		if v, ok := strings.CutPrefix(kv, "DATABASE_URL="); ok {
			dsn = v
		}
	}
	owner, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	sub := svc.Subscribe()
	if _, err := owner.Exec(`INSERT INTO push_subscriptions (id, user_id, org_id, endpoint, p256dh, auth, browser)
	                          SELECT $1, id, org_id, $2, $3, $4, 'Chrome' FROM users WHERE sub = $5 AND moved_at IS NULL`,
		uuid.NewString(), sub.Endpoint, sub.P256dh, sub.Auth, parent.Sub); err != nil {
		t.Fatal(err)
	}

	m := s.api(teacher).mustSend(conv.ID, "내일 알림장 확인 부탁드립니다", uuid.NewString())
	got := svc.Wait(t, sub, 1, 30*time.Second)[0]
	var p struct {
		Title, Body, URL, Tag string
		Unread                int64
	}
	if err := json.Unmarshal(got.Payload, &p); err != nil {
		t.Fatal(err)
	}
	if p.Title != "김민지" || p.Body != "김민지: 내일 알림장 확인 부탁드립니다" || p.URL != s.URL+"/c/"+strconv.FormatInt(conv.ID, 10) ||
		p.Unread != 1 || got.Urgency != "high" || got.Subject == "" {
		t.Fatalf("push %+v, urgency %q, sub %q", p, got.Urgency, got.Subject)
	}
	s.api(parent).mustJSON(http.MethodPost, "/api/v1/conversations/"+strconv.FormatInt(conv.ID, 10)+"/read",
		map[string]any{"seq": m.Seq}, http.StatusNoContent, nil)

	// Read at once (before the sweep runs): no second push.
	m2 := s.api(teacher).mustSend(conv.ID, "확인 감사합니다", uuid.NewString())
	s.api(parent).mustJSON(http.MethodPost, "/api/v1/conversations/"+strconv.FormatInt(conv.ID, 10)+"/read",
		map[string]any{"seq": m2.Seq}, http.StatusNoContent, nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if pendingJobs(t, owner, "push_sweep", "push_message") == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the push job never ran")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(svc.Pushes(sub)); n != 1 {
		t.Fatalf("%d pushes, want 1: the second message was read before its job", n)
	}
	if errs := svc.Errors(); len(errs) > 0 {
		t.Fatal(errs)
	}
}
