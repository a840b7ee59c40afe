package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMetricsListener: /metrics is served on MESSENGER_METRICS_ADDR only, not on the
// public address, with the job queue's beside the server's; the listener stops with the
// server, and "off" turns it off.
func TestMetricsListener(t *testing.T) {
	s := startServer(t)
	if status, _ := s.get("/metrics"); status != http.StatusNotFound {
		t.Errorf("GET /metrics on the public address: status %d, want 404", status)
	}
	s.get("/healthz")

	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(s.MetricsURL)
	if err != nil {
		t.Fatalf("GET %s: %v", s.MetricsURL, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", s.MetricsURL, resp.StatusCode)
	}
	for _, want := range []string{`messenger_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"}`, "process_resident_memory_bytes",
		"messenger_jobs_scrape_error 0"} { // the job queue's metrics come on the same page
		if !strings.Contains(string(body), want) {
			t.Errorf("the metrics listener's page lacks %s", want)
		}
	}
	if resp, err := client.Get(strings.TrimSuffix(s.MetricsURL, "/metrics") + "/healthz"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("the metrics listener serves more than /metrics: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	s.Stop()
	if _, err := client.Get(s.MetricsURL); err == nil {
		t.Error("the metrics listener still answers after the server stopped")
	}

	off := startServerOn(t, s, "MESSENGER_METRICS_ADDR=off")
	if status, _ := off.get("/metrics"); status != http.StatusNotFound {
		t.Errorf("with metrics off, GET /metrics: status %d, want 404", status)
	}
	if strings.Contains(off.Logs(), "metrics listening") {
		t.Error("with MESSENGER_METRICS_ADDR=off a metrics listener started")
	}
}
