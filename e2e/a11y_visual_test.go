package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// emulateMedia sets the tab's emulated media features (prefers-color-scheme,
// prefers-reduced-motion …); an empty list takes them all back.
func emulateMedia(tb *tab, features ...*emulation.MediaFeature) {
	tb.t.Helper()
	tb.do(chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		_, err := cdp.Call(ctx, target, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: features})
		return err
	}))
}

// fitProbe answers, for the page as laid out, whether it scrolls sideways and which of the
// given elements are not wholly inside the viewport's width (or not shown at all).
const fitProbe = `((sels) => {
  const w = window.innerWidth;
  const out = {scrollWidth: document.documentElement.scrollWidth, innerWidth: w, lost: []};
  for (const s of sels) {
    const el = document.querySelector(s);
    if (!el) { out.lost.push(s + " (missing)"); continue; }
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) { out.lost.push(s + " (not shown)"); continue; }
    if (r.left < -0.5 || r.right > w + 0.5) out.lost.push(s + " (" + Math.round(r.left) + ".." + Math.round(r.right) + " of " + w + ")");
  }
  return out;
})(%s)`

type fitResult struct {
	ScrollWidth int64    `json:"scrollWidth"`
	InnerWidth  int64    `json:"innerWidth"`
	Lost        []string `json:"lost"`
}

// TestTextEnlargedNoHorizontalScroll enlarges the text to 200% at a phone's width (390 px),
// once as the browser's zoom does it (the CSS viewport halves, the device pixels double)
// and once as a larger default font size does it (the root font size at 200%), and checks
// the list, a thread with its composer and the settings: nothing scrolls sideways and what
// matters on each is still there, inside the screen (WCAG 1.4.4, 1.4.10).
func TestTextEnlargedNoHorizontalScroll(t *testing.T) {
	browser := newBrowser(t)
	srv := startServer(t)
	direct, _ := demoConversationIDs(t, newLiveAPI(t, srv, demoTeacher))
	pages := []struct {
		name, path string
		open       string // JavaScript that opens a menu first
		keep       []string
	}{
		{"list", "/", "", []string{listSelector, "#conversation-rows > li", "header details > summary"}},
		{"account menu", "/", `document.querySelector("header details > summary").click()`, []string{"#settings-link"}},
		{"thread", fmt.Sprintf("/c/%d", direct), "", []string{"#thread-title", "#messages > li:last-child", "#composer", "#composer-send"}},
		{"thread bell menu", fmt.Sprintf("/c/%d", direct), `document.querySelector("#conv-settings > summary").click()`, []string{"#conv-settings > div"}},
		{"settings", "/settings", "", []string{"#settings-title", "#settings-form", "#time_zone", "#settings-form button[type=submit]"}},
	}
	dir := screenshotDir(t)
	for _, lang := range []string{"ko", "en"} {
		tb := newTab(t, browser, lang)
		signInDev(tb, srv.URL, demoTeacher.Name)
		for _, mode := range []string{"zoom", "font-size"} {
			for _, p := range pages {
				if mode == "zoom" {
					// 200% zoom of a 390 px wide window: 195 CSS px, each two device pixels.
					tb.do(chromedp.EmulateViewport(195, 422, chromedp.EmulateScale(2)))
				} else {
					tb.do(chromedp.EmulateViewport(390, 844))
				}
				tb.do(chromedp.Navigate(srv.URL + p.path))
				if mode == "font-size" {
					tb.do(chromedp.Evaluate[chromedp.Void](`document.documentElement.style.fontSize = "200%"`))
				}
				if p.open != "" {
					tb.do(chromedp.Evaluate[chromedp.Void](p.open))
				}
				tb.do(chromedp.Evaluate[chromedp.Void](`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))`, chromedp.EvalAwaitPromise))
				sels := fmt.Sprintf("[%s]", quoteAll(p.keep))
				got := run(tb, chromedp.Evaluate[fitResult](fmt.Sprintf(fitProbe, sels)))
				w, h := int64(390), int64(844)
				if mode == "zoom" {
					w, h = 195, 422
				}
				shot := screenshot(tb, dir, fmt.Sprintf("enlarged-%s-%s-%s", mode, lang, p.name), w, h, false)
				if got.ScrollWidth > got.InnerWidth || len(got.Lost) > 0 {
					t.Errorf("%s %s at 200%% (%s): scroll width %d in a window of %d; not inside the screen: %v (%s)",
						lang, p.name, mode, got.ScrollWidth, got.InnerWidth, got.Lost, shot)
				}
			}
		}
	}
}

func quoteAll(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ",")
}

// TestReducedMotion asks for less motion (prefers-reduced-motion: reduce) and checks that
// the composer's sending spinner does not spin and a conversation row has no transition;
// without the request, both move (so the check is of the preference, not of the page).
func TestReducedMotion(t *testing.T) {
	browser := newBrowser(t)
	srv := startServer(t)
	direct, _ := demoConversationIDs(t, newLiveAPI(t, srv, demoTeacher))
	tb := newTab(t, browser, "ko")
	signInDev(tb, srv.URL, demoTeacher.Name)

	type motion struct {
		Spinner    string `json:"spinner"`    // the spinner's animation-name
		Transition string `json:"transition"` // a conversation row's transition-duration
	}
	probe := func() motion {
		tb.do(chromedp.Navigate(fmt.Sprintf("%s/c/%d", srv.URL, direct)), chromedp.WaitReady(chromedp.CSS("#composer-send .spinner")))
		return run(tb, chromedp.Evaluate[motion](`({
  spinner: getComputedStyle(document.querySelector("#composer-send .spinner")).animationName,
  transition: getComputedStyle(document.querySelector("#conversation-rows > li > a")).transitionDuration,
})`))
	}

	moving := probe()
	if moving.Spinner == "none" || moving.Transition == "0s" {
		t.Fatalf("without a preference the spinner and the rows should move: %+v", moving)
	}
	emulateMedia(tb, &emulation.MediaFeature{Name: "prefers-reduced-motion", Value: "reduce"})
	still := probe()
	if still.Spinner != "none" {
		t.Errorf("with prefers-reduced-motion: reduce the spinner still has animation %q", still.Spinner)
	}
	if still.Transition != "0s" {
		t.Errorf("with prefers-reduced-motion: reduce a conversation row still has a transition of %s", still.Transition)
	}
}
