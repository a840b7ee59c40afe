package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/dreamseed/messenger/realtime/redistest"
	"github.com/dreamseed/messenger/store/storetest"
)

// A server's readiness is a series an operator can alert on: messenger_ready and
// messenger_dependency_up follow Redis going away and coming back without anyone asking
// /readyz, and `messenger healthcheck` (the container's HEALTHCHECK) fails meanwhile; on
// SIGTERM the server says it is no longer ready.
func TestReadinessMetricsAndHealthcheck(t *testing.T) {
	redis := redistest.Start(t)
	db := storetest.NewDatabase(t)
	env := processEnv(t, db, map[string]string{"REDIS_URL": redis.URL, "MESSENGER_SCAN": "off",
		"MESSENGER_READY_PROBE_EVERY": "1s"})
	s := start(t, "serve", env)
	wait(t, "serve did not listen", 60*time.Second, func() bool { return strings.Contains(s.out.String(), "messenger listening") })
	metricsURL := "http://" + env["MESSENGER_METRICS_ADDR"] + "/metrics"
	readiness := func() string {
		m := scrape(t, metricsURL)
		return m[`messenger_ready`] + " " + m[`messenger_dependency_up{dependency="database"}`] + " " + m[`messenger_dependency_up{dependency="realtime"}`]
	}
	check := func(args ...string) error {
		return run(context.Background(), append([]string{"healthcheck"}, args...), envOf(env), io.Discard)
	}

	wait(t, "not ready with every dependency up: "+readiness(), 10*time.Second, func() bool { return readiness() == "1 1 1" })
	if err := check(); err != nil {
		t.Fatalf("healthcheck of a ready server: %v", err)
	}
	if err := check("http://" + env["MESSENGER_METRICS_ADDR"] + "/metrics"); err != nil {
		t.Errorf("healthcheck of the metrics listener: %v", err)
	}

	restarted := make(chan struct{})
	go func() { defer close(restarted); redis.Restart(6 * time.Second) }()
	wait(t, "Redis down but the metrics say "+readiness(), 5*time.Second, func() bool { return readiness() == "0 1 0" })
	if err := check(); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("healthcheck with Redis down: %v, want a 503", err)
	}
	<-restarted
	wait(t, "Redis back but the metrics say "+readiness(), 15*time.Second, func() bool { return readiness() == "1 1 1" })
	if err := check(); err != nil {
		t.Errorf("healthcheck with Redis back: %v", err)
	}

	s.stop()
	select {
	case <-s.done:
		s.done <- nil
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	if err := check(); err == nil {
		t.Error("healthcheck of a stopped server passed")
	}
}

// healthcheck refuses what it cannot check.
func TestHealthcheckArguments(t *testing.T) {
	for _, args := range [][]string{{"healthcheck", "a", "b"}, {"healthcheck"}} {
		env := map[string]string{"MESSENGER_ADDR": "no-port"}
		if err := run(context.Background(), args, envOf(env), io.Discard); err == nil {
			t.Errorf("%q with %v passed", args, env)
		}
	}
}
