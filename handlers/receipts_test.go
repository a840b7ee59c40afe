package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dreamseed/messenger"
	"github.com/google/uuid"
)

// TestReadReceiptsCoalescedOnStreams: in a group, the other members' streams carry the
// watermark rises coalesced, as message.read_receipts in the shape docs/openapi.yaml
// gives (JSON) and as the template awareness.js reads (page); the reader's own stream its
// receipt as message.read_receipt.
func TestReadReceiptsCoalescedOnStreams(t *testing.T) {
	doc := loadAPIDoc(t)
	e := newEnv(t, nil)
	e.svc.SetReceiptCoalesce(300 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.svc.CoalesceReceipts(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	const org = "org-receipts"
	subs := []string{"rc-1", "rc-2", "rc-3", "rc-4"}
	tokens := map[string]string{}
	for _, sub := range subs {
		tokens[sub] = sign(t, validClaims(sub, sub, org))
		if resp := e.do(nil, http.MethodGet, "/api/v1/me", nil, map[string]string{"Authorization": "Bearer " + tokens[sub]}); resp.StatusCode != http.StatusOK {
			t.Fatalf("sign in %s: %d", sub, resp.StatusCode)
		}
	}
	api := func(sub, method, path, body string) *http.Response {
		t.Helper()
		return e.do(nil, method, path, strings.NewReader(body), map[string]string{
			"Authorization": "Bearer " + tokens[sub], "Content-Type": "application/json"})
	}
	var conv messenger.APIConversation
	resp := api("rc-1", http.MethodPost, "/api/v1/conversations", `{"kind":"group","title":"읽음","participant_ids":["rc-2","rc-3","rc-4"]}`)
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&conv) != nil {
		t.Fatalf("create the group: %d", resp.StatusCode)
	}
	resp.Body.Close()
	var msg messenger.APIMessage
	resp = api("rc-1", http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/messages", conv.ID),
		fmt.Sprintf(`{"body":"읽어 주세요","client_msg_id":%q}`, uuid.NewString()))
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&msg) != nil {
		t.Fatalf("send: %d", resp.StatusCode)
	}
	resp.Body.Close()

	senderJSON := e.openStream(tokens["rc-1"], "")
	senderPage := e.openSSE(e.signInBrowser("rc-1", "rc-1", org), "/events", nil).events
	readerJSON := e.openStream(tokens["rc-2"], "")
	time.Sleep(200 * time.Millisecond) // the streams have subscribed

	for _, sub := range subs[1:] {
		resp := api(sub, http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/read", conv.ID), fmt.Sprintf(`{"seq":%d}`, msg.Seq))
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("%s marks read: %d", sub, resp.StatusCode)
		}
		resp.Body.Close()
	}
	want := map[string]int64{"rc-2": msg.Seq, "rc-3": msg.Seq, "rc-4": msg.Seq}

	events, _ := doc.operation(t, http.MethodGet, "/api/v1/events")["x-events"].(map[string]any)
	schema, _ := events["message.read_receipts"].(map[string]any)
	if schema == nil {
		t.Fatal("docs/openapi.yaml documents no message.read_receipts")
	}
	got, batches := map[string]int64{}, 0
	for ev := range quietAfter(senderJSON, time.Second) {
		switch ev.typ {
		case "message.read_receipt":
			t.Errorf("the sender's stream carries a single receipt of another's read in a group: %s", ev.data)
		case "message.read_receipts":
			batches++
			var v any
			if err := json.Unmarshal([]byte(ev.data), &v); err != nil {
				t.Fatalf("message.read_receipts data %q: %v", ev.data, err)
			}
			for _, p := range doc.check(t, "", schema, v) {
				t.Errorf("message.read_receipts: %s", p)
			}
			if ev.id == "" {
				t.Errorf("message.read_receipts without an id: it is kept for resuming")
			}
			var b struct {
				ConversationID int64 `json:"conversation_id"`
				Receipts       []struct {
					UserID      string `json:"user_id"`
					LastReadSeq int64  `json:"last_read_seq"`
				} `json:"receipts"`
			}
			if err := json.Unmarshal([]byte(ev.data), &b); err != nil || b.ConversationID != conv.ID {
				t.Errorf("message.read_receipts %s: %v", ev.data, err)
			}
			for _, r := range b.Receipts {
				got[r.UserID] = max(got[r.UserID], r.LastReadSeq)
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || batches < 1 || batches > 2 {
		t.Errorf("the sender's JSON stream learned %v in %d batches, want %v in one or two", got, batches, want)
	}

	// The page's stream: <template data-conversation data-marks> for awareness.js.
	tpl := regexp.MustCompile(`<template data-conversation="(\d+)" data-marks="([^"]*)"></template>`)
	got = map[string]int64{}
	for ev := range quietAfter(senderPage, time.Second) {
		if ev.typ != "message.read_receipts" {
			continue
		}
		m := tpl.FindStringSubmatch(ev.data)
		if m == nil || m[1] != fmt.Sprint(conv.ID) {
			t.Errorf("the page's message.read_receipts is %q", ev.data)
			continue
		}
		var marks map[string]int64
		if err := json.Unmarshal([]byte(html.UnescapeString(m[2])), &marks); err != nil {
			t.Errorf("data-marks %q: %v", m[2], err)
		}
		for sub, seq := range marks {
			got[sub] = max(got[sub], seq)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the sender's page stream learned %v, want %v", got, want)
	}

	// A reader's stream: its own receipt at once, single; the others' in batches.
	own := 0
	for ev := range quietAfter(readerJSON, time.Second) {
		if ev.typ == "message.read_receipt" {
			own++
			if !strings.Contains(ev.data, `"user_id":"rc-2"`) {
				t.Errorf("the reader's stream carries another's single receipt: %s", ev.data)
			}
		}
	}
	if own != 1 {
		t.Errorf("the reader's stream carries %d single receipts, want its own one", own)
	}
}
