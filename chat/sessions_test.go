package chat_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/store/storetest"
)

// TestBrowserSessions follows a browser's sessions through the use cases, on a real
// database: a sign-in starts one, its token signs the browser in, a newer sign-in of
// the same browser or sign-out ends it, and a user's sessions past the cap end oldest
// first.
func TestBrowserSessions(t *testing.T) {
	db, _ := storetest.NewDB(t)
	engine := realtime.NewMemory(0)
	t.Cleanup(func() { engine.Close() })
	svc := chat.NewService(db, engine, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(), nil)
	ctx := context.Background()
	teacher := storetest.MustSignIn(t, db, "sess-t1", "김교사", "org-s", "zone-s", messenger.RoleTeacher)
	parent := storetest.MustSignIn(t, db, "sess-p1", "이학부모", "org-s", "zone-s", messenger.RoleParent)

	start := func(u messenger.User, max int) chat.StartedSession {
		t.Helper()
		s, err := svc.StartSession(ctx, u, "Mozilla/5.0 test", max)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	live := func(token string) bool {
		t.Helper()
		_, err := svc.LiveSession(ctx, token)
		if err != nil && messenger.ErrorCode(err) != messenger.EUNAUTHORIZED {
			t.Fatal(err)
		}
		return err == nil
	}

	t.Run("a started session signs its user in", func(t *testing.T) {
		s := start(teacher, 20)
		if until := time.Until(s.ExpiresAt); until < chat.SessionTTL-time.Minute || until > chat.SessionTTL {
			t.Errorf("session expires in %v, want %v", until, chat.SessionTTL)
		}
		sess, err := svc.LiveSession(ctx, s.Token)
		if err != nil {
			t.Fatal(err)
		}
		if sess.Identity != teacher.Identity() || sess.CSRFToken == "" || sess.CSRFToken == s.Token {
			t.Errorf("session = %+v, want the teacher's with a CSRF token of its own", sess)
		}
		sess.LastUsedAt = time.Now().Add(-time.Hour) // as if last used an hour ago
		now := time.Now()
		u, err := svc.SessionUser(ctx, &sess, s.Token, now)
		if err != nil || u.ID != teacher.ID || u.Name != "김교사" {
			t.Fatalf("session user = %+v, %v; want the teacher", u, err)
		}
		if !sess.LastUsedAt.Equal(now) {
			t.Errorf("a stale session's use was not recorded: last used %v", sess.LastUsedAt)
		}
		if again, _ := svc.LiveSession(ctx, s.Token); now.Sub(again.LastUsedAt) > 5*time.Second {
			t.Errorf("stored last use %v, want about %v", again.LastUsedAt, now)
		}
		if touched, err := svc.TouchSession(ctx, teacher, s.Token, now, now.Add(30*time.Second)); err != nil || touched {
			t.Errorf("a session used 30 s ago was written again (%v, %v)", touched, err)
		}
		if touched, err := svc.TouchSession(ctx, teacher, s.Token, now, now.Add(2*time.Minute)); err != nil || !touched {
			t.Errorf("a session used 2 min ago was not written (%v, %v)", touched, err)
		}
		if live("not-a-token") {
			t.Error("an unknown token signs someone in")
		}
	})

	t.Run("a newer sign-in of the browser ends its session", func(t *testing.T) {
		old := start(parent, 20)
		id, ended, err := svc.EndSession(ctx, old.Token)
		if err != nil || !ended || id != parent.Identity() {
			t.Fatalf("end session = %+v, %v, %v; want the parent's ended", id, ended, err)
		}
		if live(old.Token) {
			t.Error("the replaced session still signs in")
		}
		if _, ended, err := svc.EndSession(ctx, old.Token); err != nil || ended {
			t.Errorf("ending it again = %v, %v; want nothing to end", ended, err)
		}
	})

	t.Run("sign-out ends this session, or every one", func(t *testing.T) {
		a, b, c := start(parent, 20), start(parent, 20), start(parent, 20)
		if err := svc.SignOut(ctx, parent, a.Token, false); err != nil {
			t.Fatal(err)
		}
		if live(a.Token) || !live(b.Token) || !live(c.Token) {
			t.Errorf("after signing out of one session: live %v %v %v, want false true true", live(a.Token), live(b.Token), live(c.Token))
		}
		if err := svc.SignOut(ctx, parent, b.Token, true); err != nil {
			t.Fatal(err)
		}
		if live(b.Token) || live(c.Token) {
			t.Error("a session outlived signing out everywhere")
		}
	})

	t.Run("sessions past the cap end oldest first", func(t *testing.T) {
		u := storetest.MustSignIn(t, db, "sess-t2", "박교사", "org-s", "zone-s", messenger.RoleTeacher)
		first, second := start(u, 2), start(u, 2)
		third := start(u, 2)
		if len(third.Revoked) != 1 || !slices.Equal(third.Revoked[0], auth.HashToken(first.Token)) {
			t.Errorf("the third session revoked %d sessions, want the first's hash", len(third.Revoked))
		}
		if live(first.Token) || !live(second.Token) || !live(third.Token) {
			t.Errorf("live %v %v %v, want false true true", live(first.Token), live(second.Token), live(third.Token))
		}
		if !live(start(teacher, 20).Token) {
			t.Error("another user's cap ended the teacher's session")
		}
	})
}
