package e2e

// Groups that schools run: invitations, removal, renaming, roles, the audit log and zone
// announcements, as API clients on two processes observe them, and a class group in the
// browser.

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/dreamseed/messenger/auth"
)

// newZoneUser mints a token for a user of organization org and zone zone.
func newZoneUser(t testing.TB, sub, name, org, zone, role string) testUser {
	t.Helper()
	token, err := auth.MintToken([]byte(auth.DevSecret), "messenger", auth.Claims{
		Issuer: "dreamseed-portal", Subject: sub, Name: name, OrgID: org, ZoneID: zone, Role: role,
	}, time.Hour)
	if err != nil {
		t.Fatalf("mint token for %s: %v", sub, err)
	}
	return testUser{Sub: sub, Name: name, Org: org, Role: role, Token: token}
}

type updateData struct {
	ConversationID int64  `json:"conversation_id"`
	Reason         string `json:"reason"`
}

type systemMessage struct {
	Seq   int64  `json:"seq"`
	Kind  string `json:"kind"`
	Body  string `json:"body"`
	Event *struct {
		Type    string   `json:"type"`
		Actor   string   `json:"actor"`
		Targets []string `json:"targets"`
		Title   string   `json:"title"`
	} `json:"event"`
}

// waitUpdate waits for a conversation.updated of conv with reason on c.
func waitUpdate(t *testing.T, c *sseClient, conv int64, reason string) {
	t.Helper()
	match := func(d updateData) bool { return d.ConversationID == conv && d.Reason == reason }
	if _, _, ok := waitEvents(c, "conversation.updated", 1, 5*time.Second, match); !ok {
		t.Fatalf("%s got no conversation.updated %q for conversation %d; events %v", c.user.Sub, reason, conv, typesOf(c.Events()))
	}
}

func typesOf(evs []sseEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// waitSystem waits for a system message of conv whose body is body on c.
func waitSystem(t *testing.T, c *sseClient, conv int64, body string) systemMessage {
	t.Helper()
	match := func(m systemMessage) bool { return m.Kind == "system" && m.Body == body }
	_, ms, ok := waitEvents(c, "message.new", 1, 5*time.Second, match)
	if !ok {
		var bodies []string
		_, all := eventsOfType[systemMessage](c, "message.new", nil)
		for _, m := range all {
			bodies = append(bodies, m.Body)
		}
		t.Fatalf("%s did not get the notice %q; messages %q", c.user.Sub, body, bodies)
	}
	return ms[0]
}

// TestGroupMembership: a teacher's group on two processes sharing PostgreSQL and Redis.
// Members invite, admins remove, rename and make admins, anyone leaves; every change is a
// notice in the thread and a live update for whom it concerns; a removed member is out at
// once, everywhere; the last admin leaving passes the role on; the audit log has it all.
func TestGroupMembership(t *testing.T) {
	a, b := twoServers(t)
	org := "org-groups-" + deliveryNonce()
	teacher := newUser(t, "g-teacher", "김선영", org, "teacher")
	mom := newUser(t, "g-mom", "최지훈", org, "parent")
	dad := newUser(t, "g-dad", "박준호", org, "parent")
	kid := newUser(t, "g-kid", "이민준", org, "student")
	stranger := newUser(t, "g-stranger", "오세훈", "other-"+org, "teacher")
	for _, u := range []testUser{mom, dad, kid} {
		b.api(u).me()
	}
	b.api(stranger).me()

	group := a.api(teacher).createConversation("group", "5학년 2반", mom.Sub, dad.Sub)
	if got := roles(group); got[teacher.Sub] != "admin" || got[mom.Sub] != "member" || got[dad.Sub] != "member" {
		t.Fatalf("roles after creation: %v; want the creator admin, the others members", got)
	}
	// Streams on the other process than the one acting.
	streams := map[string]*sseClient{}
	for _, u := range []testUser{mom, dad, kid} {
		c := b.newSSEClient(u)
		c.StartAndWait(10 * time.Second)
		streams[u.Sub] = c
	}
	teacherStream := a.newSSEClient(teacher)
	teacherStream.StartAndWait(10 * time.Second)

	t.Run("a member invites", func(t *testing.T) {
		var conv apiConversation
		b.api(mom).mustJSON(http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/participants", group.ID),
			map[string]any{"user_ids": []string{kid.Sub, dad.Sub}}, http.StatusOK, &conv)
		if got := roles(conv); got[kid.Sub] != "member" || len(got) != 4 {
			t.Errorf("after the invitation: %v; want four members, the child a member", got)
		}
		waitUpdate(t, streams[kid.Sub], group.ID, "added")
		m := waitSystem(t, streams[kid.Sub], group.ID, "최지훈님이 이민준님을 초대했습니다.")
		if m.Event == nil || m.Event.Type != "invited" || !slices.Equal(m.Event.Targets, []string{"이민준"}) {
			t.Errorf("the notice's event: %+v", m.Event)
		}
		waitSystem(t, teacherStream, group.ID, "최지훈님이 이민준님을 초대했습니다.")
		b.api(kid).mustJSON(http.MethodGet, fmt.Sprintf("/api/v1/conversations/%d", group.ID), nil, http.StatusOK, nil)
		// Someone of another organization cannot be invited.
		status, body := b.api(mom).do(http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/participants", group.ID),
			map[string]any{"user_ids": []string{stranger.Sub}})
		wantAPIError(t, "inviting another organization's user", status, body, http.StatusBadRequest, "invalid")
	})

	t.Run("only admins manage", func(t *testing.T) {
		path := fmt.Sprintf("/api/v1/conversations/%d", group.ID)
		status, body := b.api(mom).do(http.MethodDelete, path+"/participants/"+dad.Sub, nil)
		wantAPIError(t, "a member removing another", status, body, http.StatusForbidden, "forbidden")
		status, body = b.api(mom).do(http.MethodPut, path, map[string]any{"title": "우리 반"})
		wantAPIError(t, "a member renaming", status, body, http.StatusForbidden, "forbidden")
		status, body = b.api(mom).do(http.MethodPut, path+"/participants/"+mom.Sub, map[string]any{"role": "admin"})
		wantAPIError(t, "a member making herself admin", status, body, http.StatusForbidden, "forbidden")
		status, body = a.api(teacher).do(http.MethodPut, path+"/participants/"+teacher.Sub, map[string]any{"role": "member"})
		wantAPIError(t, "the only admin stepping down", status, body, http.StatusConflict, "conflict")
		if got := roles(a.api(teacher).conversation(group.ID)); got[mom.Sub] != "member" || got[teacher.Sub] != "admin" {
			t.Errorf("refused changes changed the roles: %v", got)
		}
	})

	t.Run("an admin renames", func(t *testing.T) {
		var conv apiConversation
		a.api(teacher).mustJSON(http.MethodPut, fmt.Sprintf("/api/v1/conversations/%d", group.ID),
			map[string]any{"title": "  5학년 2반 학부모방  "}, http.StatusOK, &conv)
		if conv.Title != "5학년 2반 학부모방" {
			t.Errorf("title %q after renaming", conv.Title)
		}
		waitSystem(t, streams[dad.Sub], group.ID, "김선영님이 그룹 이름을 '5학년 2반 학부모방'(으)로 바꿨습니다.")
		waitUpdate(t, streams[dad.Sub], group.ID, "renamed")
		status, body := a.api(teacher).do(http.MethodPut, fmt.Sprintf("/api/v1/conversations/%d", group.ID), map[string]any{"title": "   "})
		wantAPIError(t, "an empty name", status, body, http.StatusBadRequest, "invalid")
	})

	t.Run("an admin removes", func(t *testing.T) {
		a.api(teacher).mustJSON(http.MethodDelete, fmt.Sprintf("/api/v1/conversations/%d/participants/%s", group.ID, dad.Sub), nil, http.StatusNoContent, nil)
		waitUpdate(t, streams[dad.Sub], group.ID, "removed")
		waitSystem(t, streams[mom.Sub], group.ID, "김선영님이 박준호님을 내보냈습니다.")
		// From now on: not found everywhere, and nothing more of it.
		for _, route := range []struct{ method, path string }{
			{http.MethodGet, fmt.Sprintf("/api/v1/conversations/%d", group.ID)},
			{http.MethodGet, fmt.Sprintf("/api/v1/conversations/%d/messages", group.ID)},
		} {
			status, body := b.api(dad).do(route.method, route.path, nil)
			wantAPIError(t, "the removed member: "+route.method+" "+route.path, status, body, http.StatusNotFound, "not_found")
		}
		status, _, err := b.api(dad).send(t.Context(), group.ID, "아직 있나요?", uuid.NewString())
		if err == nil || status != http.StatusNotFound {
			t.Errorf("the removed member sends: status %d (%v), want 404", status, err)
		}
		before := len(streams[dad.Sub].Events())
		m := a.api(teacher).mustSend(group.ID, "내일 준비물은 색연필입니다.", uuid.NewString())
		if !streams[mom.Sub].WaitSeqs(group.ID, m.Seq, 5*time.Second) {
			t.Fatalf("a member did not get seq %d", m.Seq)
		}
		time.Sleep(300 * time.Millisecond) // what would have come has come: it went to the others already
		for _, ev := range streams[dad.Sub].Events()[before:] {
			if strings.Contains(ev.Data, fmt.Sprintf(`"conversation_id":%d`, group.ID)) {
				t.Errorf("the removed member still got %s: %s", ev.Type, ev.Data)
			}
		}
		var list struct {
			Conversations []apiConversation `json:"conversations"`
		}
		b.api(dad).mustJSON(http.MethodGet, "/api/v1/conversations", nil, http.StatusOK, &list)
		for _, c := range list.Conversations {
			if c.ID == group.ID {
				t.Error("the group is still in the removed member's list")
			}
		}
	})

	t.Run("an admin makes an admin", func(t *testing.T) {
		a.api(teacher).mustJSON(http.MethodPut, fmt.Sprintf("/api/v1/conversations/%d/participants/%s", group.ID, kid.Sub),
			map[string]any{"role": "admin"}, http.StatusNoContent, nil)
		waitSystem(t, streams[mom.Sub], group.ID, "김선영님이 이민준님을 방장으로 지정했습니다.")
		waitUpdate(t, streams[mom.Sub], group.ID, "members")
		a.api(teacher).mustJSON(http.MethodPut, fmt.Sprintf("/api/v1/conversations/%d/participants/%s", group.ID, kid.Sub),
			map[string]any{"role": "member"}, http.StatusNoContent, nil)
		waitSystem(t, streams[mom.Sub], group.ID, "김선영님이 이민준님의 방장 권한을 해제했습니다.")
		status, body := a.api(teacher).do(http.MethodPut, fmt.Sprintf("/api/v1/conversations/%d/participants/%s", group.ID, kid.Sub),
			map[string]any{"role": "owner"})
		wantAPIError(t, "an unknown role", status, body, http.StatusBadRequest, "invalid")
	})

	t.Run("the last admin leaves", func(t *testing.T) {
		a.api(teacher).mustJSON(http.MethodDelete, fmt.Sprintf("/api/v1/conversations/%d", group.ID), nil, http.StatusNoContent, nil)
		waitSystem(t, streams[mom.Sub], group.ID, "김선영님이 나갔습니다.")
		waitSystem(t, streams[mom.Sub], group.ID, "최지훈님이 방장이 되었습니다.")
		waitUpdate(t, teacherStream, group.ID, "left")
		// 최지훈 joined at the creation, before 이민준 was invited: the longest-standing.
		if got := roles(b.api(mom).conversation(group.ID)); got[mom.Sub] != "admin" || got[kid.Sub] != "member" || len(got) != 2 {
			t.Errorf("roles after the last admin left: %v; want 최지훈 admin, 이민준 member", got)
		}
	})

	t.Run("the audit log", func(t *testing.T) {
		status, body := b.api(kid).do(http.MethodGet, fmt.Sprintf("/api/v1/conversations/%d/audit", group.ID), nil)
		wantAPIError(t, "a member reading the audit log", status, body, http.StatusForbidden, "forbidden")
		var log struct {
			Entries []struct {
				Action string `json:"action"`
				Actor  struct {
					ID string `json:"id"`
				} `json:"actor"`
				Target *struct {
					ID string `json:"id"`
				} `json:"target"`
				RequestID string `json:"request_id"`
			} `json:"entries"`
		}
		b.api(mom).mustJSON(http.MethodGet, fmt.Sprintf("/api/v1/conversations/%d/audit", group.ID), nil, http.StatusOK, &log)
		var got []string
		for i := len(log.Entries) - 1; i >= 0; i-- { // oldest first
			e := log.Entries[i]
			line := e.Action + " by " + e.Actor.ID
			if e.Target != nil {
				line += " → " + e.Target.ID
			}
			got = append(got, line)
			if e.RequestID == "" {
				t.Errorf("audit entry %q has no request id", line)
			}
		}
		want := []string{
			"conversation.created by g-teacher",
			"member.invited by g-mom → g-kid",
			"conversation.renamed by g-teacher",
			"member.removed by g-teacher → g-dad",
			"member.role_changed by g-teacher → g-kid",
			"member.role_changed by g-teacher → g-kid",
			"member.role_changed by g-teacher → g-mom",
			"member.left by g-teacher",
		}
		if !slices.Equal(got, want) {
			t.Errorf("audit log, oldest first:\n got %q\nwant %q", got, want)
		}
	})

	t.Run("a 1:1 gains no members", func(t *testing.T) {
		direct := a.api(teacher).createConversation("direct", "", mom.Sub)
		status, body := a.api(teacher).do(http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/participants", direct.ID),
			map[string]any{"user_ids": []string{kid.Sub}})
		wantAPIError(t, "inviting into a 1:1", status, body, http.StatusBadRequest, "invalid")
		if n := len(a.api(teacher).conversation(direct.ID).Participants); n != 2 {
			t.Errorf("the 1:1 has %d participants", n)
		}
	})
}

func roles(c apiConversation) map[string]string {
	out := map[string]string{}
	for _, p := range c.Participants {
		out[p.ID] = p.Role
	}
	return out
}

// TestZoneAnnouncements: a zone's notices reach every user of the zone live through the
// zone's channel, across processes; only teachers and admins post; a user who was away
// resumes from their last event id and gets exactly what they missed, with no resync.
func TestZoneAnnouncements(t *testing.T) {
	a, b := twoServers(t)
	org := "org-zone-" + deliveryNonce()
	teacher := newZoneUser(t, "z-teacher", "김선영", org, "grade5", "teacher")
	student := newZoneUser(t, "z-student", "이민준", org, "grade5", "student")
	parent := newZoneUser(t, "z-parent", "최지훈", org, "grade5", "parent")
	elsewhere := newZoneUser(t, "z-other", "오세훈", org, "grade6", "student")

	notices := a.api(teacher).announcements()

	studentStream := b.newSSEClient(student)
	studentStream.Track(notices)
	studentStream.StartAndWait(10 * time.Second)
	parentStream := a.newSSEClient(parent)
	parentStream.StartAndWait(10 * time.Second)
	otherStream := b.newSSEClient(elsewhere)
	otherStream.StartAndWait(10 * time.Second)

	first := a.api(teacher).mustSend(notices, "내일은 현장 체험 학습입니다.", uuid.NewString())
	if !studentStream.WaitSeqs(notices, first.Seq, 5*time.Second) || !parentStream.WaitSeqs(notices, first.Seq, 5*time.Second) {
		t.Fatal("the zone's users did not get the notice live")
	}
	if id := studentStream.LastID(); !regexp.MustCompile(fmt.Sprintf(`\.z\d+-%d$`, first.Seq)).MatchString(id) {
		t.Errorf("the stream's position %q does not carry the announcement seq %d", id, first.Seq)
	}

	// Only teachers and admins post; the others read.
	status, body := b.api(student).do(http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/messages", notices),
		map[string]any{"body": "네!", "client_msg_id": uuid.NewString()})
	wantAPIError(t, "a student posting a notice", status, body, http.StatusForbidden, "forbidden")
	status, body = b.api(elsewhere).do(http.MethodGet, fmt.Sprintf("/api/v1/conversations/%d", notices), nil)
	wantAPIError(t, "another zone's user", status, body, http.StatusNotFound, "not_found")
	status, body = b.api(student).do(http.MethodDelete, fmt.Sprintf("/api/v1/conversations/%d", notices), nil)
	wantAPIError(t, "leaving the zone's announcements", status, body, http.StatusForbidden, "forbidden")

	// Away while three notices are posted; back with the last event id.
	studentStream.Stop()
	var seqs []int64
	for i := range 3 {
		m := a.api(teacher).mustSend(notices, fmt.Sprintf("공지 %d", i+2), uuid.NewString())
		seqs = append(seqs, m.Seq)
	}
	var unread struct {
		Conversations map[string]int64 `json:"conversations"`
	}
	b.api(student).mustJSON(http.MethodGet, "/api/v1/unread", nil, http.StatusOK, &unread)
	if n := unread.Conversations[fmt.Sprint(notices)]; n != 4 {
		t.Errorf("the student has %d unread notices, want 4", n)
	}
	_, resyncsBefore, _ := studentStream.Stats()
	studentStream.StartAndWait(10 * time.Second)
	if !studentStream.WaitSeqs(notices, seqs[2], 5*time.Second) {
		t.Fatalf("after resuming the student has %+v of the notices", studentStream.Conv(notices))
	}
	studentStream.checkExactlyOnce(t, notices, seqs[2])
	if _, resyncs, _ := studentStream.Stats(); resyncs != resyncsBefore {
		t.Errorf("resuming the zone's notices took a resync")
	}
	if snap := studentStream.Conv(notices); snap.Fetched != 0 {
		t.Errorf("%d notices came from catching up, want all from the stream's resume", snap.Fetched)
	}

	time.Sleep(200 * time.Millisecond)
	for _, ev := range otherStream.Events() {
		if strings.Contains(ev.Data, fmt.Sprintf(`"conversation_id":%d`, notices)) {
			t.Errorf("a user of another zone got %s: %s", ev.Type, ev.Data)
		}
	}
	// Presence is not announced to the whole zone: sharing a school is not knowing each
	// other. (The student went away and came back meanwhile.)
	if evs, _ := eventsOfType[presenceData](parentStream, "presence", nil); len(evs) > 0 {
		t.Errorf("a user of the zone got presence events of people they share no conversation with: %v", evs)
	}
}

// TestClassGroupInBrowser: a teacher creates a class group with three people in the
// browser, removes a parent from the member panel, and the parent's open thread closes
// with a notice and leaves their list at once; invited again, the group is back in their
// list without a reload. Screenshots of the member panel at desktop and phone widths.
func TestClassGroupInBrowser(t *testing.T) {
	srv := startServer(t)
	browser := newBrowser(t)
	dir := screenshotDir(t)

	teacher := newLiveTab(t, browser, "ko")
	signInDev(teacher, srv.URL, demoTeacher.Name)
	teacher.do(chromedp.Navigate(srv.URL+"/new"), chromedp.WaitVisible(chromedp.ID("people-q")))
	for _, sub := range []string{"demo-student-lee", "demo-student-park", demoParent.Sub} {
		teacher.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`input[name=member][value=%q]`, sub))))
	}
	teacher.do(chromedp.SetValue(chromedp.ID("group-title"), "5학년 2반 과학 모둠"))
	if _, err := runErr(teacher, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Click(chromedp.CSS(`form[action="/conversations"] button[type=submit]`)))); err != nil {
		t.Fatalf("create the group: %v", err)
	}
	teacher.do(chromedp.WaitVisible(chromedp.ID("composer")))
	var groupID int64
	if _, err := fmt.Sscanf(teacher.location(), srv.URL+"/c/%d", &groupID); err != nil {
		t.Fatalf("after creating the group the page is %s", teacher.location())
	}
	waitConnected(teacher, 1)

	parent := newLiveTab(t, browser, "ko")
	signInDev(parent, srv.URL, demoParent.Name)
	openThread(parent, fmt.Sprintf("%s/c/%d", srv.URL, groupID))

	// The member panel: four members, the teacher the admin, actions on the others.
	openMembers := func(tb *tab) {
		tb.do(chromedp.Click(chromedp.CSS("#members > summary")))
		waitJS(tb, "the member panel to open", `document.getElementById("members").open`, 3*time.Second)
	}
	openMembers(teacher)
	if n := eval[int](teacher, `document.querySelectorAll("#member-panel [data-member]").length`); n != 4 {
		t.Errorf("the member panel lists %d members, want 4", n)
	}
	if !eval[bool](teacher, fmt.Sprintf(`!!document.querySelector('[data-member=%q] [data-role=conv-admin]')`, demoTeacher.Sub)) {
		t.Error("the creator is not marked admin in the member panel")
	}
	if n := eval[int](teacher, `document.querySelectorAll("#member-panel [data-member] details").length`); n != 3 {
		t.Errorf("the admin has actions on %d members, want the 3 others", n)
	}
	screenshot(teacher, dir, "group-members-ko-1280x800", 1280, 800, false)
	screenshot(teacher, dir, "group-members-ko-390x844", 390, 844, true)
	teacher.do(chromedp.EmulateViewport(1280, 800))

	// The parent is no admin: no actions, no rename.
	openMembers(parent)
	if eval[bool](parent, `!!document.querySelector("#member-panel details, #rename-title")`) {
		t.Error("a member sees admin actions in the member panel")
	}
	parent.do(chromedp.Click(chromedp.CSS("#members > summary"))) // close it again

	// Remove the parent.
	teacher.do(
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`[data-member=%q] details > summary`, demoParent.Sub))),
	)
	if _, err := runErr(teacher, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`[data-member=%q] form[action$="/remove"] button`, demoParent.Sub))))); err != nil {
		t.Fatalf("remove the parent: %v", err)
	}
	took := waitJS(parent, "the removed parent's thread to close with a notice",
		`(document.getElementById("thread-closed") || {}).textContent?.includes("이 그룹에서 내보내졌습니다.")`, 5*time.Second)
	t.Logf("the parent's thread closed %s after the removal", took.Round(time.Millisecond))
	waitJS(parent, "the group to leave the parent's list", fmt.Sprintf(`!document.getElementById("conv-%d")`, groupID), 5*time.Second)
	if eval[bool](parent, `!!document.getElementById("composer")`) {
		t.Error("the removed parent still has a composer")
	}
	screenshot(parent, dir, "group-removed-ko-1280x800", 1280, 800, false)
	screenshot(parent, dir, "group-removed-ko-390x844", 390, 844, true)

	waitJS(teacher, "the teacher's panel to show three members after the removal",
		`document.getElementById("members").open && document.querySelectorAll("#member-panel [data-member]").length === 3`, 5*time.Second)
	waitJS(teacher, "the removal notice in the teacher's thread",
		`[...document.querySelectorAll("#messages li.msg[data-kind=system]")].some(li => li.textContent.includes("김선영님이 최지훈님을 내보냈습니다."))`, 5*time.Second)

	// An English reader sees the notices in English.
	en := newLiveTab(t, browser, "en")
	signInDev(en, srv.URL, "박서연")
	openThread(en, fmt.Sprintf("%s/c/%d", srv.URL, groupID))
	if !eval[bool](en, `[...document.querySelectorAll("#messages li.msg[data-kind=system]")].some(li => li.textContent.includes("김선영 removed 최지훈."))`) {
		t.Errorf("the English thread lacks the notice in English: %q", eval[string](en, `document.getElementById("messages").innerText`))
	}
	openMembers(en)
	screenshot(en, dir, "group-members-en-1280x800", 1280, 800, false)
	screenshot(en, dir, "group-members-en-390x844", 390, 844, true)

	// Invited again from the invitation page, the group appears in the parent's list live.
	parent.do(chromedp.EmulateViewport(1280, 800))
	parent.do(chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(listSelector)))
	waitConnected(parent, 1)
	teacher.do(chromedp.Navigate(fmt.Sprintf("%s/c/%d/invite", srv.URL, groupID)),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`input[name=member][value=%q]`, demoParent.Sub))))
	if n := eval[int](teacher, `document.querySelectorAll("#people input[name=member]").length`); n == 0 {
		t.Fatal("the invitation page offers nobody")
	}
	teacher.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`input[name=member][value=%q]`, demoParent.Sub))))
	screenshot(teacher, dir, "group-invite-ko-390x844", 390, 844, true)
	teacher.do(chromedp.EmulateViewport(1280, 800))
	if _, err := runErr(teacher, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Click(chromedp.CSS(`form[action$="/participants"] button[type=submit]`)))); err != nil {
		t.Fatalf("invite the parent: %v", err)
	}
	took = waitJS(parent, "the group to appear in the invited parent's list", fmt.Sprintf(`!!document.getElementById("conv-%d")`, groupID), 5*time.Second)
	t.Logf("the group appeared in the parent's list %s after the invitation", took.Round(time.Millisecond))

	// The audit log has it all, newest first.
	teacher.do(chromedp.Navigate(fmt.Sprintf("%s/c/%d/audit", srv.URL, groupID)), chromedp.WaitVisible(chromedp.CSS("li[data-action]")))
	actions := eval[[]string](teacher, `[...document.querySelectorAll("li[data-action]")].map(li => li.dataset.action)`)
	if want := []string{"member.invited", "member.removed", "conversation.created"}; !slices.Equal(actions, want) {
		t.Errorf("the audit page lists %q, want %q", actions, want)
	}
	screenshot(teacher, dir, "group-audit-ko-1280x800", 1280, 800, false)
	screenshot(teacher, dir, "group-audit-ko-390x844", 390, 844, true)
	checkConsole(teacher)
	checkConsole(parent)
}

// TestAnnouncementsInBrowser: the zone's announcements are in everybody's list; a teacher
// posts from the composer, a student reads it live in a read-only thread.
func TestAnnouncementsInBrowser(t *testing.T) {
	srv := startServer(t)
	browser := newBrowser(t)
	dir := screenshotDir(t)
	var notices int64
	{
		var list struct {
			Conversations []apiConversation `json:"conversations"`
		}
		newLiveAPI(t, srv, demoTeacher).call(t, http.MethodGet, "/api/v1/conversations", nil, &list, http.StatusOK)
		for _, c := range list.Conversations {
			if c.Kind == "announcement" {
				notices = c.ID
			}
		}
		if notices == 0 {
			t.Fatal("the demo teacher has no announcement conversation")
		}
	}
	url := fmt.Sprintf("%s/c/%d", srv.URL, notices)

	student := newLiveTab(t, browser, "ko")
	signInDev(student, srv.URL, "이민준")
	student.do(chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("composer-readonly")))
	waitConnected(student, 1)
	if eval[bool](student, `!!document.getElementById("composer")`) {
		t.Error("a student has a composer in the announcements")
	}
	// The zone is large: the page carries the reader's own watermark, not everyone's, and
	// the server counts who has not read each notice (the demo zone has five users).
	if n := eval[int](student, `Object.keys(JSON.parse(document.getElementById("thread").dataset.marks)).length`); n != 1 {
		t.Errorf("the announcements page carries %d watermarks, want the reader's own", n)
	}
	if got := eval[string](student, `document.querySelector("#messages li.msg .msg-unread").textContent`); got != "4" && got != "3" {
		t.Errorf("the demo notice shows %q members who have not read it, want 4 (or 3 once this reader's mark counts)", got)
	}

	teacher := newLiveTab(t, browser, "ko")
	signInDev(teacher, srv.URL, demoTeacher.Name)
	openThread(teacher, url)
	notice := "[안내] 내일 아침 8시 40분까지 운동장에 모여 주세요. " + deliveryNonce()
	typeInComposer(teacher, notice)
	teacher.do(chromedp.Click(chromedp.ID("composer-send")))
	took := waitJS(student, "the student to see the notice live", countTextJS(notice)+" === 1", 5*time.Second)
	t.Logf("the notice reached the student's thread %s after sending", took.Round(time.Millisecond))
	screenshot(student, dir, "announcements-ko-1280x800", 1280, 800, false)
	screenshot(student, dir, "announcements-ko-390x844", 390, 844, true)

	// The school's administrator reads who posted what; the student has no way there.
	if eval[bool](student, `!!document.querySelector('#thread-header a[href$="/audit"]')`) {
		t.Error("a student is offered the announcements' audit log")
	}
	admin := newLiveTab(t, browser, "ko")
	signInDev(admin, srv.URL, "정수민")
	admin.do(chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("thread-header")))
	if _, err := runErr(admin, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Click(chromedp.CSS(`#thread-header a[href$="/audit"]`)))); err != nil {
		t.Fatalf("open the announcements' audit log: %v", err)
	}
	admin.do(chromedp.WaitVisible(chromedp.CSS("li[data-action]")))
	if n := eval[int](admin, `document.querySelectorAll('li[data-action="announcement.posted"]').length`); n != 1 {
		t.Errorf("the audit log lists %d posted notices, want 1 (this test's; demo data is loaded, not posted)", n)
	}
	checkConsole(student)
	checkConsole(teacher)
	checkConsole(admin)
}
