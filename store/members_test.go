package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// TestListCarriesFirstMembersAndCount: the conversation list carries a group's first
// store.ListMembers members in the order they joined and its count of active members; the
// conversation itself carries them all; the count follows every change of membership
// (invite, removal, leaving, a direct conversation reopened), each seen by every member.
func TestListCarriesFirstMembersAndCount(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	admin := storetest.MustSignIn(t, db, "t1", "김선생", "org-a", "zone-a", messenger.RoleTeacher)
	var members []messenger.User
	var ids []int64
	for i := range 8 {
		u := storetest.MustSignIn(t, db, fmt.Sprintf("s%d", i), fmt.Sprintf("학생%d", i), "org-a", "zone-a", messenger.RoleStudent)
		members, ids = append(members, u), append(ids, u.ID)
	}
	late := storetest.MustSignIn(t, db, "late", "늦은학생", "org-a", "zone-a", messenger.RoleStudent)

	var group, direct int64
	err := db.InTx(ctx, admin.Identity(), func(tx *store.Tx) error {
		var err error
		if group, err = tx.CreateGroup(ctx, "3학년 1반", ids); err != nil {
			return err
		}
		direct, _, err = tx.DirectConversation(ctx, members[0].ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// listed answers the group and the direct conversation as u's list has them, and the
	// group as its own read has it.
	listed := func(u messenger.User) (g, d, full messenger.Conversation) {
		t.Helper()
		err := db.InTx(ctx, u.Identity(), func(tx *store.Tx) error {
			convs, err := tx.Conversations(ctx, nil, 50)
			if err != nil {
				return err
			}
			for _, c := range convs {
				switch c.ID {
				case group:
					g = c
				case direct:
					d = c
				}
			}
			full, err = tx.Conversation(ctx, group)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return g, d, full
	}
	subs := func(ps []messenger.Participant) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Sub)
		}
		return out
	}
	check := func(what string, u messenger.User, want int64) {
		t.Helper()
		g, _, full := listed(u)
		if g.ID != group || g.MemberCount != want || full.MemberCount != want || int64(len(full.Participants)) != want {
			t.Errorf("%s, as %s: list count %d, conversation count %d with %d members, want %d",
				what, u.Sub, g.MemberCount, full.MemberCount, len(full.Participants), want)
		}
		wantListed := min(int(want), store.ListMembers)
		if len(g.Participants) != wantListed || fmt.Sprint(subs(g.Participants)) != fmt.Sprint(subs(full.Participants[:wantListed])) {
			t.Errorf("%s, as %s: the list's members %v, want the first %d of %v", what, u.Sub, subs(g.Participants), wantListed, subs(full.Participants))
		}
	}

	check("created", admin, 9)
	check("created", members[7], 9)
	g, d, full := listed(admin)
	if got := subs(g.Participants); got[0] != "t1" || len(got) != store.ListMembers {
		t.Errorf("the list's members %v: want the creator first, %d of them", got, store.ListMembers)
	}
	if full.Participants[0].ConvRole != messenger.ConvAdmin {
		t.Errorf("the creator's role %q", full.Participants[0].ConvRole)
	}
	if d.MemberCount != 2 || len(d.Participants) != 2 || d.DisplayTitle(admin.ID, messenger.LangKorean) != members[0].Name {
		t.Errorf("the direct conversation in the list: %d members %v, titled %q", d.MemberCount, subs(d.Participants), d.DisplayTitle(admin.ID, messenger.LangKorean))
	}

	mustTx := func(u messenger.User, fn func(tx *store.Tx) error) {
		t.Helper()
		if err := db.InTx(ctx, u.Identity(), fn); err != nil {
			t.Fatal(err)
		}
	}
	mustTx(admin, func(tx *store.Tx) error { _, err := tx.AddMembers(ctx, group, []int64{late.ID}); return err })
	check("invited", late, 10)
	mustTx(admin, func(tx *store.Tx) error { return tx.RemoveMember(ctx, group, members[0].ID) })
	check("removed", admin, 9)
	g, _, _ = listed(admin)
	if got := subs(g.Participants); got[1] != "s1" {
		t.Errorf("after the first member's removal the list's members %v: want the next one in their place", got)
	}
	mustTx(members[1], func(tx *store.Tx) error { return tx.Leave(ctx, group) })
	check("left", late, 8)
	mustTx(admin, func(tx *store.Tx) error { _, err := tx.AddMembers(ctx, group, []int64{members[0].ID}); return err })
	check("invited again", members[0], 9)

	// Removals from one group at the same moment: each counts.
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := 2; i < 5; i++ {
		wg.Add(1)
		go func(u messenger.User) {
			defer wg.Done()
			errs <- db.InTx(ctx, admin.Identity(), func(tx *store.Tx) error { return tx.RemoveMember(ctx, group, u.ID) })
		}(members[i])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	check("three removed at once", admin, 6)

	// A direct conversation left and reopened.
	mustTx(members[0], func(tx *store.Tx) error { return tx.Leave(ctx, direct) })
	_, d, _ = listed(admin)
	if d.MemberCount != 1 {
		t.Errorf("the direct conversation after the other left: %d members", d.MemberCount)
	}
	mustTx(admin, func(tx *store.Tx) error { _, _, err := tx.DirectConversation(ctx, members[0].ID); return err })
	_, d, _ = listed(admin)
	if d.MemberCount != 2 || len(d.Participants) != 2 {
		t.Errorf("the direct conversation reopened: %d members %v", d.MemberCount, subs(d.Participants))
	}
}
