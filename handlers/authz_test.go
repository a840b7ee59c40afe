package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestAuthorizationMatrix checks who may do what to a conversation, route by route: every
// cell is one subject calling one route of the JSON API or the browser pages, with the
// status it must get. A refused cell (4xx) must change nothing in the database (a
// snapshot of the conversation, its members, receipts and audit log, and the database's
// totals, taken before and after) and must not show a non-member the conversation's
// title; a successful cell must have done its work. Cells that change a group run on a
// group of their own, made fresh for the cell. Last, the database's own wall: with
// row-level security the identities of non-members read no row of the conversation.
func TestAuthorizationMatrix(t *testing.T) {
	start := time.Now()
	x := newAuthz(t)

	// The groups' cast, all of org-a (zone org-a-zone, teachers) but the foreign user: the
	// admin made the group with member, peer and removed in it, then removed removed.
	admin := x.subject(t, "admin", validClaims("az-admin", "김관리", "org-a"))
	member := x.subject(t, "member", validClaims("az-member", "이멤버", "org-a"))
	outsider := x.subject(t, "outsider", validClaims("az-outsider", "박외부", "org-a"))
	foreign := x.subject(t, "foreign", validClaims("bz-foreign", "최타교", "org-b"))
	removed := x.subject(t, "removed", validClaims("az-removed", "정퇴장", "org-a"))
	peer := x.subject(t, "peer", validClaims("az-peer", "한동료", "org-a"))          // a member acted on
	invitee := x.subject(t, "invitee", validClaims("az-invitee", "윤초대", "org-a")) // a same-org user nobody invited yet

	// The zone's announcements: a student of the zone, a teacher of it, and a user of
	// another zone of the same organization.
	studentClaims := validClaims("az-student", "서학생", "org-a")
	studentClaims["role"] = "student"
	student := x.subject(t, "zone student", studentClaims)
	teacher := x.subject(t, "zone teacher", validClaims("az-teacher", "강교사", "org-a"))
	otherZoneClaims := validClaims("az-otherzone", "오다른", "org-a")
	otherZoneClaims["zone_id"] = "org-a-zone-2"
	otherZone := x.subject(t, "other zone", otherZoneClaims)
	// Whom the refused cells try to invite: a colleague of the foreign user, and a user of
	// the other zone (not of the announcements) — never the caller, whose own sub an
	// invitation drops before anything else.
	foreignColleague := x.subject(t, "foreign colleague", validClaims("bz-colleague", "문동료", "org-b"))
	otherZoneClaims["sub"], otherZoneClaims["name"] = "az-otherzone-2", "오동료"
	otherZoneColleague := x.subject(t, "other zone colleague", otherZoneClaims)

	groupCast := []*subject{admin, member, outsider, foreign, removed}
	freshGroup := func(t *testing.T) target {
		t.Helper()
		x.groups++
		title := fmt.Sprintf("비밀 그룹 %d-%s", x.groups, uuid.NewString()[:8])
		body := fmt.Sprintf(`{"kind":"group","title":%q,"participant_ids":[%q,%q,%q]}`, title, member.sub, peer.sub, removed.sub)
		var conv struct {
			ID int64 `json:"id"`
		}
		if status, raw := x.call(t, admin, "POST", "/api/v1/conversations", body, false); status != http.StatusCreated {
			t.Fatalf("fixture: create group: status %d: %s", status, raw)
		} else if err := json.Unmarshal([]byte(raw), &conv); err != nil || conv.ID == 0 {
			t.Fatalf("fixture: create group: %q: %v", raw, err)
		}
		path := fmt.Sprintf("/api/v1/conversations/%d/participants/%s", conv.ID, removed.sub)
		if status, raw := x.call(t, admin, "DELETE", path, "", false); status != http.StatusNoContent {
			t.Fatalf("fixture: remove %s: status %d: %s", removed.sub, status, raw)
		}
		return target{conv: conv.ID, title: title, peer: peer.sub, invitee: invitee.sub}
	}

	// groupWant: what the group's admin and member get; every non-member gets 404.
	groupWant := func(forAdmin, forMember int) map[*subject]int {
		return map[*subject]int{admin: forAdmin, member: forMember, outsider: 404, foreign: 404, removed: 404}
	}
	x.run(t, matrix{
		name: "group", cast: groupCast, fixture: freshGroup,
		rows: []row{
			// JSON API.
			{apiShow, groupWant(200, 200)},
			{apiRename, groupWant(200, 403)},
			{apiLeave, groupWant(204, 204)},
			{apiInvite, groupWant(200, 200)},
			{apiInviteForeign(foreignColleague.sub), groupWant(400, 400)},
			{apiRemove, groupWant(204, 403)},
			{apiRole, groupWant(204, 403)},
			{apiMessages, groupWant(200, 200)},
			{apiSend, groupWant(201, 201)},
			{apiRead, groupWant(204, 204)},
			{apiTyping, groupWant(204, 204)},
			{apiAudit, groupWant(200, 403)},
			{apiSettings, groupWant(200, 200)},
			{apiMute, groupWant(200, 200)},
			// Pages and fragments.
			{webThread, groupWant(200, 200)},
			{webMessages, groupWant(200, 200)},
			{webHeader, groupWant(200, 200)},
			{webInvitePage, groupWant(200, 200)},
			{webInvitePeople, groupWant(200, 200)},
			{webSend, groupWant(303, 303)},
			{webSendHTMX, groupWant(201, 201)},
			{webRead, groupWant(204, 204)},
			{webTyping, groupWant(204, 204)},
			{webLeave, groupWant(303, 303)},
			{webInvite, groupWant(303, 303)},
			{webInviteForeign(foreignColleague.sub), groupWant(400, 400)},
			{webRemove, groupWant(303, 403)},
			{webRole, groupWant(303, 403)},
			{webRename, groupWant(303, 403)},
			{webAudit, groupWant(200, 403)},
			{webMute, groupWant(303, 303)},
		},
	})

	// The zone's announcement conversation, found in the teacher's list, with one notice in
	// it. It is one per zone, so every cell runs on it; a refused cell still changes nothing.
	var list struct {
		Conversations []struct {
			ID   int64  `json:"id"`
			Kind string `json:"kind"`
		} `json:"conversations"`
	}
	if status, raw := x.call(t, teacher, "GET", "/api/v1/conversations", "", false); status != 200 || json.Unmarshal([]byte(raw), &list) != nil {
		t.Fatalf("list of the zone teacher: status %d: %s", status, raw)
	}
	var zoneConv int64
	for _, c := range list.Conversations {
		if c.Kind == "announcement" {
			zoneConv = c.ID
		}
	}
	if zoneConv == 0 {
		t.Fatal("the zone teacher's list has no announcement conversation")
	}
	notice := fmt.Sprintf(`{"body":"알림장 확인 부탁드립니다","client_msg_id":%q}`, uuid.NewString())
	if status, raw := x.call(t, teacher, "POST", fmt.Sprintf("/api/v1/conversations/%d/messages", zoneConv), notice, false); status != http.StatusCreated {
		t.Fatalf("first notice: status %d: %s", status, raw)
	}
	zone := func(*testing.T) target {
		// member is of the zone too: the one the management routes try to act on.
		return target{conv: zoneConv, peer: member.sub, invitee: otherZoneColleague.sub}
	}
	zoneWant := func(forTeacher, forStudent int) map[*subject]int {
		return map[*subject]int{teacher: forTeacher, student: forStudent, otherZone: 404, foreign: 404}
	}
	x.run(t, matrix{
		name: "announcement", cast: []*subject{teacher, student, otherZone, foreign}, fixture: zone,
		rows: []row{
			{apiShow, zoneWant(200, 200)},
			{apiMessages, zoneWant(200, 200)},
			{apiSend, zoneWant(201, 403)},
			{apiRead, zoneWant(204, 204)},
			{apiTyping, zoneWant(204, 204)},
			{apiRename, zoneWant(403, 403)},
			{apiLeave, zoneWant(403, 403)},
			{apiInvite, zoneWant(403, 403)},
			{apiRemove, zoneWant(403, 403)},
			{apiRole, zoneWant(403, 403)},
			{apiAudit, zoneWant(403, 403)},
			{apiSettings, zoneWant(200, 200)},
			{apiMute, zoneWant(200, 200)},
			{webMute, zoneWant(303, 303)},
			{webThread, zoneWant(200, 200)},
			{webMessages, zoneWant(200, 200)},
			{webHeader, zoneWant(200, 200)},
			{webSend, zoneWant(303, 403)},
			{webRead, zoneWant(204, 204)},
			{webTyping, zoneWant(204, 204)},
			{webLeave, zoneWant(403, 403)},
			{webInvitePage, zoneWant(403, 403)},
			{webInvite, zoneWant(403, 403)},
			{webRemove, zoneWant(403, 403)},
			{webRole, zoneWant(403, 403)},
			{webRename, zoneWant(403, 403)},
			{webAudit, zoneWant(403, 403)},
		},
	})

	// A 1:1 conversation of admin and member: it cannot gain members nor be renamed.
	var direct struct {
		ID int64 `json:"id"`
	}
	if status, raw := x.call(t, admin, "POST", "/api/v1/conversations", fmt.Sprintf(`{"kind":"direct","participant_ids":[%q]}`, member.sub), false); status != http.StatusCreated || json.Unmarshal([]byte(raw), &direct) != nil {
		t.Fatalf("create the 1:1: status %d: %s", status, raw)
	}
	directWant := func(forParties int) map[*subject]int {
		return map[*subject]int{admin: forParties, member: forParties, outsider: 404, foreign: 404}
	}
	x.run(t, matrix{
		name: "direct", cast: []*subject{admin, member, outsider, foreign},
		fixture: func(*testing.T) target { return target{conv: direct.ID, peer: member.sub, invitee: invitee.sub} },
		rows: []row{
			{apiShow, directWant(200)},
			{apiSettings, directWant(200)},
			{apiMute, directWant(200)},
			{webMute, directWant(303)},
			{apiInvite, directWant(400)},
			{apiRename, directWant(400)},
			{webInvite, directWant(400)},
			{webInvitePage, directWant(400)},
			{webRename, directWant(400)},
		},
	})

	// The database's wall: acting as each subject with hand-written SQL under the
	// application's role, a non-member reads nothing of the group, whatever it asks.
	t.Run("row-level security", func(t *testing.T) {
		g := freshGroup(t)
		if status, raw := x.call(t, member, "POST", fmt.Sprintf("/api/v1/conversations/%d/messages", g.conv),
			fmt.Sprintf(`{"body":"비밀 이야기","client_msg_id":%q}`, uuid.NewString()), false); status != http.StatusCreated {
			t.Fatalf("message: status %d: %s", status, raw)
		}
		tables := []string{"conversations", "conversation_participants", "messages", "read_receipts", "audit_log"}
		for _, s := range []*subject{admin, member, outsider, foreign, removed} {
			seesAll := s == admin || s == member
			for _, table := range tables {
				n := x.visibleRows(t, x.identity(t, s), table, g.conv)
				x.cells++
				if seesAll && n == 0 {
					t.Errorf("[%s reads %s of the group] 0 rows, want some (the check itself is broken)", s.name, table)
				}
				if !seesAll && n != 0 {
					t.Errorf("[%s reads %s of the group] %d rows, want 0", s.name, table, n)
				}
			}
		}
		// The foreign user's id with org-a's id forged in: still not a member.
		forged := x.identity(t, foreign)
		forged.org = x.identity(t, admin).org
		for _, table := range tables {
			x.cells++
			if n := x.visibleRows(t, forged, table, g.conv); n != 0 {
				t.Errorf("[foreign user with org-a's id forged reads %s of the group] %d rows, want 0", table, n)
			}
		}
		// The zone's announcements: the zone reads them, another zone and org-b do not.
		for _, s := range []*subject{teacher, student, otherZone, foreign} {
			seesAll := s == teacher || s == student
			for _, table := range []string{"conversations", "messages"} {
				n := x.visibleRows(t, x.identity(t, s), table, zoneConv)
				x.cells++
				if seesAll && n == 0 {
					t.Errorf("[%s reads %s of the announcements] 0 rows, want some", s.name, table)
				}
				if !seesAll && n != 0 {
					t.Errorf("[%s reads %s of the announcements] %d rows, want 0", s.name, table, n)
				}
			}
		}
	})

	t.Logf("%d cells in %v", x.cells, time.Since(start).Round(time.Millisecond))
}

// authz is the state of the matrix test: one messenger, the http client of the API.
type authz struct {
	e      *env
	api    *http.Client
	groups int // fresh groups made so far, for unique titles
	cells  int
}

func newAuthz(t *testing.T) *authz {
	return &authz{
		e:   newEnv(t, nil),
		api: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
}

// subject is a user signed in both ways: a portal token for the API and a browser session.
type subject struct {
	name, sub string
	bearer    string
	browser   *http.Client
	csrf      string
}

// subject signs a user in through the API and the portal's sign-in page with the same
// claims (so neither sign-in changes the user the other made).
func (x *authz) subject(t *testing.T, name string, c claims) *subject {
	t.Helper()
	s := &subject{name: name, sub: c["sub"].(string), bearer: sign(t, c), browser: x.e.client()}
	if status, raw := x.call(t, s, "GET", "/api/v1/me", "", false); status != http.StatusOK {
		t.Fatalf("%s: API sign-in: status %d: %s", name, status, raw)
	}
	form := url.Values{"token": {s.bearer}}
	status, raw := x.send(t, s.browser, "POST", "/auth/portal", form.Encode(), map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Origin": portal, "Sec-Fetch-Site": "cross-site",
	})
	if status != http.StatusSeeOther {
		t.Fatalf("%s: browser sign-in: status %d: %s", name, status, raw)
	}
	_, page := x.send(t, s.browser, "GET", "/", "", nil)
	_, rest, ok := strings.Cut(page, `<meta name="csrf-token" content="`)
	if !ok {
		t.Fatalf("%s: no csrf-token meta on the page", name)
	}
	s.csrf, _, _ = strings.Cut(rest, `"`)
	return s
}

// send does one request and answers its status and body.
func (x *authz) send(t *testing.T, client *http.Client, method, path, body string, header map[string]string) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, x.e.srv.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := roundTrip(client, req, header)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, string(raw)
}

// call does a request as s: with their token to /api/, else with their browser session,
// CSRF token and same-origin headers, as app.js does (htmx: as an htmx request).
func (x *authz) call(t *testing.T, s *subject, method, path, body string, htmx bool) (int, string) {
	t.Helper()
	if strings.HasPrefix(path, "/api/") {
		h := map[string]string{"Authorization": "Bearer " + s.bearer}
		if body != "" {
			h["Content-Type"] = "application/json"
		}
		return x.send(t, x.api, method, path, body, h)
	}
	h := map[string]string{"X-CSRF-Token": s.csrf, "Origin": x.e.srv.URL, "Sec-Fetch-Site": "same-origin"}
	if body != "" {
		h["Content-Type"] = "application/x-www-form-urlencoded"
	}
	if htmx {
		h["HX-Request"] = "true"
	}
	return x.send(t, s.browser, method, path, body, h)
}

// target is the conversation of a cell and the people its route names.
type target struct {
	conv    int64
	title   string // a non-member must never see it; "" when there is nothing to check
	peer    string // sub of another member, whom the management routes act on
	invitee string // sub of a same-organization user who is not a member
}

// route is one URL of the messenger with the request a cell sends to it. In path and body
// {id}, {peer}, {invitee} and {uuid} stand for the cell's target and a fresh UUID.
type route struct {
	method, path, body string
	note               string // what sets this variant apart, in the cell's name
	htmx               bool
	effect             effect // what a successful call must have done
}

func (r route) String() string {
	if r.note != "" {
		return r.method + " " + r.path + " (" + r.note + ")"
	}
	return r.method + " " + r.path
}

// row is one route of a matrix and the status each subject must get.
type row struct {
	route
	want map[*subject]int
}

// matrix is a table of routes × subjects on one kind of conversation.
type matrix struct {
	name    string
	cast    []*subject
	fixture func(t *testing.T) target // the conversation of one cell
	rows    []row
}

func (x *authz) run(t *testing.T, m matrix) {
	t.Helper()
	t.Run(m.name, func(t *testing.T) {
		for _, r := range m.rows {
			for _, s := range m.cast {
				want, ok := r.want[s]
				if !ok {
					t.Fatalf("%s: no status for %s", r.route, s.name)
				}
				t.Run(r.route.String()+" as "+s.name, func(t *testing.T) {
					x.cells++
					x.cell(t, m.fixture(t), r.route, s, want)
				})
			}
		}
	})
}

// cell calls the route as s and checks the status, the error and the database.
func (x *authz) cell(t *testing.T, tg target, r route, s *subject, want int) {
	name := fmt.Sprintf("[%s as %s]", r, s.name)
	fill := strings.NewReplacer("{id}", strconv.FormatInt(tg.conv, 10), "{peer}", tg.peer,
		"{invitee}", tg.invitee, "{uuid}", uuid.NewString())
	path, body := fill.Replace(r.path), fill.Replace(r.body)

	before := x.snapshot(t, tg.conv)
	status, raw := x.call(t, s, r.method, path, body, r.htmx)
	after := x.snapshot(t, tg.conv)

	if status != want {
		t.Errorf("%s status %d, want %d; body: %.300s", name, status, want, raw)
	}
	if status >= 400 {
		if !reflect.DeepEqual(before, after) {
			t.Errorf("%s refused with %d but the database changed:\nbefore %+v\nafter  %+v", name, status, before, after)
		}
		if status == http.StatusNotFound && tg.title != "" && strings.Contains(raw, tg.title) {
			t.Errorf("%s refused with 404 but the answer shows the conversation's title", name)
		}
		if strings.HasPrefix(path, "/api/") {
			wantCode := map[int]string{400: "invalid", 403: "forbidden", 404: "not_found"}[status]
			if code, _ := decodeErrorString(raw); code != wantCode {
				t.Errorf("%s error code %q, want %q; body: %.300s", name, code, wantCode, raw)
			}
		}
		return
	}
	if status != want {
		return // the status is wrong already; what it did says little more
	}
	if r.effect == nil {
		t.Fatalf("%s succeeded but the route has no effect to check", name)
	}
	if problem := r.effect(tg, s, before, after); problem != "" {
		t.Errorf("%s status %d but %s:\nbefore %+v\nafter  %+v", name, status, problem, before, after)
	}
}

func decodeErrorString(raw string) (code, message string) {
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal([]byte(raw), &body) != nil {
		return "", ""
	}
	return body.Error.Code, body.Error.Message
}

// snapshot is what a call could change of a conversation, with the database's totals to
// catch a write anywhere else.
type snapshot struct {
	Kind, Title string
	LastSeq     int64
	Messages    int
	Members     []string // "sub role active|left", by sub
	Receipts    []string // "sub last_read_seq", by sub
	Audit       int
	Mutes       []string // "sub forever|until|- keywords" of members who muted or set keywords, by sub
	// The whole database.
	AllConversations, AllMessages, AllActiveMembers, AllAudit int
}

func (x *authz) snapshot(t *testing.T, conv int64) snapshot {
	t.Helper()
	db := x.e.owner
	var s snapshot
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("snapshot of conversation %d: %v", conv, err)
		}
	}
	check(db.QueryRow(`SELECT kind, title, last_seq FROM conversations WHERE id = $1`, conv).Scan(&s.Kind, &s.Title, &s.LastSeq))
	check(db.QueryRow(`SELECT (SELECT count(*) FROM messages WHERE conversation_id = $1),
	                          (SELECT count(*) FROM audit_log WHERE conversation_id = $1),
	                          (SELECT count(*) FROM conversations), (SELECT count(*) FROM messages),
	                          (SELECT count(*) FROM conversation_participants WHERE left_at IS NULL),
	                          (SELECT count(*) FROM audit_log)`, conv).
		Scan(&s.Messages, &s.Audit, &s.AllConversations, &s.AllMessages, &s.AllActiveMembers, &s.AllAudit))
	strs := func(query string) []string {
		rows, err := db.Query(query, conv)
		check(err)
		defer rows.Close()
		var out []string
		for rows.Next() {
			var v string
			check(rows.Scan(&v))
			out = append(out, v)
		}
		check(rows.Err())
		return out
	}
	s.Members = strs(`SELECT u.sub || ' ' || p.role || ' ' || CASE WHEN p.left_at IS NULL THEN 'active' ELSE 'left' END
	                    FROM conversation_participants p JOIN users u ON u.id = p.user_id
	                   WHERE p.conversation_id = $1 ORDER BY u.sub`)
	s.Mutes = strs(`SELECT u.sub || ' ' || CASE WHEN p.muted_until = 'infinity' THEN 'forever'
	                                            WHEN p.muted_until IS NOT NULL THEN 'until' ELSE '-' END
	                         || ' ' || p.keywords::text
	                    FROM conversation_participants p JOIN users u ON u.id = p.user_id
	                   WHERE p.conversation_id = $1 AND (p.muted_until IS NOT NULL OR p.keywords <> '{}') ORDER BY u.sub`)
	s.Receipts = strs(`SELECT u.sub || ' ' || r.last_read_seq
	                     FROM read_receipts r JOIN users u ON u.id = r.user_id
	                    WHERE r.conversation_id = $1 ORDER BY u.sub`)
	return s
}

// effect says what is wrong with a successful call's change ("" when nothing is).
type effect func(tg target, s *subject, before, after snapshot) string

// unchanged: reading, and typing (kept by the realtime engine), write nothing.
func unchanged(_ target, _ *subject, before, after snapshot) string {
	if !reflect.DeepEqual(before, after) {
		return "the database changed"
	}
	return ""
}

func membership(s snapshot, sub string) string {
	for _, m := range s.Members {
		if strings.HasPrefix(m, sub+" ") {
			return strings.TrimPrefix(m, sub+" ")
		}
	}
	return "absent"
}

// memberIs: after the call the person is role and active or left.
func memberIs(who func(target, *subject) string, state string) effect {
	return func(tg target, s *subject, _, after snapshot) string {
		if got := membership(after, who(tg, s)); got != state {
			return fmt.Sprintf("%s is %q, want %q", who(tg, s), got, state)
		}
		return ""
	}
}

var (
	peerOf  = func(tg target, _ *subject) string { return tg.peer }
	invited = func(tg target, _ *subject) string { return tg.invitee }
)

func left(tg target, s *subject, before, after snapshot) string {
	if got := membership(after, s.sub); !strings.HasSuffix(got, " left") {
		return fmt.Sprintf("%s is %q, want left", s.sub, got)
	}
	return ""
}

func posted(_ target, _ *subject, before, after snapshot) string {
	if after.Messages != before.Messages+1 || after.LastSeq != before.LastSeq+1 {
		return "no new message"
	}
	return ""
}

func renamedTo(title string) effect {
	return func(_ target, _ *subject, _, after snapshot) string {
		if after.Title != title {
			return fmt.Sprintf("the title is %q, want %q", after.Title, title)
		}
		return ""
	}
}

// readTo1: the reader's watermark is at least 1 after reading seq 1.
func readTo1(_ target, s *subject, _, after snapshot) string {
	for _, r := range after.Receipts {
		if sub, seq, _ := strings.Cut(r, " "); sub == s.sub && seq != "0" {
			return ""
		}
	}
	return fmt.Sprintf("%s's watermark did not reach 1", s.sub)
}

// mutedByCaller: the caller's own membership is muted forever with the keyword 숙제, and
// nobody else's changed.
func mutedByCaller(_ target, s *subject, before, after snapshot) string {
	var others []string
	for _, m := range before.Mutes {
		if !strings.HasPrefix(m, s.sub+" ") {
			others = append(others, m)
		}
	}
	var got []string
	mine := ""
	for _, m := range after.Mutes {
		if strings.HasPrefix(m, s.sub+" ") {
			mine = m
		} else {
			got = append(got, m)
		}
	}
	if mine != s.sub+" forever {숙제}" || !reflect.DeepEqual(others, got) {
		return fmt.Sprintf("mutes %v → %v", before.Mutes, after.Mutes)
	}
	before.Mutes, after.Mutes = nil, nil
	return unchanged(target{}, s, before, after)
}

// The routes of one conversation.
var (
	apiShow     = route{method: "GET", path: "/api/v1/conversations/{id}", effect: unchanged}
	apiRename   = route{method: "PUT", path: "/api/v1/conversations/{id}", body: `{"title":"API 새 이름"}`, effect: renamedTo("API 새 이름")}
	apiLeave    = route{method: "DELETE", path: "/api/v1/conversations/{id}", effect: left}
	apiInvite   = route{method: "POST", path: "/api/v1/conversations/{id}/participants", body: `{"user_ids":["{invitee}"]}`, effect: memberIs(invited, "member active")}
	apiRemove   = route{method: "DELETE", path: "/api/v1/conversations/{id}/participants/{peer}", effect: memberIs(peerOf, "member left")}
	apiRole     = route{method: "PUT", path: "/api/v1/conversations/{id}/participants/{peer}", body: `{"role":"admin"}`, effect: memberIs(peerOf, "admin active")}
	apiMessages = route{method: "GET", path: "/api/v1/conversations/{id}/messages", effect: unchanged}
	apiSend     = route{method: "POST", path: "/api/v1/conversations/{id}/messages", body: `{"body":"hi","client_msg_id":"{uuid}"}`, effect: posted}
	apiRead     = route{method: "POST", path: "/api/v1/conversations/{id}/read", body: `{"seq":1}`, effect: readTo1}
	apiTyping   = route{method: "POST", path: "/api/v1/conversations/{id}/typing", body: `{"typing":true}`, effect: unchanged}
	apiAudit    = route{method: "GET", path: "/api/v1/conversations/{id}/audit", effect: unchanged}
	apiSettings = route{method: "GET", path: "/api/v1/conversations/{id}/settings", effect: unchanged}
	apiMute     = route{method: "PUT", path: "/api/v1/conversations/{id}/settings", body: `{"muted_until":"forever","keywords":["숙제"]}`, effect: mutedByCaller}

	webThread       = route{method: "GET", path: "/c/{id}", effect: unchanged}
	webMessages     = route{method: "GET", path: "/c/{id}/messages", effect: unchanged}
	webHeader       = route{method: "GET", path: "/c/{id}/header", effect: unchanged}
	webInvitePage   = route{method: "GET", path: "/c/{id}/invite", effect: unchanged}
	webInvitePeople = route{method: "GET", path: "/c/{id}/invite/people?q=%EC%9C%A4", effect: unchanged}
	webSend         = route{method: "POST", path: "/c/{id}/messages", body: "body=hi&client_msg_id={uuid}", note: "form", effect: posted}
	webSendHTMX     = route{method: "POST", path: "/c/{id}/messages", body: "body=hi&client_msg_id={uuid}", note: "htmx", htmx: true, effect: posted}
	webRead         = route{method: "POST", path: "/c/{id}/read", body: "seq=1", effect: readTo1}
	webTyping       = route{method: "POST", path: "/c/{id}/typing", body: "typing=1", effect: unchanged}
	webLeave        = route{method: "POST", path: "/c/{id}/leave", effect: left}
	webInvite       = route{method: "POST", path: "/c/{id}/participants", body: "member={invitee}", effect: memberIs(invited, "member active")}
	webRemove       = route{method: "POST", path: "/c/{id}/participants/{peer}/remove", effect: memberIs(peerOf, "member left")}
	webRole         = route{method: "POST", path: "/c/{id}/participants/{peer}/role", body: "role=admin", effect: memberIs(peerOf, "admin active")}
	webRename       = route{method: "POST", path: "/c/{id}/rename", body: "title=" + url.QueryEscape("웹 새 이름"), effect: renamedTo("웹 새 이름")}
	webAudit        = route{method: "GET", path: "/c/{id}/audit", effect: unchanged}
	webMute         = route{method: "POST", path: "/c/{id}/settings", body: "mute=forever&keywords=" + url.QueryEscape("숙제"), effect: mutedByCaller}
)

// Inviting a user of another organization: refused as invalid input, nothing written.
func apiInviteForeign(sub string) route {
	r := apiInvite
	r.body, r.note = fmt.Sprintf(`{"user_ids":[%q]}`, sub), "user of another organization"
	return r
}

func webInviteForeign(sub string) route {
	r := webInvite
	r.body, r.note = "member="+url.QueryEscape(sub), "user of another organization"
	return r
}

// identity is what the application sets for a user's transactions.
type identity struct{ user, org, zone int64 }

func (x *authz) identity(t *testing.T, s *subject) identity {
	t.Helper()
	var id identity
	if err := x.e.owner.QueryRow(`SELECT id, org_id, coalesce(zone_id, 0) FROM users WHERE sub = $1`, s.sub).
		Scan(&id.user, &id.org, &id.zone); err != nil {
		t.Fatalf("identity of %s: %v", s.sub, err)
	}
	return id
}

// visibleRows counts the rows of a conversation in table that the application's role
// reads as id: the owner's connection switched to messenger_app for one transaction.
func (x *authz) visibleRows(t *testing.T, id identity, table string, conv int64) int {
	t.Helper()
	ctx := context.Background()
	tx, err := x.e.owner.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	zone := ""
	if id.zone != 0 {
		zone = strconv.FormatInt(id.zone, 10)
	}
	if _, err := tx.Exec(`SET LOCAL ROLE messenger_app`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`SELECT set_config('app.user_id', $1, true), set_config('app.org_id', $2, true), set_config('app.zone_id', $3, true)`,
		strconv.FormatInt(id.user, 10), strconv.FormatInt(id.org, 10), zone); err != nil {
		t.Fatal(err)
	}
	var who string
	var bypass bool
	if err := tx.QueryRow(`SELECT current_user, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&who, &bypass); err != nil || who != "messenger_app" || bypass {
		t.Fatalf("not acting as the application's role: %s (bypass %v, %v)", who, bypass, err)
	}
	col := "conversation_id"
	if table == "conversations" {
		col = "id"
	}
	if !slices.Contains([]string{"conversations", "conversation_participants", "messages", "read_receipts", "audit_log"}, table) {
		t.Fatalf("unknown table %s", table)
	}
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM `+table+` WHERE `+col+` = $1`, conv).Scan(&n); err != nil {
		t.Fatalf("count %s as user %d: %v", table, id.user, err)
	}
	return n
}
