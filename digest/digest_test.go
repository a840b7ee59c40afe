package digest_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/digest"
	"github.com/dreamseed/messenger/jobs"
	dsmail "github.com/dreamseed/messenger/mail"
	"github.com/dreamseed/messenger/mail/mailpittest"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

var secret = []byte("0123456789abcdef0123456789abcdef-test")

type env struct {
	t      *testing.T
	db     *store.DB
	owner  *sql.DB
	appDSN string
	mp     *mailpittest.Server
	engine realtime.Engine
	svc    *digest.Service
	cfg    digest.Config
}

func newEnv(t *testing.T) *env {
	db, d := storetest.NewDB(t)
	owner := storetest.Conn(t, d.OwnerDSN)
	e := &env{t: t, db: db, owner: owner, appDSN: d.AppDSN, mp: mailpittest.Start(t), engine: realtime.NewMemory(0)}
	t.Cleanup(func() { e.engine.Close() })
	e.cfg = digest.Config{Every: time.Hour, OfflineAfter: time.Hour, MinUnread: 5, BaseURL: "https://messenger.example", Secret: secret}
	e.svc = e.service()
	return e
}

func (e *env) service() *digest.Service {
	sender, err := dsmail.New(e.mp.URL+"?timeout=5s", "DreamSeed <no-reply@school.example>")
	if err != nil {
		e.t.Fatal(err)
	}
	svc, err := digest.New(e.db, e.engine, sender, e.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		e.t.Fatal(err)
	}
	return svc
}

// runner starts a job runner (a process's workers) with the digest's jobs.
func (e *env) runner(svc *digest.Service) *jobs.Runner {
	appDB, err := sql.Open("postgres", e.appDSN)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { appDB.Close() })
	r, err := jobs.New(appDB, slog.New(slog.NewTextHandler(io.Discard, nil)), jobs.Config{
		Workers: 2, PollInterval: 50 * time.Millisecond, RetryBase: 200 * time.Millisecond, RetryMax: 400 * time.Millisecond,
	}, nil, svc.Register)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.Stop(ctx)
	})
	return r
}

func (e *env) user(sub, name, email, locale string) messenger.User {
	u, err := e.db.SignIn(context.Background(), store.SignInParams{
		Issuer: "dreamseed-portal", Sub: sub, OrgID: "org-d", Name: name, Email: email, Role: messenger.RoleParent, Locale: locale,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// away makes u last seen two days ago.
func (e *env) away(u messenger.User) {
	if _, err := e.owner.Exec(`UPDATE users SET last_seen_at = now() - interval '2 days' WHERE id = $1`, u.ID); err != nil {
		e.t.Fatal(err)
	}
}

// send posts bodies from from to to's direct conversation and answers its id.
func (e *env) send(from, to messenger.User, bodies ...string) int64 {
	ctx := context.Background()
	var convID int64
	err := e.db.InTx(ctx, from.Identity(), func(tx *store.Tx) error {
		var err error
		if convID, _, err = tx.DirectConversation(ctx, to.ID); err != nil {
			return err
		}
		for _, b := range bodies {
			if _, err := tx.InsertMessage(ctx, convID, store.NewMessage{Kind: messenger.MessageText, Body: b}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return convID
}

func (e *env) read(u messenger.User, convID, seq int64) {
	ctx := context.Background()
	if err := e.db.InTx(ctx, u.Identity(), func(tx *store.Tx) error {
		_, _, err := tx.MarkRead(ctx, convID, seq)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) enqueue(r *jobs.Runner) int {
	n, err := e.svc.Enqueue(context.Background(), r.Client())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// settle waits until no digest job is left to run.
func (e *env) settle() {
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int
		if err := e.owner.QueryRow(`SELECT count(*) FROM river_job WHERE kind = 'digest_send' AND state NOT IN ('completed', 'discarded', 'cancelled')`).Scan(&n); err != nil {
			e.t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d digest jobs still pending", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// awayParent signs in a parent (away for two days) and a teacher who sends them n messages.
func (e *env) awayParent(n int) (parent, teacher messenger.User) {
	parent = e.user("p", "김학부모", "parent@example.com", "ko")
	teacher = e.user("t", "박선생", "teacher@example.com", "ko")
	e.away(parent)
	e.send(teacher, parent, bodies(n, "x")...)
	return parent, teacher
}

// sendDigest runs u's digest job in this process.
func (e *env) sendDigest(u messenger.User) {
	if err := e.svc.Send(context.Background(), u.ID); err != nil {
		e.t.Fatal(err)
	}
}

// mailCount waits a moment for anything late, then checks how many emails to went out.
func (e *env) mailCount(wait time.Duration, to string, want int, what string) {
	e.t.Helper()
	time.Sleep(wait)
	if n := len(e.mp.To(e.t, to)); n != want {
		e.t.Errorf("%d %s, want %d", n, what, want)
	}
}

// pendingDigests counts the digests recorded as sending and not yet marked sent.
func (e *env) pendingDigests() int {
	var pending int
	e.owner.QueryRow(`SELECT count(*) FROM digest_outbox`).Scan(&pending)
	return pending
}

func bodies(n int, prefix string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s %d", prefix, i+1)
	}
	return out
}

func TestDigestArrives(t *testing.T) {
	e := newEnv(t)
	r := e.runner(e.svc)
	parent := e.user("p1", "김학부모", "parent@example.com", "ko")
	teacher := e.user("t1", "박선생", "teacher@example.com", "ko")
	e.away(parent)
	msgs := append(bodies(4, "숙제 안내"), `<script>alert(1)</script> & "따옴표"`)
	conv := e.send(teacher, parent, msgs...)

	if n := e.enqueue(r); n != 1 {
		t.Fatalf("enqueued %d digests, want 1 (the parent; the teacher has nothing unread)", n)
	}
	got := e.mp.WaitFor(t, "parent@example.com", 1, 10*time.Second)[0]
	if got.Subject != "[DreamSeed] 새로운 메시지가 도착했습니다" {
		t.Errorf("subject %q", got.Subject)
	}
	convURL := fmt.Sprintf("https://messenger.example/c/%d", conv)
	for part, body := range map[string]string{"text": got.Text, "html": got.HTML} {
		for _, want := range []string{"박선생", "읽지 않은 메시지 5개", "숙제 안내 4", "숙제 안내 3", convURL, "https://messenger.example/unsubscribe?t="} {
			if !strings.Contains(body, want) {
				t.Errorf("%s part lacks %q:\n%s", part, want, body)
			}
		}
		if strings.Contains(body, "숙제 안내 2") {
			t.Errorf("%s part shows more than the latest 3 messages", part)
		}
	}
	if strings.Contains(got.HTML, "<script>") || !strings.Contains(got.HTML, "&lt;script&gt;") {
		t.Errorf("html part does not escape message text:\n%s", got.HTML)
	}
	if strings.Contains(got.HTML, "<img") || strings.Contains(got.HTML, "<link") {
		t.Errorf("html part loads something remote:\n%s", got.HTML)
	}
	unsub := got.Headers["List-Unsubscribe"]
	if len(unsub) != 1 || !strings.HasPrefix(unsub[0], "<https://messenger.example/unsubscribe?t=") {
		t.Errorf("List-Unsubscribe %q", unsub)
	}
	if h := got.Headers["List-Unsubscribe-Post"]; len(h) != 1 || h[0] != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post %q", h)
	}

	// The same messages are never sent again: the next period finds nothing due.
	e.settle()
	e.sendDigest(parent)
	if n := e.enqueue(r); n != 0 {
		t.Errorf("enqueued %d digests for messages already sent", n)
	}
	e.mailCount(300*time.Millisecond, "parent@example.com", 1, "digests")
}

func TestDigestInEnglish(t *testing.T) {
	e := newEnv(t)
	r := e.runner(e.svc)
	parent := e.user("p-en", "Alex Kim", "alex@example.com", "en")
	teacher := e.user("t-en", "Ms Park", "park@example.com", "ko")
	e.away(parent)
	e.send(teacher, parent, bodies(6, "homework")...)
	e.enqueue(r)
	got := e.mp.WaitFor(t, "alex@example.com", 1, 10*time.Second)[0]
	if got.Subject != "[DreamSeed] You have new messages" {
		t.Errorf("subject %q", got.Subject)
	}
	if !strings.Contains(got.Text, "6 unread") || !strings.Contains(got.HTML, "Open conversation") || strings.Contains(got.Text, "읽지") {
		t.Errorf("not English:\n%s", got.Text)
	}
}

func TestNoDigestWhenNotDue(t *testing.T) {
	e := newEnv(t)
	r := e.runner(e.svc)
	teacher := e.user("t", "박선생", "teacher@example.com", "ko")
	readAll := e.user("read", "읽은사람", "read@example.com", "ko")
	few := e.user("few", "적은사람", "few@example.com", "ko")
	online := e.user("on", "접속중", "online@example.com", "ko")
	recent := e.user("recent", "방금", "recent@example.com", "ko")
	for _, u := range []messenger.User{readAll, few, online} {
		e.away(u)
	}
	c := e.send(teacher, readAll, bodies(6, "x")...)
	e.read(readAll, c, 6)
	e.send(teacher, few, bodies(4, "x")...)
	e.send(teacher, online, bodies(6, "x")...)
	e.send(teacher, recent, bodies(6, "x")...) // signed in just now, never seen since: not away long enough
	if _, err := e.engine.Connect(context.Background(), online.ID, "tab-1"); err != nil {
		t.Fatal(err)
	}
	if n := e.enqueue(r); n != 0 {
		t.Errorf("enqueued %d digests, want none", n)
	}
	// Even sent directly, the job checks again: nothing.
	for _, u := range []messenger.User{readAll, few, online, recent} {
		if err := e.svc.Send(context.Background(), u.ID); err != nil {
			t.Fatal(err)
		}
	}
	e.settle()
	time.Sleep(200 * time.Millisecond)
	if msgs := e.mp.Messages(t); len(msgs) != 0 {
		t.Errorf("%d messages sent, want none: %+v", len(msgs), msgs)
	}
}

// TestDigestNeverShowsWhatWasReadSince: messages read between the scan and the send are
// not in the digest (and a digest that falls below the minimum is not sent).
func TestDigestNeverShowsWhatWasReadSince(t *testing.T) {
	e := newEnv(t)
	parent := e.user("p", "김학부모", "parent@example.com", "ko")
	teacher := e.user("t", "박선생", "teacher@example.com", "ko")
	other := e.user("o", "이선생", "other@example.com", "ko")
	e.away(parent)
	c1 := e.send(teacher, parent, "비밀 1", "비밀 2", "비밀 3")
	e.send(other, parent, bodies(5, "공지")...)
	e.read(parent, c1, 3) // read on a phone after the scan
	e.sendDigest(parent)
	got := e.mp.WaitFor(t, "parent@example.com", 1, 10*time.Second)[0]
	if strings.Contains(got.Text, "비밀") || strings.Contains(got.HTML, "비밀") || strings.Contains(got.Text, "박선생") {
		t.Errorf("digest shows a message read since:\n%s", got.Text)
	}
	if !strings.Contains(got.Text, "공지 5") {
		t.Errorf("digest lacks the unread conversation:\n%s", got.Text)
	}
}

func TestTwoRunnersSendOneDigest(t *testing.T) {
	e := newEnv(t)
	e.awayParent(7)
	svc2 := e.service()
	r1, r2 := e.runner(e.svc), e.runner(svc2)
	var wg sync.WaitGroup
	for _, pair := range []struct {
		s *digest.Service
		r *jobs.Runner
	}{{e.svc, r1}, {svc2, r2}, {e.svc, r2}, {svc2, r1}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := pair.s.Enqueue(context.Background(), pair.r.Client()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	e.mp.WaitFor(t, "parent@example.com", 1, 10*time.Second)
	e.settle()
	e.mailCount(300*time.Millisecond, "parent@example.com", 1, "digests from two runners")
}

func TestSMTPDownThenUpSendsExactlyOne(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	e.svc.SetMetrics(digest.NewMetrics(reg))
	r := e.runner(e.svc)
	e.awayParent(5)
	e.mp.Stop()
	e.enqueue(r)
	// Wait for at least two failed attempts. River raises attempt when an attempt starts and
	// records its error when it fails, so the errors are what show two attempts failed.
	deadline := time.Now().Add(15 * time.Second)
	for {
		var attempts int
		e.owner.QueryRow(`SELECT coalesce(max(cardinality(errors)), 0) FROM river_job WHERE kind = 'digest_send'`).Scan(&attempts)
		if attempts >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the digest job was not retried (attempt %d)", attempts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := e.mp.Restart(); err != nil {
		t.Fatal(err)
	}
	e.mp.WaitFor(t, "parent@example.com", 1, 15*time.Second)
	e.settle()
	e.enqueue(r)
	e.settle()
	e.mailCount(300*time.Millisecond, "parent@example.com", 1, "digests after the outage")
	if sent, failed := outcome(t, reg, "sent"), outcome(t, reg, "failed"); sent != 1 || failed < 2 {
		t.Errorf("messenger_digest_emails_total: sent %v, failed %v; want 1 sent after at least 2 failed", sent, failed)
	}
}

// outcome answers messenger_digest_emails_total{outcome} on reg.
func outcome(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	i := slices.IndexFunc(fams, func(f *dto.MetricFamily) bool { return f.GetName() == "messenger_digest_emails_total" })
	if err != nil || i < 0 {
		t.Fatalf("no messenger_digest_emails_total (%v)", err)
	}
	series := fams[i].GetMetric()
	j := slices.IndexFunc(series, func(m *dto.Metric) bool { return m.GetLabel()[0].GetValue() == name })
	if j < 0 {
		t.Fatalf("no messenger_digest_emails_total{outcome=%q}", name)
	}
	return series[j].GetCounter().GetValue()
}

// TestCrashAfterSMTPResendsTheSameMessage: a crash after SMTP took the digest and before it
// was marked sent makes the retry send the same Message-ID (mailboxes drop the copy).
func TestCrashAfterSMTPResendsTheSameMessage(t *testing.T) {
	e := newEnv(t)
	parent, _ := e.awayParent(5)
	if err := e.svc.SendWithoutRecording(parent.ID); err != nil {
		t.Fatal(err)
	}
	e.sendDigest(parent)
	got := e.mp.WaitFor(t, "parent@example.com", 2, 10*time.Second)
	if got[0].MessageID != got[1].MessageID {
		t.Errorf("the retry sent a new Message-ID %q, first %q", got[0].MessageID, got[1].MessageID)
	}
	// Marked sent now: nothing more.
	e.sendDigest(parent)
	e.mailCount(200*time.Millisecond, "parent@example.com", 2, "messages")
}

func TestUnsubscribeLink(t *testing.T) {
	e := newEnv(t)
	parent, teacher := e.awayParent(5)
	e.sendDigest(parent)
	got := e.mp.WaitFor(t, "parent@example.com", 1, 10*time.Second)[0]
	link := strings.Trim(got.Headers["List-Unsubscribe"][0], "<>")
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	tok := u.Query().Get("t")
	srv := httptest.NewServer(digest.NewUnsubscriber(e.db, secret, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()

	get := func(tok string) (int, string) {
		resp, err := http.Get(srv.URL + "/unsubscribe?t=" + url.QueryEscape(tok))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	oneClick := func(tok string) int {
		resp, err := http.Post(srv.URL+"/unsubscribe?t="+url.QueryEscape(tok), "application/x-www-form-urlencoded",
			strings.NewReader("List-Unsubscribe=One-Click"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	emailOn := func() bool {
		var on bool
		e.db.InTx(context.Background(), parent.Identity(), func(tx *store.Tx) error {
			on, err = tx.EmailOn(context.Background())
			return err
		})
		return on
	}

	// GET only asks.
	if code, body := get(tok); code != 200 || !strings.Contains(body, `method="post"`) || !strings.Contains(body, "이메일 알림") {
		t.Fatalf("GET: %d\n%s", code, body)
	}
	if !emailOn() {
		t.Fatal("GET turned email off")
	}
	// Forged (one character changed) and expired tokens are refused.
	forged := []byte(tok)
	forged[5] ^= 1
	if forged[5] == '-' || forged[5] == '_' {
		forged[5] = 'A'
	}
	if code := oneClick(string(forged)); code != http.StatusBadRequest {
		t.Errorf("forged token: %d", code)
	}
	expired := digest.SignUnsubscribeToken(secret, parent.ID, time.Now().Add(-time.Minute))
	if code := oneClick(expired); code != http.StatusBadRequest {
		t.Errorf("expired token: %d", code)
	}
	other := digest.SignUnsubscribeToken([]byte("another secret of at least 32 bytes!!"), parent.ID, time.Now().Add(time.Hour))
	if code := oneClick(other); code != http.StatusBadRequest {
		t.Errorf("token of another key: %d", code)
	}
	if !emailOn() {
		t.Fatal("a refused token turned email off")
	}
	// One click turns it off, once.
	if code := oneClick(tok); code != 200 {
		t.Fatalf("one-click POST: %d", code)
	}
	if emailOn() {
		t.Fatal("email still on after unsubscribing")
	}
	if code := oneClick(tok); code != http.StatusGone {
		t.Errorf("second use: %d, want 410", code)
	}
	if code, _ := get(tok); code != http.StatusGone {
		t.Errorf("GET of a used link: %d, want 410", code)
	}
	// Email off: no digest however much is unread.
	e.send(teacher, parent, bodies(6, "y")...)
	e.sendDigest(parent)
	e.mailCount(200*time.Millisecond, "parent@example.com", 1, "digests after unsubscribing")
}

// TestConcurrentSendsShareOneMessageID: send jobs of one user running at once (two periods
// overlapping, two processes) send one digest.
func TestConcurrentSendsShareOneMessageID(t *testing.T) {
	e := newEnv(t)
	parent, _ := e.awayParent(5)
	svc2 := e.service()
	var wg sync.WaitGroup
	for _, s := range []*digest.Service{e.svc, svc2, e.svc, svc2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Send(context.Background(), parent.ID); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	e.mp.WaitFor(t, "parent@example.com", 1, 10*time.Second)
	e.mailCount(200*time.Millisecond, "parent@example.com", 1, "digests from concurrent jobs")
	if pending := e.pendingDigests(); pending != 0 {
		t.Errorf("%d digests left pending", pending)
	}
}

// TestBadAddressIsNotRetried: an address the portal gave that is not one ends the job at
// once (nothing sent, nothing left pending), rather than failing it 30 times.
func TestBadAddressIsNotRetried(t *testing.T) {
	e := newEnv(t)
	bad := e.user("bad", "주소오류", "not an address\r\nBcc: x@example.com", "ko")
	teacher := e.user("t", "박선생", "teacher@example.com", "ko")
	e.away(bad)
	e.send(teacher, bad, bodies(6, "x")...)
	if err := e.svc.Send(context.Background(), bad.ID); err != nil {
		t.Errorf("Send: %v, want nil (nothing to retry)", err)
	}
	pending := e.pendingDigests()
	if n := len(e.mp.Messages(t)); n != 0 || pending != 0 {
		t.Errorf("%d messages sent, %d pending", n, pending)
	}
}
