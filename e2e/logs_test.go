package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestSendLogLine: the real binary's stdout is JSON lines, and a send with a traceparent
// writes an INFO "message sent" line carrying the caller's trace_id, the sender's user_id
// and the conversation_id, as an operator following the trace from the proxy finds it.
func TestSendLogLine(t *testing.T) {
	s := startServer(t)
	teacher, direct, _ := teacherDirect(t, s)
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	raw, _ := json.Marshal(map[string]string{"body": "로그 시험 " + runNonce(), "client_msg_id": uuid.NewString()})
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/api/v1/conversations/%d/messages", s.URL, direct), bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+teacher.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	resp, err := liveHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("send: status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("traceparent"); !strings.HasPrefix(got, "00-"+traceID+"-") {
		t.Errorf("response traceparent %q, want trace %s", got, traceID)
	}

	var sent map[string]any
	for deadline := time.Now().Add(5 * time.Second); sent == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		sc := bufio.NewScanner(strings.NewReader(s.Logs()))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue // the build's or PostgreSQL's words, not the messenger's
			}
			if line["msg"] == "message sent" && line["trace_id"] == traceID {
				sent = line
			}
		}
	}
	if sent == nil {
		t.Fatalf("no message sent line of trace %s on stdout:\n%s", traceID, s.Logs())
	}
	if id, _ := sent["user_id"].(float64); sent["level"] != "INFO" || id <= 0 || sent["conversation_id"] != float64(direct) || sent["time"] == nil {
		t.Errorf("message sent line: %v; want INFO with the sender's user_id and conversation_id %d", sent, direct)
	}
}
