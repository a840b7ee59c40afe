package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/internal/sse"
	"github.com/dreamseed/messenger/realtime/redistest"
	"github.com/dreamseed/messenger/store/storetest"
)

// Two servers on one database and one Redis Cluster of three masters
// (MESSENGER_REDIS_CLUSTER=1, REDIS_URL naming the nodes): a message sent through one
// reaches the recipient's stream held by the other, and the sends pass the rate limiter,
// whose buckets are in the cluster too.
func TestServeOnRedisCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	db := storetest.NewDatabase(t)
	extra := map[string]string{"REDIS_URL": cl.URL, "MESSENGER_REDIS_CLUSTER": "1", "MESSENGER_SCAN": "off",
		"MESSENGER_JOB_WORKERS": "0"}
	var addrs []string
	for i := range 2 {
		env := processEnv(t, db, extra)
		p := start(t, "serve", env)
		base := "http://" + env["MESSENGER_ADDR"]
		wait(t, fmt.Sprintf("server %d not ready", i+1), 30*time.Second, func() bool {
			resp, err := http.Get(base + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		if out := p.out.String(); !strings.Contains(out, `"msg":"realtime engine: redis","cluster":true`) {
			t.Fatalf("server %d does not say it runs on the cluster:\n%s", i+1, out)
		}
		addrs = append(addrs, base)
	}
	secret := []byte(strings.Repeat("w", 32)) // processEnv's
	token := func(sub, name string) string {
		tok, err := auth.MintToken(secret, "messenger", auth.Claims{Issuer: "dreamseed-portal", Subject: sub, Name: name,
			OrgID: "cluster-org", ZoneID: "cluster-zone", Role: "teacher", Locale: "ko"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	alice, bob := token("cluster-alice", "김하나"), token("cluster-bob", "이두리")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Bob's stream, on the second server (opening it signs him in).
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, addrs[1]+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+bob)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Bob's stream: %d", resp.StatusCode)
	}
	events := make(chan sse.Event, 16)
	go func() {
		r := sse.NewReader(resp.Body)
		for {
			ev, err := r.Next()
			if err != nil {
				close(events)
				return
			}
			events <- ev
		}
	}()

	api := func(method, path string, in, out any) int {
		t.Helper()
		body, _ := json.Marshal(in)
		req, _ := http.NewRequestWithContext(ctx, method, addrs[0]+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+alice)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatalf("%s %s: %v in %s", method, path, err, raw)
			}
		}
		return resp.StatusCode
	}
	// Alice, on the first server, opens a conversation with Bob and writes.
	var conv struct{ ID int64 }
	api(http.MethodPost, "/api/v1/conversations", map[string]any{"kind": "direct", "participant_ids": []string{"cluster-bob"}}, &conv)
	for i := range 3 {
		body := fmt.Sprintf("클러스터 너머로 %d", i)
		api(http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/messages", conv.ID),
			map[string]any{"body": body, "client_msg_id": uuid.NewString()}, nil)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("Bob's stream ended before message %d", i)
				}
				if ev.Type != "message.new" {
					continue
				}
				var m struct {
					Seq  int64
					Body string
				}
				if err := json.Unmarshal([]byte(ev.Data), &m); err != nil || m.Body != body || m.Seq != int64(i+1) || ev.ID == "" {
					t.Fatalf("Bob got %s %q (id %q), want seq %d %q", ev.Type, ev.Data, ev.ID, i+1, body)
				}
			case <-ctx.Done():
				t.Fatalf("Bob's stream on the other server did not get message %d", i)
			}
			break
		}
	}
}
