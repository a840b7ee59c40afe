package handlers_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/dreamseed/messenger"
)

// TestRunsFromTheServer: each message says whether it continues the run of the one before
// it — in the send's answer, in the API's pages, and on a fragment's rows, whose first row
// joins the row the thread shows before it.
func TestRunsFromTheServer(t *testing.T) {
	e := newEnv(t, nil)
	tT, tP := sign(t, validClaims("rn-t", "김선생", "org-rn")), sign(t, validClaims("rn-p", "박학부모", "org-rn"))
	e.apiDo(tP, "GET", "/api/v1/me", "")
	conv := e.apiGroup(tT, "모둠반", "rn-p")
	send := func(token, body string) messenger.APIMessage {
		t.Helper()
		out := e.apiDo(token, "POST", fmt.Sprintf("/api/v1/conversations/%d/messages", conv),
			fmt.Sprintf(`{"body":%q,"client_msg_id":"%s"}`, body, newUUID()))
		var m messenger.APIMessage
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("send: %v: %s", err, out)
		}
		return m
	}
	msgs := []messenger.APIMessage{send(tP, "안녕하세요"), send(tP, "내일 준비물이 있나요?"), send(tT, "도시락입니다"), send(tT, "물통도요")}
	want := []bool{false, true, false, true} // after the group's notice; the parent's second; the teacher's first, second
	for i, m := range msgs {
		if m.JoinsPrevious != want[i] {
			t.Errorf("sent %q: joins_previous %v, want %v", m.Body, m.JoinsPrevious, want[i])
		}
	}

	// The API's catch-up from the parent's first message on: its first joins that one.
	var page struct {
		Messages []messenger.APIMessage `json:"messages"`
	}
	out := e.apiDo(tT, "GET", fmt.Sprintf("/api/v1/conversations/%d/messages?after_seq=%d", conv, msgs[0].Seq), "")
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Messages) != 3 {
		t.Fatalf("after_seq page: %v: %s", err, out)
	}
	for i, m := range page.Messages {
		if m.JoinsPrevious != want[i+1] {
			t.Errorf("API page, %q: joins_previous %v, want %v", m.Body, m.JoinsPrevious, want[i+1])
		}
	}

	// The thread's catch-up fragment, as app.js fetches it.
	browser := e.signInBrowser("rn-t", "김선생", "org-rn")
	resp := e.do(browser, "GET", fmt.Sprintf("/c/%d/messages?after_seq=%d", conv, msgs[0].Seq), nil, map[string]string{"HX-Request": "true"})
	frag := readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("fragment: status %d: %s", resp.StatusCode, frag)
	}
	rows := regexp.MustCompile(`(?s)<li\s[^>]*id="msg-\d+"[^>]*>`).FindAllString(frag, -1)
	if len(rows) != 3 {
		t.Fatalf("fragment has %d rows, want 3: %s", len(rows), frag)
	}
	for i, row := range rows {
		if joins := strings.Contains(row, `data-joins="1"`); joins != want[i+1] {
			t.Errorf("fragment row %d (%s): data-joins %v, want %v", i, row, joins, want[i+1])
		}
	}
}
