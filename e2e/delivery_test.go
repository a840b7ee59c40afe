package e2e

// Delivery tests: what clients of the JSON API and its SSE stream observe when many send
// at once, when they send the same thing twice, when they reconnect, when the server runs
// as two processes, and when they are not allowed to see a conversation.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/lib/pq"
)

func deliveryNonce() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// startClients starts the SSE clients together and waits until every stream is open.
func startClients(t *testing.T, clients []*sseClient, timeout time.Duration) {
	t.Helper()
	for _, c := range clients {
		c.Start()
	}
	deadline := time.Now().Add(timeout)
	for _, c := range clients {
		if !c.waitUntil(time.Until(deadline), func() bool { return c.opened > 0 }) {
			t.Fatalf("the SSE stream of %s did not open within %s; problems %v, disconnects %v",
				c.user.Sub, timeout, c.Problems(), firstN(c.Disconnects(), 3))
		}
	}
}

// TestOrderingExactlyOnce: a hundred members of one group send ten messages each, all at
// once. Every member's stream (plus the catch-up a resync asks for) yields seq 1..N exactly
// once and in increasing order, and the database holds exactly N messages.
func TestOrderingExactlyOnce(t *testing.T) {
	const members, perMember = 100, 10
	s := startServer(t)
	org := "org-order-" + deliveryNonce()

	users := make([]testUser, members)
	clients := make([]*sseClient, members)
	for i := range users {
		users[i] = newUser(t, fmt.Sprintf("order-%03d", i+1), fmt.Sprintf("학생 %03d", i+1), org, "student")
		clients[i] = s.newSSEClient(users[i])
		clients[i].keepEvents = false
	}
	users[0].Role = "teacher"
	start := time.Now()
	// Opening a stream signs the user in, so the group can name them afterwards.
	startClients(t, clients, 60*time.Second)
	t.Logf("%d streams open after %s", members, time.Since(start).Round(time.Millisecond))

	var subs []string
	for _, u := range users[1:] {
		subs = append(subs, u.Sub)
	}
	owner := s.api(users[0])
	conv := owner.createConversation("group", "순서 시험", subs...)
	if len(conv.Participants) != members {
		t.Fatalf("the group has %d participants, want %d", len(conv.Participants), members)
	}
	for _, c := range clients {
		c.Track(conv.ID)
	}
	before := owner.conversation(conv.ID).LastSeq
	t.Logf("group %d created with last_seq %d", conv.ID, before)

	// Everybody sends at once: ten messages each, one after another.
	// A send that gets no answer is sent again with the same client_msg_id, as a client
	// does; 200 is then the expected answer if the first attempt was stored after all.
	sendStart := time.Now()
	type result struct {
		sender   string
		status   int
		msg      apiMessage
		err      error
		attempts int
	}
	results := make(chan result, members*perMember)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for _, u := range users {
		api := s.api(u)
		wg.Go(func() {
			<-gate
			for j := range perMember {
				key, body := uuid.NewString(), fmt.Sprintf("%s의 %d번째 메시지", u.Name, j+1)
				r := result{sender: u.Sub}
				for r.attempts < 3 {
					r.attempts++
					ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
					r.status, r.msg, r.err = api.send(ctx, conv.ID, body, key)
					cancel()
					if r.err == nil || (r.status >= 400 && r.status < 500) {
						break
					}
				}
				results <- r
			}
		})
	}
	close(gate)
	wg.Wait()
	close(results)
	sendTime := time.Since(sendStart)

	created, retried := 0, 0
	seqs := map[int64]string{}
	var failures []string
	for r := range results {
		if r.attempts > 1 {
			retried++
		}
		ok := r.err == nil && (r.status == http.StatusCreated || r.status == http.StatusOK && r.attempts > 1)
		if !ok {
			failures = append(failures, fmt.Sprintf("%s: %d %v (attempt %d)", r.sender, r.status, r.err, r.attempts))
			continue
		}
		created++
		if prev, dup := seqs[r.msg.Seq]; dup {
			t.Errorf("seq %d was answered to two sends (%s and %s)", r.msg.Seq, prev, r.sender)
		}
		seqs[r.msg.Seq] = r.sender
	}
	if len(failures) > 0 {
		t.Errorf("%d of %d sends failed, e.g. %v", len(failures), members*perMember, firstN(failures, 5))
	}
	t.Logf("%d messages sent by %d members in %s (%.0f/s); %d sends needed another attempt", created, members,
		sendTime.Round(time.Millisecond), float64(created)/sendTime.Seconds(), retried)

	n := owner.conversation(conv.ID).LastSeq
	if n != before+int64(created) {
		t.Errorf("last_seq is %d after %d created messages on top of %d", n, created, before)
	}

	// Every stream gets everything: wait for all of them on one deadline.
	deadline := time.Now().Add(45 * time.Second)
	for _, c := range clients {
		c.WaitSeqs(conv.ID, n, time.Until(deadline))
	}
	t.Logf("all streams checked %s after the last send", time.Since(sendStart.Add(sendTime)).Round(time.Millisecond))

	// The database: exactly N messages with seqs 1..N, by history paging and by SQL.
	hist, err := owner.history(context.Background(), conv.ID, 0)
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	if int64(len(hist)) != n {
		t.Errorf("history pages hold %d messages, want %d", len(hist), n)
	}
	bySeq := map[int64]apiMessage{}
	for i, m := range hist {
		if m.Seq != int64(i+1) {
			t.Errorf("history message %d has seq %d", i, m.Seq)
			break
		}
		bySeq[m.Seq] = m
	}
	db, err := sql.Open("postgres", s.env("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var count, distinctSeq, distinctClient, minSeq, maxSeq int64
	if err := db.QueryRow(`SELECT count(*), count(DISTINCT seq), count(DISTINCT client_msg_id), coalesce(min(seq), 0), coalesce(max(seq), 0)
	                         FROM messages WHERE conversation_id = $1`, conv.ID).
		Scan(&count, &distinctSeq, &distinctClient, &minSeq, &maxSeq); err != nil {
		t.Fatalf("count messages: %v", err)
	}
	if count != n || distinctSeq != n || minSeq != 1 || maxSeq != n {
		t.Errorf("database: %d messages, %d distinct seqs, seqs %d..%d; want %d, %d, 1..%d", count, distinctSeq, minSeq, maxSeq, n, n, n)
	}
	if distinctClient != int64(created) {
		t.Errorf("database: %d distinct client_msg_ids, want %d", distinctClient, created)
	}

	// What each member observed.
	outOfOrder, fetched, resyncs, reconnects, incomplete := 0, 0, 0, 0, 0
	wrongContent, withIssues := 0, 0
	for _, c := range clients {
		issues, ooo := c.exactlyOnceIssues(conv.ID, n)
		outOfOrder += ooo
		if len(issues) > 0 {
			withIssues++
			if withIssues <= 5 {
				t.Errorf("%s: %s", c.user.Sub, strings.Join(issues, "; "))
			}
		}
		snap := c.Conv(conv.ID)
		if int64(len(snap.Messages)) < n {
			incomplete++
		}
		fetched += snap.Fetched
		for seq, m := range snap.Messages {
			if h, ok := bySeq[seq]; ok && (h.ID != m.ID || h.Body != m.Body) {
				wrongContent++
			}
		}
		opened, rs, _ := c.Stats()
		resyncs += rs
		reconnects += opened - 1
	}
	t.Logf("observed by %d members: %d out-of-order arrivals, %d incomplete, %d reconnects, %d resyncs, %d messages only from catch-up",
		members, outOfOrder, incomplete, reconnects, resyncs, fetched)
	if withIssues > 5 {
		t.Errorf("… and %d more members saw problems", withIssues-5)
	}
	if outOfOrder > 0 {
		t.Errorf("%d out-of-order arrivals in total across %d streams: the stream's order (event ids) is not seq order", outOfOrder, members)
	}
	if wrongContent > 0 {
		t.Errorf("%d received messages differ from the stored ones (id or body)", wrongContent)
	}
	// Requests the test gave up on are logged as errors by the server; those are the
	// client's doing, anything else is not.
	var serverErrors, abandoned []string
	for _, line := range s.logLines("ERROR") {
		if strings.Contains(line, "context canceled") || strings.Contains(line, "(57014)") {
			abandoned = append(abandoned, line)
		} else {
			serverErrors = append(serverErrors, line)
		}
	}
	if len(abandoned) > 0 {
		t.Logf("the server logged %d requests the client abandoned as internal errors, e.g. %v", len(abandoned), firstN(abandoned, 2))
	}
	if len(serverErrors) > 0 {
		t.Errorf("the server logged %d errors, e.g. %v", len(serverErrors), firstN(serverErrors, 3))
	}
}

// TestIdempotentSend: a client_msg_id stores one message however often and however
// concurrently it is sent, and bad input stores nothing.
func TestIdempotentSend(t *testing.T) {
	s := startServer(t)
	org := "org-idem-" + deliveryNonce()
	alice := newUser(t, "idem-alice", "김민지", org, "teacher")
	bob := newUser(t, "idem-bob", "이준호", org, "student")
	carl := newUser(t, "idem-carl", "박서연", org, "student")
	a := s.api(alice)
	for _, u := range []testUser{bob, carl} {
		s.api(u).me()
	}
	conv := a.createConversation("direct", "", bob.Sub)
	other := a.createConversation("direct", "", carl.Sub)

	bobStream := s.liveStream(bob, conv.ID)

	// The same id twice, one after the other: 201, then 200 with the same message.
	key1 := uuid.NewString()
	st1, m1, err := a.send(context.Background(), conv.ID, "첫 번째", key1)
	if err != nil || st1 != http.StatusCreated {
		t.Fatalf("first send: %d %v", st1, err)
	}
	st2, m2, err := a.send(context.Background(), conv.ID, "첫 번째 (다시)", key1)
	if err != nil || st2 != http.StatusOK {
		t.Fatalf("second send with the same client_msg_id: %d %v, want 200", st2, err)
	}
	if m2.ID != m1.ID || m2.Seq != m1.Seq || m2.Body != m1.Body || m2.ClientMsgID == nil || *m2.ClientMsgID != key1 {
		t.Errorf("the repeated send answered %+v, want the stored %+v", m2, m1)
	}
	// The same UUID spelled in capitals is the same id.
	st3, m3, err := a.send(context.Background(), conv.ID, "첫 번째 (대문자)", strings.ToUpper(key1))
	if err != nil || st3 != http.StatusOK || m3.ID != m1.ID {
		t.Errorf("the same client_msg_id in capitals: %d %v, message %d; want 200 with message %d", st3, err, m3.ID, m1.ID)
	}

	// Twenty at once with one id: one row, one 201, every answer the same message.
	key2 := uuid.NewString()
	const concurrent = 20
	type answer struct {
		status int
		msg    apiMessage
		err    error
	}
	answers := make([]answer, concurrent)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range concurrent {
		wg.Go(func() {
			<-gate
			st, m, err := a.send(context.Background(), conv.ID, fmt.Sprintf("동시에 %d", i), key2)
			answers[i] = answer{st, m, err}
		})
	}
	close(gate)
	wg.Wait()
	created := 0
	ids := map[int64]int{}
	for i, an := range answers {
		switch {
		case an.err != nil:
			t.Errorf("concurrent send %d: %v", i, an.err)
			continue
		case an.status == http.StatusCreated:
			created++
		case an.status != http.StatusOK:
			t.Errorf("concurrent send %d: status %d", i, an.status)
		}
		ids[an.msg.ID]++
	}
	if created != 1 || len(ids) != 1 {
		t.Errorf("%d concurrent sends with one client_msg_id: %d answered 201 (want 1), message ids %v (want one)", concurrent, created, ids)
	}

	hist, err := a.history(context.Background(), conv.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, m := range hist {
		if m.ClientMsgID != nil && *m.ClientMsgID == key2 {
			rows++
		}
	}
	if rows != 1 || len(hist) != 2 {
		t.Errorf("history: %d messages with the concurrent client_msg_id (want 1), %d messages in all (want 2)", rows, len(hist))
	}

	// Bob's stream carries each message once.
	lastSeq := a.conversation(conv.ID).LastSeq
	if !bobStream.WaitSeqs(conv.ID, lastSeq, 5*time.Second) {
		t.Errorf("bob's stream did not get seqs 1..%d", lastSeq)
	}
	time.Sleep(500 * time.Millisecond) // let any duplicate arrive
	perKey := map[string]int{}
	for _, ev := range bobStream.Events() {
		if ev.Type != "message.new" {
			continue
		}
		var m apiMessage
		json.Unmarshal([]byte(ev.Data), &m)
		if m.ClientMsgID != nil {
			perKey[*m.ClientMsgID]++
		}
	}
	if perKey[key1] != 1 || perKey[key2] != 1 {
		t.Errorf("message.new events on bob's stream: %d for the repeated id, %d for the concurrent id; want 1 and 1", perKey[key1], perKey[key2])
	}
	bobStream.checkExactlyOnce(t, conv.ID, lastSeq)

	// The same id in another conversation is a conflict, not that conversation's message.
	st, out, _ := a.raw(context.Background(), http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/messages", other.ID), "",
		map[string]any{"body": "다른 대화", "client_msg_id": key1})
	wantAPIError(t, "same client_msg_id in another conversation", st, out, http.StatusConflict, "conflict")

	// Bad input: the JSON error shape, and nothing stored. Every bad request carries the
	// same fresh id; sending it properly afterwards must create the message.
	keyBad := uuid.NewString()
	path := fmt.Sprintf("/api/v1/conversations/%d/messages", conv.ID)
	valid := func(body string) string {
		b, _ := json.Marshal(map[string]any{"body": body, "client_msg_id": keyBad})
		return string(b)
	}
	cases := []struct {
		name        string
		contentType string
		body        string
		status      int
		code        string
	}{
		{"malformed client_msg_id", "application/json", `{"body": "안녕", "client_msg_id": "not-a-uuid"}`, 400, "invalid"},
		{"malformed JSON", "application/json", `{"body": "안녕", "client_msg_id": "` + keyBad + `"`, 400, "invalid"},
		{"body of the wrong type", "application/json", `{"body": 42, "client_msg_id": "` + keyBad + `"}`, 400, "invalid"},
		{"client_msg_id of the wrong type", "application/json", `{"body": "안녕", "client_msg_id": 7}`, 400, "invalid"},
		{"an array", "application/json", `["안녕"]`, 400, "invalid"},
		{"trailing data", "application/json", valid("안녕") + `{}`, 400, "invalid"},
		{"empty body", "application/json", ``, 400, "invalid"},
		{"oversized body", "application/json", valid(strings.Repeat("가", 70<<10/3+100)), 413, "too_large"},
		{"text/plain", "text/plain", valid("안녕"), 415, "unsupported"},
		{"form content type", "application/x-www-form-urlencoded", valid("안녕"), 415, "unsupported"},
		{"no content type", "", valid("안녕"), 415, "unsupported"},
		{"4,001 characters", "application/json", valid(strings.Repeat("가", 4001)), 400, "invalid"},
		{"4,001 ASCII characters", "application/json", valid(strings.Repeat("a", 4001)), 400, "invalid"},
		{"whitespace only", "application/json", valid(" \n\t \r\n "), 400, "invalid"},
		{"empty message", "application/json", valid(""), 400, "invalid"},
		{"NUL character", "application/json", valid("a\x00b"), 400, "invalid"},
	}
	for _, tc := range cases {
		st, out, err := a.raw(context.Background(), http.MethodPost, path, tc.contentType, tc.body)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		wantAPIError(t, tc.name, st, out, tc.status, tc.code)
	}
	if got := a.conversation(conv.ID).LastSeq; got != lastSeq {
		t.Errorf("last_seq moved from %d to %d through rejected sends", lastSeq, got)
	}
	// 4,000 characters is the limit, not beyond it; the id of the rejected sends is free.
	st, m, err := a.send(context.Background(), conv.ID, strings.Repeat("가", 4000), keyBad)
	if err != nil || st != http.StatusCreated || m.Seq != lastSeq+1 {
		t.Errorf("4,000 characters with the id of the rejected sends: %d %v seq %d; want 201 with seq %d", st, err, m.Seq, lastSeq+1)
	}
	if !bobStream.WaitSeqs(conv.ID, lastSeq+1, 5*time.Second) {
		t.Errorf("bob's stream did not get seq %d", lastSeq+1)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(bobStream.Conv(conv.ID).Arrival); n != int(lastSeq+1) {
		t.Errorf("bob got %d messages, want %d", n, lastSeq+1)
	}
	bobStream.checkExactlyOnce(t, conv.ID, lastSeq+1)
}

// TestReconnectResume: a client that reconnects with its last event id gets what it missed
// exactly once: from the server's history while the process lives, after a resync and a
// catch-up once it has restarted.
func TestReconnectResume(t *testing.T) {
	s := startServer(t)
	org := "org-resume-" + deliveryNonce()
	alice := newUser(t, "resume-alice", "최유나", org, "teacher")
	bob := newUser(t, "resume-bob", "정하준", org, "student")
	conv := s.api(alice).directWith(s.api(bob))

	c := s.liveStream(bob, conv.ID)
	a := s.api(alice)
	for i := range 3 {
		a.mustSend(conv.ID, fmt.Sprintf("연결 중 %d", i+1), uuid.NewString())
	}
	if !c.WaitSeqs(conv.ID, 3, 5*time.Second) {
		t.Fatalf("the connected client did not get seqs 1..3: %v", c.Conv(conv.ID).Arrival)
	}
	c.Stop()
	lastID := c.LastID()
	t.Logf("disconnected with Last-Event-ID %q", lastID)
	if lastID == "" {
		t.Fatal("no event id to resume from")
	}

	for i := range 20 {
		a.mustSend(conv.ID, fmt.Sprintf("끊긴 동안 %d", i+1), uuid.NewString())
	}
	c.StartAndWait(10 * time.Second)
	if !c.WaitSeqs(conv.ID, 23, 10*time.Second) {
		t.Errorf("after reconnecting the client has %v, want 1..23", c.Conv(conv.ID).Arrival)
	}
	time.Sleep(300 * time.Millisecond)
	opened, resyncs, _ := c.Stats()
	snap := c.Conv(conv.ID)
	if resyncs != 0 || snap.Fetched != 0 {
		t.Errorf("resuming within the process needed %d resyncs and %d fetched messages; want replay only", resyncs, snap.Fetched)
	}
	replayed := 0
	for _, ev := range c.Events() {
		if ev.Type == "message.new" && ev.Conn == opened {
			replayed++
		}
	}
	if replayed != 20 {
		t.Errorf("the second connection carried %d message.new events, want the 20 missed", replayed)
	}
	c.checkExactlyOnce(t, conv.ID, 23)

	// The same across a restart: the new process has no memory of the old one's events.
	c.Stop()
	lastID = c.LastID()
	s.Stop()
	s2 := startServerOn(t, s)
	a2 := s2.api(alice)
	for i := range 20 {
		a2.mustSend(conv.ID, fmt.Sprintf("재시작 후 %d", i+1), uuid.NewString())
	}
	c.SetBase(s2.URL)
	c.StartAndWait(10 * time.Second)
	if !c.WaitSeqs(conv.ID, 43, 10*time.Second) {
		t.Errorf("after the restart the client has %v, want 1..43", c.Conv(conv.ID).Arrival)
	}
	time.Sleep(300 * time.Millisecond)
	_, resyncs2, _ := c.Stats()
	snap = c.Conv(conv.ID)
	if resyncs2-resyncs != 1 {
		t.Errorf("reconnecting to the restarted process with %q gave %d resyncs, want 1", lastID, resyncs2-resyncs)
	}
	if snap.Fetched != 20 {
		t.Errorf("%d messages came from the catch-up after the restart, want 20", snap.Fetched)
	}
	c.checkExactlyOnce(t, conv.ID, 43)
	for _, ev := range c.Events() {
		if ev.Type == "resync" && ev.ID == "" {
			t.Errorf("the resync event has no id")
		}
	}

	// The resync's id is a position: away again right after it, the client resumes from
	// there with no second resync and no catch-up.
	c.Stop()
	for i := range 5 {
		a2.mustSend(conv.ID, fmt.Sprintf("다시 끊긴 뒤 %d", i+1), uuid.NewString())
	}
	c.StartAndWait(10 * time.Second)
	if !c.WaitSeqs(conv.ID, 48, 10*time.Second) {
		t.Errorf("after the resync and another drop the client has %v, want 1..48", c.Conv(conv.ID).Arrival)
	}
	_, resyncs3, _ := c.Stats()
	if resyncs3 != resyncs2 || c.Conv(conv.ID).Fetched != 20 {
		t.Errorf("resuming from the resync's id needed %d more resyncs and %d more fetched messages; want replay only",
			resyncs3-resyncs2, c.Conv(conv.ID).Fetched-20)
	}
	c.checkExactlyOnce(t, conv.ID, 48)
}

// TestTwoProcesses: two processes on one database and one Redis are one messenger: a user
// connected to one receives, promptly and once, what is sent through the other.
func TestTwoProcesses(t *testing.T) {
	a, b := twoServers(t)
	org := "org-two-" + deliveryNonce()
	u1 := newUser(t, "two-u1", "한지우", org, "teacher")
	u2 := newUser(t, "two-u2", "오세훈", org, "student")
	conv := a.api(u1).directWith(b.api(u2))

	onA := a.newSSEClient(u1)
	onB := b.newSSEClient(u2)
	for _, c := range []*sseClient{onA, onB} {
		c.Track(conv.ID)
		c.StartAndWait(10 * time.Second)
	}

	const total = 50
	senders := []*apiClient{a.api(u1), b.api(u2)}
	sentAt := map[int64]time.Time{}
	via := map[int64]string{}
	for i := range total {
		api := senders[i%2]
		at := time.Now()
		m := api.mustSend(conv.ID, fmt.Sprintf("%d번 (%s)", i+1, api.user.Sub), uuid.NewString())
		sentAt[m.Seq] = at
		via[m.Seq] = []string{"A", "B"}[i%2]
	}
	n := a.api(u1).conversation(conv.ID).LastSeq
	if n != total {
		t.Errorf("last_seq %d after %d messages", n, total)
	}
	for _, c := range []*sseClient{onA, onB} {
		if !c.WaitSeqs(conv.ID, n, 5*time.Second) {
			t.Errorf("%s has %v, want 1..%d", c.user.Sub, c.Conv(conv.ID).Arrival, n)
		}
	}
	time.Sleep(300 * time.Millisecond)
	for _, pair := range []struct {
		c     *sseClient
		other string // the process the client is not connected to
	}{{onA, "B"}, {onB, "A"}} {
		pair.c.checkExactlyOnce(t, conv.ID, n)
		snap := pair.c.Conv(conv.ID)
		if snap.Fetched > 0 {
			t.Errorf("%s needed catch-up for %d messages", pair.c.user.Sub, snap.Fetched)
		}
		var worst time.Duration
		late := 0
		for seq, at := range snap.FirstAt {
			if via[seq] != pair.other {
				continue
			}
			d := at.Sub(sentAt[seq])
			worst = max(worst, d)
			if d > 2*time.Second {
				late++
			}
		}
		if late > 0 {
			t.Errorf("%s: %d messages sent through process %s arrived after more than 2 s (worst %s)", pair.c.user.Sub, late, pair.other, worst)
		}
		t.Logf("%s: worst latency of messages sent through process %s: %s", pair.c.user.Sub, pair.other, worst.Round(time.Microsecond))
	}

	// The history lives in Redis: a client of A resumes on B without a resync.
	onA.Stop()
	for i := range 5 {
		senders[1].mustSend(conv.ID, fmt.Sprintf("A가 끊긴 동안 %d", i+1), uuid.NewString())
	}
	_, resyncsBefore, _ := onA.Stats()
	onA.SetBase(b.URL)
	onA.StartAndWait(10 * time.Second)
	if !onA.WaitSeqs(conv.ID, n+5, 5*time.Second) {
		t.Errorf("resuming on the other process: %s has %v, want 1..%d", u1.Sub, onA.Conv(conv.ID).Arrival, n+5)
	}
	time.Sleep(300 * time.Millisecond)
	if _, resyncs, _ := onA.Stats(); resyncs != resyncsBefore || onA.Conv(conv.ID).Fetched != 0 {
		t.Errorf("resuming on the other process needed a resync (%d) or a catch-up (%d messages); the shared history should have answered",
			resyncs-resyncsBefore, onA.Conv(conv.ID).Fetched)
	}
	onA.checkExactlyOnce(t, conv.ID, n+5)
}

// TestAuthorization404: whoever is not a member of a conversation (another organization's
// user, a colleague outside it, a member who left) gets 404 from every route of it and no
// event of it.
func TestAuthorization404(t *testing.T) {
	s := startServer(t)
	n := deliveryNonce()
	orgA, orgB := "org-auth-a-"+n, "org-auth-b-"+n
	alice := newUser(t, "auth-alice", "윤서아", orgA, "teacher")
	bob := newUser(t, "auth-bob", "장도윤", orgA, "student")
	carol := newUser(t, "auth-carol", "임하은", orgA, "student") // same organization, not a member
	mallory := newUser(t, "auth-mallory", "강태오", orgB, "teacher")
	for _, u := range []testUser{bob, carol, mallory} {
		s.api(u).me()
	}
	a := s.api(alice)
	conv := a.createConversation("group", "3학년 1반 선생님", bob.Sub)
	a.mustSend(conv.ID, "첫 메시지", uuid.NewString())

	// A member sees it (the routes under test exist and work).
	web := map[string]*webSession{}
	for _, u := range []testUser{bob, carol, mallory} {
		web[u.Sub] = s.signInPortal(u)
	}
	if st, _, _ := web[bob.Sub].request(http.MethodGet, fmt.Sprintf("/c/%d", conv.ID), nil); st != http.StatusOK {
		t.Fatalf("member GET /c/%d: %d", conv.ID, st)
	}
	if st, _ := s.api(bob).do(http.MethodGet, fmt.Sprintf("/api/v1/conversations/%d/messages", conv.ID), nil); st != http.StatusOK {
		t.Fatalf("member GET messages: %d", st)
	}
	// The session and CSRF token work: a member's form post is a 303 to the thread.
	if st, body, _ := web[bob.Sub].request(http.MethodPost, fmt.Sprintf("/c/%d/messages", conv.ID),
		url.Values{"body": {"폼으로 보냄"}, "client_msg_id": {uuid.NewString()}}); st != http.StatusSeeOther {
		t.Fatalf("member POST /c/%d/messages: %d %.300s", conv.ID, st, body)
	}

	// Outsiders' streams, open while the members talk.
	streams := map[string]*sseClient{}
	for _, u := range []testUser{bob, carol, mallory} {
		streams[u.Sub] = s.newSSEClient(u)
		streams[u.Sub].StartAndWait(10 * time.Second)
	}

	checkOutsider := func(u testUser, phase string) {
		t.Helper()
		api := s.api(u)
		id := conv.ID
		apiCalls := []struct {
			method, path string
			body         any
		}{
			{http.MethodGet, fmt.Sprintf("/api/v1/conversations/%d", id), nil},
			{http.MethodDelete, fmt.Sprintf("/api/v1/conversations/%d", id), nil},
			{http.MethodGet, fmt.Sprintf("/api/v1/conversations/%d/messages", id), nil},
			{http.MethodGet, fmt.Sprintf("/api/v1/conversations/%d/messages?after_seq=0", id), nil},
			{http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/messages", id), map[string]any{"body": "몰래", "client_msg_id": uuid.NewString()}},
		}
		for _, call := range apiCalls {
			st, out := api.do(call.method, call.path, call.body)
			wantAPIError(t, fmt.Sprintf("%s (%s): %s %s", u.Sub, phase, call.method, call.path), st, out, http.StatusNotFound, "not_found")
		}
		// A conversation that does not exist answers the same: no existence oracle.
		_, inside := api.do(http.MethodGet, fmt.Sprintf("/api/v1/conversations/%d", id), nil)
		_, nowhere := api.do(http.MethodGet, "/api/v1/conversations/987654321", nil)
		if string(inside) != string(nowhere) {
			t.Errorf("%s (%s): a foreign conversation answers %s, a missing one %s", u.Sub, phase, inside, nowhere)
		}

		w := web[u.Sub]
		pages := []struct {
			method, path string
			form         url.Values
		}{
			{http.MethodGet, fmt.Sprintf("/c/%d", id), nil},
			{http.MethodGet, fmt.Sprintf("/c/%d/messages", id), nil},
			{http.MethodGet, fmt.Sprintf("/c/%d/messages?after_seq=0", id), nil},
			{http.MethodPost, fmt.Sprintf("/c/%d/messages", id), url.Values{"body": {"몰래"}, "client_msg_id": {uuid.NewString()}}},
			{http.MethodPost, fmt.Sprintf("/c/%d/leave", id), url.Values{}},
		}
		for _, p := range pages {
			what := fmt.Sprintf("%s (%s): %s %s", u.Sub, phase, p.method, p.path)
			st, body, _ := w.request(p.method, p.path, p.form)
			if st != http.StatusNotFound {
				t.Errorf("%s: status %d, want 404", what, st)
			}
			if strings.Contains(body, "첫 메시지") || strings.Contains(body, "3학년 1반") {
				t.Errorf("%s: the answer shows the conversation", what)
			}
			st, body, _ = w.request(p.method, p.path, p.form, "Accept: application/json")
			wantAPIError(t, what+" (Accept: application/json)", st, []byte(body), http.StatusNotFound, "not_found")
			st, _, _ = w.request(p.method, p.path, p.form, "HX-Request: true")
			if st != http.StatusNotFound {
				t.Errorf("%s (htmx): status %d, want 404", what, st)
			}
		}
	}
	checkOutsider(carol, "non-member")
	checkOutsider(mallory, "other organization")

	// The members talk; the outsiders' streams hear nothing of it.
	b := s.api(bob)
	for i := range 5 {
		sender := []*apiClient{a, b}[i%2]
		sender.mustSend(conv.ID, fmt.Sprintf("우리끼리 %d", i+1), uuid.NewString())
	}
	lastSeq := a.conversation(conv.ID).LastSeq
	if lastSeq != 7 {
		t.Errorf("last_seq %d, want 7: the outsiders' sends stored something", lastSeq)
	}
	bobStream := streams[bob.Sub]
	if !bobStream.waitUntil(5*time.Second, func() bool { l := bobStream.convs[conv.ID]; return l != nil && len(l.arrival) >= 5 }) {
		t.Errorf("bob's stream did not get the 5 messages")
	}
	time.Sleep(2 * time.Second)
	for _, u := range []testUser{carol, mallory} {
		if evs := eventsOf(streams[u.Sub].Events(), conv.ID); len(evs) > 0 {
			t.Errorf("%s's stream received %d events of a conversation they are not in, e.g. %+v", u.Sub, len(evs), evs[0])
		}
	}

	// Bob leaves; from then on he is an outsider too.
	st, out := b.do(http.MethodDelete, fmt.Sprintf("/api/v1/conversations/%d", conv.ID), nil)
	if st != http.StatusNoContent {
		t.Fatalf("bob leaves: %d %s", st, out)
	}
	time.Sleep(300 * time.Millisecond)
	beforeLeave := len(eventsOf(streams[bob.Sub].Events(), conv.ID))
	checkOutsider(bob, "after leaving")
	for i := range 5 {
		a.mustSend(conv.ID, fmt.Sprintf("나간 뒤 %d", i+1), uuid.NewString())
	}
	time.Sleep(2 * time.Second)
	after := eventsOf(streams[bob.Sub].Events(), conv.ID)[beforeLeave:]
	if len(after) > 0 {
		t.Errorf("bob's stream received %d events of the conversation after he left, e.g. %+v", len(after), after[0])
	}
	for _, u := range []testUser{carol, mallory} {
		if evs := eventsOf(streams[u.Sub].Events(), conv.ID); len(evs) > 0 {
			t.Errorf("%s's stream received %d events of a conversation they are not in, e.g. %+v", u.Sub, len(evs), evs[0])
		}
	}
	for _, c := range streams {
		if p := c.Problems(); len(p) > 0 {
			t.Errorf("%s: protocol problems: %v", c.user.Sub, p)
		}
	}
}

// eventsOf answers the events whose JSON data names conversation id.
func eventsOf(events []sseEvent, id int64) []sseEvent {
	var out []sseEvent
	for _, ev := range events {
		var d struct {
			ConversationID int64 `json:"conversation_id"`
			ID             int64 `json:"id"`
		}
		if json.Unmarshal([]byte(ev.Data), &d) != nil {
			continue
		}
		if d.ConversationID == id || (ev.Type == "conversation.updated" && d.ID == id) {
			out = append(out, ev)
		}
	}
	return slices.Clip(out)
}
