package store_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// TestUserMoves: a teacher whose portal organization changes (transferred to another
// school) leaves the old school's conversations, which stay with their members with a
// "left" notice (and the admin role passed on), audit-logged, and starts afresh in the new
// school. Coming back later starts afresh again: nothing of before is resurrected.
func TestUserMoves(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	teacher := storetest.MustSignIn(t, db, "t1", "김선영", "org-a", "zone-a", messenger.RoleTeacher)
	colleague := storetest.MustSignIn(t, db, "a2", "이서연", "org-a", "zone-a", messenger.RoleTeacher)
	parent := storetest.MustSignIn(t, db, "a3", "박지호", "org-a", "zone-a", messenger.RoleParent)
	newColleague := storetest.MustSignIn(t, db, "b1", "최유나", "org-b", "zone-b", messenger.RoleTeacher)

	inTx := func(u messenger.User, fn func(tx *store.Tx) error) {
		t.Helper()
		if err := db.InTx(ctx, u.Identity(), fn); err != nil {
			t.Fatal(err)
		}
	}
	var group, direct int64
	inTx(teacher, func(tx *store.Tx) (err error) {
		if group, err = tx.CreateGroup(ctx, "5학년 2반", []int64{colleague.ID, parent.ID}); err != nil {
			return err
		}
		if direct, _, err = tx.DirectConversation(ctx, colleague.ID); err != nil {
			return err
		}
		for _, c := range []int64{group, direct} {
			if _, err := tx.InsertMessage(ctx, c, store.NewMessage{Kind: messenger.MessageText, Body: "옛 학교의 메시지"}); err != nil {
				return err
			}
		}
		return nil
	})

	// listed answers the conversations u sees in their list, by id.
	listed := func(u messenger.User) map[int64]messenger.Conversation {
		t.Helper()
		out := map[int64]messenger.Conversation{}
		inTx(u, func(tx *store.Tx) error {
			convs, err := tx.Conversations(ctx, nil, 100)
			for _, c := range convs {
				out[c.ID] = c
			}
			return err
		})
		return out
	}
	onlyAnnouncements := func(u messenger.User, what string) {
		t.Helper()
		convs := listed(u)
		if len(convs) != 1 {
			t.Errorf("%s: %d conversations listed, want only the zone's announcements", what, len(convs))
		}
		for _, c := range convs {
			if c.Kind != messenger.KindAnnouncement {
				t.Errorf("%s: lists %s %d %q", what, c.Kind, c.ID, c.Title)
			}
		}
	}

	// A → B.
	moved := signInNow(t, db, "t1", "김선영", "org-b", "zone-b", messenger.RoleTeacher)
	if moved.OrgID != newColleague.OrgID || moved.ZoneID != newColleague.ZoneID {
		t.Fatalf("after the move the teacher is of org %d zone %d, want %d %d", moved.OrgID, moved.ZoneID, newColleague.OrgID, newColleague.ZoneID)
	}
	onlyAnnouncements(moved, "the moved teacher")
	inTx(moved, func(tx *store.Tx) error {
		for _, c := range []int64{group, direct} {
			if _, err := tx.MessagesAfter(ctx, c, 0, 10); err != nil {
				return err
			}
			if _, err := tx.Conversation(ctx, c); messenger.ErrorCode(err) != messenger.ENOTFOUND {
				t.Errorf("the moved teacher opens old conversation %d: %v, want not found", c, err)
			}
		}
		users, err := tx.SearchUsers(ctx, "", 50)
		for _, u := range users {
			if u.OrgID != moved.OrgID {
				t.Errorf("the moved teacher finds %s of another organization", u.Sub)
			}
		}
		return err
	})

	// A request already on its way with the old identity cannot reopen the old pair.
	if err := db.InTx(ctx, teacher.Identity(), func(tx *store.Tx) error {
		_, _, err := tx.DirectConversation(ctx, colleague.ID)
		return err
	}); messenger.ErrorCode(err) != messenger.EFORBIDDEN {
		t.Errorf("the retired user reopening the old direct conversation: %v, want forbidden", err)
	}

	// The old school keeps its conversations, with a notice, and an admin.
	for _, u := range []messenger.User{colleague, parent} {
		convs := listed(u)
		g, ok := convs[group]
		if !ok {
			t.Fatalf("%s lost the group", u.Sub)
		}
		if len(g.Participants) != 2 || g.Participants[0].Sub == "t1" || g.Participants[1].Sub == "t1" {
			t.Errorf("%s sees the group's members %v, want the two who stayed", u.Sub, g.Participants)
		}
		if countAdmins(g) != 1 {
			t.Errorf("the group has %d admins after its admin moved, want 1", countAdmins(g))
		}
	}
	inTx(colleague, func(tx *store.Tx) error {
		for _, c := range []int64{group, direct} {
			msgs, err := tx.MessagesAfter(ctx, c, 0, 10)
			if err != nil {
				return err
			}
			if len(msgs) < 2 || msgs[0].Sender.Name != "김선영" {
				t.Errorf("conversation %d lost the old message or its sender's name: %+v", c, msgs)
				continue
			}
			if left := msgs[1]; left.Kind != messenger.MessageSystem || left.Event == nil ||
				left.Event.Type != messenger.EventLeft || left.Event.Actor != "김선영" || left.Body != "김선영님이 나갔습니다." {
				t.Errorf("conversation %d: after the move comes %+v, want 김선영's left notice", c, left)
			}
		}
		entries, err := tx.AuditLog(ctx, group, 20)
		found := false
		for _, e := range entries {
			found = found || (e.Action == messenger.AuditLeft && e.Actor.Sub == "t1" && e.Details["moved"] == true)
		}
		if !found {
			t.Errorf("the group's audit log does not record the move: %+v", entries)
		}
		// The school's directory no longer lists the teacher.
		users, err2 := tx.SearchUsers(ctx, "김선영", 10)
		if len(users) != 0 {
			t.Errorf("the old school still finds the moved teacher: %+v", users)
		}
		if _, err3 := tx.UsersBySubs(ctx, []string{"t1"}); messenger.ErrorCode(err3) != messenger.ENOTFOUND {
			t.Errorf("the old school can still invite the moved teacher: %v", err3)
		}
		if err == nil {
			err = err2
		}
		return err
	})

	// B → A: back to the first school, afresh.
	back := signInNow(t, db, "t1", "김선영", "org-a", "zone-a", messenger.RoleTeacher)
	if back.OrgID != teacher.OrgID || back.ID == teacher.ID {
		t.Fatalf("back in org %d as user %d, want org %d as a new user (not %d)", back.OrgID, back.ID, teacher.OrgID, teacher.ID)
	}
	onlyAnnouncements(back, "the teacher back in the first school")
	onlyAnnouncements(storetest.MustSignIn(t, db, "b1", "최유나", "org-b", "zone-b", messenger.RoleTeacher), "the second school's teacher")
	inTx(back, func(tx *store.Tx) error {
		for _, c := range []int64{group, direct} {
			msgs, err := tx.MessagesAfter(ctx, c, 0, 10)
			if err != nil {
				return err
			}
			if len(msgs) != 0 {
				t.Errorf("back, the teacher reads %d messages of old conversation %d", len(msgs), c)
			}
		}
		return nil
	})
	// A colleague who writes to the returning teacher starts a new conversation.
	inTx(colleague, func(tx *store.Tx) error {
		id, created, err := tx.DirectConversation(ctx, back.ID)
		if err == nil && (!created || id == direct) {
			t.Errorf("writing to the returning teacher reopened %d (created %v), want a new conversation", id, created)
		}
		return err
	})
	// Signing in again with the same claims changes nothing.
	if again := storetest.MustSignIn(t, db, "t1", "김선영", "org-a", "zone-a", messenger.RoleTeacher); again.ID != back.ID {
		t.Errorf("signing in again made user %d, want %d", again.ID, back.ID)
	}
}

// signInNow signs a user in with a token the portal issues now (it carries iat, as a
// token that moves the user must).
func signInNow(t *testing.T, db *store.DB, sub, name, org, zone, role string) messenger.User {
	t.Helper()
	u, err := db.SignIn(context.Background(), store.SignInParams{
		Issuer: "dreamseed-portal", Sub: sub, OrgID: org, ZoneID: zone, Name: name, Role: role, Locale: "ko",
		IssuedAt: time.Now(),
	})
	if err != nil {
		t.Fatalf("sign in %s to %s: %v", sub, org, err)
	}
	return u
}

func countAdmins(c messenger.Conversation) int {
	n := 0
	for _, p := range c.Participants {
		if p.ConvRole == messenger.ConvAdmin {
			n++
		}
	}
	return n
}

// TestMoveGuards: a token issued before the user's move that still names the old
// organization (an app that has not refreshed it) is refused, and does not move them
// back out of their new school's conversations; and the retired user of the old school
// (a request already on its way with the old identity) cannot join anything there again.
func TestMoveGuards(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	signIn := func(sub, org string, issued time.Time) (messenger.User, error) {
		return db.SignIn(ctx, store.SignInParams{
			Issuer: "dreamseed-portal", Sub: sub, OrgID: org, ZoneID: org + "-zone", Name: "김선영",
			Role: messenger.RoleTeacher, Locale: "ko", IssuedAt: issued,
		})
	}
	oldToken := time.Now().Add(-time.Hour)
	teacher, err := signIn("t1", "org-a", oldToken)
	if err != nil {
		t.Fatal(err)
	}
	colleague := storetest.MustSignIn(t, db, "a2", "이서연", "org-a", "org-a-zone", messenger.RoleTeacher)
	newColleague := storetest.MustSignIn(t, db, "b1", "최유나", "org-b", "org-b-zone", messenger.RoleTeacher)
	moved, err := signIn("t1", "org-b", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var group int64
	if err := db.InTx(ctx, moved.Identity(), func(tx *store.Tx) (err error) {
		group, err = tx.CreateGroup(ctx, "새 학교", []int64{newColleague.ID})
		return err
	}); err != nil {
		t.Fatal(err)
	}

	if _, err := signIn("t1", "org-a", oldToken); messenger.ErrorCode(err) != messenger.EUNAUTHORIZED {
		t.Fatalf("a token from before the move: %v, want unauthorized", err)
	}
	if err := db.InTx(ctx, moved.Identity(), func(tx *store.Tx) error {
		_, err := tx.Conversation(ctx, group)
		return err
	}); err != nil {
		t.Errorf("after the stale token the teacher lost the new school's group: %v", err)
	}
	// A token without iat signs the user in to their current school, but cannot move them:
	// an old one, still within its lifetime, would move them back on any request.
	if again, err := signIn("t1", "org-b", time.Time{}); err != nil || again.ID != moved.ID {
		t.Errorf("a token without iat naming the current school: %v %v", again.ID, err)
	}
	if _, err := signIn("t1", "org-a", time.Time{}); messenger.ErrorCode(err) != messenger.EUNAUTHORIZED {
		t.Errorf("a token without iat naming another school: %v, want unauthorized", err)
	}
	if err := db.InTx(ctx, moved.Identity(), func(tx *store.Tx) error {
		_, err := tx.Conversation(ctx, group)
		return err
	}); err != nil {
		t.Errorf("after the token without iat the teacher lost the new school's group: %v", err)
	}

	// The retired user of org A: no conversation, direct or group, takes them in again.
	for what, fn := range map[string]func(tx *store.Tx) error{
		"a direct conversation": func(tx *store.Tx) error { _, _, err := tx.DirectConversation(ctx, colleague.ID); return err },
		"a group": func(tx *store.Tx) error {
			_, err := tx.CreateGroup(ctx, "옛 학교", []int64{colleague.ID})
			return err
		},
	} {
		if err := db.InTx(ctx, teacher.Identity(), fn); messenger.ErrorCode(err) != messenger.EFORBIDDEN {
			t.Errorf("the retired user starting %s in the old school: %v, want forbidden", what, err)
		}
	}
	if err := db.InTx(ctx, colleague.Identity(), func(tx *store.Tx) error {
		_, _, err := tx.DirectConversation(ctx, teacher.ID)
		return err
	}); err == nil {
		t.Error("a colleague started a conversation with the retired user")
	}
}

// waitForLockOrDone waits until some backend of the test database waits on a lock, or
// done is closed.
func waitForLockOrDone(t *testing.T, w wall, done <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return
		default:
		}
		if w.value(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) != "0" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("nothing waited on a lock, nothing finished")
}

const sqlMoveT1 = `SELECT * FROM app_sign_in('dreamseed-portal', 't1', 'org-b', 'zone-b', '김선영', '', 'teacher', 'ko', now())`

// TestInviteDuringMove: an invitation of a user who is moving, concurrent with the move,
// does not make the retired user an active member again.
func TestInviteDuringMove(t *testing.T) {
	ctx := context.Background()
	db, d := storetest.NewDB(t)
	w := newWall(t, d)
	teacher := storetest.MustSignIn(t, db, "t1", "김선영", "org-a", "zone-a", messenger.RoleTeacher)
	colleague := storetest.MustSignIn(t, db, "a2", "이서연", "org-a", "zone-a", messenger.RoleTeacher)
	parent := storetest.MustSignIn(t, db, "a3", "박지호", "org-a", "zone-a", messenger.RoleParent)
	var group int64
	if err := db.InTx(ctx, colleague.Identity(), func(tx *store.Tx) (err error) {
		group, err = tx.CreateGroup(ctx, "교무실", []int64{parent.ID})
		return err
	}); err != nil {
		t.Fatal(err)
	}

	// The move, as the sign-in path makes it (no user settings), left open.
	move, err := w.app.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer move.Rollback()
	if _, err := move.Exec(sqlMoveT1); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var inviteErr error
	go func() {
		defer close(done)
		inviteErr = w.tryTx(colleague, func(tx *sql.Tx) error {
			_, err := tx.Exec(`SELECT app_invite($1, $2)`, group, pq.Array([]int64{teacher.ID}))
			return err
		})
	}()
	waitForLockOrDone(t, w, done)
	if err := move.Commit(); err != nil {
		t.Fatal(err)
	}
	<-done
	if v := w.value(`SELECT count(*) FROM conversation_participants WHERE conversation_id = $1 AND user_id = $2 AND left_at IS NULL`, group, teacher.ID); v != "0" {
		t.Errorf("the retired user is an active member of a group after an invitation during their move (invite: %v)", inviteErr)
	}
}

// TestSendDuringMove: a user sending while their move runs (the send holds its
// membership, the move waits for it) does not deadlock with the move: both finish.
func TestSendDuringMove(t *testing.T) {
	ctx := context.Background()
	db, d := storetest.NewDB(t)
	w := newWall(t, d)
	teacher := storetest.MustSignIn(t, db, "t1", "김선영", "org-a", "zone-a", messenger.RoleTeacher)
	colleague := storetest.MustSignIn(t, db, "a2", "이서연", "org-a", "zone-a", messenger.RoleTeacher)
	var group int64
	if err := db.InTx(ctx, colleague.Identity(), func(tx *store.Tx) (err error) {
		group, err = tx.CreateGroup(ctx, "교무실", []int64{teacher.ID})
		return err
	}); err != nil {
		t.Fatal(err)
	}

	send := w.begin(teacher)
	defer send.Rollback()
	// The send's first statement holds the sender's membership (sqlCheckMessage).
	if _, err := send.Exec(`SELECT 1 FROM conversation_participants WHERE conversation_id = $1 AND user_id = $2 AND left_at IS NULL FOR SHARE`,
		group, teacher.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var moveErr error
	go func() {
		defer close(done)
		move, err := w.app.Begin()
		if err != nil {
			moveErr = err
			return
		}
		defer move.Rollback()
		if _, moveErr = move.Exec(sqlMoveT1); moveErr == nil {
			moveErr = move.Commit()
		}
	}()
	waitForLockOrDone(t, w, done)
	_, err := send.Exec(`INSERT INTO messages (conversation_id, org_id, sender_id, kind, body) VALUES ($1, $2, $3, 'text', '떠나기 전에')`,
		group, teacher.OrgID, teacher.ID)
	if err == nil {
		err = send.Commit()
	}
	if err != nil {
		t.Errorf("the send: %v", err)
		send.Rollback()
	}
	<-done
	if moveErr != nil {
		t.Errorf("the move: %v", moveErr)
	}
	if v := w.value(`SELECT string_agg(coalesce(event->>'type', body), ',' ORDER BY seq) FROM messages WHERE conversation_id = $1`, group); v != "떠나기 전에,left" {
		t.Errorf("the group holds %q, want the message and then the left notice", v)
	}
}

// TestConcurrentMoves: two tokens naming two other schools race for one user (the portal
// moved them to B, then soon after to C, and both apps sign in at once). Whichever request
// commits first, the newer token decides: B first, C's request (retried after B's
// commit) moves the user on to C; C first, B's older token is refused and moves nobody.
func TestConcurrentMoves(t *testing.T) {
	ctx := context.Background()
	base := time.Now().Truncate(time.Second)
	issuedB, issuedC := base.Add(-10*time.Second), base.Add(-5*time.Second) // whole seconds, as iat is
	for _, order := range []struct {
		name          string
		first, second string // organizations, in commit order
	}{
		{"B then C", "org-b", "org-c"},
		{"C then B", "org-c", "org-b"},
	} {
		t.Run(order.name, func(t *testing.T) {
			db, d := storetest.NewDB(t)
			w := newWall(t, d)
			teacher, err := db.SignIn(ctx, store.SignInParams{
				Issuer: "dreamseed-portal", Sub: "t1", OrgID: "org-a", ZoneID: "zone-a", Name: "김선영",
				Role: messenger.RoleTeacher, Locale: "ko", IssuedAt: base.Add(-2 * time.Hour),
			})
			if err != nil {
				t.Fatal(err)
			}
			// The teacher has been in school A for an hour.
			w.value(`UPDATE users SET created_at = now() - interval '1 hour' WHERE id = $1 RETURNING id`, teacher.ID)
			issued := map[string]time.Time{"org-b": issuedB, "org-c": issuedC}

			// The first request's sign-in, left open with the user's row locked.
			first, err := w.app.Begin()
			if err != nil {
				t.Fatal(err)
			}
			defer first.Rollback()
			if _, err := first.Exec(`SELECT * FROM app_sign_in('dreamseed-portal', 't1', $1, $1 || '-zone', '김선영', '', 'teacher', 'ko', $2)`,
				order.first, issued[order.first]); err != nil {
				t.Fatal(err)
			}
			// The second request, as the sign-in path makes it (retried when told to).
			done := make(chan struct{})
			var second messenger.User
			var secondErr error
			go func() {
				defer close(done)
				second, secondErr = db.SignIn(ctx, store.SignInParams{
					Issuer: "dreamseed-portal", Sub: "t1", OrgID: order.second, ZoneID: order.second + "-zone", Name: "김선영",
					Role: messenger.RoleTeacher, Locale: "ko", IssuedAt: issued[order.second],
				})
			}()
			waitForLockOrDone(t, w, done)
			if err := first.Commit(); err != nil {
				t.Fatal(err)
			}
			<-done

			if order.second == "org-c" {
				if secondErr != nil {
					t.Fatalf("the newer token (org-c) after the older one moved the user: %v, want moved to org-c", secondErr)
				}
			} else if messenger.ErrorCode(secondErr) != messenger.EUNAUTHORIZED {
				t.Fatalf("the older token (org-b) after the newer one moved the user: %v (user %d), want unauthorized", secondErr, second.ID)
			}
			if org := w.value(`SELECT o.portal_id FROM users u JOIN organizations o ON o.id = u.org_id WHERE u.sub = 't1' AND u.moved_at IS NULL`); org != "org-c" {
				t.Errorf("the teacher is current in %q, want org-c (the newer token)", org)
			}
			// Each move retired one row: A's, and B's when C came second.
			want := map[string]string{"B then C": "org-a,org-b", "C then B": "org-a"}[order.name]
			if got := w.value(`SELECT string_agg(o.portal_id, ',' ORDER BY u.id) FROM users u JOIN organizations o ON o.id = u.org_id WHERE u.sub = 't1' AND u.moved_at IS NOT NULL`); got != want {
				t.Errorf("retired rows of %q, want %q", got, want)
			}
			// The older token, later on, moves nobody back.
			if _, err := db.SignIn(ctx, store.SignInParams{
				Issuer: "dreamseed-portal", Sub: "t1", OrgID: "org-b", ZoneID: "org-b-zone", Name: "김선영",
				Role: messenger.RoleTeacher, Locale: "ko", IssuedAt: issuedB,
			}); messenger.ErrorCode(err) != messenger.EUNAUTHORIZED {
				t.Errorf("the older token again: %v, want unauthorized", err)
			}
		})
	}
}

// TestNewestTokenDecides: the user row remembers the newest token that signed it in, not
// the first: after a newer token of the same school, a token for another school issued in
// between is refused. A newer token of the same school changes nothing the user sees:
// their unread notices stay unread.
func TestNewestTokenDecides(t *testing.T) {
	ctx := context.Background()
	db, d := storetest.NewDB(t)
	w := newWall(t, d)
	base := time.Now().Truncate(time.Second)
	signIn := func(sub, org string, issued time.Time) (messenger.User, error) {
		return db.SignIn(ctx, store.SignInParams{
			Issuer: "dreamseed-portal", Sub: sub, OrgID: org, ZoneID: org + "-zone", Name: sub,
			Role: messenger.RoleTeacher, Locale: "ko", IssuedAt: issued,
		})
	}
	teacher, err := signIn("t1", "org-a", base.Add(-3*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// The teacher has been in school A for an hour, signed in by ever newer tokens.
	w.value(`UPDATE users SET created_at = now() - interval '1 hour' WHERE id = $1 RETURNING id`, teacher.ID)
	writer := storetest.MustSignIn(t, db, "a2", "이서연", "org-a", "org-a-zone", messenger.RoleTeacher)
	if err := db.InTx(ctx, writer.Identity(), func(tx *store.Tx) error {
		id, _, err := tx.ZoneAnnouncement(ctx)
		if err != nil {
			return err
		}
		_, err = tx.InsertMessage(ctx, id, store.NewMessage{Kind: messenger.MessageText, Body: "공지", CanAnnounce: true})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	unread := func() int64 {
		t.Helper()
		var n int64
		if err := db.InTx(ctx, teacher.Identity(), func(tx *store.Tx) error {
			counts, err := tx.UnreadCounts(ctx)
			for _, c := range counts {
				n += c
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := unread(); n != 1 {
		t.Fatalf("the teacher has %d unread, want the notice", n)
	}

	// A newer token of the same school.
	if again, err := signIn("t1", "org-a", base.Add(-time.Minute)); err != nil || again.ID != teacher.ID {
		t.Fatalf("a newer token of the same school: user %d, %v; want user %d", again.ID, err, teacher.ID)
	}
	if n := unread(); n != 1 {
		t.Errorf("after a newer token the teacher has %d unread, want the notice still", n)
	}
	// A token for school B issued between the two is older than the newest: refused.
	if _, err := signIn("t1", "org-b", base.Add(-2*time.Minute)); messenger.ErrorCode(err) != messenger.EUNAUTHORIZED {
		t.Errorf("a token for another school older than the newest sign-in: %v, want unauthorized", err)
	}
	// So is one issued in the same second as the newest: which came first is unknown.
	if _, err := signIn("t1", "org-b", base.Add(-time.Minute)); messenger.ErrorCode(err) != messenger.EUNAUTHORIZED {
		t.Errorf("a token for another school issued with the newest sign-in: %v, want unauthorized", err)
	}
	if n := unread(); n != 1 {
		t.Errorf("after the refused tokens the teacher has %d unread, want the notice still", n)
	}
	// A token issued after it moves the teacher.
	moved, err := signIn("t1", "org-b", base)
	if err != nil || moved.ID == teacher.ID {
		t.Fatalf("a newer token for another school: user %d, %v; want a new user", moved.ID, err)
	}
}
