package e2e

import (
	"context"
	_ "embed"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// axeSource is axe-core (npm axe-core, vendored for the tests only: e2e/testdata/axe),
// the accessibility engine the audit runs in each page.
//
//go:embed testdata/axe/axe.min.js
var axeSource string

// axeViolation is one rule a page breaks, with the elements that break it.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target  []any  `json:"target"`
		Summary string `json:"failureSummary"`
		HTML    string `json:"html"`
	} `json:"nodes"`
}

// axeRun is the audit: WCAG 2.0, 2.1 and 2.2 A and AA, and axe's best practices.
const axeRun = `(async () => {
  if (!window.axe) { (0, eval)(%s); }
  const r = await axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}, resultTypes: ["violations"]});
  return r.violations;
})()`

// audit runs axe on the tab's page as it is and answers its violations.
func audit(tb *tab) []axeViolation {
	tb.t.Helper()
	return run(tb, chromedp.Evaluate[[]axeViolation](fmt.Sprintf(axeRun, jsString(axeSource)), chromedp.EvalAwaitPromise))
}

// describeViolations lists violations, one element a line, and answers how many rules
// they break.
func describeViolations(vs []axeViolation) (string, int) {
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "  %s (%s): %s\n", v.ID, v.Impact, v.Help)
		for _, node := range v.Nodes {
			fmt.Fprintf(&b, "    %v: %s\n", node.Target, strings.ReplaceAll(node.Summary, "\n", " / "))
		}
	}
	return b.String(), len(vs)
}

// a11yPage is one page or state the audit visits, signed in as the demo teacher: its path
// and, when the state is more than the page as loaded, what brings it about.
type a11yPage struct {
	name, path string
	state      string // JavaScript run after the load (an open panel, a lost connection)
	wait       string // a CSS selector visible once the state is there
}

// a11yPages are the pages and states of the audit; besides them, TestAccessibility audits
// a failed send (in the second, a thread with a composer) and a new user's empty list. The
// direct conversation gets a photo album and a document first, for the thread with files
// and the picture viewer.
func a11yPages(t *testing.T, srv *server) []a11yPage {
	t.Helper()
	teacher := newLiveAPI(t, srv, demoTeacher)
	direct, group := demoConversationIDs(t, teacher)
	for _, id := range []string{
		teacher.uploadFiles(t, direct, "운동장 수업 사진", []string{"운동장1.jpg", "운동장2.jpg"},
			[][]byte{noisyJPEG(t, 800, 600), noisyJPEG(t, 600, 800)}),
		teacher.uploadFiles(t, direct, "", []string{"가정통신문.pdf"}, [][]byte{testPDF}),
	} {
		teacher.waitUpload(t, id, "clean")
	}
	var list struct {
		Conversations []struct {
			ID   int64  `json:"id"`
			Kind string `json:"kind"`
		} `json:"conversations"`
	}
	teacher.call(t, http.MethodGet, "/api/v1/conversations", nil, &list, http.StatusOK)
	var announcements int64
	for _, c := range list.Conversations {
		if c.Kind == "announcement" {
			announcements = c.ID
		}
	}
	if announcements == 0 {
		t.Fatalf("the demo teacher has no announcements conversation: %+v", list)
	}
	c := func(id int64, rest string) string { return fmt.Sprintf("/c/%d%s", id, rest) }
	return []a11yPage{
		{name: "list", path: "/"},
		{name: "direct with files", path: c(direct, "")},
		{name: "picture viewer", path: c(direct, ""), state: `document.querySelector("#messages a[data-viewer]").click()`, wait: "#viewer:not([hidden])"},
		{name: "group", path: c(group, "")},
		{name: "members", path: c(group, ""), state: `document.querySelector("#members > summary").click()`, wait: "#members[open]"},
		{name: "announcements", path: c(announcements, "")},
		{name: "offline", path: c(direct, ""), state: `window.dispatchEvent(new Event("offline"))`, wait: "#conn-status:not(.hidden)"},
		{name: "new", path: "/new"},
		{name: "invite", path: c(group, "/invite")},
		{name: "audit", path: c(group, "/audit")},
		{name: "settings", path: "/settings"},
		{name: "not-found", path: "/c/987654321"},
	}
}

// TestAccessibility audits every page and state with axe-core (WCAG 2.0–2.2 A and AA and
// best practices) in Korean and English, at a phone's width and a laptop's, in the light
// and the dark scheme, and fails on any violation, whatever its impact (the critical and
// serious ones first of all; the moderate ones were a missing main landmark or h1).
func TestAccessibility(t *testing.T) {
	browser := newBrowser(t)
	srv := startServer(t, "MESSENGER_DATA_DIR="+t.TempDir())
	pages := a11yPages(t, srv)
	audits, byImpact := 0, map[string]int{}
	defer func() { t.Logf("%d audits; elements in violation by impact: %v", audits, byImpact) }()
	for _, scheme := range []string{"light", "dark"} {
		for _, lang := range []string{"ko", "en"} {
			tb := newTab(t, browser, lang)
			setScheme(tb, scheme)
			check := func(name string) {
				for _, w := range []int64{390, 1280} {
					tb.do(chromedp.EmulateViewport(w, 844))
					vs := audit(tb)
					audits++
					for _, v := range vs {
						byImpact[v.Impact] += len(v.Nodes)
					}
					if out, n := describeViolations(vs); n > 0 {
						t.Errorf("%s %s %s at %d px (%s): %d rules broken:\n%s", scheme, lang, name, w, tb.location(), n, out)
					}
				}
			}
			tb.do(chromedp.Navigate(srv.URL + "/dev/login"))
			check("dev login")
			signInDev(tb, srv.URL, demoTeacher.Name)
			for _, p := range pages {
				tb.do(chromedp.Navigate(srv.URL + p.path))
				if p.state != "" {
					tb.do(chromedp.Evaluate[chromedp.Void](p.state), chromedp.WaitVisible(chromedp.CSS(p.wait)))
				}
				check(p.name)
			}
			// A send that failed (the network went away): the composer's error and its retry.
			tb.do(chromedp.Navigate(srv.URL + pages[1].path))
			setOffline(tb, nil, true)
			typeInComposer(tb, "보내지 못한 메시지")
			pressEnter(tb)
			waitJS(tb, "the failed send's retry", `!document.getElementById("composer-retry").classList.contains("hidden")`, 10*time.Second)
			check("failed send")
			setOffline(tb, nil, false)

			// Someone new, with no conversation yet: the empty list.
			fresh := newTab(t, browser, lang)
			setScheme(fresh, scheme)
			signInWithToken(fresh, srv.URL, newUser(t, "a11y-new-"+lang+"-"+scheme, "신입생", "demo-org-dreamseed", "student").Token)
			tb = fresh
			check("empty list")
		}
	}
}

// setScheme makes the tab's pages see the colour scheme (light or dark) as the system's.
func setScheme(tb *tab, scheme string) {
	tb.do(chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		_, err := cdp.Call(ctx, target, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	}))
}
