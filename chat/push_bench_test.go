package chat_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/store/storetest"
)

// bigGroup makes a group of 500: the sender, 100 members with a live stream open and 399
// away members, each away one with a subscription at pushtest.
func bigGroup(tb testing.TB, e *pushEnv) (messenger.User, int64) {
	tb.Helper()
	sender := storetest.MustSignIn(tb, e.db, "big-0", "김선생", "org-a", "zone-a", messenger.RoleTeacher)
	var members []messenger.User
	for i := 1; i < 500; i++ {
		u := storetest.MustSignIn(tb, e.db, fmt.Sprintf("big-%d", i), fmt.Sprintf("학부모%d", i), "org-a", "zone-a", messenger.RoleParent)
		members = append(members, u)
		if i <= 100 {
			if _, err := e.engine.Connect(context.Background(), u.ID, "tab"); err != nil {
				tb.Fatal(err)
			}
		} else {
			e.subscribe(u)
		}
	}
	return sender, e.group(sender, "전교 학부모", members...)
}

// TestBigGroupOneJob: a message to 500 members with 399 away enqueues, in the send's
// transaction, its window's sweep; the sweep enqueues the group's job, one, which pushes to
// each away member once and to nobody watching.
func TestBigGroupOneJob(t *testing.T) {
	if testing.Short() {
		t.Skip("500 members")
	}
	e := newPushEnv(t, pushOpts{delay: time.Hour})
	sender, g := bigGroup(t, e)
	e.send(sender, g, "내일 준비물 안내")
	e.send(sender, g, "내일 준비물 안내 (수정)")
	e.svc.ForgetPushSweeps() // as another process: River's unique insert meets the sweep
	m := e.send(sender, g, "내일은 재량휴업일입니다")
	// Three messages of a window: one sweep, unique by window, and no conversation's job yet.
	if n := e.count(`SELECT count(*) FROM river_job WHERE kind = 'push_sweep'`); n != 1 {
		t.Fatalf("%d sweeps for three messages of a window", n)
	}
	if n := e.count(`SELECT count(*) FROM river_job WHERE kind = 'push_message'`); n != 0 {
		t.Fatalf("%d conversation jobs before the sweep ran", n)
	}
	// The sweep finds the group's away members: one job, for the group.
	if err := e.svc.RunPushSweep(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := e.count(`SELECT count(*) FROM river_job WHERE kind = 'push_message' AND (args->>'conversation_id')::bigint = $1`, g); n != 1 {
		t.Fatalf("the sweep enqueued %d jobs for the group, want 1", n)
	}
	start := time.Now()
	if err := e.svc.RunPushJob(context.Background(), chat.PushArgs{ConversationID: g}); err != nil {
		t.Fatal(err)
	}
	t.Logf("one job, 399 pushes: %v", time.Since(start))
	if n := len(e.svcP.Pushes(nil)); n != 399 {
		t.Fatalf("%d pushes, want 399", n)
	}
	seen := map[string]bool{}
	for _, p := range e.svcP.Pushes(nil) {
		if seen[p.Subscription] {
			t.Fatalf("two pushes to %s", p.Subscription)
		}
		seen[p.Subscription] = true
		if d := decode(t, p); d.Seq != m.Seq || d.Count != 3 {
			t.Fatalf("pushed seq %d (count %d), want the newest %d (3)", d.Seq, d.Count, m.Seq)
		}
	}
	// The job again (a retry, a forged copy): the newest message went already.
	if err := e.svc.RunPushJob(context.Background(), chat.PushArgs{ConversationID: g}); err != nil {
		t.Fatal(err)
	}
	if n := len(e.svcP.Pushes(nil)); n != 399 {
		t.Fatalf("%d pushes after the job ran again, want 399", n)
	}
}

// BenchmarkPushJob runs the push job of a message to a 500-member group (399 away with a
// subscription each, 100 watching) against pushtest: one op is one job, 399 encrypted,
// VAPID-signed pushes, each decrypted by pushtest. Run with -cpu 1 for a figure per core
// (pushtest and PostgreSQL share the machine: the figure is a floor).
func BenchmarkPushJob(b *testing.B) {
	e := newPushEnv(b, pushOpts{delay: time.Hour})
	sender, g := bigGroup(b, e)
	e.send(sender, g, "내일은 재량휴업일입니다")
	a := chat.PushArgs{ConversationID: g}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		e.exec(`DELETE FROM push_marks WHERE conversation_id = $1`, g) // each op pushes again
		b.StartTimer()
		if err := e.svc.RunPushJob(context.Background(), a); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*399/b.Elapsed().Seconds(), "pushes/s")
}

// BenchmarkSend500 measures SendMessage to the 500-member group, push on (its window's sweep
// enqueued in the transaction) against push off: the send path's cost of push.
func BenchmarkSend500(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("push=%v", on), func(b *testing.B) {
			e := newPushEnv(b, pushOpts{delay: time.Hour, off: !on})
			sender, g := bigGroup(b, e)
			b.ResetTimer()
			for b.Loop() {
				if _, _, err := e.svc.SendMessage(context.Background(), sender, g, "알림장 확인 부탁드립니다", uuid.NewString()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
