// Package browsertest holds what the browser tests of several packages do with Chromium
// beyond chromedp's own actions: a raw DevTools call as an action, attaching to a target
// the page opened (a framed page of another site, a new window, a service worker), and a
// user's tap at a point of the page.
package browsertest

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	cdptarget "github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// Call wraps a raw DevTools command as an action.
func Call[P, R any](cmd cdp.Command[P, R], params P) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		_, err := cdp.Call(ctx, target, cmd, params)
		return err
	})
}

// Attach waits up to 15 s for a target that match picks and answers a context that works
// in it, detached when the test ends.
func Attach(t testing.TB, ctx context.Context, match func(*cdptarget.Info) bool) context.Context {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		infos, err := chromedp.Targets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range infos {
			if match(info) {
				c, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(info.TargetID))
				t.Cleanup(cancel)
				if err := chromedp.Do(c); err != nil {
					t.Fatalf("attach to %s: %v", info.URL, err)
				}
				return c
			}
		}
		if time.Now().After(deadline) {
			var seen []string
			for _, info := range infos {
				seen = append(seen, string(info.Type)+" "+info.URL)
			}
			t.Fatalf("no such target; there are %v", seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Tap presses and releases the mouse at x, y of the page: a user's tap, which lets a page
// open a window.
func Tap(t testing.TB, ctx context.Context, x, y float64) {
	t.Helper()
	for _, typ := range []input.DispatchMouseEventType{input.DispatchMouseEventTypeMousePressed, input.DispatchMouseEventTypeMouseReleased} {
		c, done := context.WithTimeout(ctx, 10*time.Second)
		err := chromedp.Do(c, Call(input.DispatchMouseEvent, input.DispatchMouseEventParams{Type: typ, X: x, Y: y, Button: input.MouseButtonLeft, ClickCount: 1}))
		done()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// PortalPage writes the portal's page as the real one signs a user into the messenger's
// iframe: a form posting token to messenger's /auth/portal into the iframe "m", with next
// the messenger page to land on.
func PortalPage(w http.ResponseWriter, messenger, token, next string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html><html><head><meta name="viewport" content="width=device-width, initial-scale=1"><title>DreamSeed</title></head>
<body style="margin:0;font-family:sans-serif"><header style="height:44px;background:#1e293b;color:#fff;display:flex;align-items:center;padding:0 12px">DreamSeed 포털</header>
<form id="f" method="post" action="%s/auth/portal" target="m"><input type="hidden" name="token" value="%s"><input type="hidden" name="next" value="%s"></form>
<iframe name="m" id="m" style="border:0;display:block;width:100%%;height:calc(100vh - 44px)"></iframe>
<script>document.getElementById("f").submit()</script></body></html>`, html.EscapeString(messenger), html.EscapeString(token), html.EscapeString(next))
}

// PushService is a script that makes the page's PushManager hand out a subscription to
// endpoint with the keys given (base64url), as a browser's push service would: headless
// Chromium has none of its own.
func PushService(endpoint, p256dh, auth string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		let sub = null;
		PushManager.prototype.getSubscription = async function () { return sub; };
		PushManager.prototype.subscribe = async function (opts) {
			if (!opts || !opts.userVisibleOnly || opts.applicationServerKey.byteLength !== 65) throw new Error("bad options");
			sub = {endpoint: %q, options: opts, unsubscribe: async () => true,
				toJSON() { return {endpoint: this.endpoint, expirationTime: null, keys: {p256dh: %q, auth: %q}}; }};
			return sub;
		};
	})()`, endpoint, p256dh, auth))
}
