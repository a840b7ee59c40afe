package chat_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/realtime"
)

// brokenPublish is an engine whose publishes fail, as Redis down would make them.
type brokenPublish struct{ *realtime.Memory }

func (brokenPublish) PublishAll(context.Context, []realtime.Publication) error {
	return errors.New("broker down")
}

// A message stored while its events cannot be published counts a publish error and a
// publish failure; each error kind's series is there, at zero, before any error.
func TestPublishFailureCounted(t *testing.T) {
	e := newChatEnv(t)
	reg := prometheus.NewRegistry()
	engine := brokenPublish{e.engine}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4}))
	e.svc = chat.NewService(e.db, engine, logger, reg, nil)
	const want = `
# HELP messenger_publish_failures_total Publishes of live events the realtime engine (Redis or memory) failed; their streams resync.
# TYPE messenger_publish_failures_total counter
messenger_publish_failures_total 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "messenger_publish_failures_total"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "messenger_errors_total"); err != nil || n != len(chat.ErrorKinds) {
		t.Fatalf("messenger_errors_total has %d series (%v), want one per kind %q", n, err, chat.ErrorKinds)
	}
	a := e.user("pf1", "김하늘", "org-pf")
	b := e.user("pf2", "이도윤", "org-pf")
	conv, _ := e.group(a, b)
	before := counter(t, reg, "messenger_publish_failures_total")
	e.send(a, conv, "안녕하세요")
	if n := counter(t, reg, "messenger_publish_failures_total"); n != before+1 {
		t.Errorf("messenger_publish_failures_total went from %v to %v over one send", before, n)
	}
	if n := counter(t, reg, "messenger_errors_total"); n != before+1 {
		t.Errorf("messenger_errors_total = %v, want %v (publish)", n, before+1)
	}
}
