package handlers_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dreamseed/messenger"
)

// TestUserMovesAPI: a portal token that names another organization for a known user (a
// teacher transferred to another school) is an ordinary sign-in, 200 and not 500; the
// conversation list then holds only the new school's conversations, and the old school's
// members hear live that the teacher left. Moving back is the same, and finds nothing of
// before.
func TestUserMovesAPI(t *testing.T) {
	e := newEnv(t, nil)
	colleague := sign(t, validClaims("a2", "이서연", "org-a"))
	colleagueStream := e.openStream(colleague, "")

	api := func(token, method, path, body string) (int, string) {
		t.Helper()
		var r *strings.Reader
		if body != "" {
			r = strings.NewReader(body)
		} else {
			r = strings.NewReader("")
		}
		resp := e.do(nil, method, path, r, map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"})
		return resp.StatusCode, readBody(t, resp)
	}
	list := func(token string) []messenger.APIConversation {
		t.Helper()
		status, body := api(token, "GET", "/api/v1/conversations", "")
		if status != http.StatusOK {
			t.Fatalf("GET /api/v1/conversations: %d %s", status, body)
		}
		var out struct {
			Conversations []messenger.APIConversation `json:"conversations"`
		}
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatal(err)
		}
		return out.Conversations
	}

	inA := sign(t, validClaims("t1", "김선영", "org-a"))
	status, body := api(inA, "POST", "/api/v1/conversations", `{"kind": "group", "title": "5학년 2반", "participant_ids": ["a2"]}`)
	if status != http.StatusCreated {
		t.Fatalf("create group: %d %s", status, body)
	}
	var group messenger.APIConversation
	if err := json.Unmarshal([]byte(body), &group); err != nil {
		t.Fatal(err)
	}
	if status, body := api(inA, "POST", "/api/v1/conversations/"+strconv.FormatInt(group.ID, 10)+"/messages", `{"body": "안녕하세요"}`); status != http.StatusCreated {
		t.Fatalf("send: %d %s", status, body)
	}

	onlyAnnouncements := func(token, what string) {
		t.Helper()
		for _, c := range list(token) {
			if c.Kind != messenger.KindAnnouncement {
				t.Errorf("%s: the list holds %s %d %q", what, c.Kind, c.ID, c.Title)
			}
		}
	}

	// A → B: the token now says org-b.
	// (iat counts seconds, and only a token issued after the newest one moves the user.)
	movedClaims := validClaims("t1", "김선영", "org-b")
	movedClaims["iat"] = time.Now().Unix() + 1
	inB := sign(t, movedClaims)
	if status, body := api(inB, "GET", "/api/v1/me", ""); status != http.StatusOK {
		t.Fatalf("GET /api/v1/me after moving: %d %s", status, body)
	}
	onlyAnnouncements(inB, "moved to org-b")
	if status, _ := api(inB, "GET", "/api/v1/conversations/"+strconv.FormatInt(group.ID, 10)+"/messages", ""); status != http.StatusNotFound {
		t.Errorf("the old group's messages after moving: %d, want 404", status)
	}

	// The colleague hears it live, and the group is theirs now.
	var notice messenger.APIMessage
	for notice.Kind != messenger.MessageSystem {
		ev := nextEvent(t, colleagueStream)
		if ev.typ == "message.new" {
			if err := json.Unmarshal([]byte(ev.data), &notice); err != nil {
				t.Fatal(err)
			}
		}
	}
	if notice.ConversationID != group.ID || notice.Event == nil || notice.Event.Type != messenger.EventLeft || notice.Event.Actor != "김선영" {
		t.Errorf("the colleague heard %+v, want 김선영's left notice in the group", notice)
	}
	found := false
	for _, c := range list(colleague) {
		if c.ID == group.ID {
			found = true
			if len(c.Participants) != 1 || c.Participants[0].Role != messenger.ConvAdmin {
				t.Errorf("the group after the move: %+v, want the colleague alone, as admin", c.Participants)
			}
		}
	}
	if !found {
		t.Error("the colleague lost the group")
	}

	// A token issued before the move that still names org-a (an app that has not refreshed
	// it) is refused, and moves nobody.
	stale := validClaims("t1", "김선영", "org-a")
	stale["iat"] = time.Now().Add(-time.Hour).Unix()
	if status, body := api(sign(t, stale), "GET", "/api/v1/conversations", ""); status != http.StatusUnauthorized ||
		!strings.Contains(body, `"code":"unauthorized"`) {
		t.Errorf("a token from before the move: %d %s, want 401", status, body)
	}
	onlyAnnouncements(inB, "after the stale token")
	if status, _ := api(inB, "GET", "/api/v1/me", ""); status != http.StatusOK {
		t.Errorf("the current token after the stale one: %d", status)
	}

	// B → A again, with a token the portal issues now: nothing of before.
	back := validClaims("t1", "김선영", "org-a")
	back["iat"] = time.Now().Unix() + 2 // issued after inB
	inA = sign(t, back)
	if status, body := api(inA, "GET", "/api/v1/me", ""); status != http.StatusOK {
		t.Fatalf("GET /api/v1/me after moving back: %d %s", status, body)
	}
	onlyAnnouncements(inA, "back in org-a")
	if n := len(list(inA)); n != 1 {
		t.Errorf("back in org-a the list holds %d conversations, want the zone's announcements", n)
	}
	if status, _ := api(inA, "GET", "/api/v1/conversations/"+strconv.FormatInt(group.ID, 10)+"/messages", ""); status != http.StatusNotFound {
		t.Errorf("the old group's messages after moving back: %d, want 404", status)
	}
}
