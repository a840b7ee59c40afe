package handlers_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSettingsAPI: my settings and a conversation's, as a client sees them: the school's
// role default until I choose, quiet hours that wrap midnight, and clear refusals of
// wrong types, unknown zones, a thousand keywords, a 10 KB keyword, a bad mute, and
// another organization's or someone else's conversation (not_found), with nothing stored.
func TestSettingsAPI(t *testing.T) {
	e := newEnv(t, nil)
	for _, sub := range []string{"s1", "s2", "s3"} {
		if resp := e.apiAs(sub, "GET", "/api/v1/me", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("sign in %s: %d", sub, resp.StatusCode)
		}
	}

	type settings struct {
		Push, Email       bool
		QuietHours        *struct{ From, To string } `json:"quiet_hours"`
		QuietHoursDefault bool                       `json:"quiet_hours_default"`
		TimeZone          string                     `json:"time_zone"`
	}
	get := func() settings {
		t.Helper()
		resp := e.apiAs("s1", "GET", "/api/v1/me/settings", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("get settings: %d %s", resp.StatusCode, readBody(t, resp))
		}
		var s settings
		if err := jsonDecode(resp, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	// A teacher who never chose has the school's default for teachers.
	if s := get(); !s.Push || !s.Email || s.QuietHours == nil || s.QuietHours.From != "21:00" || s.QuietHours.To != "08:00" ||
		!s.QuietHoursDefault || s.TimeZone != "Asia/Seoul" {
		t.Errorf("defaults: %+v %+v", s, s.QuietHours)
	}

	resp := e.apiAs("s1", "PUT", "/api/v1/me/settings", map[string]any{
		"push": true, "email": false, "quiet_hours": map[string]string{"from": "22:30", "to": "06:00"}, "time_zone": "America/New_York"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("save wrapping quiet hours: %d %s", resp.StatusCode, readBody(t, resp))
	}
	if s := get(); s.Email || s.QuietHours == nil || s.QuietHours.From != "22:30" || s.QuietHours.To != "06:00" ||
		s.QuietHoursDefault || s.TimeZone != "America/New_York" {
		t.Errorf("after saving: %+v %+v", s, s.QuietHours)
	}

	refused := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"push as a string", `{"push":"yes","email":true}`, 400, "invalid"},
		{"email missing", `{"push":true}`, 400, "invalid"},
		{"an unknown zone", `{"push":true,"email":true,"time_zone":"Mars/Olympus"}`, 400, "invalid"},
		{"a path as zone", `{"push":true,"email":true,"time_zone":"../../etc/passwd"}`, 400, "invalid"},
		{"the server's Local zone", `{"push":true,"email":true,"time_zone":"Local"}`, 400, "invalid"},
		{"quiet hours of one instant", `{"push":true,"email":true,"quiet_hours":{"from":"08:00","to":"08:00"}}`, 400, "invalid"},
		{"an hour 25", `{"push":true,"email":true,"quiet_hours":{"from":"25:00","to":"08:00"}}`, 400, "invalid"},
		{"quiet hours as a string", `{"push":true,"email":true,"quiet_hours":"21-8"}`, 400, "invalid"},
		{"not JSON", `push=true`, 400, "invalid"},
	}
	for _, c := range refused {
		resp := e.do(nil, "PUT", "/api/v1/me/settings", strings.NewReader(c.body), map[string]string{
			"Authorization": "Bearer " + sign(t, validClaims("s1", "이름 s1", "org-a")), "Content-Type": "application/json"})
		code, msg := decodeError(t, resp)
		if resp.StatusCode != c.status || code != c.code || msg == "" {
			t.Errorf("%s: %d %s %q, want %d %s", c.name, resp.StatusCode, code, msg, c.status, c.code)
		}
	}
	if s := get(); s.QuietHours == nil || s.QuietHours.From != "22:30" || s.TimeZone != "America/New_York" {
		t.Errorf("a refused change changed the settings: %+v", s)
	}
	// null turns quiet hours off, even where the role has a default.
	if resp := e.apiAs("s1", "PUT", "/api/v1/me/settings", map[string]any{"push": true, "email": true, "quiet_hours": nil}); resp.StatusCode != http.StatusOK {
		t.Fatalf("quiet hours off: %d", resp.StatusCode)
	}
	if s := get(); s.QuietHours != nil || s.QuietHoursDefault {
		t.Errorf("off: %+v", s.QuietHours)
	}

	// A conversation's settings.
	resp = e.apiAs("s1", "POST", "/api/v1/conversations", map[string]any{"kind": "group", "title": "5학년 2반", "participant_ids": []string{"s2"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create group: %d %s", resp.StatusCode, readBody(t, resp))
	}
	var conv struct{ ID int64 }
	if err := jsonDecode(resp, &conv); err != nil {
		t.Fatal(err)
	}
	path := "/api/v1/conversations/" + strconv.FormatInt(conv.ID, 10) + "/settings"
	type convSettings struct {
		MutedUntil any      `json:"muted_until"`
		Keywords   []string `json:"keywords"`
	}
	resp = e.apiAs("s1", "PUT", path, map[string]any{"muted_until": "forever", "keywords": []string{" 숙제 ", "Field Trip", "숙제"}})
	var cs convSettings
	if resp.StatusCode != http.StatusOK || jsonDecode(resp, &cs) != nil || cs.MutedUntil != "forever" || strings.Join(cs.Keywords, "|") != "숙제|field trip" {
		t.Fatalf("mute forever with keywords: %d %+v", resp.StatusCode, cs)
	}
	var list struct {
		Conversations []struct {
			ID          int64
			Muted       bool
			UnreadCount int64 `json:"unread_count"`
		}
	}
	e.apiAs("s2", "POST", "/api/v1/conversations/"+strconv.FormatInt(conv.ID, 10)+"/messages", map[string]any{"body": "내일 숙제"})
	if err := jsonDecode(e.apiAs("s1", "GET", "/api/v1/conversations", nil), &list); err != nil {
		t.Fatal(err)
	}
	for _, c := range list.Conversations {
		if muted := c.ID == conv.ID; c.Muted != muted || (muted && c.UnreadCount != 1) {
			t.Errorf("in the list: %+v (muted only %d, still counting unread)", c, conv.ID)
		}
	}
	until := time.Now().Add(90 * time.Minute).UTC().Truncate(time.Second)
	resp = e.apiAs("s1", "PUT", path, map[string]any{"muted_until": until.Format(time.RFC3339)})
	if resp.StatusCode != http.StatusOK || jsonDecode(resp, &cs) != nil || cs.MutedUntil != until.Format(time.RFC3339) || len(cs.Keywords) != 2 {
		t.Errorf("mute until a time (keywords kept): %d %+v", resp.StatusCode, cs)
	}

	thousand := make([]string, 1000)
	for i := range thousand {
		thousand[i] = "단어" + strconv.Itoa(i)
	}
	badConv := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"a thousand keywords", map[string]any{"keywords": thousand}, 413, "too_large"},
		{"a 10 KB keyword", map[string]any{"keywords": []string{strings.Repeat("가", 10240/3)}}, 413, "too_large"},
		{"51 keywords", map[string]any{"keywords": thousand[:51]}, 413, "too_large"},
		{"a keyword with a line break", map[string]any{"keywords": []string{"a\nb"}}, 400, "invalid"},
		{"keywords as a string", map[string]any{"keywords": "숙제"}, 400, "invalid"},
		{"keywords of numbers", map[string]any{"keywords": []int{1, 2}}, 400, "invalid"},
		{"muted_until a number", map[string]any{"muted_until": 5}, 400, "invalid"},
		{"muted_until a word", map[string]any{"muted_until": "tomorrow"}, 400, "invalid"},
	}
	for _, c := range badConv {
		resp := e.apiAs("s1", "PUT", path, c.body)
		code, msg := decodeError(t, resp)
		if resp.StatusCode != c.status || code != c.code || msg == "" {
			t.Errorf("%s: %d %s %q, want %d %s", c.name, resp.StatusCode, code, msg, c.status, c.code)
		}
	}
	if err := jsonDecode(e.apiAs("s1", "GET", path, nil), &cs); err != nil || len(cs.Keywords) != 2 || cs.MutedUntil == nil {
		t.Errorf("refused changes changed the settings: %+v, %v", cs, err)
	}
	if _, msg := decodeError(t, e.apiAs("s1", "PUT", path, map[string]any{"keywords": thousand[:51]})); !strings.Contains(msg, "50") {
		t.Errorf("the refusal does not say the limit: %q", msg)
	}

	// Someone else's conversation: not found, in another organization or not a member.
	otherOrg := map[string]string{"Authorization": "Bearer " + sign(t, validClaims("x1", "다른 학교", "org-b")), "Content-Type": "application/json"}
	for _, method := range []string{"GET", "PUT"} {
		resp := e.do(nil, method, path, strings.NewReader(`{"muted_until":"forever"}`), otherOrg)
		if code, _ := decodeError(t, resp); resp.StatusCode != 404 || code != "not_found" {
			t.Errorf("%s by another organization: %d %s", method, resp.StatusCode, code)
		}
		resp = e.apiAs("s3", method, path, map[string]any{"muted_until": "forever"})
		if code, _ := decodeError(t, resp); resp.StatusCode != 404 || code != "not_found" {
			t.Errorf("%s by a non-member: %d %s", method, resp.StatusCode, code)
		}
	}
	resp = e.apiAs("s1", "PUT", "/api/v1/conversations/999999999/settings", map[string]any{"muted_until": nil})
	if resp.StatusCode != 404 {
		t.Errorf("a conversation that does not exist: %d", resp.StatusCode)
	}
}

// TestSettingsPages: without JavaScript, the settings form and the thread's mute and
// keyword forms save and come back (303); the list shows a muted conversation with the
// bell-off icon and a badge that is not red; my composer in a 1:1 says when the other
// person is in quiet hours and when they will be told.
func TestSettingsPages(t *testing.T) {
	e := newEnv(t, nil)
	me := e.signInBrowser("p1", "김민준", "org-a")
	csrf := e.csrfToken(me)
	e.apiAs("p2", "GET", "/api/v1/me", nil)
	post := func(path string, form url.Values) *http.Response {
		t.Helper()
		form.Set("csrf_token", csrf)
		return e.do(me, "POST", path, strings.NewReader(form.Encode()),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": e.srv.URL})
	}

	page := readBody(t, e.do(me, "GET", "/settings", nil, nil))
	for _, want := range []string{`id="settings-form"`, `id="settings-devices"`, `value="default" checked`, "(21:00-08:00)"} {
		if !strings.Contains(page, want) {
			t.Errorf("the settings page lacks %s", want)
		}
	}
	resp := post("/settings", url.Values{"push": {"0", "1"}, "email": {"0"}, "quiet_mode": {"custom"},
		"quiet_from": {"23:00"}, "quiet_to": {"07:30"}, "time_zone": {"Asia/Tokyo"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/settings?saved=1" {
		t.Fatalf("save settings: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	page = readBody(t, e.do(me, "GET", "/settings?saved=1", nil, nil))
	for _, want := range []string{`id="settings-saved"`, `value="custom" checked`, `value="23:00"`, `value="07:30"`, `value="Asia/Tokyo"`} {
		if !strings.Contains(page, want) {
			t.Errorf("after saving, the page lacks %s", want)
		}
	}
	resp = post("/settings", url.Values{"push": {"0"}, "email": {"0"}, "quiet_mode": {"custom"}, "quiet_from": {"23:00"},
		"quiet_to": {"07:30"}, "time_zone": {"Nowhere/City"}})
	if body := readBody(t, resp); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "알 수 없는 시간대") {
		t.Errorf("an unknown zone: %d", resp.StatusCode)
	}

	// A 1:1 with p2, whose quiet hours hold now.
	seoul, _ := time.LoadLocation("Asia/Seoul")
	now := time.Now().In(seoul)
	from, to := now.Add(-time.Hour).Format("15:04"), now.Add(time.Hour).Format("15:04")
	if resp := e.apiAs("p2", "PUT", "/api/v1/me/settings", map[string]any{"push": true, "email": true,
		"quiet_hours": map[string]string{"from": from, "to": to}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("p2's quiet hours: %d", resp.StatusCode)
	}
	resp = e.apiAs("p1", "POST", "/api/v1/conversations", map[string]any{"kind": "direct", "participant_ids": []string{"p2"}})
	var conv struct{ ID int64 }
	if err := jsonDecode(resp, &conv); err != nil || conv.ID == 0 {
		t.Fatalf("direct conversation: %d %v", resp.StatusCode, err)
	}
	thread := fmt.Sprintf("/c/%d", conv.ID)
	body := readBody(t, e.do(me, "GET", thread, nil, nil))
	if want := "선생님은 알림 꺼짐 시간입니다 (" + to + "에 알림)"; !strings.Contains(body, want) {
		t.Errorf("the composer does not say %q", want)
	}

	// Mute for 8 hours and keywords from the thread header's forms.
	resp = post(thread+"/settings", url.Values{"mute": {"8h"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != thread {
		t.Fatalf("mute: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = post(thread+"/settings", url.Values{"keywords": {"숙제\nField Trip"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("keywords: %d", resp.StatusCode)
	}
	resp = post(thread+"/settings", url.Values{"keywords": {manyWords(60)}})
	if body := readBody(t, resp); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "최대 50개") ||
		!strings.Contains(body, `id="conv-settings" class="relative" open`) {
		t.Errorf("60 keywords: %d", resp.StatusCode)
	}
	resp = post(thread+"/settings", url.Values{"mute": {"1 week"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a mute that is not offered: %d", resp.StatusCode)
	}
	e.apiAs("p2", "POST", "/api/v1/conversations/"+strconv.FormatInt(conv.ID, 10)+"/messages", map[string]any{"body": "안녕하세요"})
	list := readBody(t, e.do(me, "GET", "/", nil, nil))
	_, row, _ := strings.Cut(list, fmt.Sprintf(`id="conv-%d"`, conv.ID))
	row, _, _ = strings.Cut(row, "</li>")
	if !strings.Contains(row, `data-muted="1"`) || !strings.Contains(row, `data-role="muted"`) || !strings.Contains(row, `data-unread="1"`) ||
		strings.Contains(row, "bg-rose-600 text-white") {
		t.Errorf("the muted row: %s", row)
	}
	body = readBody(t, e.do(me, "GET", thread, nil, nil))
	if !strings.Contains(body, `id="mute-state"`) || !strings.Contains(body, "숙제\nfield trip</textarea>") {
		t.Errorf("the thread does not show the mute and keywords")
	}
}

func manyWords(n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = "단어" + strconv.Itoa(i)
	}
	return strings.Join(w, "\n")
}
