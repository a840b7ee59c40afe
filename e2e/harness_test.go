// Package e2e starts the real messenger binary as a process and drives it the way people
// and the portal do: over HTTP, and with Chromium through chromedp.
//
// The tests need PostgreSQL (TEST_DATABASE_URL, or a private server that storetest
// starts) and, for the browser tests, Chromium ($CHROMIUM_PATH, default "chromium"). Without
// Chromium the browser tests are skipped, unless $CI is set, where they fail.
//
// Environment:
//
//	E2E_RACE=1        build the binary under test with the race detector
//	SCREENSHOT_DIR    keep the screenshots there (default: a temporary directory per test)
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/dreamseed/messenger/internal/syncbuf"
	"github.com/dreamseed/messenger/realtime/redistest"
	"github.com/dreamseed/messenger/store/storetest"
)

// binary is the messenger built once for the whole test binary.
var binary string

const (
	readyTimeout  = 60 * time.Second
	stopTimeout   = 20 * time.Second
	actionTimeout = 20 * time.Second
)

func TestMain(m *testing.M) {
	dir, err := buildBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "messenger")
	// storetest.Main exits the process, so the build directory cannot be removed after
	// the tests; the next run sweeps the directories of runs that have ended.
	storetest.Main(m)
}

// buildDirPrefix names the build directories in os.TempDir; the pid of the test binary
// follows it, so that a later run can tell which directories are stale.
const buildDirPrefix = "messenger-e2e-bin-"

// buildBinary builds ./cmd/messenger into a fresh directory and answers the directory.
func buildBinary() (string, error) {
	sweepBuildDirs()
	dir, err := os.MkdirTemp("", buildDirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", err
	}
	args := []string{"build"}
	if os.Getenv("E2E_RACE") == "1" {
		args = append(args, "-race")
	}
	args = append(args, "-o", filepath.Join(dir, "messenger"), "./cmd/messenger")
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(gobin, args...)
	cmd.Dir = ".." // the module root: this package is e2e/
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return dir, nil
}

// sweepBuildDirs removes the build directories of earlier test binaries that have ended.
func sweepBuildDirs() {
	entries, _ := os.ReadDir(os.TempDir())
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), buildDirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil {
			continue
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			continue // still running (or a reused pid: leave it for a later sweep)
		}
		os.RemoveAll(filepath.Join(os.TempDir(), e.Name()))
	}
}

// server is a messenger process under test.
type server struct {
	t    testing.TB
	URL  string // http://localhost:PORT, no trailing slash
	Addr string // 127.0.0.1:PORT
	// MetricsURL is GET /metrics on the server's own metrics listener ("" when the test
	// turned it off).
	MetricsURL string
	Env        []string

	cmd  *exec.Cmd
	logs *syncbuf.Buffer // stdout (JSON log lines) and stderr, interleaved
	done chan struct{}
	err  error // the exit error, once done is closed
}

// startServer runs the messenger binary on a free port and waits until it is ready.
//
// By default it gets a fresh database of its own (DATABASE_URL) and MESSENGER_DEV=1, so the
// demo data loads and /dev/login exists. extraEnv entries ("KEY=value") override the
// defaults; "DATABASE_URL=" (empty) leaves DATABASE_URL unset, so the binary runs its own
// embedded PostgreSQL.
func startServer(t testing.TB, extraEnv ...string) *server {
	t.Helper()
	overrides := map[string]string{}
	for _, kv := range extraEnv {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("startServer: %q is not KEY=value", kv)
		}
		overrides[k] = v
	}

	port := freePort(t)
	if a, ok := overrides["MESSENGER_ADDR"]; ok { // another process's address, taken over
		_, p, _ := net.SplitHostPort(a)
		if port, _ = strconv.Atoi(p); port == 0 {
			t.Fatalf("startServer: MESSENGER_ADDR %q has no port", a)
		}
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	env := map[string]string{
		"PATH":           os.Getenv("PATH"),
		"HOME":           os.Getenv("HOME"),
		"MESSENGER_ADDR": addr,
		// Every server has its own metrics port: the default one is shared by all.
		"MESSENGER_METRICS_ADDR": "127.0.0.1:" + strconv.Itoa(freePort(t)),
		"MESSENGER_BASE_URL":     "http://localhost:" + strconv.Itoa(port),
		"MESSENGER_LOG_LEVEL":    "debug",
		"MESSENGER_DEV":          "1",
	}
	if _, ok := overrides["DATABASE_URL"]; !ok {
		db := storetest.NewDatabase(t)
		env["DATABASE_URL"] = db.OwnerDSN
		// On storetest's private server messenger_app has a password; the binary derives
		// its own connection from DATABASE_URL and this password, as in production.
		if u, err := url.Parse(db.AppDSN); err == nil {
			if pw, ok := u.User.Password(); ok {
				env["MESSENGER_APP_DB_PASSWORD"] = pw
			}
		}
	}
	for k, v := range overrides {
		env[k] = v
	}
	// Pub/sub ignores Redis's database number: processes of one test (one database) share
	// a key prefix, other tests and runs on the same Redis get their own.
	if env["REDIS_URL"] != "" && env["MESSENGER_REDIS_PREFIX"] == "" {
		if u, err := url.Parse(env["DATABASE_URL"]); err == nil && u.Path != "" {
			env["MESSENGER_REDIS_PREFIX"] = "test" + strings.ReplaceAll(u.Path, "/", "-") + ":"
		}
	}
	s := &server{
		t:    t,
		URL:  "http://localhost:" + strconv.Itoa(port),
		Addr: addr,
		logs: &syncbuf.Buffer{},
		done: make(chan struct{}),
	}
	if m := env["MESSENGER_METRICS_ADDR"]; m != "" && m != "off" {
		s.MetricsURL = "http://" + m + "/metrics"
	}
	for k, v := range env {
		if v != "" {
			s.Env = append(s.Env, k+"="+v)
		}
	}

	s.cmd = exec.Command(binary)
	s.cmd.Env = s.Env
	s.cmd.Dir = t.TempDir()
	s.cmd.Stdout = s.logs
	s.cmd.Stderr = s.logs
	// Its own process group: a Ctrl-C at the terminal reaches the test, not the server.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start messenger: %v", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		if s.running() {
			s.signal(syscall.SIGINT)
			select {
			case <-s.done:
			case <-time.After(stopTimeout):
				s.signal(syscall.SIGKILL)
				<-s.done
				t.Errorf("messenger did not stop within %s of SIGINT at the end of the test; killed it", stopTimeout)
			}
		}
		if t.Failed() {
			t.Logf("messenger output (%s):\n%s", s.Addr, s.logs.String())
		}
	})

	if err := s.waitReady(readyTimeout); err != nil {
		t.Fatalf("messenger at %s is not ready: %v\n--- output:\n%s", s.URL, err, s.logs.String())
	}
	t.Logf("messenger ready at %s after %s", s.URL, time.Since(start).Round(time.Millisecond))
	return s
}

// freePort answers a TCP port on 127.0.0.1 that nothing listened on a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitReady polls GET /readyz until it answers 200, the process exits or timeout passes.
func (s *server) waitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	last := errors.New("no answer yet")
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("the process exited: %v", s.err)
		default:
		}
		resp, err := client.Get(s.URL + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("GET /readyz: %s %s", resp.Status, bytes.TrimSpace(body))
		} else {
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not ready within %s; last: %v", timeout, last)
}

func (s *server) running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

func (s *server) signal(sig syscall.Signal) {
	if err := s.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Logf("signal %v: %v", sig, err)
	}
}

// Stop sends SIGINT and waits for the process; it fails the test unless the process exits
// with status 0 within 20 s.
func (s *server) Stop() {
	s.t.Helper()
	if !s.running() {
		s.t.Errorf("messenger had already exited: %v", s.err)
		return
	}
	s.signal(syscall.SIGINT)
	select {
	case <-s.done:
		if s.err != nil {
			s.t.Errorf("messenger did not exit cleanly after SIGINT: %v", s.err)
		}
	case <-time.After(stopTimeout):
		s.signal(syscall.SIGKILL)
		<-s.done
		s.t.Errorf("messenger did not exit within %s of SIGINT; killed it", stopTimeout)
	}
}

// Kill ends the process with SIGKILL and waits for it.
func (s *server) Kill() {
	s.t.Helper()
	s.signal(syscall.SIGKILL)
	<-s.done
}

// Logs answers what the process has written so far.
func (s *server) Logs() string { return s.logs.String() }

// logLines answers the JSON log lines at level (e.g. "ERROR"), for assertions.
func (s *server) logLines(level string) []string {
	var out []string
	for _, line := range strings.Split(s.Logs(), "\n") {
		if strings.Contains(line, `"level":"`+level+`"`) {
			out = append(out, line)
		}
	}
	return out
}

// get does a GET with optional headers ("Name: value") and answers status and body.
func (s *server) get(path string, headers ...string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// ---------------------------------------------------------------------------------------
// Browser

// newBrowser starts a headless Chromium for the test and answers its chromedp context;
// tabs come from newTab. Without Chromium the test is skipped, or fails when $CI is set.
func newBrowser(t testing.TB) context.Context {
	t.Helper()
	name := os.Getenv("CHROMIUM_PATH")
	if name == "" {
		name = "chromium"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no Chromium (%s): %v", name, err)
		}
		t.Skipf("no Chromium (%s; set CHROMIUM_PATH): %v", name, err)
	}

	out := &syncbuf.Buffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // root in containers and CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		chromedp.CombinedOutput(out),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		stopCtx, stopCancel := context.WithTimeout(ctx, 10*time.Second)
		defer stopCancel()
		if err := chromedp.Cancel(stopCtx); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("close Chromium: %v", err)
		}
		cancel()
		cancelAlloc()
		if t.Failed() {
			t.Logf("Chromium output:\n%s", out.String())
		}
	})
	// The first Run starts the browser; its context must have no deadline.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v\n%s", err, out.String())
	}
	return ctx
}

// tab is one browser tab in a browser context of its own (own cookies, own storage), as
// one person's browser would be.
type tab struct {
	t       testing.TB
	ctx     context.Context
	lang    string
	console *consoleLog
}

// cspProbe reports every CSP violation on the console, also those that Chromium's own
// message would not name as clearly.
const cspProbe = `document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
    " at " + e.sourceFile + ":" + e.lineNumber);
});`

// newTab opens a tab in a new browser context of browser, whose requests ask for lang
// ("ko" or "en") first, and starts collecting its console.
func newTab(t testing.TB, browser context.Context, lang string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // opens the tab, without a deadline
		t.Fatalf("open tab: %v", err)
	}
	tb := &tab{t: t, ctx: ctx, lang: lang, console: newConsoleLog(ctx)}

	acceptLanguage := map[string]string{"ko": "ko-KR,ko;q=0.9", "en": "en-US,en;q=0.9"}[lang]
	if acceptLanguage == "" {
		t.Fatalf("newTab: unknown language %q", lang)
	}
	tb.do(chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		// The HTTP header is what the server negotiates with; the locale override makes
		// navigator.language and Intl agree with it.
		if _, err := cdp.Call(ctx, target, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Accept-Language": acceptLanguage},
		}); err != nil {
			return fmt.Errorf("set Accept-Language: %w", err)
		}
		icu := map[string]string{"ko": "ko_KR", "en": "en_US"}[lang]
		if _, err := cdp.Call(ctx, target, emulation.SetLocaleOverride, emulation.SetLocaleOverrideParams{Locale: icu}); err != nil {
			return fmt.Errorf("set locale: %w", err)
		}
		if _, err := cdp.Call(ctx, target, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspProbe}); err != nil {
			return fmt.Errorf("add CSP probe: %w", err)
		}
		return nil
	}))
	return tb
}

// do runs actions on the tab, each step within actionTimeout, and fails the test on error.
func (tb *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("browser: %v (at %s)", err, tb.location())
	}
}

// location answers the tab's URL, for messages; "" when it cannot tell.
func (tb *tab) location() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

// run runs one action that answers a value on the tab, and fails the test on error.
func run[T any](tb *tab, a chromedp.Action[T]) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		tb.t.Fatalf("browser: %v (at %s)", err, tb.location())
	}
	return v
}

// eval evaluates a JavaScript expression on the tab's page and decodes its value.
func eval[T any](tb *tab, expression string) T {
	tb.t.Helper()
	return run(tb, chromedp.Evaluate[T](expression))
}

// listSelector matches the conversation list landmark in both languages.
const listSelector = `nav[aria-label="대화 목록"], nav[aria-label="Conversations"]`

// signInDev signs the tab in as the demo user name on the dev login page and waits for
// the conversation list.
func signInDev(tb *tab, baseURL, name string) {
	tb.t.Helper()
	button := fmt.Sprintf(`button[data-dev-name=%q]`, name)
	tb.do(
		chromedp.Navigate(baseURL+"/dev/login"),
		chromedp.WaitVisible(chromedp.CSS(button)),
	)
	if _, err := runErr(tb, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(button)))); err != nil {
		tb.t.Fatalf("dev login as %s: %v", name, err)
	}
	tb.do(chromedp.WaitVisible(chromedp.CSS(listSelector)))
}

func runErr[T any](tb *tab, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// screenshotDir is $SCREENSHOT_DIR, or a temporary directory of the test.
func screenshotDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// screenshot sets the viewport (a phone's, with mobile emulation and touch, when mobile)
// and writes what the tab shows as a PNG into dir; it answers the file's path.
func screenshot(tb *tab, dir, name string, width, height int64, mobile bool) string {
	tb.t.Helper()
	var opts []chromedp.EmulateViewportOption
	if mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
	}
	tb.do(
		chromedp.EmulateViewport(width, height, opts...),
		// Let the layout settle at the new size and the fonts load before the capture.
		chromedp.Evaluate[chromedp.Void](`document.fonts.ready.then(() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))))`, chromedp.EvalAwaitPromise),
	)
	png := run(tb, chromedp.CaptureScreenshot())
	path := filepath.Join(dir, unsafeFileChars.ReplaceAllString(name, "_")+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot %dx%d: %s", width, height, path)
	return path
}

// consoleLog collects what a tab writes to its console: console API calls, uncaught
// exceptions and entries of the browser log (CSP reports, failed loads …).
type consoleLog struct {
	mu       sync.Mutex
	messages []chromedp.ConsoleMessage
	marks    chan string
}

const consoleMark = "e2e-console-mark:"

func newConsoleLog(ctx context.Context) *consoleLog {
	c := &consoleLog{marks: make(chan string, 16)}
	messages := chromedp.Console(ctx) // subscribes now
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if mark, ok := strings.CutPrefix(m.Text, consoleMark); ok {
				select {
				case c.marks <- mark:
				default:
				}
				continue
			}
			c.mu.Lock()
			c.messages = append(c.messages, m)
			c.mu.Unlock()
		}
	}()
	return c
}

// messages answers every console message of the tab so far: it writes a mark to the
// console and waits until the collector has read up to it.
func (tb *tab) consoleMessages() []chromedp.ConsoleMessage {
	tb.t.Helper()
	mark := strconv.FormatInt(time.Now().UnixNano(), 36)
	tb.do(chromedp.Evaluate[chromedp.Void](`console.debug(` + strconv.Quote(consoleMark+mark) + `)`))
	timeout := time.After(5 * time.Second)
	for done := false; !done; {
		select {
		case m := <-tb.console.marks:
			done = m == mark
		case <-timeout:
			tb.t.Log("console: the mark did not come back within 5 s; the list may be incomplete")
			done = true
		}
	}
	tb.console.mu.Lock()
	defer tb.console.mu.Unlock()
	return append([]chromedp.ConsoleMessage(nil), tb.console.messages...)
}

// describe formats a console message with where it came from.
func describe(m chromedp.ConsoleMessage) string {
	s := m.String()
	if m.Source != "" {
		s = "[" + m.Source + "] " + s
	}
	if m.URL != "" {
		s += fmt.Sprintf(" (%s:%d)", m.URL, m.Line+1)
	}
	return s
}

// checkConsole logs every console message of the tab and fails the test for JavaScript
// errors, uncaught exceptions and CSP violations.
func checkConsole(tb *tab) {
	tb.t.Helper()
	for _, m := range tb.consoleMessages() {
		bad := m.Type == chromedp.ConsoleError || m.IsException() ||
			strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "CSP violation")
		if bad {
			tb.t.Errorf("console (%s): %s", tb.lang, describe(m))
		} else {
			tb.t.Logf("console (%s): %s", tb.lang, describe(m))
		}
	}
}

// startServerOn starts another messenger process on the database of base: the same
// DATABASE_URL (and app password), so that several processes share one database, or a
// restarted process finds what the stopped one stored. It gets its own port; extraEnv
// entries ("KEY=value") add to or override the environment, as in startServer.
func startServerOn(t testing.TB, base *server, extraEnv ...string) *server {
	t.Helper()
	var env []string
	for _, key := range []string{"DATABASE_URL", "MESSENGER_APP_DB_PASSWORD"} {
		if v := base.env(key); v != "" {
			env = append(env, key+"="+v)
		}
	}
	return startServer(t, append(env, extraEnv...)...)
}

// env answers the value of key in the process's environment ("" when unset).
func (s *server) env(key string) string {
	for _, kv := range s.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// runNonce makes texts unique per run.
func runNonce() string { return strconv.FormatInt(time.Now().UnixNano()%1e6, 36) }

// teacherDirect answers the demo teacher's API, the demo direct conversation (the teacher
// and the parent) and its thread's address on srv.
func teacherDirect(t *testing.T, srv *server) (teacher *liveAPI, direct int64, threadURL string) {
	t.Helper()
	teacher = newLiveAPI(t, srv, demoTeacher)
	direct, _ = demoConversationIDs(t, teacher)
	return teacher, direct, srv.URL + "/c/" + strconv.FormatInt(direct, 10)
}

// signedInTab is a new live tab in Korean, signed in as the demo user name.
func signedInTab(t *testing.T, browser context.Context, srv *server, name string) *tab {
	t.Helper()
	tb := newLiveTab(t, browser, "ko")
	signInDev(tb, srv.URL, name)
	return tb
}

// checkServerErrors fails t for every ERROR line s logged.
func checkServerErrors(t testing.TB, s *server) {
	t.Helper()
	for _, line := range s.logLines("ERROR") {
		t.Errorf("server logged an error: %s", line)
	}
}

// announcements answers the id of the zone's announcement conversation in a's list.
func (a *apiClient) announcements() int64 {
	a.t.Helper()
	var list struct {
		Conversations []apiConversation `json:"conversations"`
	}
	a.mustJSON(http.MethodGet, "/api/v1/conversations", nil, http.StatusOK, &list)
	var notices int64
	for _, c := range list.Conversations {
		if c.Kind == "announcement" {
			notices = c.ID
		}
	}
	if notices == 0 {
		a.t.Fatalf("the %s's list has no announcement conversation: %+v", a.user.Role, list.Conversations)
	}
	return notices
}

// liveStream is u's event stream on s, tracking convs, once it is connected.
func (s *server) liveStream(u testUser, convs ...int64) *sseClient {
	c := s.newSSEClient(u)
	for _, id := range convs {
		c.Track(id)
	}
	c.StartAndWait(10 * time.Second)
	return c
}

// decodedEvents answers the events of type typ that c received, each decoded, that keep holds.
func decodedEvents[T any](t testing.TB, c *sseClient, typ string, keep func(T) bool) []T {
	t.Helper()
	var out []T
	for _, ev := range c.Events() {
		if ev.Type != typ {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(ev.Data), &v); err != nil {
			t.Fatalf("%s %q: %v", typ, ev.Data, err)
		}
		if keep(v) {
			out = append(out, v)
		}
	}
	return out
}

// directWith answers a's direct conversation with other's user, who signs in first (as
// other's client) so that the portal's user exists.
func (a *apiClient) directWith(other *apiClient) apiConversation {
	a.t.Helper()
	other.me()
	return a.createConversation("direct", "", other.user.Sub)
}

// twoServers starts two processes on one database and a Redis of their own.
func twoServers(t *testing.T, extraEnv ...string) (a, b *server) {
	t.Helper()
	env := append([]string{"REDIS_URL=" + redistest.URL(t)}, extraEnv...)
	a = startServer(t, env...)
	return a, startServerOn(t, a, env...)
}
