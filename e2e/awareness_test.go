package e2e

// Awareness tests: read receipts, read counts, presence and typing, as clients of the JSON
// API and its SSE stream observe them and as people see them in the browser.

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/realtime/redistest"
)

// ---------------------------------------------------------------------------------------
// Event data

type receiptData struct {
	ConversationID int64  `json:"conversation_id"`
	UserID         string `json:"user_id"`
	LastReadSeq    int64  `json:"last_read_seq"`
}

// receiptsData is a message.read_receipts: a group's watermarks that rose within one
// coalescing interval.
type receiptsData struct {
	ConversationID int64 `json:"conversation_id"`
	Receipts       []struct {
		UserID      string `json:"user_id"`
		LastReadSeq int64  `json:"last_read_seq"`
	} `json:"receipts"`
}

// watermarkHeard answers the highest watermark of reader in convID that c heard, from
// single receipts and coalesced ones, and how many events told it.
func watermarkHeard(c *sseClient, convID int64, reader string) (seq int64, events int) {
	_, singles := eventsOfType(c, "message.read_receipt", func(r receiptData) bool {
		return r.ConversationID == convID && r.UserID == reader
	})
	for _, r := range singles {
		seq, events = max(seq, r.LastReadSeq), events+1
	}
	_, batches := eventsOfType[receiptsData](c, "message.read_receipts", nil)
	for _, b := range batches {
		if b.ConversationID != convID {
			continue
		}
		for _, r := range b.Receipts {
			if r.UserID == reader {
				seq, events = max(seq, r.LastReadSeq), events+1
			}
		}
	}
	return seq, events
}

type typingData struct {
	ConversationID int64  `json:"conversation_id"`
	UserID         string `json:"user_id"`
	Name           string `json:"name"`
	Typing         bool   `json:"typing"`
}

type presenceData struct {
	UserID     string     `json:"user_id"`
	Online     bool       `json:"online"`
	LastSeenAt *time.Time `json:"last_seen_at"`
}

// eventsOfType answers c's events of type typ whose data decodes into T and satisfies
// match (nil: all), with their decoded data.
func eventsOfType[T any](c *sseClient, typ string, match func(T) bool) ([]sseEvent, []T) {
	var evs []sseEvent
	var data []T
	for _, ev := range c.Events() {
		if ev.Type != typ {
			continue
		}
		var d T
		if json.Unmarshal([]byte(ev.Data), &d) != nil {
			continue
		}
		if match == nil || match(d) {
			evs = append(evs, ev)
			data = append(data, d)
		}
	}
	return evs, data
}

// waitEvents waits until c has at least n events of type typ satisfying match; it answers
// them (all of them, also when fewer than n arrived in time) and whether n arrived.
func waitEvents[T any](c *sseClient, typ string, n int, timeout time.Duration, match func(T) bool) ([]sseEvent, []T, bool) {
	deadline := time.Now().Add(timeout)
	for {
		evs, data := eventsOfType(c, typ, match)
		if len(evs) >= n {
			return evs, data, true
		}
		if time.Now().After(deadline) {
			return evs, data, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------------------
// API helpers

// markRead posts a read watermark and answers the status (it does not fail the test).
func markRead(ctx context.Context, a *apiClient, convID, seq int64) (int, error) {
	st, out, err := a.raw(ctx, http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/read", convID), "", map[string]any{"seq": seq})
	if err == nil && st != http.StatusNoContent {
		err = fmt.Errorf("mark read %d as %s: status %d: %s", seq, a.user.Sub, st, out)
	}
	return st, err
}

func mustMarkRead(t testing.TB, a *apiClient, convID, seq int64) {
	t.Helper()
	if _, err := markRead(context.Background(), a, convID, seq); err != nil {
		t.Fatal(err)
	}
}

// setTyping posts a typing signal and answers status and body.
func setTyping(a *apiClient, convID int64, typing bool) (int, []byte) {
	a.t.Helper()
	return a.do(http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/typing", convID), map[string]any{"typing": typing})
}

type unreadAnswer struct {
	Total         int64            `json:"total"`
	Conversations map[string]int64 `json:"conversations"`
}

func unreadOf(a *apiClient) unreadAnswer {
	a.t.Helper()
	var u unreadAnswer
	a.mustJSON(http.MethodGet, "/api/v1/unread", nil, http.StatusOK, &u)
	return u
}

// listUnread answers unread_count of every conversation of GET /api/v1/conversations.
func listUnread(a *apiClient) map[int64]int64 {
	a.t.Helper()
	out := map[int64]int64{}
	eachListed(a, func(c struct {
		ID          int64 `json:"id"`
		UnreadCount int64 `json:"unread_count"`
	}) bool {
		out[c.ID] = c.UnreadCount
		return true
	})
	return out
}

// eachListed hands each conversation of a's list (GET /api/v1/conversations, page by
// page, decoded as C) to each until it answers false.
func eachListed[C any](a *apiClient, each func(C) bool) {
	a.t.Helper()
	cursor := ""
	for range 100 {
		var page struct {
			Conversations []C     `json:"conversations"`
			NextCursor    *string `json:"next_cursor"`
		}
		path := "/api/v1/conversations"
		if cursor != "" {
			path += "?cursor=" + cursor
		}
		a.mustJSON(http.MethodGet, path, nil, http.StatusOK, &page)
		for _, c := range page.Conversations {
			if !each(c) {
				return
			}
		}
		if page.NextCursor == nil || *page.NextCursor == "" {
			return
		}
		cursor = *page.NextCursor
	}
	a.t.Fatal("GET /api/v1/conversations: too many pages")
}

// checkUnread checks the unread count of conversation convID for a's user, and that
// GET /api/v1/unread's total, its per-conversation counts and the list's unread_count agree.
func checkUnread(t testing.TB, a *apiClient, convID, want int64, when string) {
	t.Helper()
	u := unreadOf(a)
	if got := u.Conversations[strconv.FormatInt(convID, 10)]; got != want {
		t.Errorf("%s: /api/v1/unread counts %d unread in conversation %d, want %d (%+v)", when, got, convID, want, u)
	}
	var sum int64
	for id, n := range u.Conversations {
		sum += n
		if n <= 0 {
			t.Errorf("%s: /api/v1/unread lists conversation %s with %d unread", when, id, n)
		}
	}
	if sum != u.Total {
		t.Errorf("%s: /api/v1/unread total %d, but its conversations add up to %d (%+v)", when, u.Total, sum, u)
	}
	var listSum int64
	for id, n := range listUnread(a) {
		listSum += n
		if n != u.Conversations[strconv.FormatInt(id, 10)] {
			t.Errorf("%s: conversation %d has unread_count %d in the list, %d in /api/v1/unread", when, id, n, u.Conversations[strconv.FormatInt(id, 10)])
		}
	}
	if listSum != u.Total {
		t.Errorf("%s: the list's unread_counts add up to %d, /api/v1/unread's total is %d", when, listSum, u.Total)
	}
}

type awParticipant struct {
	ID         string     `json:"id"`
	Online     bool       `json:"online"`
	LastSeenAt *time.Time `json:"last_seen_at"`
}

// participantOf answers sub's participant entry in conversation convID as a sees it.
func participantOf(a *apiClient, convID int64, sub string) awParticipant {
	a.t.Helper()
	var c struct {
		Participants []awParticipant `json:"participants"`
	}
	a.mustJSON(http.MethodGet, fmt.Sprintf("/api/v1/conversations/%d", convID), nil, http.StatusOK, &c)
	for _, p := range c.Participants {
		if p.ID == sub {
			return p
		}
	}
	a.t.Fatalf("%s is not a participant of conversation %d: %+v", sub, convID, c.Participants)
	return awParticipant{}
}

// participantInList answers sub's participant entry in conversation convID as a's
// conversation list (GET /api/v1/conversations) shows it.
func participantInList(a *apiClient, convID int64, sub string) awParticipant {
	a.t.Helper()
	var found *awParticipant
	eachListed(a, func(c struct {
		ID           int64           `json:"id"`
		Participants []awParticipant `json:"participants"`
	}) bool {
		for _, p := range c.Participants {
			if c.ID == convID && p.ID == sub {
				found = &p
				return false
			}
		}
		return true
	})
	if found != nil {
		return *found
	}
	a.t.Fatalf("%s is not a participant of conversation %d in the list", sub, convID)
	return awParticipant{}
}

// checkPresence checks that sub shows as online (or not) in conversation convID, as a
// sees it in GET /api/v1/conversations/{id} and in the list; it answers both entries.
func checkPresence(t testing.TB, a *apiClient, convID int64, sub string, online bool, when string) (show, list awParticipant) {
	t.Helper()
	show, list = participantOf(a, convID, sub), participantInList(a, convID, sub)
	if list.Online != online {
		t.Errorf("%s: GET /api/v1/conversations shows %s as %+v, want online=%v", when, sub, list, online)
	}
	if show.Online != online {
		if list.Online == online {
			t.Errorf("%s: GET /api/v1/conversations/%d shows %s as online=%v, the list says online=%v: the single-conversation answer never fills in presence",
				when, convID, sub, show.Online, list.Online)
		} else {
			t.Errorf("%s: GET /api/v1/conversations/%d shows %s as %+v, want online=%v", when, convID, sub, show, online)
		}
	}
	return show, list
}

// readCountOf answers read_count of the message with seq, from GET .../messages.
func readCountOf(a *apiClient, convID, seq int64) int64 {
	a.t.Helper()
	var page struct {
		Messages []struct {
			Seq       int64 `json:"seq"`
			ReadCount int64 `json:"read_count"`
		} `json:"messages"`
	}
	a.mustJSON(http.MethodGet, fmt.Sprintf("/api/v1/conversations/%d/messages?limit=50", convID), nil, http.StatusOK, &page)
	for _, m := range page.Messages {
		if m.Seq == seq {
			return m.ReadCount
		}
	}
	a.t.Fatalf("no message with seq %d in conversation %d", seq, convID)
	return -1
}

// ---------------------------------------------------------------------------------------
// Browser helpers

// signInWithToken signs the tab in as the portal does: a form posting the token to
// /auth/portal from the messenger's own origin.
func signInWithToken(tb *tab, baseURL, token string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(baseURL + "/dev/login")) // any page of the origin (dev mode)
	submit := fmt.Sprintf(`(() => { const f = document.createElement("form"); f.method = "post"; f.action = "/auth/portal";
	  const i = document.createElement("input"); i.type = "hidden"; i.name = "token"; i.value = %s; f.appendChild(i);
	  document.body.appendChild(f); f.submit(); })()`, jsString(token))
	if _, err := runErr(tb, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Evaluate[chromedp.Void](submit))); err != nil {
		tb.t.Fatalf("portal sign-in in the browser: %v", err)
	}
	tb.do(chromedp.WaitVisible(chromedp.CSS(listSelector)))
}

// pollJS evaluates expr until ok accepts its value or timeout passes; it answers the last
// value, how long it waited and whether ok accepted it.
func pollJS[T any](tb *tab, expr string, timeout time.Duration, ok func(T) bool) (T, time.Duration, bool) {
	tb.t.Helper()
	start := time.Now()
	for {
		v := eval[T](tb, expr)
		if ok(v) {
			return v, time.Since(start), true
		}
		if time.Since(start) > timeout {
			return v, time.Since(start), false
		}
		time.Sleep(25 * time.Millisecond)
	}
}

type rowMarks struct {
	Found  bool   `json:"found"`
	Read   string `json:"read"`
	Unread string `json:"unread"`
}

func rowMarksJS(msgID int64) string {
	return fmt.Sprintf(`(() => { const li = document.getElementById("msg-%d"); if (!li) return {found: false, read: "", unread: ""};
	  const r = li.querySelector(".msg-read"), u = li.querySelector(".msg-unread");
	  return {found: true, read: r ? r.textContent.trim() : "<none>", unread: u ? u.textContent.trim() : "<none>"} })()`, msgID)
}

// waitMarks waits until the row of message msgID shows read and unread as its markers.
func waitMarks(tb *tab, what string, msgID int64, read, unread string, timeout time.Duration) time.Duration {
	tb.t.Helper()
	got, took, ok := pollJS(tb, rowMarksJS(msgID), timeout, func(m rowMarks) bool { return m.Found && m.Read == read && m.Unread == unread })
	if !ok {
		tb.t.Errorf("%s: the row of message %d shows read %q / unread %q (found %v) after %s, want %q / %q",
			what, msgID, got.Read, got.Unread, got.Found, took.Round(time.Millisecond), read, unread)
	}
	return took
}

func presenceDotsJS(sub string) string {
	return fmt.Sprintf(`Array.from(document.querySelectorAll('[data-presence=%s]')).map(d => d.classList.contains("online"))`, jsString(sub))
}

func allEqual(vs []bool, want bool) bool {
	if len(vs) == 0 {
		return false
	}
	for _, v := range vs {
		if v != want {
			return false
		}
	}
	return true
}

const typingTextJS = `(() => { const e = document.getElementById("typing"); return e ? e.textContent.trim() : "<no #typing>" })()`

var typingElement = regexp.MustCompile(`(?s)<p id="typing"[^>]*>(.*?)</p>`)

// typingOnPage answers the text of #typing in a thread page's HTML.
func typingOnPage(t testing.TB, body string) string {
	t.Helper()
	m := typingElement.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no #typing element in the thread page")
	}
	return strings.TrimSpace(html.UnescapeString(m[1]))
}

// ---------------------------------------------------------------------------------------
// Tests

// TestReadReceiptsAcrossProcesses: a read watermark raised through one process reaches the
// other members' streams on another process, never goes down, survives concurrent marks,
// and the unread counts of every view agree with it.
func TestReadReceiptsAcrossProcesses(t *testing.T) {
	a, b := twoServers(t)
	org := "org-receipts-" + deliveryNonce()
	x := newUser(t, "rr-x", "서지안", org, "teacher")
	y := newUser(t, "rr-y", "문하린", org, "parent")
	xa, yb := a.api(x), b.api(y)
	conv := xa.directWith(yb)

	xStream := a.newSSEClient(x) // X on A
	yStream := b.newSSEClient(y) // Y on B
	yOnA := a.newSSEClient(y)    // another tab of Y, on the other process
	startClients(t, []*sseClient{xStream, yStream, yOnA}, 10*time.Second)
	type named struct {
		who    string
		stream *sseClient
	}
	streams := []named{{"X's stream on A", xStream}, {"Y's own stream on B", yStream}, {"Y's other stream on A", yOnA}}

	for i := range 3 {
		xa.mustSend(conv.ID, fmt.Sprintf("읽음 확인 %d", i+1), uuid.NewString())
	}
	if !yStream.WaitSeqs(conv.ID, 3, 5*time.Second) {
		t.Fatalf("Y's stream on B did not get the 3 messages: %v", yStream.Conv(conv.ID).Arrival)
	}
	checkUnread(t, yb, conv.ID, 3, "after 3 messages")
	// The sender has read what it sent.
	checkUnread(t, xa, conv.ID, 0, "the sender, after 3 messages")

	ofY := func(r receiptData) bool { return r.ConversationID == conv.ID && r.UserID == y.Sub }
	const receipt = "message.read_receipt"

	// Y reads up to seq 2 through B.
	start := time.Now()
	mustMarkRead(t, yb, conv.ID, 2)
	for _, c := range streams {
		_, got, ok := waitEvents(c.stream, receipt, 1, 5*time.Second, ofY)
		switch {
		case !ok:
			t.Errorf("%s got no read receipt for seq 2 within 5 s", c.who)
		case got[0].LastReadSeq != 2:
			t.Errorf("%s got a read receipt %+v, want last_read_seq 2", c.who, got[0])
		default:
			t.Logf("%s got the receipt %s after the mark", c.who, time.Since(start).Round(time.Millisecond))
		}
	}
	checkUnread(t, yb, conv.ID, 1, "after reading up to seq 2")
	checkUnread(t, a.api(y), conv.ID, 1, "after reading up to seq 2, asked on A")

	// A lower mark changes nothing: 204, no event, the watermark stays.
	mustMarkRead(t, yb, conv.ID, 1)
	time.Sleep(time.Second)
	for _, n := range streams {
		c := n.stream
		if evs, got := eventsOfType(c, receipt, ofY); len(evs) != 1 {
			t.Errorf("%s: after marking seq 1 below the watermark 2 there are %d receipts %+v, want only the one of seq 2", n.who, len(evs), got)
		}
	}
	checkUnread(t, yb, conv.ID, 1, "after marking seq 1 below the watermark")
	if n := readCountOf(xa, conv.ID, 2); n != 1 {
		t.Errorf("read_count of seq 2 is %d after the lower mark, want 1", n)
	}

	// Concurrent marks of 3 and 2: the watermark ends at 3, one receipt for 3.
	var wg sync.WaitGroup
	gate := make(chan struct{})
	errs := make([]error, 2)
	for i, seq := range []int64{3, 2} {
		wg.Go(func() {
			<-gate
			_, errs[i] = markRead(context.Background(), b.api(y), conv.ID, seq)
		})
	}
	close(gate)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for _, n := range streams {
		c := n.stream
		_, got, ok := waitEvents(c, receipt, 2, 5*time.Second, ofY)
		if !ok || got[len(got)-1].LastReadSeq != 3 {
			t.Errorf("%s after concurrent marks 3 and 2: receipts %+v, want a second one with last_read_seq 3", n.who, got)
		}
	}
	time.Sleep(500 * time.Millisecond)
	for _, n := range streams {
		c := n.stream
		_, got := eventsOfType(c, receipt, ofY)
		if seqs := checkReceiptSeqs(t, n.who+" after concurrent marks 3 and 2", got); fmt.Sprint(seqs) != "[2 3]" {
			t.Errorf("%s after concurrent marks 3 and 2: receipts %+v, want [2 3]", n.who, got)
		}
	}
	checkUnread(t, yb, conv.ID, 0, "after concurrent marks 3 and 2")
	if n := readCountOf(xa, conv.ID, 3); n != 1 {
		t.Errorf("read_count of seq 3 is %d, want 1", n)
	}

	// More rounds of the race: two new messages, marks of both at once.
	last := int64(3)
	for round := range 10 {
		for i := range 2 {
			xa.mustSend(conv.ID, fmt.Sprintf("경쟁 %d-%d", round+1, i+1), uuid.NewString())
		}
		top := last + 2
		gate := make(chan struct{})
		errs := make([]error, 2)
		for i, seq := range []int64{top, top - 1} {
			wg.Go(func() {
				<-gate
				_, errs[i] = markRead(context.Background(), []*apiClient{b.api(y), a.api(y)}[i], conv.ID, seq)
			})
		}
		close(gate)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		_, got, ok := waitEvents(xStream, receipt, 1, 5*time.Second, func(r receiptData) bool { return ofY(r) && r.LastReadSeq == top })
		if !ok {
			t.Errorf("round %d: X's stream got no receipt for %d: %+v", round+1, top, got)
		}
		u := unreadOf(yb)
		if n := u.Conversations[strconv.FormatInt(conv.ID, 10)]; n != 0 {
			t.Errorf("round %d: after concurrent marks %d and %d, %d unread remain", round+1, top, top-1, n)
		}
		last = top
	}
	time.Sleep(300 * time.Millisecond)
	for _, n := range streams {
		c := n.stream
		_, all := eventsOfType(c, receipt, ofY)
		seqs := checkReceiptSeqs(t, n.who+" after the races", all)
		// Each round announces its top mark, and the one below it when that committed first.
		have := map[int64]bool{}
		for _, seq := range seqs {
			have[seq] = true
			if seq > 3 && seq%2 == 0 && seq+1 > last {
				t.Errorf("%s: a receipt of %d, which no mark asked for", n.who, seq)
			}
		}
		for seq := int64(2); seq <= last; seq++ {
			if (seq <= 3 || seq%2 == 1) && !have[seq] {
				t.Errorf("%s: no receipt of the watermark %d (receipts %v)", n.who, seq, seqs)
			}
		}
	}
	checkUnread(t, yb, conv.ID, 0, "after the races")
	for _, n := range streams {
		c := n.stream
		if p := c.Problems(); len(p) > 0 {
			t.Errorf("%s: protocol problems: %v", n.who, p)
		}
	}
	for _, s := range []*server{a, b} {
		for _, line := range s.logLines("ERROR") {
			t.Errorf("server %s logged an error: %s", s.Addr, line)
		}
	}
}

// checkReceiptSeqs checks that receipts only ever rise: one going down is an error, one
// repeating the previous watermark is the known bug of store.MarkRead under concurrent
// marks. It answers the distinct watermarks in order.
func checkReceiptSeqs(t testing.TB, who string, got []receiptData) []int64 {
	t.Helper()
	var seqs []int64
	repeats := 0
	for i, r := range got {
		if i > 0 && r.LastReadSeq < got[i-1].LastReadSeq {
			t.Errorf("%s: receipt %d has last_read_seq %d after %d: a watermark went down", who, i, r.LastReadSeq, got[i-1].LastReadSeq)
		}
		if i > 0 && r.LastReadSeq == got[i-1].LastReadSeq {
			repeats++
			continue
		}
		seqs = append(seqs, r.LastReadSeq)
	}
	if repeats > 0 {
		t.Errorf("%s: %d of %d read receipts repeat the watermark before them (%v): a mark that raced a higher one and did not raise the watermark was announced",
			who, repeats, len(got), receiptSeqs(got))
	}
	return seqs
}

func receiptSeqs(got []receiptData) []int64 {
	out := make([]int64, len(got))
	for i, r := range got {
		out[i] = r.LastReadSeq
	}
	return out
}

// TestGroupReadCount: in a group, the read count of a message rises as members read it,
// for API clients and on the sender's screen ("N명이 읽음" and the count of those who have
// not read it).
func TestGroupReadCount(t *testing.T) {
	browser := newBrowser(t)
	s := startServer(t)
	org := "org-groupread-" + deliveryNonce()
	teacher := newUser(t, "gr-teacher", "배수진", org, "teacher")
	students := []testUser{
		newUser(t, "gr-s1", "학생 하나", org, "student"),
		newUser(t, "gr-s2", "학생 둘", org, "student"),
		newUser(t, "gr-s3", "학생 셋", org, "student"),
	}
	var subs []string
	for _, u := range students {
		s.api(u).me()
		subs = append(subs, u.Sub)
	}
	ta := s.api(teacher)
	conv := ta.createConversation("group", "읽음 수 시험", subs...)
	if len(conv.Participants) != 4 {
		t.Fatalf("the group has %d participants, want 4", len(conv.Participants))
	}

	teacherStream := s.newSSEClient(teacher)
	teacherStream.StartAndWait(10 * time.Second)

	tb := newLiveTab(t, browser, "ko")
	signInWithToken(tb, s.URL, teacher.Token)
	threadURL := fmt.Sprintf("%s/c/%d", s.URL, conv.ID)
	openThread(tb, threadURL)

	msg := ta.mustSend(conv.ID, "내일 준비물 확인하세요", uuid.NewString())
	waitJS(tb, "the teacher's tab shows the message", fmt.Sprintf(`!!document.getElementById("msg-%d")`, msg.ID), 5*time.Second)
	if n := readCountOf(ta, conv.ID, msg.Seq); n != 0 {
		t.Errorf("read_count before anyone read: %d, want 0", n)
	}
	waitMarks(tb, "nobody has read it", msg.ID, "", "3", 3*time.Second)

	for i, st := range students {
		mustMarkRead(t, s.api(st), conv.ID, msg.Seq)
		if n := readCountOf(ta, conv.ID, msg.Seq); n != int64(i+1) {
			t.Errorf("after %d of 3 read it, read_count is %d", i+1, n)
		}
		// A group: the other members hear the rises coalesced (message.read_receipts).
		deadline := time.Now().Add(5 * time.Second)
		seq, n := watermarkHeard(teacherStream, conv.ID, st.Sub)
		for n == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			seq, n = watermarkHeard(teacherStream, conv.ID, st.Sub)
		}
		if n == 0 {
			t.Errorf("the teacher's stream got no receipt of %s", st.Sub)
		} else if seq != msg.Seq || n != 1 {
			t.Errorf("the teacher's stream heard %s's watermark %d in %d events, want %d in one", st.Sub, seq, n, msg.Seq)
		}
		if evs, _ := eventsOfType[receiptData](teacherStream, "message.read_receipt", nil); len(evs) != 0 {
			t.Errorf("the teacher's stream got %d single receipts of others' reads in a group, want them coalesced", len(evs))
		}
		wantRead, wantUnread := fmt.Sprintf("%d명이 읽음", i+1), strconv.Itoa(2-i)
		if i == 2 {
			wantUnread = ""
		}
		took := waitMarks(tb, fmt.Sprintf("after %d of 3 read it", i+1), msg.ID, wantRead, wantUnread, 3*time.Second)
		t.Logf("after %d of 3 read it, the teacher's tab showed %q / %q within %s", i+1, wantRead, wantUnread, took.Round(time.Millisecond))
		if i == 1 {
			// The server renders the same as the live markers.
			openThread(tb, threadURL)
			waitMarks(tb, "reloaded after 2 of 3 read it", msg.ID, "2명이 읽음", "1", time.Second)
		}
	}
	openThread(tb, threadURL)
	waitMarks(tb, "reloaded after all 3 read it", msg.ID, "3명이 읽음", "", time.Second)
	checkLiveConsole(tb)
	checkServerErrors(t, s)
}

// TestPresence: a user is online while any stream of theirs is open, anywhere; the people
// who share a conversation with them, and only those, hear them come and go; a process
// that dies takes its users offline within a minute.
func TestPresence(t *testing.T) {
	t.Run("one server", func(t *testing.T) {
		s := startServer(t)
		org := "org-presence-" + deliveryNonce()
		u := newUser(t, "pr-u", "노유진", org, "teacher")
		v := newUser(t, "pr-v", "남궁민", org, "parent")
		w := newUser(t, "pr-w", "황보람", org, "parent") // shares no conversation with u
		for _, x := range []testUser{v, w} {
			s.api(x).me()
		}
		conv := s.api(u).createConversation("direct", "", v.Sub)
		s.api(w).createConversation("direct", "", v.Sub) // w knows v, not u

		const presence = "presence"
		ofU := func(p presenceData) bool { return p.UserID == u.Sub }
		wStream := s.newSSEClient(w)
		wStream.StartAndWait(10 * time.Second)
		vStream := s.newSSEClient(v)
		vStream.StartAndWait(10 * time.Second)
		// The control: w hears v, who shares a conversation with w, come online.
		if _, _, ok := waitEvents(wStream, presence, 1, 3*time.Second, func(p presenceData) bool { return p.UserID == v.Sub && p.Online }); !ok {
			t.Errorf("w's stream did not hear v come online (a contact of w)")
		}

		// u's first stream: v hears u come online.
		u1 := s.newSSEClient(u)
		start := time.Now()
		u1.StartAndWait(10 * time.Second)
		if _, got, ok := waitEvents(vStream, presence, 1, 3*time.Second, ofU); !ok {
			t.Fatalf("v's stream did not hear u come online within 3 s")
		} else if !got[0].Online {
			t.Errorf("u's first stream: v heard %+v, want online", got[0])
		} else {
			t.Logf("v heard u come online %s after u's stream started", time.Since(start).Round(time.Millisecond))
		}
		checkPresence(t, s.api(v), conv.ID, u.Sub, true, "with one stream of u open")

		// u's second stream: nothing new.
		u2 := s.newSSEClient(u)
		u2.StartAndWait(10 * time.Second)
		time.Sleep(time.Second)
		if evs, got := eventsOfType(vStream, presence, ofU); len(evs) != 1 {
			t.Errorf("after u's second stream v has %d presence events of u %+v, want only the first online", len(evs), got)
		}

		// One stream closes: u is still online.
		u1.Stop()
		time.Sleep(time.Second)
		if evs, got := eventsOfType(vStream, presence, ofU); len(evs) != 1 {
			t.Errorf("after one of u's two streams closed v has %d presence events of u %+v, want no offline", len(evs), got)
		}
		checkPresence(t, s.api(v), conv.ID, u.Sub, true, "with one of u's two streams still open")

		// The last one closes: offline at once, with last_seen_at.
		closed := time.Now()
		u2.Stop()
		_, got, ok := waitEvents(vStream, presence, 2, 2*time.Second, ofU)
		took := time.Since(closed)
		switch {
		case !ok:
			t.Errorf("v did not hear u go offline within 2 s of u's last stream closing (presence events: %+v)", got)
		case got[1].Online || got[1].LastSeenAt == nil:
			t.Errorf("u's last stream closed: v heard %+v, want offline with last_seen_at", got[1])
		default:
			t.Logf("v heard u go offline %s after u's last stream closed; last_seen_at %s", took.Round(time.Millisecond), got[1].LastSeenAt.Format(time.RFC3339Nano))
			if d := got[1].LastSeenAt.Sub(closed); d < -time.Second || d > 3*time.Second {
				t.Errorf("the offline event's last_seen_at %s is %s from when the stream closed", got[1].LastSeenAt, d)
			}
		}
		show, list := checkPresence(t, s.api(v), conv.ID, u.Sub, false, "after u's last stream closed")
		for _, p := range []awParticipant{show, list} {
			if p.LastSeenAt == nil {
				t.Errorf("after u's last stream closed, u's participant entry shows %+v, want last_seen_at", p)
			} else if d := p.LastSeenAt.Sub(closed); d < -time.Second || d > 3*time.Second {
				t.Errorf("u's stored last_seen_at %s is %s from when the stream closed", p.LastSeenAt, d)
			}
		}
		time.Sleep(300 * time.Millisecond)
		if evs, got := eventsOfType(vStream, presence, ofU); len(evs) != 2 {
			t.Errorf("v has %d presence events of u %+v, want online then offline", len(evs), got)
		}
		if evs, got := eventsOfType(wStream, presence, ofU); len(evs) > 0 {
			t.Errorf("w, who shares no conversation with u, received %d presence events of u: %+v", len(evs), got)
		}
		checkServerErrors(t, s)
	})

	t.Run("killed process", func(t *testing.T) {
		if testing.Short() {
			t.Skip("waits about a minute for a dead process's presence to lapse")
		}
		redisURL := redistest.URL(t)
		a := startServer(t, "REDIS_URL="+redisURL)
		aStarted := time.Now()
		b := startServerOn(t, a, "REDIS_URL="+redisURL)
		org := "org-presence-kill-" + deliveryNonce()
		u := newUser(t, "prk-u", "도하윤", org, "teacher")
		v := newUser(t, "prk-v", "석지호", org, "parent")
		conv := a.api(u).directWith(b.api(v))
		ofU := func(p presenceData) bool { return p.UserID == u.Sub }

		vStream := b.newSSEClient(v) // on B
		vStream.StartAndWait(10 * time.Second)
		uStream := a.newSSEClient(u) // on A
		uStream.StartAndWait(10 * time.Second)
		connected := time.Now()
		if _, got, ok := waitEvents(vStream, "presence", 1, 3*time.Second, ofU); !ok || !got[0].Online {
			t.Fatalf("v on B did not hear u (on A) come online: %+v", got)
		}
		checkPresence(t, b.api(v), conv.ID, u.Sub, true, "B, with u connected to A")

		a.Kill()
		killed := time.Now()
		uStream.Stop()
		t.Logf("process A killed %s after it started, %s after u connected", killed.Sub(aStarted).Round(time.Millisecond), killed.Sub(connected).Round(time.Millisecond))

		_, got, ok := waitEvents(vStream, "presence", 2, 80*time.Second, ofU)
		took := time.Since(killed)
		if !ok {
			t.Fatalf("v did not hear u go offline within 80 s of u's process dying (presence events: %+v)", got)
		}
		off := got[1]
		t.Logf("v heard u go offline %s after A was killed (%s after u connected): %+v", took.Round(time.Millisecond), time.Since(connected).Round(time.Millisecond), off)
		// The entry lapses PresenceTTL after its last refresh (u's connect, moments before
		// the kill) and the next sweep, at most PresenceSweep later, announces it: 65 s, plus
		// a second for storing last_seen_at and delivering the event.
		if bound := realtime.PresenceTTL + realtime.PresenceSweep + time.Second; took > bound {
			t.Errorf("u's offline came %s after the process died, want within %s", took.Round(time.Millisecond), bound)
		}
		if off.Online || off.LastSeenAt == nil {
			t.Errorf("the lapse announced %+v, want offline with last_seen_at", off)
		}
		show, list := checkPresence(t, b.api(v), conv.ID, u.Sub, false, "after the lapse")
		for _, p := range []awParticipant{show, list} {
			if p.LastSeenAt == nil {
				t.Errorf("after the lapse u's participant entry shows %+v, want last_seen_at stored", p)
			} else if off.LastSeenAt != nil && p.LastSeenAt.Sub(*off.LastSeenAt).Abs() > time.Second {
				t.Errorf("stored last_seen_at %s, announced %s", p.LastSeenAt, off.LastSeenAt)
			}
		}
		time.Sleep(6 * time.Second) // another sweep: announced once only
		if evs, got := eventsOfType(vStream, "presence", ofU); len(evs) != 2 {
			t.Errorf("v has %d presence events of u %+v, want online then one offline", len(evs), got)
		}
		for _, line := range b.logLines("ERROR") {
			t.Errorf("server B logged an error: %s", line)
		}
	})
}

// TestTyping: a typing signal reaches the other members and no one else; the thread page
// renders who is typing, until the signal lapses.
func TestTyping(t *testing.T) {
	s := startServer(t)
	org := "org-typing-" + deliveryNonce()
	m1 := newUser(t, "ty-m1", "엄태희", org, "teacher")
	m2 := newUser(t, "ty-m2", "권도현", org, "student")
	m3 := newUser(t, "ty-m3", "안소율", org, "student")
	outsider := newUser(t, "ty-out", "류시원", org, "student")
	for _, u := range []testUser{m2, m3, outsider} {
		s.api(u).me()
	}
	conv := s.api(m1).createConversation("group", "입력 표시 시험", m2.Sub, m3.Sub)

	streams := map[string]*sseClient{}
	for _, u := range []testUser{m1, m2, m3, outsider} {
		streams[u.Sub] = s.newSSEClient(u)
	}
	startClients(t, []*sseClient{streams[m1.Sub], streams[m2.Sub], streams[m3.Sub], streams[outsider.Sub]}, 10*time.Second)
	const typing = "message.typing"
	of := func(on bool) func(typingData) bool {
		return func(d typingData) bool { return d.ConversationID == conv.ID && d.Typing == on }
	}

	start := time.Now()
	if st, out := setTyping(s.api(m1), conv.ID, true); st != http.StatusNoContent {
		t.Fatalf("typing=true: %d %s", st, out)
	}
	for _, u := range []testUser{m2, m3} {
		_, got, ok := waitEvents(streams[u.Sub], typing, 1, 3*time.Second, of(true))
		if !ok {
			t.Errorf("%s's stream got no typing event", u.Sub)
			continue
		}
		if d := got[0]; d.UserID != m1.Sub || d.Name != m1.Name {
			t.Errorf("%s's stream got %+v, want user %s named %s", u.Sub, d, m1.Sub, m1.Name)
		}
		t.Logf("%s heard the typing %s after the signal", u.Sub, time.Since(start).Round(time.Millisecond))
	}
	// The non-member cannot signal.
	st, out := setTyping(s.api(outsider), conv.ID, true)
	wantAPIError(t, "a non-member's typing signal", st, out, http.StatusNotFound, "not_found")

	if st, out := setTyping(s.api(m1), conv.ID, false); st != http.StatusNoContent {
		t.Fatalf("typing=false: %d %s", st, out)
	}
	for _, u := range []testUser{m2, m3} {
		_, got, ok := waitEvents(streams[u.Sub], typing, 1, 3*time.Second, of(false))
		if !ok {
			t.Errorf("%s's stream got no typing=false event", u.Sub)
		} else if got[0].UserID != m1.Sub {
			t.Errorf("%s's stream got %+v, want user %s", u.Sub, got[0], m1.Sub)
		}
	}
	time.Sleep(time.Second)
	for _, u := range []testUser{m1, outsider} {
		if evs, got := eventsOfType[typingData](streams[u.Sub], typing, nil); len(evs) > 0 {
			t.Errorf("%s's stream received %d typing events it must not: %+v", u.Sub, len(evs), got)
		}
	}
	for _, u := range []testUser{m2, m3} {
		if evs, got := eventsOfType(streams[u.Sub], typing, of(true)); len(evs) != 1 {
			t.Errorf("%s's stream has %d typing=true events %+v, want 1 (the outsider's signal must not count)", u.Sub, len(evs), got)
		}
	}

	// The thread page renders who is typing, as the server knows it.
	web := s.signInPortal(m3)
	path := fmt.Sprintf("/c/%d", conv.ID)
	if st, body, _ := web.request(http.MethodGet, path, nil); st != http.StatusOK {
		t.Fatalf("GET %s: %d", path, st)
	} else if got := typingOnPage(t, body); got != "" {
		t.Errorf("after typing=false the page shows %q typing, want nothing", got)
	}
	signal := time.Now()
	if st, out := setTyping(s.api(m1), conv.ID, true); st != http.StatusNoContent {
		t.Fatalf("typing=true: %d %s", st, out)
	}
	st2, body, _ := web.request(http.MethodGet, path, nil)
	if since := time.Since(signal); since > time.Second {
		t.Logf("the page came %s after the signal (slow machine)", since.Round(time.Millisecond))
	}
	want := m1.Name + "님이 입력 중..."
	if st2 != http.StatusOK {
		t.Fatalf("GET %s: %d", path, st2)
	} else if got := typingOnPage(t, body); got != want {
		t.Errorf("within a second of typing=true the page shows %q, want %q", got, want)
	}
	// m1's own page does not show m1 typing.
	if st, body, _ := s.signInPortal(m1).request(http.MethodGet, path, nil); st == http.StatusOK {
		if got := typingOnPage(t, body); got != "" {
			t.Errorf("the typist's own page shows %q", got)
		}
	}
	time.Sleep(time.Until(signal.Add(3500 * time.Millisecond)))
	if st, body, _ := web.request(http.MethodGet, path, nil); st != http.StatusOK {
		t.Fatalf("GET %s: %d", path, st)
	} else if got := typingOnPage(t, body); got != "" {
		t.Errorf("3.5 s after the last typing signal the page still shows %q", got)
	}
	checkServerErrors(t, s)
}

// TestAwarenessInBrowser: the demo teacher (A) and the demo parent (B) in two browsers:
// B sees A typing, A sees B read (✓ → ✓✓), B's badge and title follow, and B sees A come
// and go.
func TestAwarenessInBrowser(t *testing.T) {
	browser := newBrowser(t)
	srv := startServer(t)
	nonce := runNonce()
	_, direct, threadURL := teacherDirect(t, srv)

	a := signedInTab(t, browser, srv, demoTeacher.Name)
	b := signedInTab(t, browser, srv, demoParent.Name)
	// B is the tab in front, its window focused: what it shows is seen.
	b.do(cdpDo(emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}),
		cdpDo(page.BringToFront, cdp.Empty{}))
	openThread(a, threadURL)
	openThread(b, threadURL)
	if v := eval[bool](b, `document.visibilityState === "visible" && document.hasFocus()`); !v {
		t.Fatalf("B's tab is not visible and focused; read marking needs it")
	}

	// Presence: A is online on B's screen.
	if dots, took, ok := pollJS(b, presenceDotsJS(demoTeacher.Sub), 3*time.Second, func(v []bool) bool { return allEqual(v, true) }); !ok {
		t.Errorf("B's presence dots of A: %v after %s, want all online", dots, took)
	}
	lastSeenJS := fmt.Sprintf(`(() => { const e = document.querySelector('[data-last-seen=%s]'); return e ? e.textContent.trim() : "<none>" })()`, jsString(demoTeacher.Sub))
	if got, _, ok := pollJS(b, lastSeenJS, 3*time.Second, func(s string) bool { return strings.Contains(s, "온라인") }); !ok {
		t.Errorf("B's thread header says %q of A, want 온라인", got)
	}

	// Typing.
	text := "상담 일정 문의드립니다 " + nonce
	typeInComposer(a, text)
	want := demoTeacher.Name + "님이 입력 중..."
	if got, took, ok := pollJS(b, typingTextJS, 2*time.Second, func(s string) bool { return s == want }); !ok {
		t.Errorf("B's typing indicator shows %q after %s, want %q", got, took.Round(time.Millisecond), want)
	} else {
		t.Logf("B saw A typing after %s", took.Round(time.Millisecond))
	}

	// A sends: the indicator goes at once, the message shows, and A sees B read it.
	sent := time.Now()
	pressEnter(a)
	if got, took, ok := pollJS(b, typingTextJS, time.Second, func(s string) bool { return s == "" }); !ok {
		t.Errorf("B's typing indicator still shows %q %s after A sent", got, took.Round(time.Millisecond))
	} else {
		t.Logf("B's typing indicator went %s after A sent", took.Round(time.Millisecond))
	}
	waitJS(b, "B sees A's message", countTextJS(text)+" === 1", 5*time.Second)
	waitJS(a, "A sees its message", countTextJS(text)+" === 1", 5*time.Second)
	row := rowWithText(a, text)
	msgID, _ := strconv.ParseInt(strings.TrimPrefix(row.ID, "msg-"), 10, 64)
	if got, took, ok := pollJS(a, rowMarksJS(msgID), 5*time.Second, func(m rowMarks) bool { return m.Read == "✓✓" }); !ok {
		t.Errorf("A's bubble shows %q %s after the send, want ✓✓ (B has the thread open and in view)", got.Read, took.Round(time.Millisecond))
	} else {
		t.Logf("A's bubble turned ✓✓ %s after the send", time.Since(sent).Round(time.Millisecond))
	}
	if got := eval[rowMarks](b, rowMarksJS(msgID)); got.Read != "" || got.Unread != "" {
		t.Errorf("B's row of A's message shows read %q / unread %q, want nothing (not B's message, direct)", got.Read, got.Unread)
	}

	// B on the list: A's next message is unread there.
	b.do(chromedp.Navigate(srv.URL + "/"))
	waitConnected(b, 1)
	if bd := badge(b, direct); bd.Visible || bd.Count != 0 {
		t.Errorf("B's badge before A's second message: %+v, want none (B read the thread)", bd)
	}
	// What B has unread elsewhere (the zone's notices) counts in the title too.
	elsewhere := titleCount(b)
	text2 := "내일 오후 3시 괜찮으세요? " + nonce
	typeInComposer(a, text2)
	pressEnter(a)
	waitJS(a, "A sees its second message", countTextJS(text2)+" === 1", 5*time.Second)
	if got, _, ok := pollJS(b, badgeJS(direct), 3*time.Second, func(bd badgeState) bool { return bd.Count == 1 && bd.Visible && bd.Text == "1" }); !ok {
		t.Errorf("B's badge after A's second message: %+v, want 1 shown", got)
	}
	wantTitle := fmt.Sprintf("(%d) ", elsewhere+1)
	if got, _, ok := pollJS(b, `document.title`, 3*time.Second, func(s string) bool { return strings.HasPrefix(s, wantTitle) }); !ok {
		t.Errorf("B's title is %q, want it to start with %q", got, wantTitle)
	}
	row2 := rowWithText(a, text2)
	msg2, _ := strconv.ParseInt(strings.TrimPrefix(row2.ID, "msg-"), 10, 64)
	waitMarks(a, "B has not opened the thread", msg2, "✓", "", 2*time.Second)
	time.Sleep(time.Second)
	waitMarks(a, "B still has not opened the thread", msg2, "✓", "", 0)

	// B opens the thread: the badge clears and A sees ✓✓.
	openThread(b, threadURL)
	if got, _, ok := pollJS(b, badgeJS(direct), 3*time.Second, func(bd badgeState) bool { return bd.Count == 0 && !bd.Visible }); !ok {
		t.Errorf("B's badge with the thread open: %+v, want cleared", got)
	}
	if got, _, ok := pollJS(b, `document.title`, 3*time.Second, func(s string) bool {
		if elsewhere == 0 {
			return !strings.HasPrefix(s, "(")
		}
		return strings.HasPrefix(s, fmt.Sprintf("(%d) ", elsewhere))
	}); !ok {
		t.Errorf("B's title with the thread read: %q, want the count of elsewhere only (%d)", got, elsewhere)
	}
	took := waitMarks(a, "B opened the thread", msg2, "✓✓", "", 5*time.Second)
	t.Logf("A's second bubble turned ✓✓ %s after B opened the thread", took.Round(time.Millisecond))

	// A leaves: B's dots turn grey and the header tells when A was last seen.
	left := time.Now()
	a.do(chromedp.Navigate("about:blank"))
	if dots, took, ok := pollJS(b, presenceDotsJS(demoTeacher.Sub), 3*time.Second, func(v []bool) bool { return allEqual(v, false) }); !ok {
		t.Errorf("B's presence dots of A %s after A's tab closed: %v, want all grey", took.Round(time.Millisecond), dots)
	} else {
		t.Logf("B's dots of A turned grey %s after A's tab closed", time.Since(left).Round(time.Millisecond))
	}
	if got, _, ok := pollJS(b, lastSeenJS, 3*time.Second, func(s string) bool { return strings.Contains(s, "방금 전 접속") }); !ok {
		t.Errorf("B's thread header says %q of A after A left, want 방금 전 접속", got)
	}
	if grey := eval[bool](b, fmt.Sprintf(`Array.from(document.querySelectorAll('[data-presence=%s]')).every(d => d.classList.contains("bg-slate-300") && !d.classList.contains("bg-emerald-500"))`, jsString(demoTeacher.Sub))); !grey {
		t.Errorf("B's dots of A are not grey (bg-slate-300) after A left")
	}
	checkLiveConsole(b)
	checkServerErrors(t, srv)
}

// TestTypingNamesLiteralInBrowser: names holding what String.replace reads as patterns
// ($&, $`, $') or a placeholder of the template (%s) show as written in the typing
// indicator, for one, two and more typists.
func TestTypingNamesLiteralInBrowser(t *testing.T) {
	browser := newBrowser(t)
	srv := startServer(t)
	nonce := runNonce()
	typists := []demoPerson{
		{"e2e-dollar-1-" + nonce, "김$&$`$'", "teacher"},
		{"e2e-dollar-2-" + nonce, "%s$1", "student"},
		{"e2e-dollar-3-" + nonce, "이$'", "student"},
	}
	apis := make([]*liveAPI, len(typists))
	subs := []string{demoParent.Sub}
	for i, p := range typists {
		apis[i] = newLiveAPI(t, srv, p)
		apis[i].call(t, http.MethodGet, "/api/v1/me", nil, nil, http.StatusOK)
		subs = append(subs, p.Sub)
	}
	var conv struct{ ID int64 }
	newLiveAPI(t, srv, demoTeacher).call(t, http.MethodPost, "/api/v1/conversations",
		map[string]any{"kind": "group", "title": "이름 " + nonce, "participant_ids": subs}, &conv, http.StatusCreated)

	b := signedInTab(t, browser, srv, demoParent.Name)
	openThread(b, fmt.Sprintf("%s/c/%d", srv.URL, conv.ID))

	for n, want := range []string{
		typists[0].Name + "님이 입력 중...",
		typists[0].Name + "님, " + typists[1].Name + "님이 입력 중...",
		typists[0].Name + "님 외 2명이 입력 중...",
	} {
		for _, a := range apis[:n+1] {
			a.call(t, http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/typing", conv.ID), map[string]any{"typing": true}, nil, http.StatusNoContent)
		}
		if got, took, ok := pollJS(b, typingTextJS, 2*time.Second, func(s string) bool { return s == want }); !ok {
			t.Errorf("%d typing: the indicator shows %q after %s, want %q", n+1, got, took.Round(time.Millisecond), want)
		}
	}
}

// TestReceiptsFlushedAtShutdown: a group's read receipt still waiting for its coalescing
// interval when its process stops is published as the process shuts down, and reaches a
// member's stream on another process.
func TestReceiptsFlushedAtShutdown(t *testing.T) {
	redisURL := redistest.URL(t)
	a := startServer(t, "REDIS_URL="+redisURL, "MESSENGER_RECEIPT_COALESCE=1m")
	b := startServerOn(t, a, "REDIS_URL="+redisURL)
	org := "org-receipts-stop-" + deliveryNonce()
	x := newUser(t, "rs-x", "하지후", org, "teacher")
	y := newUser(t, "rs-y", "차서윤", org, "parent")
	z := newUser(t, "rs-z", "봉민재", org, "parent")
	for _, u := range []testUser{y, z} {
		b.api(u).me()
	}
	conv := b.api(x).createConversation("group", "종료 전 읽음", y.Sub, z.Sub)
	msg := b.api(x).mustSend(conv.ID, "내일 봬요", uuid.NewString())
	xStream := b.newSSEClient(x) // on B
	xStream.StartAndWait(10 * time.Second)
	heard := func(u testUser, within time.Duration) int64 {
		deadline := time.Now().Add(within)
		for {
			seq, _ := watermarkHeard(xStream, conv.ID, u.Sub)
			if seq > 0 || time.Now().After(deadline) {
				return seq
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	mustMarkRead(t, a.api(y), conv.ID, msg.Seq) // the group's first rise: at once
	if seq := heard(y, 5*time.Second); seq != msg.Seq {
		t.Fatalf("X's stream on B heard Y's watermark %d, want %d at once", seq, msg.Seq)
	}
	mustMarkRead(t, a.api(z), conv.ID, msg.Seq) // the next: held for the interval, a minute
	if seq := heard(z, 500*time.Millisecond); seq != 0 {
		t.Fatalf("X's stream heard Z's watermark %d before A stopped: not held for the interval", seq)
	}
	stopped := time.Now()
	a.Stop()
	if seq := heard(z, 5*time.Second); seq != msg.Seq {
		t.Errorf("X's stream on B heard Z's watermark %d after A stopped, want %d: the pending batch was lost", seq, msg.Seq)
	} else {
		t.Logf("X's stream on B heard Z's read %s after A was told to stop", time.Since(stopped).Round(time.Millisecond))
	}
	if p := xStream.Problems(); len(p) > 0 {
		t.Errorf("X's stream: protocol problems: %v", p)
	}
	for _, s := range []*server{a, b} {
		for _, line := range s.logLines("ERROR") {
			t.Errorf("server %s logged an error: %s", s.Addr, line)
		}
	}
}
