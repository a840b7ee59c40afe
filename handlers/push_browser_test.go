package handlers_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/serviceworker"
	cdptarget "github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/dreamseed/messenger/handlers"
	"github.com/dreamseed/messenger/internal/browsertest"
)

// TestPushInBrowser turns notifications on as a parent does: in Chromium at 390 px, inside
// the portal's iframe (the portal on http://localhost, the messenger on http://127.0.0.1:
// two sites, so the iframe's cookie is partitioned). "알림 켜기" opens the small top-level
// window with a ticket, which registers /sw.js, gets permission, subscribes, posts the
// subscription with the ticket, tells the iframe and closes; the iframe lists the device.
// Headless Chromium has no push service, so the window's PushManager hands out a
// subscription with real keys (the one thing injected). Then pushes are fired at the
// service worker (ServiceWorker.deliverPushMessage): the notification is read back with
// getNotifications — one per conversation, "새 메시지 2개" on the second, closed once the
// conversation is read. Screenshots in Korean and English.
func TestPushInBrowser(t *testing.T) {
	chromium := chromiumOrSkip(t)
	shots := screenshotDir(t)

	// The portal: a page that signs the user into its iframe, as the real one does.
	var portalPage struct {
		sync.Mutex
		messenger, token string
	}
	portalSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		portalPage.Lock()
		defer portalPage.Unlock()
		browsertest.PortalPage(w, portalPage.messenger, portalPage.token, "/settings")
	}))
	t.Cleanup(portalSrv.Close)
	portalOrigin := strings.Replace(portalSrv.URL, "127.0.0.1", "localhost", 1)

	e := newPushEnv(t, func(c *handlers.Config) {
		c.PortalOrigins = []string{portalOrigin}
		c.PushAllowPrivate = true
	})
	parent := mustUser(t, e.db, "demo-parent", "최지훈", "org-a")
	teacher := mustUser(t, e.db, "demo-teacher", "김선영", "org-a")
	conv := directConversation(t, e, parent, teacher)
	resp := e.do(nil, "POST", fmt.Sprintf("/api/v1/conversations/%d/messages", conv), strings.NewReader(`{"body": "네 알겠습니다", "client_msg_id": "5f0c7a4e-8d7b-4d39-9a55-1b2c3d4e5f60"}`),
		map[string]string{"Authorization": "Bearer " + sign(t, validClaims("demo-parent", "최지훈", "org-a")), "Content-Type": "application/json"})
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("send: %d %s", resp.StatusCode, readBody(t, resp))
	}
	portalPage.messenger = e.srv.URL

	// Keys the injected subscription carries: real P-256 keys, as a browser's.
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	secret := make([]byte, 16)
	rand.Read(secret)
	p256dh := base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes())
	authKey := base64.RawURLEncoding.EncodeToString(secret)

	for _, lang := range []string{"ko", "en"} {
		t.Run(lang, func(t *testing.T) {
			claims := validClaims("demo-parent", "최지훈", "org-a")
			claims["locale"] = lang
			claims["role"] = "parent"
			portalPage.Lock()
			portalPage.token = sign(t, claims)
			portalPage.Unlock()
			// The browser prefers the other language: the pages follow the user's own.
			accept := map[string]string{"ko": "en-US,en", "en": "ko-KR,ko"}[lang]
			ctx := startChromiumWith(t, chromium, chromedp.Flag("accept-lang", accept))
			do := func(ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
				t.Helper()
				c, done := context.WithTimeout(ctx, 20*time.Second)
				defer done()
				if err := chromedp.Do(c, actions...); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
			}
			eval := func(ctx context.Context, what, expr string) any {
				t.Helper()
				c, done := context.WithTimeout(ctx, 20*time.Second)
				defer done()
				v, err := chromedp.Run(c, chromedp.Evaluate[any](expr, chromedp.EvalAwaitPromise))
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				return v
			}
			wait := func(ctx context.Context, what, expr string) {
				t.Helper()
				c, done := context.WithTimeout(ctx, 25*time.Second)
				defer done()
				if _, err := chromedp.Run(c, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
			}
			do(ctx, "notifications allowed for the messenger", browsertest.Call(browser.SetPermission, browser.SetPermissionParams{
				Permission: &browser.PermissionDescriptor{Name: "notifications"}, Setting: browser.PermissionSettingGranted, Origin: e.srv.URL,
			}))
			do(ctx, "phone size", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch))
			do(ctx, "open the portal", chromedp.Navigate(portalOrigin+"/"))

			frame := browsertest.Attach(t, ctx, func(info *cdptarget.Info) bool {
				return info.Type == "iframe" && strings.HasPrefix(info.URL, e.srv.URL+"/settings")
			})
			wait(frame, "the settings in the iframe", `!!document.querySelector("#push-enable") && !document.querySelector("#push-enable").hidden`)
			if got := eval(frame, "framed", `window.top !== window`); got != true {
				t.Fatal("the settings are not framed")
			}
			shot(t, ctx, shots, "push-iframe-"+lang+"-390")

			// The tap: a real mouse click on the iframe's button, in the page's coordinates.
			type box struct{ X, Y, W, H float64 }
			rect := func(ctx context.Context, sel string) (r box) {
				raw := eval(ctx, "rect", `JSON.stringify((({x, y, width, height}) => ({X: x, Y: y, W: width, H: height}))(document.querySelector(`+fmt.Sprintf("%q", sel)+`).getBoundingClientRect()))`)
				json.Unmarshal([]byte(raw.(string)), &r)
				return r
			}
			f, b := rect(ctx, "#m"), rect(frame, "#push-enable")
			browsertest.Tap(t, ctx, f.X+b.X+b.W/2, f.Y+b.Y+b.H/2)

			popup := browsertest.Attach(t, ctx, func(info *cdptarget.Info) bool {
				return info.Type == "page" && strings.HasPrefix(info.URL, e.srv.URL+"/push/enable")
			})
			wait(popup, "the window has its ticket", `location.hash === "" && document.readyState === "complete" && !!document.getElementById("push-enable-page")`)
			if eval(popup, "top level", `window.top === window && !!window.opener`) != true {
				t.Fatal("the window is not top-level with an opener")
			}
			// It has no session, yet speaks the user's language, named by its opener.
			if got := eval(popup, "language", `document.documentElement.lang`); got != lang {
				t.Errorf("the window speaks %v, want %s", got, lang)
			}
			// No push service in headless Chromium: the window's PushManager answers a
			// subscription with real keys and a local endpoint.
			do(popup, "inject the subscription", browsertest.PushService(e.srv.URL+"/receiver/"+lang, p256dh, authKey))
			shot(t, popup, shots, "push-window-"+lang+"-390")
			do(popup, "tap allow", chromedp.Click(chromedp.ID("push-enable")))

			// The window closes; the iframe says so and lists the device.
			want := map[string]string{"ko": "이 기기에서 알림이 켜져 있습니다.", "en": "Notifications are on for this device."}[lang]
			wait(frame, "the iframe shows the device", fmt.Sprintf(`document.querySelector('#push-device-list [data-endpoint$="/receiver/%s"]') && document.getElementById("push-state").textContent === %q`, lang, want))
			if got := eval(frame, "state", `document.getElementById("push-state").textContent`); got != want {
				t.Errorf("state %q, want %q", got, want)
			}
			if n := e.subscriptionsOf("demo-parent"); n < 1 {
				t.Fatalf("%d subscriptions stored", n)
			}
			var endpoint, stored string
			e.owner.QueryRow(`SELECT endpoint, p256dh FROM push_subscriptions WHERE endpoint LIKE '%/receiver/' || $1`, lang).Scan(&endpoint, &stored)
			if stored != p256dh {
				t.Fatalf("stored subscription %q %q", endpoint, stored)
			}
			shot(t, ctx, shots, "push-iframe-enabled-"+lang+"-390")

			// The portal's hand-over: it subscribed in its own app and posts the subscription
			// to the iframe, which stores it with its session and answers.
			handOver := fmt.Sprintf(`new Promise((resolve) => {
				addEventListener("message", (e) => { if (e.data && e.data.type === "dreamseed-push-subscribed") resolve(JSON.stringify(e.data)); });
				document.getElementById("m").contentWindow.postMessage({type: "dreamseed-push-subscription",
					subscription: {endpoint: %q, expirationTime: null, keys: {p256dh: %q, auth: %q}}}, %q);
			})`, e.srv.URL+"/receiver/portal-"+lang, p256dh, authKey, e.srv.URL)
			var answer struct {
				OK bool
				ID string
			}
			json.Unmarshal([]byte(eval(ctx, "hand-over", handOver).(string)), &answer)
			var owner string
			e.owner.QueryRow(`SELECT u.sub FROM push_subscriptions s JOIN users u ON u.id = s.user_id WHERE s.id = $1 AND s.endpoint LIKE '%/receiver/portal-' || $2`, answer.ID, lang).Scan(&owner)
			if !answer.OK || owner != "demo-parent" {
				t.Fatalf("hand-over: %+v, stored for %q", answer, owner)
			}

			// The service worker the window registered (top level, the messenger's origin).
			regs := make(chan serviceworker.RegistrationID, 8)
			tab := newTab(t, ctx, e.srv.URL+"/healthz")
			if err := chromedp.Listen(ctx, func(ev any) {
				if u, ok := ev.(*serviceworker.EventWorkerRegistrationUpdated); ok {
					for _, r := range u.Registrations {
						if r.ScopeURL == e.srv.URL+"/" && !r.IsDeleted {
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
			// The ServiceWorker domain of the portal's tab sees the browser's registrations.
			do(ctx, "service worker events", browsertest.Call(serviceworker.Enable, cdp.Empty{}))
			var reg serviceworker.RegistrationID
			select {
			case reg = <-regs:
			case <-time.After(10 * time.Second):
				t.Fatal("no service worker registered for /")
			}
			push := func(payload map[string]any) {
				t.Helper()
				b, _ := json.Marshal(payload)
				do(ctx, "deliver a push", browsertest.Call(serviceworker.DeliverPushMessage, serviceworker.DeliverPushMessageParams{
					Origin: e.srv.URL, RegistrationID: reg, Data: string(b),
				}))
			}
			notifications := `navigator.serviceWorker.getRegistration("/").then((r) => r.getNotifications()).then((ns) => JSON.stringify(ns.map((n) => ({title: n.title, body: n.body, tag: n.tag, url: n.data && n.data.url}))))`
			type shown struct{ Title, Body, Tag, URL string }
			read := func() []shown {
				var out []shown
				json.Unmarshal([]byte(eval(tab, "notifications", notifications).(string)), &out)
				return out
			}
			waitShown := func(what string, ok func([]shown) bool) []shown {
				t.Helper()
				deadline := time.Now().Add(10 * time.Second)
				for {
					got := read()
					if ok(got) {
						return got
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s: notifications %+v", what, got)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			push(map[string]any{"title": "3학년 2반 학부모", "body": "김선영: 내일 준비물은 도시락입니다", "url": e.srv.URL + "/c/7",
				"conversation_id": 7, "tag": "c7", "unread": 1, "lang": lang})
			got := waitShown("the first push", func(s []shown) bool { return len(s) == 1 })
			if got[0].Title != "3학년 2반 학부모" || got[0].Body != "김선영: 내일 준비물은 도시락입니다" || got[0].Tag != "c7" || got[0].URL != e.srv.URL+"/c/7" {
				t.Fatalf("notification %+v", got[0])
			}
			push(map[string]any{"title": "3학년 2반 학부모", "body": "김선영: 물도 챙겨 주세요", "url": e.srv.URL + "/c/7",
				"conversation_id": 7, "tag": "c7", "unread": 2}) // no lang: the browser's language
			several := map[string]string{"ko": "2 new messages", "en": "새 메시지 2개"}[lang] // the browser's, the other one
			got = waitShown("the second push of the conversation", func(s []shown) bool { return len(s) == 1 && strings.HasPrefix(s[0].Body, several) })
			if !strings.HasSuffix(got[0].Body, "물도 챙겨 주세요") {
				t.Errorf("second notification %+v", got[0])
			}
			// A coalesced push counts the conversation's unread itself: "count" wins over adding.
			push(map[string]any{"title": "3학년 2반 학부모", "body": "김선영: 우산도요", "url": e.srv.URL + "/c/7",
				"conversation_id": 7, "tag": "c7", "count": 5, "unread": 5, "lang": lang})
			five := map[string]string{"ko": "새 메시지 5개", "en": "5 new messages"}[lang]
			waitShown("a push counting five", func(s []shown) bool {
				return len(s) == 1 && strings.HasPrefix(s[0].Body, five) && strings.HasSuffix(s[0].Body, "우산도요")
			})
			// Another conversation's push; conversation 7 is read since (the payload's
			// unread list leaves it out): its notification goes.
			push(map[string]any{"title": "김선영", "body": "김선영: 사진", "url": "javascript:alert(1)",
				"conversation_id": 9, "tag": "c9", "unread": 1, "unread_conversations": []int{9}, "lang": lang})
			got = waitShown("conversation 7 read", func(s []shown) bool { return len(s) == 1 && s[0].Tag == "c9" })
			if got[0].URL != e.srv.URL+"/" {
				t.Errorf("a javascript: link was kept: %+v", got[0])
			}
			// A page that shows conversation 9 read tells the worker.
			do(tab, "the page's read news", chromedp.Evaluate[chromedp.Void](`navigator.serviceWorker.getRegistration("/").then((r) => r.active.postMessage({type: "read", conversations: [9], unread: 0}))`, chromedp.EvalAwaitPromise))
			waitShown("conversation 9 read on the page", func(s []shown) bool { return len(s) == 0 })

			// Not framed: the same opt-in in place, with the session (a first-party one).
			do(tab, "sign in at the top level", chromedp.Evaluate[chromedp.Void](`fetch("/auth/portal", {method: "POST", body: new URLSearchParams({token: `+fmt.Sprintf("%q", sign(t, claims))+`}), redirect: "manual"}).then(() => true)`, chromedp.EvalAwaitPromise))
			do(tab, "phone size", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch))
			do(tab, "open the settings", chromedp.Navigate(e.srv.URL+"/push/devices"))
			wait(tab, "the button", `!document.getElementById("push-enable").hidden`)
			do(tab, "inject the subscription", browsertest.PushService(e.srv.URL+"/receiver/top-"+lang, p256dh, authKey))
			do(tab, "tap", chromedp.Click(chromedp.ID("push-enable")))
			wait(tab, "this device is on", fmt.Sprintf(`document.getElementById("push-state").textContent === %q && !document.querySelector('[data-endpoint$="/receiver/top-%s"] .device-this').hidden && document.getElementById("push-enable").hidden`, want, lang))
			shot(t, tab, shots, "push-top-enabled-"+lang+"-390")

			// A page of the messenger that shows the conversation read closes its notification
			// as it loads.
			push(map[string]any{"title": "김선영", "body": "김선영: 확인했습니다", "url": fmt.Sprintf("%s/c/%d", e.srv.URL, conv),
				"conversation_id": conv, "tag": fmt.Sprintf("c%d", conv), "unread": 1})
			waitShown("a push of the real conversation", func(s []shown) bool { return len(s) == 1 })
			do(tab, "open the list", chromedp.Navigate(e.srv.URL+"/"))
			waitShown("the list shows it read", func(s []shown) bool { return len(s) == 0 })

			// iPhone: the settings explain the Home Screen instead of the button.
			do(ctx, "an iPhone", browsertest.Call(emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{Platform: "iPhone", UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", AcceptLanguage: accept}))
			do(ctx, "open the settings", chromedp.Navigate(e.srv.URL+"/push/enable"))
			wait(ctx, "the Home Screen steps", `!document.getElementById("push-ios").hidden && document.getElementById("push-enable").hidden`)
			shot(t, ctx, shots, "push-ios-"+lang+"-390")
		})
	}
}

// startChromiumWith is startChromium with more flags.
func startChromiumWith(t *testing.T, path string, more ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	return startChromiumSized(t, path, 390, 844, more...)
}

// newTab opens url in a new tab of the browser of ctx.
func newTab(t *testing.T, ctx context.Context, url string) context.Context {
	t.Helper()
	c, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(c); err != nil { // opens the tab, which lives as long as c
		t.Fatal(err)
	}
	cc, done := context.WithTimeout(c, 20*time.Second)
	defer done()
	if err := chromedp.Do(cc, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	return c
}
