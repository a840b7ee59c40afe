package handlers_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dreamseed/messenger/internal/trace"
)

// logLines answers the server's JSON log lines of trace id.
func (e *env) logLines(id string) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(e.logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			e.t.Fatalf("log line is not JSON: %v: %s", err, sc.Text())
		}
		if line["trace_id"] == id {
			out = append(out, line)
		}
	}
	return out
}

// responseTrace answers the trace id of a response's traceparent, failing when it has none
// valid.
func responseTrace(t *testing.T, resp *http.Response) (traceID, span string) {
	t.Helper()
	header := resp.Header.Get("traceparent")
	id, _, ok := trace.Parse(header)
	if !ok {
		t.Fatalf("response traceparent %q is not a valid one", header)
	}
	return id, header[36:52]
}

// TestTraceparent: a send with a caller's traceparent keeps its trace: the response's
// traceparent names it (with the server's own span), and every log line of the request —
// the message's INFO line and the request's — carries that trace_id, the sender's user_id
// and the conversation_id. A malformed traceparent is ignored: the request gets a fresh
// trace of its own, which is also its request id.
func TestTraceparent(t *testing.T) {
	e := newEnv(t, nil)
	tT, tP := sign(t, validClaims("tr-t", "김선생", "org-tr")), sign(t, validClaims("tr-p", "박학부모", "org-tr"))
	e.apiDo(tP, "GET", "/api/v1/me", "")
	conv := e.apiGroup(tT, "추적반", "tr-p")

	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		parent  = "00f067aa0ba902b7"
	)
	resp := e.do(nil, "POST", fmt.Sprintf("/api/v1/conversations/%d/messages", conv), strings.NewReader(`{"body":"추적 시험"}`),
		map[string]string{"Authorization": "Bearer " + tT, "Content-Type": "application/json", "traceparent": "00-" + traceID + "-" + parent + "-01"})
	var msg struct {
		ID int64 `json:"id"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&msg) != nil {
		t.Fatalf("send: status %d", resp.StatusCode)
	}
	if id, span := responseTrace(t, resp); id != traceID || span == parent {
		t.Errorf("response traceparent %q: want trace %s with the server's own span", resp.Header.Get("traceparent"), traceID)
	}
	var sender int64
	if err := e.owner.QueryRow(`SELECT sender_id FROM messages WHERE id = $1`, msg.ID).Scan(&sender); err != nil {
		t.Fatal(err)
	}
	lines := e.logLines(traceID)
	seen := map[string]bool{}
	for _, l := range lines {
		seen[l["msg"].(string)] = true
		if l["user_id"] != float64(sender) || l["conversation_id"] != float64(conv) {
			t.Errorf("line %q: user_id %v conversation_id %v, want %d and %d", l["msg"], l["user_id"], l["conversation_id"], sender, conv)
		}
	}
	if !seen["message sent"] || !seen["request"] {
		t.Fatalf("the send's lines of trace %s: %v; want its INFO message sent and request lines\n%s", traceID, lines, e.logs.String())
	}
	for _, l := range lines {
		if l["msg"] == "message sent" && (l["level"] != "INFO" || l["message_id"] != float64(msg.ID)) {
			t.Errorf("message sent line: %v", l)
		}
	}

	for _, bad := range []string{"00-" + strings.Repeat("0", 32) + "-" + parent + "-01", "00-" + traceID + "-" + parent, "zz-" + traceID + "-" + parent + "-01"} {
		resp := e.do(nil, "GET", "/api/v1/me", nil, map[string]string{"Authorization": "Bearer " + tT, "traceparent": bad})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("traceparent %q: status %d", bad, resp.StatusCode)
		}
		id, _ := responseTrace(t, resp)
		if id == traceID || strings.Contains(bad, id) {
			t.Errorf("traceparent %q: the response kept trace %s, want a fresh one", bad, id)
		}
		if got := resp.Header.Get("X-Request-ID"); got != id {
			t.Errorf("traceparent %q: X-Request-ID %q, want the fresh trace id %s", bad, got, id)
		}
		if lines := e.logLines(id); len(lines) == 0 || lines[len(lines)-1]["msg"] != "request" {
			t.Errorf("traceparent %q: no request line of the fresh trace %s\n%s", bad, id, e.logs.String())
		}
	}
}

// TestUploadJobsCarryTrace: the file jobs an upload with a traceparent enqueued are worked
// in its trace: their lines carry the request's trace_id, the uploader's user_id and the
// conversation_id.
func TestUploadJobsCarryTrace(t *testing.T) {
	e := newFilesEnv(t, true)
	me := mustUser(t, e.db, "tj1", "김선영", "org-a")
	friend := mustUser(t, e.db, "tj2", "최지훈", "org-a")
	conv := directConversation(t, e.env, me, friend)

	const traceID = "5d2f0c3e9a1b4c7d8e6f0a1b2c3d4e5f"
	body, ct := uploadBody(t, map[string]string{"client_msg_id": "6a1c9e2b-3f4d-4e5a-9b8c-7d6e5f4a3b2c"}, filePart{"note.txt", []byte("추적")})
	resp := e.do(nil, http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/files", conv), body, map[string]string{
		"Authorization": "Bearer " + sign(t, validClaims("tj1", "김선영", "org-a")), "Content-Type": ct,
		"traceparent": "00-" + traceID + "-1122334455667788-01",
	})
	var up struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusAccepted || json.NewDecoder(resp.Body).Decode(&up) != nil {
		t.Fatalf("upload: status %d", resp.StatusCode)
	}
	e.waitUpload("tj1", "org-a", up.ID, "clean")

	kinds := map[string]bool{}
	for deadline := time.Now().Add(5 * time.Second); !kinds["file_scan"] || !kinds["file_thumbnails"]; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("job lines of trace %s: kinds %v, want file_scan and file_thumbnails\n%s", traceID, kinds, e.jobLogs.String())
		}
		sc := bufio.NewScanner(strings.NewReader(e.jobLogs.String()))
		for sc.Scan() {
			var l map[string]any
			if json.Unmarshal(sc.Bytes(), &l) != nil || l["msg"] != "job worked" || l["trace_id"] != traceID {
				continue
			}
			if l["user_id"] != float64(me.ID) || l["conversation_id"] != float64(conv) {
				t.Fatalf("job line %v: want user_id %d and conversation_id %d", l, me.ID, conv)
			}
			kinds[l["kind"].(string)] = true
		}
	}
}
