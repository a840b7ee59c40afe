// Package deploy tests the deployment files of this directory: the Prometheus rules and
// configuration (with promtool), that every metric the alerts and the Grafana dashboard
// name is one a running messenger exports, the Compose file (with the loader docker
// compose uses) against .env.example, and that the Dockerfile's build gives a static
// binary.
package deploy

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"go.yaml.in/yaml/v3"

	"github.com/dreamseed/messenger/internal/freeport"
	"github.com/dreamseed/messenger/internal/syncbuf"
	"github.com/dreamseed/messenger/push"
	"github.com/dreamseed/messenger/realtime/redistest"
	"github.com/dreamseed/messenger/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// tool answers the path of a program the test runs, and skips the test without it, except
// in CI, where every tool must be installed.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (Debian: prometheus for promtool)", name)
		}
		t.Skipf("%s is not on PATH", name)
	}
	return p
}

// promtool accepts the Prometheus configuration and the rules, the rules' unit tests
// (alerts_test.yml) pass, and every query of the dashboard parses.
func TestPromtool(t *testing.T) {
	promtool := tool(t, "promtool")
	for _, args := range [][]string{
		{"check", "config", "prometheus/prometheus.yml"},
		{"check", "rules", "prometheus/alerts.yml"},
		{"test", "rules", "prometheus/alerts_test.yml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	// The dashboard's queries parse: promtool checks them as recording rules, with
	// Grafana's $__rate_interval as a range it would pick.
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for _, exprs := range dashboardQueries(t) {
		for _, e := range exprs {
			rules = append(rules, rule{fmt.Sprintf("dashboard:query_%d", len(rules)), strings.ReplaceAll(e, "$__rate_interval", "1m")})
		}
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard_rules.yml")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("the dashboard's queries do not parse: %v\n%s", err, out)
	}
}

// The alerts are the ones the runbook names, each with a summary, a description and the
// runbook section to read.
func TestAlertsNameTheRunbook(t *testing.T) {
	want := []string{"MessengerDatabasePoolSaturated", "MessengerDown", "MessengerErrors", "MessengerJobBacklog",
		"MessengerNotReady", "MessengerRedisDown", "MessengerSendSlow"}
	anchors := []string{"server-down", "redis-down", "database-slow", "slow-delivery", "disk-full", "bad-deploy"}
	var names []string
	for _, r := range alertRules(t) {
		names = append(names, r.Alert)
		anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], "docs/runbook.md#")
		if !ok || !slices.Contains(anchors, anchor) {
			t.Errorf("%s: runbook_url %q is not docs/runbook.md#<one of %v>", r.Alert, r.Annotations["runbook_url"], anchors)
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s: no summary or description", r.Alert)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Errorf("alerts %v, want %v", names, want)
	}
}

type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Annotations map[string]string `yaml:"annotations"`
}

func alertRules(t *testing.T) []alertRule {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, "prometheus/alerts.yml", &f)
	var rules []alertRule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatal("no rule in alerts.yml")
	}
	return rules
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// dashboardQueries answers every PromQL expression of the Grafana dashboard, by panel.
func dashboardQueries(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile("grafana/messenger.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/messenger.json: %v", err)
	}
	queries := map[string][]string{}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			queries[p.Title] = append(queries[p.Title], q.Expr)
		}
	}
	if d.UID == "" || len(queries) < 20 {
		t.Fatalf("the dashboard has uid %q and %d panels with queries", d.UID, len(queries))
	}
	return queries
}

// Every metric an alert or a dashboard panel names is one that a running messenger (the
// real binary, built as the Dockerfile builds it, with push, email and jobs on) exports on
// its metrics listener: a renamed metric fails here, not silently on an operator's screen.
func TestQueriesNameExportedMetrics(t *testing.T) {
	uses := map[string][]string{} // metric -> where it is named
	for _, r := range alertRules(t) {
		for _, m := range metricNames(r.Expr) {
			uses[m] = append(uses[m], "alert "+r.Alert)
		}
	}
	for title, exprs := range dashboardQueries(t) {
		for _, e := range exprs {
			for _, m := range metricNames(e) {
				uses[m] = append(uses[m], "panel "+title)
			}
		}
	}
	if len(uses) < 25 {
		t.Fatalf("the queries name %d metrics: the tokenizer no longer finds them (%v)", len(uses), uses)
	}

	exported := scrapeRunningMessenger(t)
	for m, where := range uses {
		if !exported.has(m) {
			t.Errorf("%s, named by %s, is not exported by a running messenger", m, strings.Join(where, ", "))
		}
	}
	// The check can fail: a name the messenger does not export is caught.
	if exported.has("messenger_messages_sent_total") || !exported.has("messenger_messages_sent_duration_seconds_bucket") {
		t.Error("the exported names are not what the scrape says")
	}
}

// The tokenizer finds metric names and nothing else: not functions, keywords, labels,
// durations, strings or Grafana variables.
func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`histogram_quantile(0.99, sum by (le) (rate(messenger_messages_sent_duration_seconds_bucket[$__rate_interval]))) > 0.5`: {"messenger_messages_sent_duration_seconds_bucket"},
		`sum(rate(a_total{status=~"5..", route!="x y"}[5m])) / on (instance) group_left(version) b offset 5m or up == 0`:        {"a_total", "b", "up"},
		`time() - max(messenger_jobs_probe_last_run_timestamp_seconds) > 300 unless bool c:recorded:rate5m`:                     {"messenger_jobs_probe_last_run_timestamp_seconds", "c:recorded:rate5m"},
		`count by (version, revision) (messenger_build_info) and ignoring(x) d`:                                                 {"messenger_build_info", "d"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%q) = %v, want %v", expr, got, want)
		}
	}
}

var (
	promString    = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promRange     = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promKeywords  = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan", "atan2"}
	promFollowers = regexp.MustCompile(`^\s*\(`)
)

// metricNames answers the metric names a PromQL expression selects, in order, once each:
// the identifiers left once strings, label matchers, ranges and grouping lists are gone,
// less function names (followed by "("), keywords, and the letters of numbers and
// durations (preceded by a digit) or variables (by "$").
func metricNames(expr string) []string {
	for _, re := range []*regexp.Regexp{promString, promMatchers, promRange, promGrouping} {
		expr = re.ReplaceAllString(expr, " ")
	}
	var names []string
	for _, loc := range promIdent.FindAllStringIndex(expr, -1) {
		name := expr[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsAny(expr[loc[0]-1:loc[0]], "0123456789.$") {
			continue
		}
		if promFollowers.MatchString(expr[loc[1]:]) || slices.Contains(promKeywords, strings.ToLower(name)) {
			continue
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

// exportedNames are the series names a scrape showed, with each histogram's and summary's
// _bucket, _sum and _count, and Prometheus's own up.
type exportedNames map[string]bool

func (e exportedNames) has(name string) bool { return e[name] }

func parseExposition(text string) exportedNames {
	names := exportedNames{"up": true}
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			f := strings.Fields(rest)
			if len(f) == 2 {
				names[f[0]] = true
				if f[1] == "histogram" || f[1] == "summary" {
					names[f[0]+"_sum"], names[f[0]+"_count"] = true, true
					names[f[0]+"_bucket"] = f[1] == "histogram"
				}
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

// scrapeRunningMessenger builds the messenger as the Dockerfile does, checks that the
// binary is static, runs it on a fresh database and Redis, makes the series that appear
// only once something happens (a request, a job run, a job waiting), and answers the
// names its metrics listener exports.
func scrapeRunningMessenger(t *testing.T) exportedNames {
	t.Helper()
	bin := buildAsDockerfile(t)
	db := storetest.NewDatabase(t)
	keys, err := push.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	addr, metricsAddr, smtpAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"DATABASE_URL=" + db.OwnerDSN, "REDIS_URL=" + redistest.URL(t),
		"MESSENGER_REDIS_PREFIX=deploytest:" + fmt.Sprint(time.Now().UnixNano()) + ":",
		"MESSENGER_JWT_SECRET=" + strings.Repeat("d", 32), "MESSENGER_DATA_DIR=" + t.TempDir(),
		"MESSENGER_ADDR=" + addr, "MESSENGER_METRICS_ADDR=" + metricsAddr,
		"MESSENGER_SCAN=off", "MESSENGER_JOB_WORKERS=1",
		"MESSENGER_VAPID_PUBLIC_KEY=" + keys.Public, "MESSENGER_VAPID_PRIVATE_KEY=" + keys.Private,
		"MESSENGER_VAPID_SUBJECT=mailto:ops@school.example",
		"MESSENGER_SMTP_URL=smtp://" + smtpAddr, "MESSENGER_MAIL_FROM=DreamSeed <no-reply@school.example>",
		"MESSENGER_MAIL_SECRET=" + strings.Repeat("m", 32),
	}
	if pw := appPassword(db.AppDSN); pw != "" {
		env = append(env, "MESSENGER_APP_DB_PASSWORD="+pw)
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = env
	logs := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("messenger output:\n%s", logs.String())
		}
	})
	waitFor(t, "the messenger is not ready", 60*time.Second, func() bool { return get(addr, "/readyz") == http.StatusOK })

	get(addr, "/no/such/page") // a request: the request duration histogram has a series
	// A job waiting: messenger_jobs has a series (only kinds and states with jobs have one).
	owner := storetest.Conn(t, db.OwnerDSN)
	if _, err := owner.Exec(`INSERT INTO river_job (args, kind, max_attempts, queue, state, scheduled_at)
		VALUES ('{}', 'file_delete', 1, 'default', 'scheduled', now() + interval '1 day')`); err != nil {
		t.Fatal(err)
	}
	var names exportedNames
	waitFor(t, "no job ran or waits on /metrics", 60*time.Second, func() bool {
		names = parseExposition(getBody(t, "http://"+metricsAddr+"/metrics"))
		return names.has("messenger_job_duration_seconds_bucket") && names.has("messenger_jobs") &&
			names.has("messenger_http_request_duration_seconds_bucket")
	})
	return names
}

// buildAsDockerfile builds ./cmd/messenger with the flags of the Dockerfile's go build and
// checks that the result is a static binary (no ELF interpreter), which the image needs.
func buildAsDockerfile(t *testing.T) string {
	t.Helper()
	df, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^FROM .* AS build$`),                            // multi-stage: the toolchain stays out of the image
		regexp.MustCompile(`(?m)^USER [a-z]+$`),                                 // a named, non-root user
		regexp.MustCompile(`(?m)^HEALTHCHECK .*\n?.*messenger", "healthcheck"`), // /readyz
		regexp.MustCompile(`(?m)^COPY --from=build `),
	} {
		if !want.Match(df) {
			t.Errorf("the Dockerfile has no line like %s", want)
		}
	}
	if regexp.MustCompile(`(?m)^USER (root|0)\b`).Match(df) {
		t.Error("the Dockerfile runs as root")
	}
	build := regexp.MustCompile(`(?s)RUN (CGO_ENABLED=0) go build (.*?) \\\n\s*-o \S+ (\./cmd/messenger)`).FindSubmatch(df)
	if build == nil {
		t.Fatal("the Dockerfile has no `RUN CGO_ENABLED=0 go build ... -o ... ./cmd/messenger`")
	}
	out := filepath.Join(t.TempDir(), "messenger")
	args := append([]string{"build"}, shellFields(string(build[2]))...)
	args = append(args, "-o", out, string(build[3]))
	cmd := exec.Command("go", args...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), string(build[1]))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the Dockerfile's build (go %s) is dynamically linked: it will not run on the image", strings.Join(args, " "))
		}
	}
	return out
}

// shellFields splits a command line's arguments as a shell would, for double quotes only:
// -ldflags="-s -w" is one argument, -ldflags=-s -w.
func shellFields(s string) []string {
	var fields []string
	var cur strings.Builder
	quoted, in := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, in = !quoted, true
		case !quoted && (r == ' ' || r == '\t' || r == '\n' || r == '\\'):
			if in {
				fields = append(fields, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		fields = append(fields, cur.String())
	}
	return fields
}

func appPassword(dsn string) string {
	if m := regexp.MustCompile(`://[^:/@]+:([^@]+)@`).FindStringSubmatch(dsn); m != nil {
		return m[1]
	}
	return ""
}

func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

func get(addr, path string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v", url, resp.StatusCode, err)
	}
	return string(b)
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("after %s: %s", timeout, what)
}

// compose.yaml loads with the loader docker compose uses and .env.example's values; every
// service has a health check (the messenger servers' on /readyz); every variable it reads
// is in .env.example with a comment, and .env.example holds none it does not read. With
// a docker CLI that has compose, `docker compose config` passes too.
func TestCompose(t *testing.T) {
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"},
		cli.WithWorkingDirectory("."), cli.WithEnvFiles(".env.example"), cli.WithDotEnv)
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose.yaml with .env.example: %v", err)
	}
	var services []string
	for name, s := range project.Services {
		services = append(services, name)
		hc := s.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 {
			t.Errorf("service %s has no health check", name)
			continue
		}
		if strings.HasPrefix(name, "messenger-") && !slices.Equal(hc.Test, []string{"CMD", "messenger", "healthcheck"}) {
			t.Errorf("service %s checks %v, not /readyz (messenger healthcheck)", name, hc.Test)
		}
		for _, v := range s.Volumes {
			if v.Type == "volume" && project.Volumes[v.Source].Name == "" {
				t.Errorf("service %s mounts %s, not a named volume", name, v.Source)
			}
		}
	}
	slices.Sort(services)
	want := []string{"backup", "clamd", "grafana", "mailpit", "messenger-1", "messenger-2", "nginx", "postgres", "prometheus", "redis", "worker"}
	if !slices.Equal(services, want) {
		t.Errorf("services %v, want %v", services, want)
	}
	if project.Services["worker"].Command[0] != "worker" {
		t.Errorf("the worker runs %v", project.Services["worker"].Command)
	}

	raw, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`).FindAllSubmatch(raw, -1) {
		used[string(m[1])] = true
	}
	example, err := os.ReadFile(".env.example")
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	lines := strings.Split(string(example), "\n")
	for i, line := range lines {
		name, _, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		defined[name] = true
		if i == 0 || (!strings.HasPrefix(lines[i-1], "#") && !strings.Contains(lines[i-1], "=")) {
			t.Errorf(".env.example: %s has no comment above it", name)
		}
		if !used[name] {
			t.Errorf(".env.example: %s is not used by compose.yaml", name)
		}
	}
	for name := range used {
		if !defined[name] {
			t.Errorf("compose.yaml uses ${%s}, which .env.example does not define", name)
		}
	}

	if out, err := exec.Command("docker", "compose", "version").CombinedOutput(); err != nil {
		t.Logf("no docker compose (%s): the loader above stands for `docker compose config`", bytes.TrimSpace(out))
		return
	}
	if out, err := exec.Command("docker", "compose", "-f", "compose.yaml", "--env-file", ".env.example", "config", "--quiet").CombinedOutput(); err != nil {
		t.Errorf("docker compose config: %v\n%s", err, out)
	}
}
