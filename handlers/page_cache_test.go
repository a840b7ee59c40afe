package handlers_test

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// gzPage GETs path as a browser does (asking for gzip, which the page cache serves) and
// answers the status and the decoded page.
func (e *env) gzPage(c *http.Client, path string) (int, string) {
	e.t.Helper()
	resp := e.do(c, "GET", path, nil, map[string]string{"Accept-Encoding": "gzip, deflate, br"})
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, readBody(e.t, resp)
	}
	if got := resp.Header.Get("Content-Encoding"); got != "gzip" {
		e.t.Fatalf("GET %s: Content-Encoding %q, want gzip", path, got)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		e.t.Fatalf("GET %s: the gzip body does not decode: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// mustPage is gzPage that requires a 200.
func (e *env) mustPage(c *http.Client, path string) string {
	e.t.Helper()
	status, body := e.gzPage(c, path)
	if status != http.StatusOK {
		e.t.Fatalf("GET %s: status %d", path, status)
	}
	return body
}

// apiDo sends a JSON API request with token and requires a 2xx.
func (e *env) apiDo(token, method, path, body string) string {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	resp := e.do(nil, method, path, r, map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"})
	out := readBody(e.t, resp)
	if resp.StatusCode/100 != 2 {
		e.t.Fatalf("%s %s: status %d: %s", method, path, resp.StatusCode, out)
	}
	return out
}

func (e *env) apiGroup(token, title string, members ...string) int64 {
	e.t.Helper()
	out := e.apiDo(token, "POST", "/api/v1/conversations",
		fmt.Sprintf(`{"kind":"group","title":%q,"participant_ids":["%s"]}`, title, strings.Join(members, `","`)))
	var id int64
	if _, err := fmt.Sscanf(out[strings.Index(out, `"id":`)+5:], "%d", &id); err != nil {
		e.t.Fatalf("create group: %s", out)
	}
	return id
}

var composerID = regexp.MustCompile(`name="client_msg_id" value="([0-9a-f-]{36})"`)

// TestPagesCompressed: pages and fragments go gzip-encoded to a client that asks, and are
// the same page as without; each answer of a cached thread carries its own client_msg_id.
func TestPagesCompressed(t *testing.T) {
	e := newEnv(t, nil)
	tT, tP := sign(t, validClaims("pc-t", "김선생", "org-pc")), sign(t, validClaims("pc-p", "박학부모", "org-pc"))
	e.apiDo(tP, "GET", "/api/v1/me", "")
	conv := e.apiGroup(tT, "압축반", "pc-p")
	for i := range 30 {
		e.apiSend(tP, conv, fmt.Sprintf("압축 시험 메시지 %d: 내일 준비물은 도시락입니다.", i))
	}
	browser := e.signInBrowser("pc-t", "김선생", "org-pc")
	path := fmt.Sprintf("/c/%d", conv)

	first, second := e.mustPage(browser, path), e.mustPage(browser, path)
	plainResp := e.do(browser, "GET", path, nil, map[string]string{"Accept-Encoding": "identity"})
	if got := plainResp.Header.Get("Content-Encoding"); got != "" {
		t.Fatalf("identity asked, Content-Encoding %q", got)
	}
	plain := readBody(t, plainResp)
	ids := []string{}
	for _, page := range []string{first, second, plain} {
		m := composerID.FindStringSubmatch(page)
		if m == nil {
			t.Fatal("no client_msg_id on the thread page")
		}
		ids = append(ids, m[1])
	}
	if ids[0] == ids[1] || ids[1] == ids[2] || ids[0] == ids[2] {
		t.Errorf("client_msg_id repeats across answers: %v", ids)
	}
	norm := func(s string) string { return composerID.ReplaceAllString(s, "ID") }
	if norm(first) != norm(plain) || norm(second) != norm(plain) {
		t.Errorf("the gzip page differs from the plain one")
	}
	if !strings.Contains(first, "압축 시험 메시지 29") {
		t.Error("the thread page lacks the newest message")
	}
	if list := e.mustPage(browser, "/"); !strings.Contains(list, "압축반") {
		t.Error("the list page lacks the conversation")
	}
	// A fragment (htmx's catch-up) is compressed too.
	resp := e.do(browser, "GET", path+"/messages?after_seq=0", nil, map[string]string{"Accept-Encoding": "gzip", "HX-Request": "true"})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("fragment: status %d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
		t.Errorf("fragment: Vary %q", resp.Header.Get("Vary"))
	}
}

// TestEventsNeverCompressed: the event stream is never gzip-encoded, however the client
// asks, and each frame arrives at once.
func TestEventsNeverCompressed(t *testing.T) {
	e := newEnv(t, nil)
	tT, tP := sign(t, validClaims("ev-t", "김선생", "org-ev")), sign(t, validClaims("ev-p", "박학부모", "org-ev"))
	e.apiDo(tP, "GET", "/api/v1/me", "")
	conv := e.apiGroup(tT, "스트림반", "ev-p")
	browser := e.signInBrowser("ev-t", "김선생", "org-ev")
	stream := e.openSSE(browser, "/events", map[string]string{"Accept-Encoding": "gzip, br"})
	e.apiSend(tP, conv, "바로 도착해야 하는 메시지")
	deadline := time.After(3 * time.Second)
	for {
		select {
		case ev, ok := <-stream.events:
			if !ok {
				t.Fatal("the stream ended")
			}
			if ev.typ == "message.new" {
				if !strings.Contains(ev.data, "바로 도착해야 하는 메시지") {
					t.Fatalf("message.new frame not readable as text: %q", ev.data)
				}
				return
			}
		case <-deadline:
			t.Fatal("message.new did not arrive within 3 s on a stream that asked for gzip")
		}
	}
}

var marksAttr = regexp.MustCompile(`data-marks="([^"]*)"`)

// readMark answers the watermark of member sub that a thread page carries (its
// data-marks, from which the page words the read markers), -1 without one.
func readMark(t testing.TB, page, sub string) int64 {
	t.Helper()
	m := marksAttr.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no data-marks on the thread page")
	}
	var marks map[string]int64
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &marks); err != nil {
		t.Fatalf("data-marks %q: %v", m[1], err)
	}
	if seq, ok := marks[sub]; ok {
		return seq
	}
	return -1
}

// TestPageCacheSeesEveryChange: with the thread and the list cached, the very next
// request after each change shows it: a new message, a read mark, a rename, a member
// added and removed (for the member too), a mute, and a sign-out.
func TestPageCacheSeesEveryChange(t *testing.T) {
	e := newEnv(t, nil)
	tT := sign(t, validClaims("ch-t", "김선생", "org-ch"))
	tP := sign(t, validClaims("ch-p", "박학부모", "org-ch"))
	tQ := sign(t, validClaims("ch-q", "한도윤", "org-ch"))
	e.apiDo(tP, "GET", "/api/v1/me", "")
	e.apiDo(tQ, "GET", "/api/v1/me", "")
	conv := e.apiGroup(tT, "변화반", "ch-p")
	thread := fmt.Sprintf("/c/%d", conv)
	teacher := e.signInBrowser("ch-t", "김선생", "org-ch")
	guest := e.signInBrowser("ch-q", "한도윤", "org-ch")
	warm := func() {
		e.mustPage(teacher, thread)
		e.mustPage(teacher, "/")
		e.mustPage(guest, "/")
	}

	warm()
	e.apiSend(tP, conv, "새 소식 하나")
	if !strings.Contains(e.mustPage(teacher, thread), "새 소식 하나") {
		t.Error("new message: not on the thread page")
	}
	if !strings.Contains(e.mustPage(teacher, "/"), "새 소식 하나") {
		t.Error("new message: not in the list's preview")
	}

	e.apiSend(tT, conv, "선생님 안내")
	markBefore := readMark(t, e.mustPage(teacher, thread), "ch-p")
	warm()
	e.apiDo(tP, "POST", fmt.Sprintf("/api/v1/conversations/%d/read", conv), `{"seq":3}`)
	if after := readMark(t, e.mustPage(teacher, thread), "ch-p"); after <= markBefore {
		t.Errorf("read mark: the teacher's page has the parent's watermark at %d, as before they read (%d)", after, markBefore)
	}

	warm()
	e.apiDo(tT, "PUT", fmt.Sprintf("/api/v1/conversations/%d", conv), `{"title":"바뀐 이름반"}`)
	if !strings.Contains(e.mustPage(teacher, thread), "바뀐 이름반") || !strings.Contains(e.mustPage(teacher, "/"), "바뀐 이름반") {
		t.Error("rename: the new title is not shown")
	}

	warm()
	if strings.Contains(e.mustPage(guest, "/"), "바뀐 이름반") {
		t.Fatal("the guest lists the group before being invited")
	}
	e.apiDo(tT, "POST", fmt.Sprintf("/api/v1/conversations/%d/participants", conv), `{"user_ids":["ch-q"]}`)
	if !strings.Contains(e.mustPage(guest, "/"), "바뀐 이름반") {
		t.Error("invite: the new member's list lacks the group")
	}
	if !strings.Contains(e.mustPage(teacher, thread), "한도윤") {
		t.Error("invite: the thread does not name the new member")
	}
	e.mustPage(guest, thread)
	warm()
	e.apiDo(tT, "DELETE", fmt.Sprintf("/api/v1/conversations/%d/participants/ch-q", conv), "")
	if strings.Contains(e.mustPage(guest, "/"), "바뀐 이름반") {
		t.Error("remove: the removed member still lists the group")
	}
	if status, _ := e.gzPage(guest, thread); status != http.StatusNotFound {
		t.Errorf("remove: the removed member opens the thread: status %d", status)
	}

	warm()
	before := e.mustPage(teacher, "/")
	e.apiDo(tT, "PUT", fmt.Sprintf("/api/v1/conversations/%d/settings", conv), `{"muted_until":"forever"}`)
	if after := e.mustPage(teacher, "/"); after == before {
		t.Error("mute: the list did not change")
	}

	// Sign-out: the session's cached pages and the session itself are gone at once.
	stale := e.signedOut(teacher)
	if status, body := e.gzPage(stale, "/"); status == http.StatusOK || strings.Contains(body, "바뀐 이름반") {
		t.Errorf("after sign-out the list still answers: status %d", status)
	}
}

// TestPageCacheAcrossProcesses: two processes on the Redis engine each cache the same
// browser's pages; a change made through one process shows on the other's next request
// (the event reaches its cache), and so does a sign-out.
func TestPageCacheAcrossProcesses(t *testing.T) {
	procs := newProcesses(t, 2, nil)
	a, b := procs[0], procs[1]
	tT := sign(t, validClaims("xc-t", "김선생", "org-xc"))
	tP := sign(t, validClaims("xc-p", "박학부모", "org-xc"))
	a.apiDo(tP, "GET", "/api/v1/me", "")
	conv := a.apiGroup(tT, "두 프로세스반", "xc-p")
	thread := fmt.Sprintf("/c/%d", conv)
	teacher := a.signInBrowser("xc-t", "김선생", "org-xc")

	eventually := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not seen by the other process within 2 s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	b.mustPage(teacher, thread)
	b.mustPage(teacher, "/")
	a.apiSend(tP, conv, "다른 프로세스에서 보낸 글")
	eventually("new message", func() bool {
		return strings.Contains(b.mustPage(teacher, thread), "다른 프로세스에서 보낸 글")
	})
	eventually("list preview", func() bool { return strings.Contains(b.mustPage(teacher, "/"), "다른 프로세스에서 보낸 글") })

	a.apiDo(tT, "PUT", fmt.Sprintf("/api/v1/conversations/%d", conv), `{"title":"새 이름 두 프로세스반"}`)
	eventually("rename", func() bool { return strings.Contains(b.mustPage(teacher, "/"), "새 이름 두 프로세스반") })

	stale := a.signedOut(teacher)
	eventually("sign-out", func() bool { status, _ := b.gzPage(stale, "/"); return status != http.StatusOK })
}

// signedOut signs browser out through e and answers a client that still sends the
// session's old cookie, as a copied cookie or a stale tab would.
func (e *env) signedOut(browser *http.Client) *http.Client {
	e.t.Helper()
	u, _ := url.Parse(e.srv.URL)
	stale := e.client()
	stale.Jar.SetCookies(u, browser.Jar.Cookies(u))
	csrf := e.csrfToken(browser)
	if resp := e.do(browser, "POST", "/logout", nil, map[string]string{"X-CSRF-Token": csrf}); resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("logout: status %d", resp.StatusCode)
	}
	return stale
}

var pageCacheLine = regexp.MustCompile(`(?m)^messenger_page_cache_total\{result="(\w+)"\} (\d+)$`)

// pagesServed answers messenger_page_cache_total by result.
func (e *env) pagesServed() map[string]int {
	e.t.Helper()
	out := map[string]int{}
	for _, m := range pageCacheLine.FindAllStringSubmatch(e.metrics(), -1) {
		var n int
		fmt.Sscan(m[2], &n)
		out[m[1]] = n
	}
	return out
}

// TestPageRenderedOnceForConcurrentMisses: a session's requests that miss the cache
// together (every page's minute ends at once) wait for one render instead of each
// reading the database; after a change, the next request renders the page again and
// shows it.
func TestPageRenderedOnceForConcurrentMisses(t *testing.T) {
	e := newEnv(t, nil)
	tT := sign(t, validClaims("one-t", "김선생", "org-one"))
	tP := sign(t, validClaims("one-p", "박학부모", "org-one"))
	e.apiDo(tP, "GET", "/api/v1/me", "")
	conv := e.apiGroup(tT, "한번반", "one-p")
	for i := range 30 {
		e.apiSend(tP, conv, fmt.Sprintf("메시지 %d", i))
	}
	thread := fmt.Sprintf("/c/%d", conv)
	teacher := e.signInBrowser("one-t", "김선생", "org-one")
	e.mustPage(teacher, "/") // the session is known and watched: the thread is the only miss

	before := e.pagesServed()
	const n = 40
	start := make(chan struct{})
	bodies := make(chan string, n)
	for range n {
		go func() {
			<-start
			_, body := e.gzPage(teacher, thread)
			bodies <- body
		}()
	}
	close(start)
	for range n {
		if body := <-bodies; !strings.Contains(body, "메시지 29") {
			t.Fatalf("a concurrent request did not get the thread: %.200s", body)
		}
	}
	after := e.pagesServed()
	renders, waits, hits := after["render"]-before["render"], after["wait"]-before["wait"], after["hit"]-before["hit"]
	if renders+waits+hits != n || renders != 1 {
		t.Fatalf("%d requests: %d renders, %d waited, %d hits; want one render", n, renders, waits, hits)
	}

	e.apiSend(tP, conv, "새 소식")
	if !strings.Contains(e.mustPage(teacher, thread), "새 소식") {
		t.Fatal("after a new message the thread page is the old one")
	}
	if got := e.pagesServed()["render"] - after["render"]; got != 1 {
		t.Fatalf("after a new message: %d renders, want 1", got)
	}
}
