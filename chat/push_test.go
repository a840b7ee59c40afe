package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/jobs"
	"github.com/dreamseed/messenger/push"
	"github.com/dreamseed/messenger/push/pushtest"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
	"github.com/dreamseed/messenger/views"
)

// pushEnv is a messenger with web push on: a fresh database, the memory engine, the real
// River runner working the push job, and pushtest as every browser's push service.
type pushEnv struct {
	*chatEnv
	svcP *pushtest.Server
	subs map[int64]*pushtest.Subscription
}

type pushOpts struct {
	delay   time.Duration
	timeout time.Duration
	quiet   map[string]chat.QuietHours
	off     bool // push not enabled (a benchmark's baseline)
}

func newPushEnv(t testing.TB, o pushOpts) *pushEnv {
	t.Helper()
	ce := newChatEnv(t)
	svc, logger, reg := ce.svc, ce.logger, ce.reg
	runner, err := jobs.New(ce.app, logger, jobs.Config{Workers: 2, PollInterval: 50 * time.Millisecond,
		Queues: map[string]int{chat.QueuePush: 2}, RetryBase: 200 * time.Millisecond, RetryMax: time.Second, JobTimeout: 30 * time.Second}, nil, svc.RegisterPushWorker)
	if err != nil {
		t.Fatal(err)
	}
	// The school's role defaults: none unless the test sets them (teachers' 21:00-08:00 would
	// hold back pushes at night).
	svc.SetNotifyConfig(chat.NotifyConfig{QuietDefaults: o.quiet, MaxKeywords: 50, MaxKeywordChars: 50})
	keys, _ := push.GenerateKeys()
	ps := pushtest.New(t)
	ps.VAPIDKey = keys.Public
	sender, err := push.NewSender(push.Config{Keys: keys, Subject: "mailto:admin@school.example", AllowPrivate: true,
		Timeout: max(o.timeout, 5*time.Second)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.off {
		err = nil
	} else {
		err = svc.EnablePush(chat.Push{Sender: sender, Jobs: runner, Delay: o.delay, ConversationURL: "https://messenger.example/c/{id}",
			RetryBase: 200 * time.Millisecond,
			Preview: func(locale string, m messenger.Message) string {
				return views.FilePreview(views.WithLocale(context.Background(), locale), m)
			}}, reg)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		runner.Stop(ctx)
	})
	return &pushEnv{chatEnv: ce, svcP: ps, subs: map[int64]*pushtest.Subscription{}}
}

// subscribe stores a new browser subscription of u (as the subscribe route would).
func (e *pushEnv) subscribe(u messenger.User) *pushtest.Subscription {
	e.t.Helper()
	s := e.svcP.Subscribe()
	e.exec(`INSERT INTO push_subscriptions (id, user_id, org_id, endpoint, p256dh, auth, browser)
	        VALUES ($1, $2, $3, $4, $5, $6, 'Chrome')`, uuid.NewString(), u.ID, u.OrgID, s.Endpoint, s.P256dh, s.Auth)
	e.subs[u.ID] = s
	return s
}

func (e *pushEnv) exec(q string, args ...any) {
	e.t.Helper()
	if _, err := e.owner.Exec(q, args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

func (e *pushEnv) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.owner.QueryRow(q, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// settled waits until no push job is due or running: every decision has been taken.
func (e *pushEnv) settled() {
	e.t.Helper()
	eventuallyTB(e.t, "push jobs done", func() bool {
		return e.count(`SELECT count(*) FROM river_job WHERE kind IN ('push_message', 'push_sweep')
		                   AND (state IN ('running', 'retryable') OR (state IN ('available', 'scheduled') AND scheduled_at < now() + interval '1 minute'))`) == 0
	})
}

func (e *pushEnv) group(admin messenger.User, title string, members ...messenger.User) int64 {
	e.t.Helper()
	return createGroup(e.t, e.db, admin, title, members...)
}

func (e *pushEnv) send(me messenger.User, convID int64, body string) messenger.Message {
	e.t.Helper()
	m, _, err := e.svc.SendMessage(context.Background(), me, convID, body, uuid.NewString())
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

type pushJSON struct {
	Title          string  `json:"title"`
	Body           string  `json:"body"`
	URL            string  `json:"url"`
	ConversationID int64   `json:"conversation_id"`
	Seq            int64   `json:"seq"`
	Tag            string  `json:"tag"`
	Count          int64   `json:"count"`
	Unread         int64   `json:"unread"`
	UnreadConvs    []int64 `json:"unread_conversations"`
	Lang           string  `json:"lang"`
}

func decode(t *testing.T, p pushtest.Push) pushJSON {
	t.Helper()
	var v pushJSON
	if err := json.Unmarshal(p.Payload, &v); err != nil {
		t.Fatalf("payload %q: %v", p.Payload, err)
	}
	return v
}

type pushUsers struct{ teacher, parent, student, other messenger.User }

func (e *pushEnv) users() pushUsers {
	var u pushUsers
	u.teacher, u.parent, u.student, u.other = school(e.t, e.db, "p", "q")
	return u
}

// TestPushGoesToAwayMembers: a group message reaches, decrypted, the member who is away;
// not the sender, not a member with a live stream open when the job runs; the payload has
// the group's title, "sender: preview", the link, the tag and the unread total; a 1:1 is
// urgent and titled with the sender.
func TestPushGoesToAwayMembers(t *testing.T) {
	e := newPushEnv(t, pushOpts{})
	u := e.users()
	teacher, parent, student := e.subscribe(u.teacher), e.subscribe(u.parent), e.subscribe(u.student)
	if _, err := e.engine.Connect(context.Background(), u.student.ID, "tab-1"); err != nil {
		t.Fatal(err)
	}
	g := e.group(u.teacher, "3학년 1반", u.parent, u.student)
	e.send(u.teacher, g, "안녕하세요")
	long := "내일 준비물은 색연필과 스케치북입니다. " + strings.Repeat("잊지 말고 꼭 챙겨 주세요. ", 10)
	m := e.send(u.teacher, g, long)
	e.svcP.Wait(t, parent, 1, 20*time.Second)
	e.settled()
	// Both messages in one window: one push of the newest, counting two. (Sent across a
	// window's edge: the first window's job pushed the first, the next the second.)
	got := e.svcP.Pushes(parent)
	if len(got) > 2 || (len(got) == 2 && decode(t, got[0]).Seq == decode(t, got[1]).Seq) {
		t.Fatalf("%d pushes for two messages", len(got))
	}
	got = got[len(got)-1:]
	p := decode(t, got[0])
	want := pushJSON{Title: "3학년 1반", URL: "https://messenger.example/c/" + strconv.FormatInt(g, 10), ConversationID: g,
		Seq: m.Seq, Tag: "c" + strconv.FormatInt(g, 10), Count: 2, Unread: 2, UnreadConvs: []int64{g}, Lang: "ko"}
	body := p.Body
	p.Body = ""
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("payload %+v, want %+v", p, want)
	}
	if !strings.HasPrefix(body, "김선생: 내일 준비물은") || len([]rune(body)) != chat.PushPreviewLength || !strings.HasSuffix(body, "…") {
		t.Fatalf("body %q (%d characters)", body, len([]rune(body)))
	}
	if got[0].Topic != want.Tag || got[0].Urgency != "normal" || got[0].TTL != "86400" {
		t.Fatalf("headers %+v", got[0])
	}
	if n := len(e.svcP.Pushes(teacher)) + len(e.svcP.Pushes(student)); n != 0 {
		t.Fatalf("%d pushes to the sender or the member watching", n)
	}
	if e.count(`SELECT count(*) FROM push_subscriptions WHERE user_id = $1 AND last_used_at IS NOT NULL`, u.parent.ID) != 1 {
		t.Fatal("last_used_at not recorded")
	}
	if n := gauge(t, e.reg, "messenger_push_subscriptions"); n != 3 {
		t.Fatalf("messenger_push_subscriptions %v, want 3", n)
	}

	// A 1:1: urgent, titled with the sender, in English for an English reader of a photo.
	var direct int64
	err := e.db.InTx(context.Background(), u.parent.Identity(), func(tx *store.Tx) error {
		var err error
		direct, _, err = tx.DirectConversation(context.Background(), u.teacher.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	e.send(u.parent, direct, "선생님 감사합니다")
	tp := e.svcP.Wait(t, teacher, 1, 20*time.Second)[0]
	// The worker learns which conversations are still unread (it closes the others'
	// notifications) and the recipient's language.
	if d := decode(t, tp); d.Title != "박학부모" || d.Body != "박학부모: 선생님 감사합니다" || tp.Urgency != "high" || d.Unread != 1 ||
		len(d.UnreadConvs) != 1 || d.UnreadConvs[0] != direct || d.Lang == "" {
		t.Fatalf("direct push %+v, urgency %q", d, tp.Urgency)
	}
	if errs := e.svcP.Errors(); len(errs) > 0 {
		t.Fatal(errs)
	}
}

// TestNoPushWhenReadOrWatching: what counts is the moment the job runs: a message read
// before it, or a member who opened a stream before it, gets no push.
func TestNoPushWhenReadOrWatching(t *testing.T) {
	e := newPushEnv(t, pushOpts{delay: 1500 * time.Millisecond})
	u := e.users()
	parent, student := e.subscribe(u.parent), e.subscribe(u.student)
	g := e.group(u.teacher, "3학년 1반", u.parent, u.student)
	m := e.send(u.teacher, g, "읽으셨나요?")
	// Queued while both were away; the parent reads, the student opens a tab, then the job runs.
	if err := e.svc.MarkRead(context.Background(), u.parent, g, m.Seq); err != nil {
		t.Fatal(err)
	}
	if _, err := e.engine.Connect(context.Background(), u.student.ID, "tab-1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	e.settled()
	if n := len(e.svcP.Pushes(parent)) + len(e.svcP.Pushes(student)); n != 0 {
		t.Fatalf("%d pushes after read / while watching", n)
	}
	// The student closes the tab: the next message pushes to them.
	if _, err := e.engine.Disconnect(context.Background(), u.student.ID, "tab-1"); err != nil {
		t.Fatal(err)
	}
	e.send(u.teacher, g, "두 번째")
	e.svcP.Wait(t, student, 1, 20*time.Second)
}

// TestPushSweep: a window's sweep enqueues the job of each conversation active in it with
// a member who might get a push and is away (push on, not muted, not read up to the newest
// message nor pushed it, with a subscription), and of no other: a conversation whose
// members are all watching, or whose away members could get no push, costs no job.
func TestPushSweep(t *testing.T) {
	e := newPushEnv(t, pushOpts{delay: time.Hour}) // the sweeps run here, not by River
	u := e.users()
	watcher := storetest.MustSignIn(t, e.db, "p5", "한학부모", "org-a", "zone-a", messenger.RoleParent)
	e.subscribe(u.parent)
	e.subscribe(watcher)
	away := e.group(u.teacher, "away", u.parent)
	watching := e.group(u.teacher, "watching", watcher)
	unsubscribed := e.group(u.teacher, "no subscription", u.student)
	muted := e.group(u.teacher, "muted", u.parent)
	read := e.group(u.teacher, "read", u.parent)
	quiet := e.group(u.teacher, "nothing new", u.parent)
	if _, err := e.engine.Connect(context.Background(), watcher.ID, "tab-1"); err != nil {
		t.Fatal(err)
	}
	e.exec(`UPDATE conversation_participants SET muted_until = 'infinity' WHERE conversation_id = $1 AND user_id = $2`, muted, u.parent.ID)
	e.send(u.teacher, quiet, "지난 시간의 메시지")
	e.exec(`UPDATE conversations SET last_message_at = now() - interval '3 hours' WHERE id = $1`, quiet)
	for _, g := range []int64{away, watching, unsubscribed, muted, read} {
		m := e.send(u.teacher, g, "알림장 확인 부탁드립니다")
		if g == read {
			if err := e.svc.MarkRead(context.Background(), u.parent, g, m.Seq); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.svc.RunPushSweep(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	jobs := func() map[int64]int {
		rows, err := e.owner.Query(`SELECT (args->>'conversation_id')::bigint, count(*) FROM river_job WHERE kind = 'push_message' GROUP BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		got := map[int64]int{}
		for rows.Next() {
			var conv int64
			var n int
			if err := rows.Scan(&conv, &n); err != nil {
				t.Fatal(err)
			}
			got[conv] = n
		}
		return got
	}
	if got := jobs(); len(got) != 1 || got[away] != 1 {
		t.Fatalf("jobs by conversation %v, want one, of %d only", got, away)
	}
	// The job pushes the away member. The watcher closes the tab: the next sweep enqueues
	// their conversation's job, and not the pushed one's again. A forged sweep from long ago
	// looks no further back than an hour: not at "nothing new".
	e.settled()
	if n := len(e.svcP.Pushes(nil)); n != 1 {
		t.Fatalf("%d pushes from the first sweep's job, want 1", n)
	}
	if _, err := e.engine.Disconnect(context.Background(), watcher.ID, "tab-1"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.RunPushSweep(context.Background(), time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	if got := jobs(); len(got) != 2 || got[away] != 1 || got[watching] != 1 {
		t.Fatalf("jobs by conversation %v after the second sweep, want one of %d and one of %d", got, away, watching)
	}
}

// TestPushMuteKeywords: a muted member gets nothing; a member with keywords only a message
// containing one (NFC, Latin case-insensitive); one with push off nothing.
func TestPushMuteKeywords(t *testing.T) {
	e := newPushEnv(t, pushOpts{})
	u := e.users()
	more := storetest.MustSignIn(t, e.db, "p4", "정학부모", "org-a", "zone-a", messenger.RoleParent)
	parent, student, off := e.subscribe(u.parent), e.subscribe(u.student), e.subscribe(more)
	g := e.group(u.teacher, "3학년 1반", u.parent, u.student, more)
	e.exec(`UPDATE conversation_participants SET muted_until = 'infinity' WHERE conversation_id = $1 AND user_id = $2`, g, u.parent.ID)
	// "소풍" decomposed (NFD) in the stored keyword, composed in the message; "Field Trip" cased.
	e.exec(`UPDATE conversation_participants SET keywords = $3 WHERE conversation_id = $1 AND user_id = $2`,
		g, u.student.ID, "{\"\u1109\u1169\u1111\u116e\u11bc\",\"field trip\"}")
	e.exec(`INSERT INTO user_settings (user_id, org_id, push) VALUES ($1, $2, false)`, more.ID, more.OrgID)
	// Each message in a window of its own (settled between): the keywords are looked for in
	// all the member's unread messages, the push shows the newest.
	e.send(u.teacher, g, "오늘 급식 메뉴입니다")
	e.settled()
	e.send(u.teacher, g, "내일 소풍 안내")
	e.settled()
	e.send(u.teacher, g, "The FIELD TRIP starts at 9")
	e.settled()
	if n := len(e.svcP.Pushes(parent)) + len(e.svcP.Pushes(off)); n != 0 {
		t.Fatalf("%d pushes to a muted member or one with push off", n)
	}
	got := e.svcP.Pushes(student)
	if len(got) != 2 || !strings.Contains(decode(t, got[0]).Body, "소풍") || !strings.Contains(decode(t, got[1]).Body, "FIELD TRIP") ||
		decode(t, got[1]).Count != 3 {
		t.Fatalf("keyword pushes: %d", len(got))
	}
	// Mute lapsed: pushes again.
	e.exec(`UPDATE conversation_participants SET muted_until = now() - interval '1 minute' WHERE conversation_id = $1 AND user_id = $2`, g, u.parent.ID)
	e.send(u.teacher, g, "다시 알림")
	e.svcP.Wait(t, parent, 1, 20*time.Second)
}

// TestPushQuietHours: a member in quiet hours gets one job for them at the window's end;
// when it runs (moved to now here) the push arrives. The role default applies to those who
// set nothing; a window that wraps midnight works.
func TestPushQuietHours(t *testing.T) {
	seoul, _ := time.LoadLocation("Asia/Seoul")
	now := time.Now().In(seoul)
	min := now.Hour()*60 + now.Minute()
	// Windows around now: the parent's own, wrapping midnight; the teachers' default.
	from, to := (min+23*60)%1440, (min+90)%1440
	clock := func(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }
	e := newPushEnv(t, pushOpts{quiet: map[string]chat.QuietHours{messenger.RoleTeacher: {From: (min + 1380) % 1440, To: (min + 60) % 1440}}})
	u := e.users()
	parent, teacher, student := e.subscribe(u.parent), e.subscribe(u.teacher), e.subscribe(u.student)
	e.exec(`INSERT INTO user_settings (user_id, org_id, quiet_custom, quiet_from, quiet_to) VALUES ($1, $2, true, $3, $4)`,
		u.parent.ID, u.parent.OrgID, clock(from), clock(to))
	g := e.group(u.student, "모둠", u.parent, u.teacher)
	e.send(u.student, g, "밤 메시지 하나")
	e.settled()
	// Two more windows of messages during the quiet hours: still one job waits per member.
	time.Sleep(1100 * time.Millisecond)
	e.send(u.student, g, "밤 메시지 둘")
	e.settled()
	time.Sleep(1100 * time.Millisecond)
	late := e.send(u.student, g, "늦은 밤 메시지")
	e.settled()
	if n := len(e.svcP.Pushes(parent)) + len(e.svcP.Pushes(teacher)) + len(e.svcP.Pushes(student)); n != 0 {
		t.Fatalf("%d pushes in quiet hours", n)
	}
	for _, m := range []messenger.User{u.parent, u.teacher} {
		if n := e.count(`SELECT count(*) FROM river_job WHERE kind = 'push_message' AND state = 'scheduled' AND (args->>'user_id')::bigint = $1`, m.ID); n != 1 {
			t.Fatalf("%s has %d jobs waiting for the end of the quiet hours, want 1", m.Name, n)
		}
	}
	for _, c := range []struct {
		user messenger.User
		end  int
	}{{u.parent, to}, {u.teacher, (min + 60) % 1440}} {
		var at time.Time
		err := e.owner.QueryRow(`SELECT scheduled_at FROM river_job WHERE kind = 'push_message' AND state = 'scheduled'
		                           AND (args->>'user_id')::bigint = $1`, c.user.ID).Scan(&at)
		if err != nil {
			t.Fatalf("no later job for %s: %v", c.user.Name, err)
		}
		if l := at.In(seoul); l.Hour()*60+l.Minute() != c.end || at.Before(time.Now()) || at.Sub(time.Now()) > 2*time.Hour {
			t.Fatalf("%s's push waits until %v, want %s", c.user.Name, l, clock(c.end))
		}
	}
	// The window ends (here: the parent's hours move an hour back, and the job is due):
	// the parent's push goes; the teacher's job finds the message read.
	e.exec(`UPDATE user_settings SET quiet_from = $2, quiet_to = $3 WHERE user_id = $1`, u.parent.ID, clock((min+1320)%1440), clock((min+1380)%1440))
	e.exec(`UPDATE river_job SET scheduled_at = now() WHERE kind = 'push_message' AND (args->>'user_id')::bigint = $1`, u.parent.ID)
	got := e.svcP.Wait(t, parent, 1, 20*time.Second)
	if d := decode(t, got[0]); d.Body != "이학생: 늦은 밤 메시지" || d.Count != 3 {
		t.Fatalf("after quiet hours: %+v", d)
	}
	e.settled()
	if n := len(e.svcP.Pushes(parent)); n != 1 {
		t.Fatalf("%d pushes at the end of the quiet hours, want 1 for the three messages", n)
	}
	if err := e.svc.MarkRead(context.Background(), u.teacher, g, late.Seq); err != nil {
		t.Fatal(err)
	}
	e.exec(`UPDATE river_job SET scheduled_at = now() WHERE kind = 'push_message' AND (args->>'user_id')::bigint = $1`, u.teacher.ID)
	e.settled()
	if n := len(e.svcP.Pushes(teacher)); n != 0 {
		t.Fatal("a push for a message read during quiet hours")
	}
}

// TestPushFailures: 410 deletes the subscription; 429 is tried again after Retry-After;
// a push service that hangs times out and is tried again; nothing is tried for ever.
func TestPushFailures(t *testing.T) {
	e := newPushEnv(t, pushOpts{timeout: 500 * time.Millisecond})
	u := e.users()
	gone, limited := e.subscribe(u.parent), e.subscribe(u.student)
	more := storetest.MustSignIn(t, e.db, "p5", "한학부모", "org-a", "zone-a", messenger.RoleParent)
	hanging := e.subscribe(more)
	g := e.group(u.teacher, "3학년 1반", u.parent, u.student, more)
	e.svcP.Answer(gone, pushtest.Answer{Status: 410})
	e.svcP.Answer(limited, pushtest.Answer{Status: 429, RetryAfter: "1"})
	e.svcP.Answer(hanging, pushtest.Answer{Hang: true})
	start := time.Now()
	e.send(u.teacher, g, "공지")
	eventually(t, "the gone subscription deleted", func() bool {
		return e.count(`SELECT count(*) FROM push_subscriptions WHERE user_id = $1`, u.parent.ID) == 0
	})
	got := e.svcP.Wait(t, limited, 2, 20*time.Second)
	if got[0].Status != 429 || got[1].Status != 201 || got[1].At.Sub(start) < time.Second {
		t.Fatalf("429 then %d after %v", got[1].Status, got[1].At.Sub(start))
	}
	if string(got[0].Payload) != string(got[1].Payload) {
		t.Fatal("the retry's payload changed")
	}
	if p := e.svcP.Wait(t, hanging, 1, 20*time.Second); p[0].Status != 201 {
		t.Fatalf("after the hang: %+v", p[0])
	}
	e.settled()
	if n := len(e.svcP.Pushes(gone)); n != 1 {
		t.Fatalf("%d requests to the gone subscription", n)
	}

	// 413: sent once more, shrunk.
	big := e.subscribe(u.parent)
	e.svcP.Answer(big, pushtest.Answer{Status: 413})
	e.send(u.teacher, g, "아주 긴 공지: "+strings.Repeat("현장학습 준비물 안내 ", 8))
	shrunk := e.svcP.Wait(t, big, 2, 20*time.Second)
	if first, second := decode(t, shrunk[0]), decode(t, shrunk[1]); shrunk[1].Status != 201 ||
		len([]rune(second.Body)) != 20 || len(second.Body) >= len(first.Body) || second.ConversationID != g {
		t.Fatalf("after 413: %q (%d), then %q", first.Body, shrunk[0].Status, second.Body)
	}
	e.settled()
	e.exec(`DELETE FROM push_subscriptions WHERE user_id = $1`, u.parent.ID)

	// A push service that always fails: tried Retries+1 times, then given up.
	always := e.subscribe(u.parent)
	for range 10 {
		e.svcP.Answer(always, pushtest.Answer{Status: 503})
	}
	e.send(u.teacher, g, "또 공지")
	eventuallyTB(t, "retries given up", func() bool {
		return len(e.svcP.Pushes(always)) == chat.DefaultPushRetries+1 &&
			e.count(`SELECT count(*) FROM river_job WHERE kind = 'push_message' AND state NOT IN ('completed', 'discarded', 'cancelled')`) == 0
	})
}

// TestForgedPushJob: anyone with the app role can insert a River job; a forged push job
// cannot make someone else's message reach anyone who may not read it, nor push a member
// the message pushed to them already.
func TestForgedPushJob(t *testing.T) {
	e := newPushEnv(t, pushOpts{})
	u := e.users()
	intruder := storetest.MustSignIn(t, e.db, "p9", "엿보는사람", "org-a", "zone-a", messenger.RoleParent)
	mine := e.subscribe(intruder)
	foreign := e.subscribe(u.other)
	parent := e.subscribe(u.parent)
	secret := e.group(u.teacher, "상담", u.parent)
	theirs := e.group(intruder, "내 그룹", u.teacher)
	e.send(u.teacher, secret, "비밀 상담 내용")
	e.svcP.Wait(t, parent, 1, 20*time.Second) // the real push
	e.settled()
	for _, args := range []map[string]any{
		{"conversation_id": theirs},                                // another conversation: nothing unread of others there
		{"conversation_id": secret, "user_id": intruder.ID},        // to a non-member
		{"conversation_id": secret, "user_id": u.other.ID},         // to another school
		{"conversation_id": secret},                                // the real job again: already pushed
		{"conversation_id": secret, "user_id": u.parent.ID},        // the same, to the member
		{"conversation_id": secret + 1000, "user_id": u.parent.ID}, // nothing
	} {
		data, _ := json.Marshal(args)
		if _, err := e.app.Exec(`INSERT INTO river_job (kind, args, max_attempts, queue, state) VALUES ('push_message', $1, 1, 'default', 'available')`, data); err != nil {
			t.Fatal(err)
		}
	}
	e.settled()
	if n := len(e.svcP.Pushes(mine)) + len(e.svcP.Pushes(foreign)); n != 0 {
		t.Fatalf("%d forged pushes reached a non-member", n)
	}
	if n := len(e.svcP.Pushes(parent)); n != 1 {
		t.Fatalf("the forged jobs pushed %d times to the member", n-1)
	}
}

// TestConcurrentPushJobsPushOnce: jobs of one conversation that run at once (two windows'
// jobs due together on a busy machine) push each away member the message once, not once per
// job.
func TestConcurrentPushJobsPushOnce(t *testing.T) {
	e := newPushEnv(t, pushOpts{delay: time.Hour}) // the window's own job stays scheduled
	u := e.users()
	parent, student := e.subscribe(u.parent), e.subscribe(u.student)
	g := e.group(u.teacher, "3학년 1반", u.parent, u.student)
	m := e.send(u.teacher, g, "내일은 현장체험학습입니다")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- e.svc.RunPushJob(context.Background(), chat.PushArgs{ConversationID: g}) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []*pushtest.Subscription{parent, student} {
		got := e.svcP.Pushes(s)
		if len(got) != 1 || decode(t, got[0]).Seq != m.Seq {
			t.Fatalf("%d pushes of the message from 8 jobs at once, want 1", len(got))
		}
	}
}

// eventuallyTB waits for cond (in a test or a benchmark).
func eventuallyTB(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPushFileMessage: a file message pushes from its own transaction (the thumbnail job's),
// worded in each recipient's language: "사진" / "Photo", "파일: name" / "File: name".
func TestPushFileMessage(t *testing.T) {
	ctx := context.Background()
	e := newFileEnvScanner(t, false)
	u := e.users()
	conv := e.group(u.a, u.b, u.c)
	if _, err := e.owner.Exec(`UPDATE users SET locale = 'en' WHERE id = $1`, u.c.ID); err != nil {
		t.Fatal(err)
	}
	ps := pushtest.New(t)
	keys, _ := push.GenerateKeys()
	sender, err := push.NewSender(push.Config{Keys: keys, Subject: "mailto:admin@school.example", AllowPrivate: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.svc.SetNotifyConfig(chat.NotifyConfig{MaxKeywords: 50, MaxKeywordChars: 50})
	if err := e.svc.EnablePush(chat.Push{Sender: sender, Jobs: e.runner, ConversationURL: "https://messenger.example/c/{id}",
		Preview: func(locale string, m messenger.Message) string {
			return views.FilePreview(views.WithLocale(context.Background(), locale), m)
		}}, nil); err != nil {
		t.Fatal(err)
	}
	subs := map[int64]*pushtest.Subscription{}
	for _, r := range []messenger.User{u.b, u.c} {
		s := ps.Subscribe()
		subs[r.ID] = s
		if _, err := e.owner.Exec(`INSERT INTO push_subscriptions (id, user_id, org_id, endpoint, p256dh, auth) VALUES ($1, $2, $3, $4, $5, $6)`,
			uuid.NewString(), r.ID, r.OrgID, s.Endpoint, s.P256dh, s.Auth); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range []struct {
		file   chat.UploadFile
		ko, en string
	}{
		{file("칠판.png", pngBytes(t, 40, 30)), "김선생: 사진", "김선생: Photo"},
		{file("안내문.pdf", pdfBytes), "김선생: 파일: 안내문.pdf", "김선생: File: 안내문.pdf"},
	} {
		up, _, err := e.svc.CreateUpload(ctx, u.a, conv, uuid.NewString(), "", []chat.UploadFile{c.file})
		if err != nil {
			t.Fatal(err)
		}
		if st := e.settled(u.a, up.ID); st.State != messenger.UploadClean {
			t.Fatalf("upload %+v", st)
		}
		ko := decode(t, ps.Wait(t, subs[u.b.ID], i+1, 20*time.Second)[i])
		en := decode(t, ps.Wait(t, subs[u.c.ID], i+1, 20*time.Second)[i])
		if ko.Body != c.ko || en.Body != c.en || ko.Title != "3학년 1반" {
			t.Fatalf("file pushes: %q / %q (title %q)", ko.Body, en.Body, ko.Title)
		}
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	if m := metric(t, reg, name); m != nil {
		return m.GetGauge().GetValue()
	}
	return -1
}

// histogram answers the sample count and sum of reg's histogram name.
func histogram(t *testing.T, reg *prometheus.Registry, name string) (count uint64, sum float64) {
	t.Helper()
	h := metric(t, reg, name).GetHistogram() // nil-safe: 0, 0 before any sample
	return h.GetSampleCount(), h.GetSampleSum()
}

// metric answers reg's metric name, which has no labels; nil if it is not there.
func metric(t *testing.T, reg *prometheus.Registry, name string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0]
		}
	}
	return nil
}

// TestPushAnnouncementInReadersLanguage: the zone's announcements are titled in each
// reader's language.
func TestPushAnnouncementInReadersLanguage(t *testing.T) {
	e := newPushEnv(t, pushOpts{})
	u := e.users()
	e.exec(`UPDATE users SET locale = 'en' WHERE id = $1`, u.student.ID)
	parent, student := e.subscribe(u.parent), e.subscribe(u.student)
	var ann int64
	if err := e.db.InTx(context.Background(), u.teacher.Identity(), func(tx *store.Tx) error {
		var err error
		ann, _, err = tx.ZoneAnnouncement(context.Background())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	e.send(u.teacher, ann, "내일은 휴교입니다")
	ko := decode(t, e.svcP.Wait(t, parent, 1, 20*time.Second)[0])
	en := decode(t, e.svcP.Wait(t, student, 1, 20*time.Second)[0])
	if ko.Title != "학교 공지" || en.Title != "Announcements" || en.Lang != "en" {
		t.Errorf("announcement titles %q (ko) and %q (en, lang %q)", ko.Title, en.Title, en.Lang)
	}
}
