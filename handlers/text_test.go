package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// apiAs calls the JSON API with a token of sub and answers the response.
func (e *env) apiAs(sub, method, path string, body any) *http.Response {
	e.t.Helper()
	var r *strings.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		r = strings.NewReader(string(raw))
	} else {
		r = strings.NewReader("")
	}
	return e.do(nil, method, path, r, map[string]string{
		"Authorization": "Bearer " + sign(e.t, validClaims(sub, "이름 "+sub, "org-a")),
		"Content-Type":  "application/json",
	})
}

// TestHostileTextRefused: control characters, bidi overrides in titles, bodies that show
// nothing and combining-mark floods get a clear 400 invalid from the API and store
// nothing; CR and CRLF in a body arrive as LF.
func TestHostileTextRefused(t *testing.T) {
	e := newEnv(t, nil)
	for _, sub := range []string{"t1", "t2"} {
		if resp := e.apiAs(sub, "GET", "/api/v1/me", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("sign in %s: %d", sub, resp.StatusCode)
		}
	}
	resp := e.apiAs("t1", "POST", "/api/v1/conversations", map[string]any{"kind": "group", "title": "반", "participant_ids": []string{"t2"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create group: %d %s", resp.StatusCode, readBody(t, resp))
	}
	var conv struct{ ID int64 }
	if err := jsonDecode(resp, &conv); err != nil {
		t.Fatal(err)
	}
	convPath := "/api/v1/conversations/" + strconv.FormatInt(conv.ID, 10)

	refused := []struct {
		name, method, path string
		body               any
	}{
		{"body with NUL", "POST", convPath + "/messages", map[string]any{"body": "a\x00b"}},
		{"body with ESC", "POST", convPath + "/messages", map[string]any{"body": "red \x1b[31m text"}},
		{"body with BEL", "POST", convPath + "/messages", map[string]any{"body": "ding\x07"}},
		{"body with a C1 control", "POST", convPath + "/messages", map[string]any{"body": "next\u0085line"}},
		{"body with DEL", "POST", convPath + "/messages", map[string]any{"body": "x\x7f"}},
		{"body of zero-width characters", "POST", convPath + "/messages", map[string]any{"body": "\u200b\u200c\u200d\ufeff"}},
		{"body of Hangul fillers and spaces", "POST", convPath + "/messages", map[string]any{"body": " \u3164\u115f\u1160\uffa0 \u2800\n\t"}},
		{"body with a combining-mark flood", "POST", convPath + "/messages", map[string]any{"body": "z" + strings.Repeat("\u0301\u0316\u0337", 10)}},
		{"group title with NUL", "POST", "/api/v1/conversations", map[string]any{"kind": "group", "title": "반\x00", "participant_ids": []string{"t2"}}},
		{"group title with a bidi override", "POST", "/api/v1/conversations", map[string]any{"kind": "group", "title": "반 \u202egnp.exe", "participant_ids": []string{"t2"}}},
		{"group title with a bidi isolate", "POST", "/api/v1/conversations", map[string]any{"kind": "group", "title": "\u2067반", "participant_ids": []string{"t2"}}},
		{"group title with a line feed", "POST", "/api/v1/conversations", map[string]any{"kind": "group", "title": "반\n공지", "participant_ids": []string{"t2"}}},
		{"group title with a combining-mark flood", "POST", "/api/v1/conversations", map[string]any{"kind": "group", "title": "반" + strings.Repeat("\u0300", 20), "participant_ids": []string{"t2"}}},
		{"member id with NUL", "POST", "/api/v1/conversations", map[string]any{"kind": "direct", "participant_ids": []string{"t2\x00"}}},
		{"invited id with NUL", "POST", convPath + "/participants", map[string]any{"user_ids": []string{"\x00"}}},
		{"rename with a bidi embedding", "PUT", convPath, map[string]any{"title": "\u202a반"}},
		{"rename with a C1 control", "PUT", convPath, map[string]any{"title": "반\u009b"}},
	}
	before := map[string]int{}
	tables := []string{"messages", "conversations", "conversation_participants", "audit_log"}
	for _, table := range tables {
		before[table] = e.count(table)
	}
	for _, tt := range refused {
		resp := e.apiAs("t1", tt.method, tt.path, tt.body)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s", tt.name, resp.StatusCode, readBody(t, resp))
			continue
		}
		if code, msg := decodeError(t, resp); code != "invalid" || msg == "" {
			t.Errorf("%s: error %q %q, want invalid with a message", tt.name, code, msg)
		}
	}
	for _, table := range tables {
		if n := e.count(table); n != before[table] {
			t.Errorf("refused requests changed %s: %d rows, were %d", table, n, before[table])
		}
	}
	var title string
	if err := e.owner.QueryRow(`SELECT title FROM conversations WHERE id = $1`, conv.ID).Scan(&title); err != nil || title != "반" {
		t.Errorf("title after refused renames: %q, %v", title, err)
	}

	// CR and CRLF become LF; tab, LF and ordinary combining marks (Korean jamo, accents)
	// pass; a bidi override in a body is kept, and rendered isolated.
	for in, want := range map[string]string{
		"one\rtwo\r\nthree\n\tfour": "one\ntwo\nthree\n\tfour",
		"ᄒᆞᆫ글 é ệ":                 "ᄒᆞᆫ글 é ệ",
		"abc \u202edcb":             "abc \u202edcb",
	} {
		resp := e.apiAs("t1", "POST", convPath+"/messages", map[string]any{"body": in})
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("body %q: status %d: %s", in, resp.StatusCode, readBody(t, resp))
			continue
		}
		var m struct{ Body string }
		if err := jsonDecode(resp, &m); err != nil || m.Body != want {
			t.Errorf("body %q stored as %q (%v), want %q", in, m.Body, err, want)
		}
	}
}

// TestHostileTextPages: the pages refuse the same text with a 400, a people search with
// NUL too.
func TestHostileTextPages(t *testing.T) {
	e := newEnv(t, nil)
	c := e.signInBrowser("p1", "김민준", "org-a")
	e.signInBrowser("p2", "이서연", "org-a")
	csrf := e.csrfToken(c)
	post := func(path string, form url.Values) *http.Response {
		return e.do(c, "POST", path, strings.NewReader(form.Encode()), map[string]string{
			"Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": csrf, "Origin": e.srv.URL, "Sec-Fetch-Site": "same-origin",
		})
	}
	before := e.count("conversations")
	resp := post("/conversations", url.Values{"member": {"p2"}, "title": {"반\u202e"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("group titled with a bidi override: status %d, want 400", resp.StatusCode)
	}
	resp = post("/conversations", url.Values{"member": {"p2\x00"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("member id with NUL: status %d, want 400", resp.StatusCode)
	}
	if n := e.count("conversations"); n != before {
		t.Errorf("refused forms made %d conversations", n-before)
	}
	resp = post("/conversations", url.Values{"member": {"p2"}, "title": {"반"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create a group: status %d", resp.StatusCode)
	}
	thread := resp.Header.Get("Location")
	messages := e.count("messages")
	if resp := post(thread+"/rename", url.Values{"title": {"\u202e반"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("rename with a bidi override: status %d, want 400", resp.StatusCode)
	}
	// A plain form post shows the thread again, with the text kept and the problem named.
	resp = post(thread+"/messages", url.Values{"body": {"\x1b]0;title\x07"}})
	if page := readBody(t, resp); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "보낼 수 없는 문자") {
		t.Errorf("body with ESC and BEL: status %d, want 422 with the problem named", resp.StatusCode)
	}
	if n := e.count("messages"); n != messages {
		t.Errorf("refused forms stored %d messages", n-messages)
	}
	resp = e.do(c, "GET", "/people?q=%00", nil, nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("people search for NUL: status %d, want 400", resp.StatusCode)
	}
}

// TestPortalNameCleaned: a portal name is the portal's word, so invisible characters in it
// do not lock the person out: bidi controls are dropped, line ends and tabs become
// spaces. Control characters in the ids are a broken token: 401, nothing stored.
func TestPortalNameCleaned(t *testing.T) {
	e := newEnv(t, nil)
	c := validClaims("n1", "\u202e김민준\u202c\t선생님\r\n", "org-a")
	resp := e.do(nil, "GET", "/api/v1/me", nil, map[string]string{"Authorization": "Bearer " + sign(t, c)})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	var body struct{ User struct{ Name string } }
	if err := jsonDecode(resp, &body); err != nil {
		t.Fatal(err)
	}
	if body.User.Name != "김민준 선생님" {
		t.Errorf("name %q, want %q", body.User.Name, "김민준 선생님")
	}
	users := e.count("users")
	for _, mutate := range []func(claims){
		func(c claims) { c["sub"] = "n2\x00" },
		func(c claims) { c["org_id"] = "org\x00-a" },
		func(c claims) { c["zone_id"] = "zone\r\n" },
		func(c claims) { c["email"] = "a@b\x00.example" },
		func(c claims) { c["name"] = "\u200b\u202e\x00" },
	} {
		c := validClaims("n2", "이서연", "org-a")
		mutate(c)
		resp := e.do(nil, "GET", "/api/v1/me", nil, map[string]string{"Authorization": "Bearer " + sign(t, c)})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("claims %v: status %d, want 401: %s", c, resp.StatusCode, readBody(t, resp))
		}
	}
	if n := e.count("users"); n != users {
		t.Errorf("refused tokens stored %d users", n-users)
	}
}

// TestStreamCarriesNoBareCR: a member sends a body made to smuggle SSE fields through bare
// CRs (an id, a minute's retry, a resync); the other member's page stream carries it as
// the text of one message, with no CR and no field of the sender's making.
func TestStreamCarriesNoBareCR(t *testing.T) {
	e := newEnv(t, nil)
	for _, sub := range []string{"s1", "s2"} {
		e.apiAs(sub, "GET", "/api/v1/me", nil)
	}
	resp := e.apiAs("s1", "POST", "/api/v1/conversations", map[string]any{"kind": "direct", "participant_ids": []string{"s2"}})
	var conv struct{ ID int64 }
	if err := jsonDecode(resp, &conv); err != nil || conv.ID == 0 {
		t.Fatalf("create: %d %v", resp.StatusCode, err)
	}
	reader := e.client()
	form := url.Values{"token": {sign(t, validClaims("s2", "이름 s2", "org-a"))}}
	if resp := e.do(reader, "POST", "/auth/portal", strings.NewReader(form.Encode()), map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Origin": portal, "Sec-Fetch-Site": "cross-site",
	}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/events", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	stream, err := reader.Do(req)
	if err != nil || stream.StatusCode != http.StatusOK {
		t.Fatalf("open stream: %v %v", err, stream)
	}
	defer stream.Body.Close()
	attack := "hello\rid: evil-1\rretry: 60000\r\revent: resync\rdata: x\r\r"
	if resp := e.apiAs("s1", "POST", "/api/v1/conversations/"+strconv.FormatInt(conv.ID, 10)+"/messages", map[string]any{"body": attack}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("send: %d %s", resp.StatusCode, readBody(t, resp))
	}
	var raw strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(raw.String(), "event: message.new") || !strings.HasSuffix(raw.String(), "\n\n") {
		n, err := stream.Body.Read(buf)
		raw.Write(buf[:n])
		if err != nil {
			t.Fatalf("stream ended before the message: %v\n%q", err, raw.String())
		}
	}
	got := raw.String()
	if strings.Contains(got, "\r") {
		t.Errorf("the stream carries a CR:\n%q", got)
	}
	for _, line := range strings.Split(got, "\n") {
		if strings.HasPrefix(line, "id: evil") || strings.HasPrefix(line, "retry: 60000") || line == "event: resync" {
			t.Errorf("the sender made a field of its own: %q in\n%q", line, got)
		}
	}
}
