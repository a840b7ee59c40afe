package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/serviceworker"
	cdptarget "github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/internal/browsertest"
	"github.com/dreamseed/messenger/mail/mailpittest"
	"github.com/dreamseed/messenger/push/pushtest"
)

// TestNotificationsAsAUser walks through notifications as a parent does, on the real binary
// with a real push service (which verifies VAPID and decrypts) and a real SMTP server:
//
//  1. In Chromium at 390 px, inside the portal's iframe (another site), the parent taps
//     "알림 켜기"; the small top-level window subscribes and closes; the iframe lists the device.
//  2. The parent closes the portal's tab. A teacher writes; the push service receives the
//     push and decrypts the teacher's words; handed to the browser, as the push service
//     would, the service worker shows it with the app badge.
//  3. The parent opens the conversation: the notification goes, and no second push comes
//     for that message; a message read at once, while the thread is open, never pushes.
//  4. Away again, five more messages bring one digest email, opened in the browser.
//
// Headless Chromium has no push service of its own: the window's PushManager hands out the
// local push service's subscription (its endpoint and real keys), the one thing injected.
func TestNotificationsAsAUser(t *testing.T) {
	svc := pushtest.New(t)
	mp := mailpittest.Start(t)
	shots := screenshotDir(t)

	// The portal: a page on another site that signs the parent into its iframe.
	var portal struct {
		sync.Mutex
		messenger, token, next string
	}
	portalSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		portal.Lock()
		defer portal.Unlock()
		browsertest.PortalPage(w, portal.messenger, portal.token, portal.next)
	}))
	t.Cleanup(portalSrv.Close)

	s := startServer(t,
		"MESSENGER_PORTAL_ORIGINS="+portalSrv.URL,
		"MESSENGER_PUSH_ALLOW_PRIVATE=1", "MESSENGER_PUSH_DELAY=1s",
		"MESSENGER_SMTP_URL="+mp.URL, "MESSENGER_MAIL_FROM=DreamSeed <no-reply@school.example>",
		"MESSENGER_MAIL_SECRET="+strings.Repeat("k", 40),
		"MESSENGER_DIGEST_EVERY=10s", "MESSENGER_DIGEST_OFFLINE_AFTER=1s", "MESSENGER_DIGEST_MIN_UNREAD=5",
	)
	owner, err := sql.Open("postgres", s.env("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { owner.Close() })

	org := "org-notify-" + deliveryNonce()
	teacher := newUser(t, "nt-teacher", "김선영", org, "teacher")
	parentToken, err := auth.MintToken([]byte(auth.DevSecret), "messenger", auth.Claims{
		Issuer: "dreamseed-portal", Subject: "nt-parent", Name: "최지훈", Email: "nt-parent@example.com",
		OrgID: org, Role: "parent", Locale: "ko",
	}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	parent := testUser{Sub: "nt-parent", Name: "최지훈", Org: org, Role: "parent", Token: parentToken}
	conv := s.api(teacher).directWith(s.api(parent))
	convURL := s.URL + "/c/" + strconv.FormatInt(conv.ID, 10)
	portal.Lock()
	portal.messenger, portal.token, portal.next = s.URL, parentToken, "/settings"
	portal.Unlock()

	// The parent's browser: one browser context (their profile) whose first tab stays on
	// about:blank, so that closing the portal's tab leaves the profile and its service worker.
	profile := newTab(t, newBrowser(t), "ko")
	profile.do(browsertest.Call(browser.SetPermission, browser.SetPermissionParams{
		Permission: &browser.PermissionDescriptor{Name: "notifications"}, Setting: browser.PermissionSettingGranted, Origin: s.URL,
		BrowserContextID: chromedp.FromContext(profile.ctx).BrowserContextID,
	}))
	openTab := func(url string) (context.Context, context.CancelFunc) {
		ctx, cancel := chromedp.NewContext(profile.ctx)
		if err := chromedp.Do(ctx); err != nil {
			t.Fatal(err)
		}
		must(t, "open "+url, ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch), chromedp.Navigate(url))
		return ctx, cancel
	}

	// 1. Turn notifications on from inside the portal's iframe.
	portalTab, closePortal := openTab(portalSrv.URL + "/")
	frame := browsertest.Attach(t, portalTab, func(info *cdptarget.Info) bool {
		return info.Type == "iframe" && strings.HasPrefix(info.URL, s.URL+"/settings")
	})
	poll(t, frame, "the settings in the iframe", `!!document.querySelector("#push-enable") && !document.querySelector("#push-enable").hidden`)
	shotOf(t, portalTab, shots, "notify-1-iframe-ko-390")
	f, b := rectOf(t, portalTab, "#m"), rectOf(t, frame, "#push-enable")
	browsertest.Tap(t, portalTab, f.X+b.X+b.W/2, f.Y+b.Y+b.H/2)
	window := browsertest.Attach(t, portalTab, func(info *cdptarget.Info) bool {
		return info.Type == "page" && strings.HasPrefix(info.URL, s.URL+"/push/enable")
	})
	poll(t, window, "the window has its ticket", `location.hash === "" && document.readyState === "complete" && !!document.getElementById("push-enable-page")`)
	sub := svc.Subscribe()
	must(t, "the browser's push service is the local one", window, browsertest.PushService(sub.Endpoint, sub.P256dh, sub.Auth))
	shotOf(t, window, shots, "notify-2-window-ko-390")
	must(t, "tap allow", window, chromedp.Click(chromedp.ID("push-enable")))
	poll(t, frame, "the iframe lists the device", fmt.Sprintf(`!!document.querySelector('#push-device-list [data-endpoint=%q]') && document.getElementById("push-state").textContent === "이 기기에서 알림이 켜져 있습니다."`, sub.Endpoint))
	shotOf(t, portalTab, shots, "notify-3-enabled-ko-390")

	// 2. The parent closes the tab; the teacher writes.
	closePortal()
	waitFor(t, "the parent's streams closed", func() bool { return liveStreams(t, s) == 0 })
	sent := time.Now()
	s.api(teacher).mustSend(conv.ID, "내일 현장학습 준비물은 도시락과 물입니다", uuid.NewString())
	got := svc.Wait(t, sub, 1, 30*time.Second)[0]
	var payload struct {
		Title, Body, URL, Tag string
		Unread                int64
	}
	if err := json.Unmarshal(got.Payload, &payload); err != nil {
		t.Fatal(err)
	}
	if payload.Title != "김선영" || payload.Body != "김선영: 내일 현장학습 준비물은 도시락과 물입니다" || payload.URL != convURL ||
		payload.Unread != 1 || got.Urgency != "high" || got.TTL != "86400" || got.Topic == "" {
		t.Fatalf("decrypted push %s (urgency %q, TTL %q, topic %q)", got.Payload, got.Urgency, got.TTL, got.Topic)
	}
	t.Logf("pushed %v after the send, decrypted: %s", time.Since(sent).Round(100*time.Millisecond), got.Payload)

	// The push service hands it to the browser: the service worker shows it and badges the app.
	worker, reg := serviceWorkerOf(t, profile, s.URL)
	evalIn(t, worker, `WorkerNavigator.prototype.setAppBadge = function (n) { self.badge = n; return Promise.resolve(); }; true`)
	profile.do(browsertest.Call(serviceworker.DeliverPushMessage, serviceworker.DeliverPushMessageParams{
		Origin: s.URL, RegistrationID: reg, Data: string(got.Payload),
	}))
	shown := func() string {
		return evalIn(t, worker, `self.registration.getNotifications().then((ns) => JSON.stringify(ns.map((n) => ({title: n.title, body: n.body, tag: n.tag, url: n.data && n.data.url}))))`)
	}
	var notes string
	waitFor(t, "the notification shown", func() bool { notes = shown(); return strings.Contains(notes, "도시락과 물입니다") })
	want := fmt.Sprintf(`[{"title":"김선영","body":"김선영: 내일 현장학습 준비물은 도시락과 물입니다","tag":"c%d","url":%q}]`, conv.ID, convURL)
	if notes != want {
		t.Errorf("notifications %s, want %s", notes, want)
	}
	if badge := evalIn(t, worker, `String(self.badge)`); badge != "1" {
		t.Errorf("app badge %s, want 1", badge)
	}

	// 3. The parent opens the conversation (the notification's link, inside the portal).
	portal.Lock()
	portal.next = "/c/" + strconv.FormatInt(conv.ID, 10)
	portal.Unlock()
	threadTab, closeThread := openTab(portalSrv.URL + "/")
	thread := browsertest.Attach(t, threadTab, func(info *cdptarget.Info) bool {
		return info.Type == "iframe" && strings.HasPrefix(info.URL, convURL)
	})
	poll(t, thread, "the message in the thread", `document.body.innerText.includes("도시락과 물입니다")`)
	waitFor(t, "the notification closed once read", func() bool { return shown() == "[]" })
	// Read while the thread is open (the parent taps into it, so the page has the focus):
	// the next message never pushes.
	fr := rectOf(t, threadTab, "#m")
	browsertest.Tap(t, threadTab, fr.X+fr.W/2, fr.Y+fr.H/3)
	poll(t, thread, "the thread has the focus", `document.hasFocus()`)
	second := s.api(teacher).mustSend(conv.ID, "우산도 챙겨 주세요", uuid.NewString())
	poll(t, thread, "the second message live", `document.body.innerText.includes("우산도 챙겨 주세요")`)
	waitFor(t, "the parent read it", func() bool { return readUpTo(t, owner, conv.ID, parent.Sub) >= second.Seq })
	shotOf(t, threadTab, shots, "notify-4-thread-ko-390")
	waitFor(t, "every push job done", func() bool { return pendingJobs(t, owner, "push_sweep", "push_message") == 0 })
	time.Sleep(2 * time.Second) // past the push delay once more: a late job would show now
	if n := len(svc.Pushes(sub)); n != 1 {
		t.Fatalf("%d pushes, want 1: the first message read, the second read at once", n)
	}

	// 4. Away again: five unread messages bring one digest email.
	closeThread()
	waitFor(t, "the parent's streams closed", func() bool { return liveStreams(t, s) == 0 })
	for _, body := range []string{"가정통신문 확인 부탁드립니다", "체험학습 동의서 제출 기한은 금요일입니다", "급식 알레르기 조사 회신 바랍니다",
		"학부모 상담 주간 안내", "방과후 수업 신청 마감"} {
		s.api(teacher).mustSend(conv.ID, body, uuid.NewString())
	}
	mails := mp.WaitFor(t, "nt-parent@example.com", 1, 60*time.Second)
	mail := mails[0]
	if mail.Subject != "[DreamSeed] 새로운 메시지가 도착했습니다" || !strings.Contains(mail.Text, "방과후 수업 신청 마감") ||
		!strings.Contains(mail.HTML, fmt.Sprintf(`href="%s"`, convURL)) || strings.Contains(mail.Text, "도시락과 물입니다") ||
		len(mail.Headers["List-Unsubscribe"]) != 1 || len(mail.Headers["List-Unsubscribe-Post"]) != 1 {
		t.Fatalf("digest %q:\n%s\n%v", mail.Subject, mail.Text, mail.Headers)
	}
	mailTab, closeMail := openTab(mp.API + "/view/" + mail.ID + ".html")
	defer closeMail()
	poll(t, mailTab, "the mail open", `document.body.innerText.includes("방과후 수업 신청 마감")`)
	shotOf(t, mailTab, shots, "notify-5-digest-ko-390")
	if errs := svc.Errors(); len(errs) > 0 {
		t.Fatal(errs)
	}
	checkServerErrors(t, s)
}

// must runs actions in ctx within 20 s and fails the test on error.
func must(t *testing.T, what string, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, done := context.WithTimeout(ctx, 20*time.Second)
	defer done()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// poll waits up to 20 s for expr to be true in ctx.
func poll(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	c, done := context.WithTimeout(ctx, 25*time.Second)
	defer done()
	if _, err := chromedp.Run(c, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitFor waits up to 30 s for ok.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// serviceWorkerOf answers a context in the running service worker of origin's scope "/"
// and its registration id.
func serviceWorkerOf(t *testing.T, tb *tab, origin string) (context.Context, serviceworker.RegistrationID) {
	t.Helper()
	regs := make(chan serviceworker.RegistrationID, 8)
	lctx, stop := context.WithCancel(tb.ctx)
	defer stop()
	if err := chromedp.Listen(lctx, func(ev any) {
		if u, ok := ev.(*serviceworker.EventWorkerRegistrationUpdated); ok {
			for _, r := range u.Registrations {
				if r.ScopeURL == origin+"/" && !r.IsDeleted {
					select {
					case regs <- r.RegistrationID:
					default:
					}
				}
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	tb.do(browsertest.Call(serviceworker.Enable, cdp.Empty{}))
	var reg serviceworker.RegistrationID
	select {
	case reg = <-regs:
	case <-time.After(10 * time.Second):
		t.Fatal("no service worker registered for " + origin + "/")
	}
	// Start it, if it sleeps, to attach to it.
	tb.do(browsertest.Call(serviceworker.StartWorker, serviceworker.StartWorkerParams{ScopeURL: origin + "/"}))
	return browsertest.Attach(t, tb.ctx, func(info *cdptarget.Info) bool {
		return info.Type == "service_worker" && info.URL == origin+"/sw.js"
	}), reg
}

// evalIn evaluates expr in ctx's target (a page or a worker), awaiting a promise, and
// answers the result as a string.
func evalIn(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	c, done := context.WithTimeout(ctx, 20*time.Second)
	defer done()
	var out string
	yes := true
	err := chromedp.Do(c, chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		res, err := cdp.Call(ctx, target, runtime.Evaluate, runtime.EvaluateParams{Expression: expr, AwaitPromise: &yes, ReturnByValue: &yes})
		if err != nil {
			return err
		}
		if res.ExceptionDetails != nil {
			return fmt.Errorf("%s %v", res.ExceptionDetails.Text, res.ExceptionDetails.Exception)
		}
		if err := json.Unmarshal(res.Result.Value, &out); err != nil {
			out = string(res.Result.Value)
		}
		return nil
	}))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return out
}

type box struct{ X, Y, W, H float64 }

// rectOf answers where sel is in ctx's page.
func rectOf(t *testing.T, ctx context.Context, sel string) (r box) {
	t.Helper()
	raw := evalIn(t, ctx, `JSON.stringify((({x, y, width, height}) => ({X: x, Y: y, W: width, H: height}))(document.querySelector(`+strconv.Quote(sel)+`).getBoundingClientRect()))`)
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// shotOf writes what ctx's page shows as a PNG into dir.
func shotOf(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	var png []byte
	must(t, "screenshot", ctx,
		chromedp.Evaluate[chromedp.Void](`document.fonts.ready.then(() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))))`, chromedp.EvalAwaitPromise),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			var err error
			png, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
			return err
		}))
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// liveStreams answers the server's open live streams, from its metrics.
func liveStreams(t *testing.T, s *server) float64 {
	t.Helper()
	resp, err := http.Get(s.MetricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "messenger_streams "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no messenger_streams in the metrics")
	return 0
}

// readUpTo answers the seq a user has read up to in a conversation.
func readUpTo(t *testing.T, owner *sql.DB, conv int64, sub string) int64 {
	t.Helper()
	var seq int64
	if err := owner.QueryRow(`SELECT coalesce(max(r.last_read_seq), 0) FROM read_receipts r JOIN users u ON u.id = r.user_id
	                           WHERE r.conversation_id = $1 AND u.sub = $2 AND u.moved_at IS NULL`, conv, sub).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	return seq
}

// pendingJobs answers the jobs of these kinds not yet ended.
func pendingJobs(t *testing.T, owner *sql.DB, kinds ...string) int {
	t.Helper()
	var n int
	if err := owner.QueryRow(`SELECT count(*) FROM river_job WHERE kind = ANY($1) AND state NOT IN ('completed', 'discarded', 'cancelled')`, pq.Array(kinds)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
