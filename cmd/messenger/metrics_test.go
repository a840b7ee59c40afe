package main

import (
	"io"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dreamseed/messenger/push"
	"github.com/dreamseed/messenger/store/storetest"
)

// A freshly started server's /metrics has, before any traffic, every metric an operator
// alerts on, each series of a closed label set at zero, and the build's info; and no label
// value, even after requests for paths with ids in them, holds an id or a raw path.
func TestMetricsFromStart(t *testing.T) {
	db := storetest.NewDatabase(t)
	keys, err := push.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	env := processEnv(t, db, map[string]string{"MESSENGER_SCAN": "off", "MESSENGER_JOB_WORKERS": "1",
		"MESSENGER_VAPID_PUBLIC_KEY": keys.Public, "MESSENGER_VAPID_PRIVATE_KEY": keys.Private,
		"MESSENGER_VAPID_SUBJECT": "mailto:ops@school.example",
		"MESSENGER_SMTP_URL":      "smtp://" + freeAddr(t), "MESSENGER_MAIL_FROM": "DreamSeed <no-reply@school.example>",
		"MESSENGER_MAIL_SECRET": strings.Repeat("m", 32)})
	s := start(t, "serve", env)
	wait(t, "serve did not listen", 60*time.Second, func() bool { return strings.Contains(s.out.String(), "messenger listening") })
	metricsURL := "http://" + env["MESSENGER_METRICS_ADDR"] + "/metrics"

	series := scrape(t, metricsURL)
	zero := []string{
		`messenger_messages_total{kind="text"}`, `messenger_messages_total{kind="file"}`, `messenger_messages_total{kind="system"}`,
		`messenger_messages_sent_duration_seconds_count`,
		`messenger_connected_users`, `messenger_streams`,
		`messenger_errors_total{kind="publish"}`, `messenger_errors_total{kind="encode"}`, `messenger_errors_total{kind="database"}`,
		`messenger_stream_overflows_total`, `messenger_stream_resyncs_total`, `messenger_publish_failures_total`,
		`go_sql_wait_count_total{db_name="messenger"}`, `go_sql_wait_duration_seconds_total{db_name="messenger"}`,
		`go_sql_wait_count_total{db_name="messenger_jobs"}`,
		`messenger_jobs_scrape_error`,
		`messenger_job_failures_total{kind="queue_probe"}`, `messenger_job_failures_total{kind="file_scan"}`,
		`messenger_job_failures_total{kind="file_thumbnails"}`, `messenger_job_failures_total{kind="file_delete"}`,
		`messenger_job_failures_total{kind="push_message"}`, `messenger_job_failures_total{kind="push_sweep"}`,
		`messenger_job_failures_total{kind="digest_send"}`,
		`messenger_job_failures_total{kind="digest_scan"}`,
		`messenger_push_sent_total`, `messenger_push_failures_total{reason="gone"}`,
		`messenger_push_failures_total{reason="server_error"}`, `messenger_push_failures_total{reason="timeout"}`,
		`messenger_digest_emails_total{outcome="sent"}`, `messenger_digest_emails_total{outcome="failed"}`,
		`messenger_rate_limited_total{action="send"}`, `messenger_rate_limit_errors_total`,
		`messenger_file_scans_total{verdict="clean"}`, `messenger_file_scans_total{verdict="infected"}`,
		`messenger_page_cache_total{result="hit"}`,
	}
	for _, k := range zero {
		if v, ok := series[k]; !ok || v != "0" {
			t.Errorf("%s = %q (present %v), want 0 from the start", k, v, ok)
		}
	}
	for _, k := range []string{`messenger_ready`, `messenger_dependency_up{dependency="database"}`, `messenger_dependency_up{dependency="realtime"}`,
		`go_sql_in_use_connections{db_name="messenger"}`, `go_sql_idle_connections{db_name="messenger"}`,
		`go_sql_max_open_connections{db_name="messenger"}`} {
		if _, ok := series[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
	build := ""
	for k, v := range series {
		if strings.HasPrefix(k, "messenger_build_info{") {
			if build != "" || v != "1" {
				t.Errorf("build info %s = %s besides %q", k, v, build)
			}
			build = k
		}
	}
	if !strings.Contains(build, `goversion="`+runtime.Version()+`"`) || !strings.Contains(build, `revision="`) || !strings.Contains(build, `version="`) {
		t.Errorf("build info %q", build)
	}

	// Requests for paths with ids, known or not, make no series of their own.
	base := "http://" + env["MESSENGER_ADDR"]
	for _, path := range []string{"/healthz", "/nothing/here/4242", "/api/v1/conversations/4242/messages", "/conversations/4242"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	series = scrape(t, metricsURL)
	routes := 0
	for k := range series {
		for _, l := range labelPair.FindAllStringSubmatch(k, -1) {
			name, value := l[1], l[2]
			if name == "route" {
				routes++
			}
			if strings.Contains(value, "4242") {
				t.Errorf("%s holds the request's id", k)
			}
			if name == "route" && value != "unmatched" && !strings.HasPrefix(value, "/") {
				t.Errorf("%s: a route that is not a pattern", k)
			}
			if name != "le" && name != "quantile" && name != "status" && allDigits(value) {
				t.Errorf("%s: label %s holds a number", k, name)
			}
		}
	}
	if routes == 0 {
		t.Error("no request was observed")
	}
}

var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

func allDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// scrape answers the series of a Prometheus text page: each series (name and labels, as
// written) to its value.
func scrape(t *testing.T, url string) map[string]string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d, %v", resp.StatusCode, err)
	}
	series := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		series[line[:i]] = line[i+1:]
	}
	return series
}
