package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
)

// listAsServedJS answers the list as a fresh load of the tab's own page renders it — its
// rows in order and the unread total — beside the list the tab shows now, both without
// the marks htmx leaves on elements it has processed.
const listAsServedJS = `(async () => {
  const clean = (el) => el ? el.innerHTML.replace(/ data-htmx-powered="true"/g, "") : "";
  const resp = await fetch(location.pathname, {credentials: "same-origin"});
  const fresh = new DOMParser().parseFromString(await resp.text(), "text/html");
  return {
    shown: clean(document.getElementById("conversation-list")),
    served: clean(fresh.getElementById("conversation-list")),
    total: (fresh.querySelector("[data-unread-total]") || {dataset: {}}).dataset.unreadTotal || "0",
  };
})()`

type listComparison struct {
	Shown  string `json:"shown"`
	Served string `json:"served"`
	Total  string `json:"total"`
}

// TestListAndHeaderFromServer: when another member writes, the list beside the page is
// the server's rendering of it — the conversation on top, its unread count and its
// preview exactly as a reload shows them, the title counting what the server counts —
// and when a group is renamed or gains a member, the open thread's header and the list
// follow. A refresh the server refuses leaves the list as it was.
func TestListAndHeaderFromServer(t *testing.T) {
	browser := newBrowser(t)
	srv := startServer(t)
	nonce := strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
	teacherAPI := newLiveAPI(t, srv, demoTeacher)
	direct, group := demoConversationIDs(t, teacherAPI)

	parent := newLiveTab(t, browser, "ko")
	signInDev(parent, srv.URL, demoParent.Name)

	t.Run("list", func(t *testing.T) {
		b := parent.with(t)
		// The parent reads the direct conversation, then goes back to the list: the
		// direct conversation is on top, read.
		openThread(b, fmt.Sprintf("%s/c/%d", srv.URL, direct))
		waitJS(b, "the direct conversation's badge to clear",
			fmt.Sprintf(`!document.querySelector("#conv-%d [data-role=badge]").checkVisibility()`, direct), 5*time.Second)
		b.do(chromedp.Navigate(srv.URL + "/"))
		waitConnected(b, 1)
		before := badge(b, group).Count

		text := "내일 준비물 안내 " + nonce
		teacherAPI.send(t, group, text)
		waitJS(b, "the group to move to the top of the parent's list",
			fmt.Sprintf(`document.querySelector("#conversation-rows > li").id === "conv-%d"`, group), 5*time.Second)
		waitJS(b, "the group's badge to count the new message", fmt.Sprintf(`(%s).count === %d`, badgeJS(group), before+1), 3*time.Second)
		if bd := badge(b, group); !bd.Visible || bd.Text != strconv.Itoa(before+1) {
			t.Errorf("the group's badge = %+v, want %d shown", bd, before+1)
		}
		if p := eval[string](b, fmt.Sprintf(`document.querySelector("#conv-%d [data-role=preview]").textContent.replace(/\s+/g, " ").trim()`, group)); p != demoTeacher.Name+": "+text {
			t.Errorf("the group's preview = %q, want %q", p, demoTeacher.Name+": "+text)
		}
		if top := firstListRow(b); top != group {
			t.Errorf("the list's top row is %d, want the group %d", top, group)
		}

		// The whole list is what the server renders: the same rows, markup and order as
		// a reload, and the title counts the server's total.
		got := run(b, chromedp.Evaluate[listComparison](listAsServedJS, chromedp.EvalAwaitPromise))
		if got.Served == "" {
			t.Fatal("the page as served has no list")
		}
		if got.Shown != got.Served {
			t.Errorf("the list after the live update differs from the server's rendering:\nshown  %s\nserved %s", got.Shown, got.Served)
		}
		if n := titleCount(b); strconv.Itoa(n) != got.Total {
			t.Errorf("the title counts %d unread, the server %s", n, got.Total)
		}
		if fetched := eval[bool](b, `window.__e2e.fetches.some(f => f.includes("/fragments/list"))`); !fetched {
			t.Error("the list did not ask the server for itself (no GET /fragments/list)")
		}
		checkConsole(b)
	})

	t.Run("header", func(t *testing.T) {
		b := parent.with(t)
		openThread(b, fmt.Sprintf("%s/c/%d", srv.URL, group))
		b.do(chromedp.Click(chromedp.CSS("#members > summary")))
		waitJS(b, "the member panel to open", `document.getElementById("members").open`, 3*time.Second)
		members := eval[int](b, `document.querySelectorAll("#member-panel [data-member]").length`)

		title := "5학년 2반 새 이름 " + nonce
		teacherAPI.call(t, http.MethodPut, fmt.Sprintf("/api/v1/conversations/%d", group),
			map[string]string{"title": title}, nil, http.StatusOK)
		waitJS(b, "the header to show the new name",
			fmt.Sprintf(`document.getElementById("thread-title").textContent.trim() === %s`, jsString(title)), 5*time.Second)
		waitJS(b, "the list row to show the new name",
			fmt.Sprintf(`document.querySelector("#conv-%d a").textContent.includes(%s)`, group, jsString(title)), 5*time.Second)

		teacherAPI.call(t, http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/participants", group),
			map[string][]string{"user_ids": {"demo-admin-jung"}}, nil, http.StatusOK, http.StatusCreated, http.StatusNoContent)
		waitJS(b, "the member panel to list the new member",
			`!!document.querySelector('#member-panel [data-member="demo-admin-jung"]')`, 5*time.Second)
		if n := eval[int](b, `document.querySelectorAll("#member-panel [data-member]").length`); n != members+1 {
			t.Errorf("the member panel lists %d members, want %d", n, members+1)
		}
		if !eval[bool](b, `document.getElementById("members").open`) {
			t.Error("the member panel closed when the header was refreshed")
		}
		summary := eval[string](b, `document.querySelector("#members > summary").textContent`)
		if !strings.Contains(summary, strconv.Itoa(members+1)) {
			t.Errorf("the header counts %q, want %d members", summary, members+1)
		}
		checkConsole(b)
	})

	t.Run("a refused refresh keeps the list", func(t *testing.T) {
		b := parent.with(t)
		b.do(chromedp.Navigate(srv.URL + "/"))
		waitConnected(b, 1)
		rowsBefore := eval[int](b, `document.querySelectorAll("#conversation-rows > li").length`)
		stop := refuseRequests(b, "*/fragments/list*", http.StatusServiceUnavailable)
		teacherAPI.send(t, direct, "거절될 새로고침 "+nonce)
		waitJS(b, "the list to ask for itself", `window.__e2e.fetches.some(f => f.includes("/fragments/list"))`, 5*time.Second)
		// (The browser logs the refused answer; this tab's console is not checked after.)
		time.Sleep(300 * time.Millisecond) // the refused answer arrives and is not swapped in
		stop()
		if n := eval[int](b, `document.querySelectorAll("#conversation-rows > li").length`); n != rowsBefore {
			t.Errorf("after a refused refresh the list shows %d rows, want the %d it had", n, rowsBefore)
		}
		if txt := eval[string](b, `document.getElementById("conversation-list").textContent`); strings.Contains(txt, "refused by the test") {
			t.Error("the refused answer was swapped into the list")
		}
		// The next change asks again, and is answered.
		text := "다시 묻는 새로고침 " + nonce
		teacherAPI.send(t, direct, text)
		waitJS(b, "the list to show the next message",
			fmt.Sprintf(`document.querySelector("#conv-%d [data-role=preview]").textContent.includes(%s)`, direct, jsString(text)), 5*time.Second)
	})
}

// refuseRequests answers every request matching pattern with status and a short text
// until stop, as an overloaded or refusing server would.
func refuseRequests(tb *tab, pattern string, status int64) (stop func()) {
	tb.t.Helper()
	return interceptRequests(tb, pattern, fetch.RequestStageRequest, func(ctx context.Context, target *chromedp.Target, ev *fetch.EventRequestPaused) error {
		_, err := cdp.Call(ctx, target, fetch.FulfillRequest, fetch.FulfillRequestParams{
			RequestID: ev.RequestID, ResponseCode: status,
			ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "text/html; charset=utf-8"}},
			Body:            []byte("<p>refused by the test</p>"),
		})
		return err
	})
}
