package chat_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// The use cases' rules, below HTTP: a chat service on a fresh database of its own and the
// memory engine, each test alone with them (so they run in parallel).

// chatEnv is a chat service on a fresh database and a memory engine, with the database's
// owner (to arrange and check what the app role may not) and the app role's plain pool
// (for a job runner).
type chatEnv struct {
	t          testing.TB
	db         *store.DB
	owner, app *sql.DB
	engine     *realtime.Memory
	svc        *chat.Service
	logger     *slog.Logger
	reg        *prometheus.Registry
}

func newChatEnv(t testing.TB) *chatEnv {
	t.Helper()
	db, d := storetest.NewDB(t)
	engine := realtime.NewMemory(256)
	t.Cleanup(func() { engine.Close() })
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	reg := prometheus.NewRegistry()
	return &chatEnv{t: t, db: db, owner: storetest.Conn(t, d.OwnerDSN), app: storetest.Conn(t, d.AppDSN), engine: engine,
		svc: chat.NewService(db, engine, logger, reg, nil), logger: logger, reg: reg}
}

// user signs in a parent of org's zone.
func (e *chatEnv) user(sub, name, org string) messenger.User {
	e.t.Helper()
	return storetest.MustSignIn(e.t, e.db, sub, name, org, "zone-"+org, messenger.RoleParent)
}

// group creates a group of admin and members, and answers it with its last seq.
func (e *chatEnv) group(admin messenger.User, members ...messenger.User) (convID, lastSeq int64) {
	e.t.Helper()
	subs := make([]string, len(members))
	for i, m := range members {
		subs[i] = m.Sub
	}
	conv, _, err := e.svc.CreateConversation(context.Background(), admin, messenger.KindGroup, "반 모임", subs)
	if err != nil {
		e.t.Fatal(err)
	}
	return conv.ID, e.lastSeq(admin, conv.ID)
}

// lastSeq answers the seq of the newest message of convID as me sees it.
func (e *chatEnv) lastSeq(me messenger.User, convID int64) int64 {
	e.t.Helper()
	th, err := e.svc.OpenThread(context.Background(), me, convID, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(th.Messages) == 0 {
		return 0
	}
	return th.Messages[len(th.Messages)-1].Seq
}

func (e *chatEnv) send(me messenger.User, convID int64, body string) messenger.Message {
	e.t.Helper()
	m, created, err := e.svc.SendMessage(context.Background(), me, convID, body, uuid.NewString())
	if err != nil || !created {
		e.t.Fatalf("send %q: created %v, %v", body, created, err)
	}
	return m
}

// unread answers me's unread count of convID.
func (e *chatEnv) unread(me messenger.User, convID int64) int64 {
	e.t.Helper()
	counts, err := e.svc.UnreadCounts(context.Background(), me)
	if err != nil {
		e.t.Fatal(err)
	}
	return counts[convID]
}

// receipts reads a subscription's read receipts as received reads messages.
func receipts(t *testing.T, sub *realtime.Subscription, n int) []chat.ReadReceipt {
	t.Helper()
	return heard[chat.ReadReceipt](t, sub, chat.EventReadReceipt, n)
}

// twoInAGroup is a chat service with a and b in a new group, answered with its last seq.
func twoInAGroup(t *testing.T) (e *chatEnv, a, b messenger.User, conv, last int64) {
	t.Helper()
	e = newChatEnv(t)
	a, b = e.user("a", "김하늘", "org-a"), e.user("b", "이바다", "org-a")
	conv, last = e.group(a, b)
	return e, a, b, conv, last
}

// TestSendOnceByClientID: a client that sends the same client_msg_id again (a retry after
// a lost answer) gets the message stored the first time, not created again: the thread
// holds it once and every member heard of it once.
func TestSendOnceByClientID(t *testing.T) {
	t.Parallel()
	e, a, b, conv, last := twoInAGroup(t)
	ctx := context.Background()
	subs := subscribeUsers(t, e.engine, []messenger.User{a, b})

	id := uuid.NewString()
	first, created, err := e.svc.SendMessage(ctx, a, conv, "내일 준비물", id)
	if err != nil || !created || first.Seq != last+1 || first.Body != "내일 준비물" || first.ClientMsgID == nil || *first.ClientMsgID != id {
		t.Fatalf("first send: %+v created %v, %v", first, created, err)
	}
	again, created, err := e.svc.SendMessage(ctx, a, conv, "내일 준비물", id)
	if err != nil || created || again.ID != first.ID || again.Seq != first.Seq {
		t.Errorf("the same id again: %+v created %v, %v; want message %d, not created", again, created, err, first.ID)
	}
	if got := e.lastSeq(b, conv); got != first.Seq {
		t.Errorf("the thread ends at seq %d, want %d", got, first.Seq)
	}
	for _, u := range []messenger.User{a, b} {
		if got := received(t, subs[u.ID], 1); len(got) != 1 || got[0].ID != first.ID {
			t.Errorf("%s heard %+v, want message %d once", u.Sub, got, first.ID)
		}
	}
}

// TestConcurrentSendsAreOrdered: many senders at once, to one conversation, with nothing
// holding them: every send is stored, the seqs are the next ones without a gap, and every
// member hears every message once, in seq order.
func TestConcurrentSendsAreOrdered(t *testing.T) {
	t.Parallel()
	e := newChatEnv(t)
	ctx := context.Background()
	var members []messenger.User
	for i := range 6 {
		members = append(members, e.user(fmt.Sprintf("m%d", i), fmt.Sprintf("회원%d", i), "org-a"))
	}
	conv, last := e.group(members[0], members[1:]...)
	subs := subscribeUsers(t, e.engine, members)

	const perMember = 8
	n := len(members) * perMember
	sent := make([]messenger.Message, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			sent[i], _, errs[i] = e.svc.SendMessage(ctx, members[i%len(members)], conv, fmt.Sprintf("메시지 %d", i), uuid.NewString())
		})
	}
	close(start)
	wg.Wait()

	seqs := make([]int64, n)
	bySeq := map[int64]messenger.Message{}
	for i, m := range sent {
		if errs[i] != nil {
			t.Fatalf("send %d: %v", i, errs[i])
		}
		seqs[i] = m.Seq
		bySeq[m.Seq] = m
	}
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != last+1+int64(i) {
			t.Fatalf("seqs %v: not %d..%d without a gap", seqs, last+1, last+int64(n))
		}
	}
	for _, m := range members {
		got := received(t, subs[m.ID], n)
		if len(got) != n {
			t.Errorf("%s heard %d messages, want %d", m.Sub, len(got), n)
			continue
		}
		for i, g := range got {
			if want := bySeq[last+1+int64(i)]; g.Seq != want.Seq || g.ID != want.ID || g.Body != want.Body {
				t.Errorf("%s heard #%d: seq %d %q, want seq %d %q", m.Sub, i, g.Seq, g.Body, want.Seq, want.Body)
				break
			}
		}
	}
}

// TestMembershipRules: only an active member of a conversation reads, sends to and marks
// it; to anyone else — a parent of the same school never invited, one who left, one who
// was removed, one of another school — it does not exist (not found, whatever they ask),
// and they hear nothing of it after they are out.
func TestMembershipRules(t *testing.T) {
	t.Parallel()
	e := newChatEnv(t)
	ctx := context.Background()
	admin, member := e.user("admin", "김선영", "org-a"), e.user("member", "이민준", "org-a")
	leaver, removed := e.user("leaver", "박서연", "org-a"), e.user("removed", "최지훈", "org-a")
	stranger, foreign := e.user("stranger", "정하은", "org-a"), e.user("foreign", "한도윤", "org-b")
	conv, _ := e.group(admin, member, leaver, removed)
	e.send(leaver, conv, "곧 나갑니다")
	if err := e.svc.LeaveConversation(ctx, leaver, conv); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.RemoveMember(ctx, admin, conv, removed.Sub); err != nil {
		t.Fatal(err)
	}
	outs := []messenger.User{leaver, removed, stranger, foreign}
	subs := subscribeUsers(t, e.engine, append([]messenger.User{member}, outs...))

	for _, u := range outs {
		_, _, err := e.svc.SendMessage(ctx, u, conv, "들어갈 수 없는 사람", uuid.NewString())
		if errCode(err) != messenger.ENOTFOUND {
			t.Errorf("%s sends: %v, want not found", u.Sub, err)
		}
		if _, err := e.svc.OpenThread(ctx, u, conv, 0); errCode(err) != messenger.ENOTFOUND {
			t.Errorf("%s opens the thread: %v, want not found", u.Sub, err)
		}
		if err := e.svc.MarkRead(ctx, u, conv, 1); errCode(err) != messenger.ENOTFOUND {
			t.Errorf("%s marks it read: %v, want not found", u.Sub, err)
		}
		if n := e.unread(u, conv); n != 0 {
			t.Errorf("%s has %d unread in it", u.Sub, n)
		}
	}
	m := e.send(member, conv, "남은 사람들에게")
	if got := received(t, subs[member.ID], 1); len(got) != 1 || got[0].ID != m.ID {
		t.Errorf("the member heard %+v, want message %d", got, m.ID)
	}
	for _, u := range outs {
		if got := received(t, subs[u.ID], 0); len(got) != 0 {
			t.Errorf("%s, out of the conversation, heard %+v", u.Sub, got)
		}
	}
	// Nobody of another school is found to start a conversation with.
	if _, _, err := e.svc.CreateConversation(ctx, admin, messenger.KindGroup, "학교 밖", []string{foreign.Sub}); errCode(err) != messenger.EINVALID {
		t.Errorf("a group with a parent of another school: %v, want invalid", err)
	}
}

// TestReadMarks: marking read moves a member's watermark forward only and never past the
// newest message; the unread count follows it, and the members hear each rise once, never
// a mark that raised nothing.
func TestReadMarks(t *testing.T) {
	t.Parallel()
	e, a, b, conv, last := twoInAGroup(t)
	ctx := context.Background()
	if last > 0 { // what came with the group is read
		if err := e.svc.MarkRead(ctx, b, conv, last); err != nil {
			t.Fatal(err)
		}
	}
	var sent []messenger.Message
	for i := range 5 {
		sent = append(sent, e.send(a, conv, fmt.Sprintf("공지 %d", i+1)))
	}
	if n := e.unread(b, conv); n != 5 {
		t.Fatalf("b has %d unread, want 5", n)
	}
	if n := e.unread(a, conv); n != 0 {
		t.Errorf("the sender has %d unread of their own messages", n)
	}
	subs := subscribeUsers(t, e.engine, []messenger.User{a, b})
	watermark := func() int64 {
		t.Helper()
		th, err := e.svc.OpenThread(ctx, a, conv, 0)
		if err != nil {
			t.Fatal(err)
		}
		return th.Watermarks[b.Sub]
	}

	mark := func(seq int64) {
		t.Helper()
		if err := e.svc.MarkRead(ctx, b, conv, seq); err != nil {
			t.Fatalf("MarkRead(%d): %v", seq, err)
		}
	}
	mark(sent[2].Seq)
	if n, w := e.unread(b, conv), watermark(); n != 2 || w != sent[2].Seq {
		t.Errorf("after reading up to the third: %d unread, watermark %d; want 2, %d", n, w, sent[2].Seq)
	}
	for _, u := range []messenger.User{a, b} { // a's read counts, b's other tabs
		if got := receipts(t, subs[u.ID], 1); len(got) != 1 || got[0].UserID != b.Sub || got[0].LastReadSeq != sent[2].Seq || got[0].ConversationID != conv {
			t.Errorf("%s heard %+v, want b read up to %d", u.Sub, got, sent[2].Seq)
		}
	}

	mark(sent[0].Seq) // an older tab catching up: nothing moves back
	if n, w := e.unread(b, conv), watermark(); n != 2 || w != sent[2].Seq {
		t.Errorf("after an older mark: %d unread, watermark %d; want 2, %d", n, w, sent[2].Seq)
	}
	if got := receipts(t, subs[a.ID], 0); len(got) != 0 {
		t.Errorf("a mark that raised nothing was announced: %+v", got)
	}

	mark(sent[4].Seq + 1000) // past the newest: up to the newest
	if n, w := e.unread(b, conv), watermark(); n != 0 || w != sent[4].Seq {
		t.Errorf("after a mark past the end: %d unread, watermark %d; want 0, %d", n, w, sent[4].Seq)
	}
	if got := receipts(t, subs[a.ID], 1); len(got) != 1 || got[0].LastReadSeq != sent[4].Seq {
		t.Errorf("a heard %+v, want b read up to %d", got, sent[4].Seq)
	}
	later := e.send(a, conv, "하나 더")
	if n := e.unread(b, conv); n != 1 {
		t.Errorf("after one more message: %d unread, want 1 (%d)", n, later.Seq)
	}

	if err := e.svc.MarkRead(ctx, b, conv, 0); errCode(err) != messenger.EINVALID {
		t.Errorf("MarkRead(0): %v, want invalid", err)
	}
}
