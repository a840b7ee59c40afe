package e2e

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/mail/mailpittest"
	"github.com/dreamseed/messenger/realtime/redistest"
)

// TestDigestTwoProcesses: two messenger processes with the digest on, sharing a database and
// Redis, send one digest to a parent who is away; its button leads to the conversation and
// its unsubscribe link, opened against the server, asks on GET and turns email off on a
// one-click POST.
func TestDigestTwoProcesses(t *testing.T) {
	mp := mailpittest.Start(t)
	redisURL := redistest.URL(t)
	mailEnv := []string{
		"REDIS_URL=" + redisURL,
		"MESSENGER_SMTP_URL=" + mp.URL, "MESSENGER_MAIL_FROM=DreamSeed <no-reply@school.example>",
		"MESSENGER_MAIL_SECRET=" + strings.Repeat("k", 40),
		"MESSENGER_DIGEST_EVERY=10s", "MESSENGER_DIGEST_OFFLINE_AFTER=1s", "MESSENGER_DIGEST_MIN_UNREAD=5",
	}
	a := startServer(t, mailEnv...)
	b := startServerOn(t, a, mailEnv...)

	org := "org-digest-" + deliveryNonce()
	teacher := newUser(t, "dg-t", "박선생", org, "teacher")
	token, err := auth.MintToken([]byte(auth.DevSecret), "messenger", auth.Claims{
		Issuer: "dreamseed-portal", Subject: "dg-p", Name: "김학부모", Email: "dg-parent@example.com", OrgID: org, Role: "parent", Locale: "ko",
	}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	parent := testUser{Sub: "dg-p", Name: "김학부모", Org: org, Role: "parent", Token: token}
	conv := a.api(teacher).directWith(b.api(parent))
	for i := range 5 {
		a.api(teacher).mustSend(conv.ID, fmt.Sprintf("내일 준비물 %d", i+1), uuid.NewString())
	}

	got := mp.WaitFor(t, "dg-parent@example.com", 1, 40*time.Second)[0]
	if got.Subject != "[DreamSeed] 새로운 메시지가 도착했습니다" {
		t.Errorf("subject %q", got.Subject)
	}
	// The harness gives each process its own MESSENGER_BASE_URL; whichever sent it names itself.
	hrefA, hrefB := fmt.Sprintf(`href="%s/c/%d"`, a.URL, conv.ID), fmt.Sprintf(`href="%s/c/%d"`, b.URL, conv.ID)
	if !(strings.Contains(got.HTML, hrefA) || strings.Contains(got.HTML, hrefB)) || !strings.Contains(got.Text, "내일 준비물 5") {
		t.Errorf("the digest lacks the conversation's button or its messages:\n%s", got.HTML)
	}
	// Both processes scan every 10 s: still one digest a period later.
	time.Sleep(12 * time.Second)
	if n := len(mp.To(t, "dg-parent@example.com")); n != 1 {
		t.Errorf("%d digests from two processes, want 1", n)
	}

	link := strings.Trim(got.Headers["List-Unsubscribe"][0], "<>")
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	onB := b.URL + u.RequestURI() // either process serves it
	if code, body := b.get(u.RequestURI()); code != 200 || !strings.Contains(body, "이메일 알림") {
		t.Fatalf("GET %s: %d\n%s", link, code, body)
	}
	resp, err := http.Post(onB, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("one-click POST: %d", resp.StatusCode)
	}
	owner, err := sql.Open("postgres", a.env("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	var email bool
	if err := owner.QueryRow(`SELECT s.email FROM user_settings s JOIN users u ON u.id = s.user_id WHERE u.sub = 'dg-p'`).Scan(&email); err != nil {
		t.Fatal(err)
	}
	if email {
		t.Error("email is still on after the one-click unsubscribe")
	}
}
