package chat_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// sendCall is one SendMessage and what it answered.
type sendCall struct {
	me       messenger.User
	body, id string
	msg      messenger.Message
	created  bool
	err      error
}

// sendAll runs the calls at once, each in its own goroutine, while svc's lock of convID
// is held, and lets the lock go once queued of them wait in the conversation's queue: the
// queued ones are stored by one holder of the lock, as one batch.
func sendAll(t *testing.T, svc *chat.Service, convID int64, calls []*sendCall, queued int) {
	t.Helper()
	release := svc.HoldConversation(convID)
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Go(func() {
			c.msg, c.created, c.err = svc.SendMessage(context.Background(), c.me, convID, c.body, c.id)
		})
	}
	eventuallyTB(t, fmt.Sprintf("%d sends waiting", queued), func() bool { return svc.WaitingSends(convID) == queued })
	release()
	wg.Wait()
}

// received reads a subscription's message.new events until n came or a second passed
// without one, and answers them in the order they came.
func received(t *testing.T, sub *realtime.Subscription, n int) []messenger.APIMessage {
	t.Helper()
	return heard[messenger.APIMessage](t, sub, chat.EventMessageNew, n)
}

// heard reads a subscription's events of type typ until n came or a second passed without
// one, and answers their data in the order they came.
func heard[T any](t *testing.T, sub *realtime.Subscription, typ string, n int) []T {
	t.Helper()
	var got []T
	for {
		wait := time.Second
		if len(got) >= n {
			wait = 200 * time.Millisecond // anything more would be a duplicate
		}
		d, ok := within(sub, wait)
		if !ok {
			return got
		}
		if v, ok := eventOf[T](t, d, typ); ok {
			got = append(got, v)
		}
	}
}

// parents signs in n parents of one zone, and one more of the zone for an outsider.
func parents(t *testing.T, db *store.DB, prefix string, n int) (members []messenger.User, outsider messenger.User) {
	t.Helper()
	for i := range n {
		members = append(members, storetest.MustSignIn(t, db, fmt.Sprintf("%s%d", prefix, i), fmt.Sprintf("회원%d", i), "org-a", "zone-a", messenger.RoleParent))
	}
	return members, storetest.MustSignIn(t, db, "out", "외부인", "org-a", "zone-a", messenger.RoleParent)
}

// subscribeUsers subscribes to each user's channel, by user id.
func subscribeUsers(t *testing.T, engine realtime.Engine, users []messenger.User) map[int64]*realtime.Subscription {
	t.Helper()
	subs := map[int64]*realtime.Subscription{}
	for _, u := range users {
		sub, err := engine.Subscribe(context.Background(), chat.UserChannel(u.ID))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sub.Close)
		subs[u.ID] = sub
	}
	return subs
}

func errCode(err error) string {
	var e *messenger.Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return "internal: " + err.Error()
}

// TestGroupCommit: sends to one conversation that wait on each other are stored in one
// transaction, and each still gets its own answer: a new message its own seq, gapless and
// in the order published; a client_msg_id sent before, or twice at once, the one stored
// message; a non-member not found; an id used in another conversation a conflict; an
// empty body invalid — and none of these refusals sinks the others. Every member hears
// each new message once, in seq order.
func TestGroupCommit(t *testing.T) {
	e := newPushEnv(t, pushOpts{delay: time.Minute})
	ctx := context.Background()
	members, outsider := parents(t, e.db, "g", 8)
	conv := e.group(members[0], "반 모임", members[1:]...)
	other := e.group(members[0], "다른 모임", members[2])

	sentBefore := uuid.NewString()
	before, _, err := e.svc.SendMessage(ctx, members[1], conv, "먼저 보낸 메시지", sentBefore)
	if err != nil {
		t.Fatal(err)
	}
	usedElsewhere := uuid.NewString()
	if _, _, err := e.svc.SendMessage(ctx, members[2], other, "다른 곳", usedElsewhere); err != nil {
		t.Fatal(err)
	}
	subs := subscribeUsers(t, e.engine, members)

	var calls []*sendCall
	for i := range 24 {
		calls = append(calls, &sendCall{me: members[i%len(members)], body: fmt.Sprintf("메시지 %d", i), id: uuid.NewString()})
	}
	twin := uuid.NewString()
	twinA := &sendCall{me: members[3], body: "두 번 누른 전송", id: twin}
	twinB := &sendCall{me: members[3], body: "두 번 누른 전송", id: twin}
	again := &sendCall{me: members[1], body: "먼저 보낸 메시지", id: sentBefore}
	stranger := &sendCall{me: outsider, body: "들어갈 수 없는 사람", id: uuid.NewString()}
	empty := &sendCall{me: members[4], body: "   ", id: uuid.NewString()}
	conflict := &sendCall{me: members[2], body: "같은 아이디, 다른 대화", id: usedElsewhere}
	calls = append(calls, twinA, twinB, again, stranger, empty, conflict)
	batches, sends := histogram(t, e.reg, "messenger_send_batch_messages")
	sendAll(t, e.svc, conv, calls, len(calls)-1) // the empty body is refused before it queues
	// One transaction for all but the empty body and the second twin (answered as the first).
	if b, n := histogram(t, e.reg, "messenger_send_batch_messages"); b-batches != 1 || n-sends != float64(len(calls)-2) {
		t.Errorf("messenger_send_batch_messages: %d batches of %v sends, want 1 of %d", b-batches, n-sends, len(calls)-2)
	}

	if twinA.err != nil || twinB.err != nil || twinA.created == twinB.created || twinA.msg.ID != twinB.msg.ID || twinA.msg.ID == 0 {
		t.Errorf("the same id twice at once: %+v %v / %+v %v", twinA.msg, twinA.err, twinB.msg, twinB.err)
	}
	if again.err != nil || again.created || again.msg.ID != before.ID || again.msg.Seq != before.Seq {
		t.Errorf("an id sent before: %+v created %v, %v; want message %d", again.msg, again.created, again.err, before.ID)
	}
	if errCode(stranger.err) != messenger.ENOTFOUND {
		t.Errorf("a non-member: %v", stranger.err)
	}
	if errCode(empty.err) != messenger.EINVALID {
		t.Errorf("an empty body: %v", empty.err)
	}
	if errCode(conflict.err) != messenger.ECONFLICT {
		t.Errorf("an id used in another conversation: %v", conflict.err)
	}

	// The new messages: 24 and one of the twins, seqs gapless after the earlier message.
	var created []messenger.Message
	for _, c := range calls {
		if c.created {
			if c.err != nil || c.msg.Body != c.body || c.msg.ClientMsgID == nil || *c.msg.ClientMsgID != c.id ||
				c.msg.Sender.ID != c.me.ID || c.msg.ConversationID != conv {
				t.Errorf("created %+v, %v for %+v", c.msg, c.err, c)
			}
			created = append(created, c.msg)
		}
	}
	slices.SortFunc(created, func(a, b messenger.Message) int { return int(a.Seq - b.Seq) })
	if len(created) != 25 {
		t.Fatalf("%d messages created, want 25", len(created))
	}
	for i, m := range created {
		if m.Seq != before.Seq+1+int64(i) {
			t.Fatalf("seqs %v...: not gapless after %d", m.Seq, before.Seq)
		}
	}
	var stored, transactions int
	if err := e.owner.QueryRow(`SELECT count(*), count(DISTINCT xmin::text) FROM messages WHERE conversation_id = $1 AND seq > $2`,
		conv, before.Seq).Scan(&stored, &transactions); err != nil {
		t.Fatal(err)
	}
	if stored != 25 || transactions != 1 {
		t.Errorf("%d messages stored in %d transactions, want 25 in one", stored, transactions)
	}
	if n := e.count(`SELECT count(*) FROM read_receipts WHERE conversation_id = $1 AND user_id = $2 AND last_read_seq = $3`,
		conv, created[len(created)-1].Sender.ID, created[len(created)-1].Seq); n != 1 {
		t.Errorf("the last sender's watermark is not at their message")
	}

	// Each member hears each new message once, in seq order.
	for _, m := range members {
		got := received(t, subs[m.ID], len(created))
		if len(got) != len(created) {
			t.Errorf("member %d heard %d messages, want %d", m.ID, len(got), len(created))
			continue
		}
		for i, g := range got {
			if g.ID != created[i].ID || g.Seq != created[i].Seq || g.Body != created[i].Body {
				t.Errorf("member %d heard #%d %d/seq %d, want %d/seq %d", m.ID, i, g.ID, g.Seq, created[i].ID, created[i].Seq)
				break
			}
		}
	}
}

// TestGroupCommitSplit: a batch the database refuses as a whole (a teacher whose portal
// role changed since it was read is refused by the wall, not by the checks) is sent again
// one by one: only that send fails; the others are stored, announced and audited, and a
// student's announcement is refused by the checks without sinking anyone.
func TestGroupCommitSplit(t *testing.T) {
	e := newPushEnv(t, pushOpts{delay: time.Minute})
	ctx := context.Background()
	t1 := storetest.MustSignIn(t, e.db, "t1", "김선생", "org-a", "zone-n", messenger.RoleTeacher)
	t2 := storetest.MustSignIn(t, e.db, "t2", "이선생", "org-a", "zone-n", messenger.RoleTeacher)
	t3 := storetest.MustSignIn(t, e.db, "t3", "박선생", "org-a", "zone-n", messenger.RoleTeacher)
	s1 := storetest.MustSignIn(t, e.db, "s1", "최학생", "org-a", "zone-n", messenger.RoleStudent)
	var conv, last int64
	if err := e.db.InTx(ctx, t1.Identity(), func(tx *store.Tx) error {
		var err error
		conv, last, err = tx.ZoneAnnouncement(ctx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	zone, err := e.engine.Subscribe(ctx, chat.ZoneChannel(t1.ZoneID))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(zone.Close)
	e.exec(`UPDATE users SET role = 'parent' WHERE id = $1`, t2.ID) // the portal changed it; t2 still says teacher

	a := &sendCall{me: t1, body: "공지 1", id: uuid.NewString()}
	b := &sendCall{me: t2, body: "공지 2", id: uuid.NewString()}
	c := &sendCall{me: s1, body: "공지 3", id: uuid.NewString()}
	d := &sendCall{me: t3, body: "공지 4", id: uuid.NewString()}
	sendAll(t, e.svc, conv, []*sendCall{a, b, c, d}, 4)

	if errCode(b.err) != messenger.EFORBIDDEN || errCode(c.err) != messenger.EFORBIDDEN {
		t.Errorf("refused: %v, %v", b.err, c.err)
	}
	if !a.created || !d.created || a.err != nil || d.err != nil {
		t.Fatalf("stored: %+v %v, %+v %v", a.msg, a.err, d.msg, d.err)
	}
	if seqs := []int64{a.msg.Seq, d.msg.Seq}; slices.Min(seqs) != last+1 || slices.Max(seqs) != last+2 {
		t.Errorf("seqs %v after %d", seqs, last)
	}
	if n := e.count(`SELECT count(*) FROM audit_log WHERE conversation_id = $1 AND action = $2`, conv, messenger.AuditAnnouncement); n != 2 {
		t.Errorf("%d announcement audits, want 2", n)
	}
	if n := e.count(`SELECT count(*) FROM messages WHERE conversation_id = $1`, conv); n != int(last)+2 {
		t.Errorf("%d notices stored, want %d", n, last+2)
	}
	got := received(t, zone, 2)
	if len(got) != 2 || got[0].Seq != last+1 || got[1].Seq != last+2 {
		t.Errorf("the zone heard %+v", got)
	}
}

// TestSendOnceAcrossProcesses: two processes, each storing a batch, get the same
// client_msg_ids at once (a client retrying through another server): each id is stored
// once, both answers name that message, and the conversation's seqs stay gapless.
func TestSendOnceAcrossProcesses(t *testing.T) {
	dbA, d := storetest.NewDB(t)
	dbB, err := store.Open(context.Background(), d.AppDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dbB.Close() })
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	engine := realtime.NewMemory(256)
	t.Cleanup(func() { engine.Close() })
	svcA := chat.NewService(dbA, engine, logger, prometheus.NewRegistry(), nil)
	svcB := chat.NewService(dbB, engine, logger, prometheus.NewRegistry(), nil)
	var members []messenger.User
	for i := range 5 {
		members = append(members, storetest.MustSignIn(t, dbA, fmt.Sprintf("m%d", i), fmt.Sprintf("회원%d", i), "org-a", "zone-a", messenger.RoleParent))
	}
	var conv int64
	if err := dbA.InTx(context.Background(), members[0].Identity(), func(tx *store.Tx) error {
		ids := []int64{members[1].ID, members[2].ID, members[3].ID, members[4].ID}
		var err error
		conv, err = tx.CreateGroup(context.Background(), "두 서버", ids)
		return err
	}); err != nil {
		t.Fatal(err)
	}

	owner := storetest.Conn(t, d.OwnerDSN)

	ids := map[string]int64{} // client_msg_id → the message both processes answered
	for round := range 4 {
		var onA, onB []*sendCall
		for i, m := range members {
			id := uuid.NewString()
			body := fmt.Sprintf("라운드 %d, %d", round, i)
			onA = append(onA, &sendCall{me: m, body: body, id: id})
			onB = append(onB, &sendCall{me: m, body: body, id: id})
		}
		// Both batches pass their checks, finding none of the ids, then wait for the
		// conversation's row, which the test holds: whichever stores its batch second
		// meets the other's messages.
		held, err := owner.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := held.Exec(`SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE`, conv); err != nil {
			t.Fatal(err)
		}
		releaseA, releaseB := svcA.HoldConversation(conv), svcB.HoldConversation(conv)
		var wg sync.WaitGroup
		for _, c := range append(slices.Clone(onA), onB...) {
			svc := svcA
			if slices.Contains(onB, c) {
				svc = svcB
			}
			wg.Go(func() { c.msg, c.created, c.err = svc.SendMessage(context.Background(), c.me, conv, c.body, c.id) })
		}
		eventuallyTB(t, "both queues full", func() bool {
			return svcA.WaitingSends(conv) == len(onA) && svcB.WaitingSends(conv) == len(onB)
		})
		releaseA()
		releaseB()
		eventuallyTB(t, "both batches waiting for the conversation", func() bool {
			var n int
			err := owner.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			                          AND wait_event_type = 'Lock' AND query LIKE '%app_send_batch%'`).Scan(&n)
			return err == nil && n == 2
		})
		if err := held.Commit(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		for i := range onA {
			a, b := onA[i], onB[i]
			if a.err != nil || b.err != nil || a.created == b.created || a.msg.ID != b.msg.ID || a.msg.ID == 0 {
				t.Fatalf("round %d, %s: A %+v created %v %v; B %+v created %v %v", round, a.id, a.msg, a.created, a.err, b.msg, b.created, b.err)
			}
			ids[a.id] = a.msg.ID
		}
	}
	var n, distinct, maxSeq int
	if err := owner.QueryRow(`SELECT count(*), count(DISTINCT client_msg_id), coalesce(max(seq), 0) FROM messages WHERE conversation_id = $1`,
		conv).Scan(&n, &distinct, &maxSeq); err != nil {
		t.Fatal(err)
	}
	if n != len(ids) || distinct != len(ids) || maxSeq != n {
		t.Errorf("%d messages, %d distinct ids, last seq %d; want %d, gapless", n, distinct, maxSeq, len(ids))
	}
}

// sendAcross runs the calls at once, each to its conversation, while svc holds the locks
// of convs, and once every call waits in its queue has one holder store them all.
func sendAcross(t *testing.T, svc *chat.Service, convs []int64, calls map[*sendCall]int64) {
	t.Helper()
	storeWaiting := svc.HoldConversations(convs...)
	var wg sync.WaitGroup
	want := map[int64]int{}
	for c, conv := range calls {
		want[conv]++
		wg.Go(func() {
			c.msg, c.created, c.err = svc.SendMessage(context.Background(), c.me, conv, c.body, c.id)
		})
	}
	eventuallyTB(t, "every send waiting", func() bool {
		for conv, n := range want {
			if svc.WaitingSends(conv) != n {
				return false
			}
		}
		return true
	})
	storeWaiting()
	wg.Wait()
}

// TestGroupCommitAcrossConversations: sends waiting on several conversations are stored
// in one transaction, each conversation's gapless and heard by its members in seq order;
// when one conversation's send fails the batch as a whole (a teacher whose portal role
// changed since it was read, refused by the wall), every other send is stored once, in
// seq order, and only that send is refused.
func TestGroupCommitAcrossConversations(t *testing.T) {
	e := newPushEnv(t, pushOpts{delay: time.Minute})
	ctx := context.Background()
	members, outsider := parents(t, e.db, "x", 4)
	g1 := e.group(members[0], "첫째 모임", members[1:]...)
	g2 := e.group(members[1], "둘째 모임", members[0], members[2], members[3])
	t1 := storetest.MustSignIn(t, e.db, "t1", "김선생", "org-a", "zone-n", messenger.RoleTeacher)
	var ann, annLast int64
	if err := e.db.InTx(ctx, t1.Identity(), func(tx *store.Tx) error {
		var err error
		ann, annLast, err = tx.ZoneAnnouncement(ctx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	subs := subscribeUsers(t, e.engine, members)

	// checkStored: the conversation holds exactly want's messages, after seq from, in a
	// gapless run, each once, and every member heard them once in seq order.
	checkStored := func(conv, from int64, want []*sendCall) []messenger.Message {
		t.Helper()
		var got []messenger.Message
		for _, c := range want {
			if c.err != nil || !c.created || c.msg.ConversationID != conv || c.msg.Body != c.body {
				t.Errorf("conversation %d: %+v created %v, %v", conv, c.msg, c.created, c.err)
			}
			got = append(got, c.msg)
		}
		slices.SortFunc(got, func(a, b messenger.Message) int { return int(a.Seq - b.Seq) })
		for i, m := range got {
			if m.Seq != from+1+int64(i) {
				t.Errorf("conversation %d: seq %d at %d, want gapless after %d", conv, m.Seq, i, from)
			}
		}
		if n := e.count(`SELECT count(*) FROM messages WHERE conversation_id = $1 AND seq > $2`, conv, from); n != len(want) {
			t.Errorf("conversation %d: %d messages stored, want %d", conv, n, len(want))
		}
		return got
	}
	heard := func(g1msgs, g2msgs []messenger.Message) {
		t.Helper()
		for _, m := range members {
			got := received(t, subs[m.ID], len(g1msgs)+len(g2msgs))
			var in1, in2 []int64
			for _, g := range got {
				switch g.ConversationID {
				case g1:
					in1 = append(in1, g.Seq)
				case g2:
					in2 = append(in2, g.Seq)
				}
			}
			seqs := func(ms []messenger.Message) (s []int64) {
				for _, m := range ms {
					s = append(s, m.Seq)
				}
				return s
			}
			if !slices.Equal(in1, seqs(g1msgs)) || !slices.Equal(in2, seqs(g2msgs)) {
				t.Errorf("member %d heard %v and %v, want %v and %v", m.ID, in1, in2, seqs(g1msgs), seqs(g2msgs))
			}
		}
	}

	// One transaction for both conversations; a non-member's refusal sinks nobody.
	calls := map[*sendCall]int64{}
	var in1, in2 []*sendCall
	for i := range 6 {
		c := &sendCall{me: members[i%4], body: fmt.Sprintf("첫째 %d", i), id: uuid.NewString()}
		calls[c], in1 = g1, append(in1, c)
		c = &sendCall{me: members[(i+1)%4], body: fmt.Sprintf("둘째 %d", i), id: uuid.NewString()}
		calls[c], in2 = g2, append(in2, c)
	}
	stranger := &sendCall{me: outsider, body: "들어갈 수 없는 사람", id: uuid.NewString()}
	calls[stranger] = g2
	sendAcross(t, e.svc, []int64{g1, g2}, calls)
	if errCode(stranger.err) != messenger.ENOTFOUND {
		t.Errorf("a non-member: %v", stranger.err)
	}
	m1, m2 := checkStored(g1, 0, in1), checkStored(g2, 0, in2)
	var transactions int
	if err := e.owner.QueryRow(`SELECT count(DISTINCT xmin::text) FROM messages WHERE conversation_id IN ($1, $2)`,
		g1, g2).Scan(&transactions); err != nil {
		t.Fatal(err)
	}
	if transactions != 1 {
		t.Errorf("12 messages of two conversations stored in %d transactions, want one", transactions)
	}
	heard(m1, m2)

	// A batch whose announcement the wall refuses: the groups' sends are stored once.
	t2 := storetest.MustSignIn(t, e.db, "t2", "이선생", "org-a", "zone-n", messenger.RoleTeacher)
	e.exec(`UPDATE users SET role = 'parent' WHERE id = $1`, t2.ID) // the portal changed it; t2 still says teacher
	calls = map[*sendCall]int64{}
	in1, in2 = nil, nil
	for i := range 4 {
		c := &sendCall{me: members[i], body: fmt.Sprintf("다시 첫째 %d", i), id: uuid.NewString()}
		calls[c], in1 = g1, append(in1, c)
		c = &sendCall{me: members[3-i], body: fmt.Sprintf("다시 둘째 %d", i), id: uuid.NewString()}
		calls[c], in2 = g2, append(in2, c)
	}
	refused := &sendCall{me: t2, body: "공지", id: uuid.NewString()}
	calls[refused] = ann
	sendAcross(t, e.svc, []int64{g1, g2, ann}, calls)
	if errCode(refused.err) != messenger.EFORBIDDEN || refused.created {
		t.Errorf("the refused announcement: %+v %v", refused.msg, refused.err)
	}
	if n := e.count(`SELECT count(*) FROM messages WHERE conversation_id = $1`, ann); n != int(annLast) {
		t.Errorf("%d messages in the announcements, want %d", n, annLast)
	}
	heard(checkStored(g1, 6, in1), checkStored(g2, 6, in2))

	// Each id again, each to its conversation: the stored messages, nothing new.
	calls = map[*sendCall]int64{}
	var again []*sendCall
	for _, c := range append(slices.Clone(in1), in2...) {
		a := &sendCall{me: c.me, body: c.body, id: c.id}
		calls[a] = c.msg.ConversationID
		again = append(again, a)
	}
	sendAcross(t, e.svc, []int64{g1, g2}, calls)
	for i, c := range append(slices.Clone(in1), in2...) {
		if a := again[i]; a.err != nil || a.created || a.msg.ID != c.msg.ID {
			t.Errorf("again %s: %+v created %v %v, want message %d", c.id, a.msg, a.created, a.err, c.msg.ID)
		}
	}
	if n := e.count(`SELECT count(*) FROM messages WHERE conversation_id IN ($1, $2)`, g1, g2); n != 2*(6+4) {
		t.Errorf("%d messages in the groups, want %d", n, 2*(6+4))
	}
}

// within answers sub's next delivery, or false when none comes within d.
func within(sub *realtime.Subscription, d time.Duration) (realtime.Delivery, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	got, err := sub.Next(ctx)
	return got, err == nil
}
