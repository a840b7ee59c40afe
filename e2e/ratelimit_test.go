package e2e

// Rate limits: a script that floods sends, typing, read marks, conversations, invitations
// or sign-ins meets 429 rate_limited with Retry-After; nothing past the limit is stored;
// with Redis, two processes share one budget.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/dreamseed/messenger/auth"
)

// The defaults of the send and typing buckets (cmd/messenger/config.go): what one user may
// do in a burst, and per second after it.
const (
	sendBurst, sendPerSecond     = 60, 30
	typingBurst, typingPerSecond = 10, 5
)

// limitedAnswer is one answer of a flood.
type limitedAnswer struct {
	status     int
	retryAfter string
	body       []byte
	server     int // which process answered
}

// call does one API request and answers status, Retry-After and body.
func (a *apiClient) call(ctx context.Context, method, path string, in any) (limitedAnswer, error) {
	var rd io.Reader
	if in != nil {
		enc, err := json.Marshal(in)
		if err != nil {
			return limitedAnswer{}, err
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return limitedAnswer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+a.user.Token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return limitedAnswer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return limitedAnswer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: body}, err
}

// flood runs n requests from 8 goroutines as fast as they answer, spread over the clients
// (one per process), and answers every answer and how long the flood took.
func flood(t *testing.T, clients []*apiClient, n int, req func(i int) (method, path string, body any)) ([]limitedAnswer, time.Duration) {
	t.Helper()
	answers := make([]limitedAnswer, n)
	errs := make(chan error, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range next {
				method, path, body := req(i)
				a, err := clients[i%len(clients)].call(context.Background(), method, path, body)
				if err != nil {
					errs <- err
					continue
				}
				a.server = i % len(clients)
				answers[i] = a
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatalf("flood: %v", err)
	}
	return answers, elapsed
}

// checkLimited checks that a flood met the limit: only ok and 429 answers, 429s in the
// JSON error shape with a Retry-After of whole seconds ≥ 1, and at most the burst plus
// what refills in the flood's time let through (one budget, whatever the processes). It
// answers the indexes of the requests that passed.
func checkLimited(t *testing.T, what string, answers []limitedAnswer, elapsed time.Duration, ok, burst, perSecond int, processes int) []int {
	t.Helper()
	var passed []int
	limitedBy := map[int]int{}
	for i, a := range answers {
		switch a.status {
		case ok:
			passed = append(passed, i)
		case http.StatusTooManyRequests:
			limitedBy[a.server%processes]++
			if limitedBy[a.server%processes] == 1 {
				wantAPIError(t, what, a.status, a.body, http.StatusTooManyRequests, "rate_limited")
			}
			if s, err := strconv.Atoi(a.retryAfter); err != nil || s < 1 {
				t.Fatalf("%s: 429 with Retry-After %q, want whole seconds ≥ 1", what, a.retryAfter)
			}
		default:
			t.Fatalf("%s: request %d answered %d: %s", what, i, a.status, a.body)
		}
	}
	allowed := burst + int(float64(perSecond)*elapsed.Seconds()) + 2
	t.Logf("%s: %d requests in %s: %d passed (at most %d allowed), 429 by process %v",
		what, len(answers), elapsed.Round(time.Millisecond), len(passed), allowed, limitedBy)
	if len(passed) > allowed {
		t.Errorf("%s: %d of %d requests passed in %s; the limit allows at most %d", what, len(passed), len(answers), elapsed, allowed)
	}
	if len(passed) < min(burst, len(answers)) {
		t.Errorf("%s: only %d passed; the burst alone is %d", what, len(passed), burst)
	}
	for p := range processes {
		if limitedBy[p] == 0 {
			t.Errorf("%s: process %d limited nothing", what, p)
		}
	}
	return passed
}

// checkSendAndTypingFloods floods sends and typing signals of one user through the
// servers and checks the limits and that the database holds exactly the sends answered 201.
func checkSendAndTypingFloods(t *testing.T, servers []*server, org string) {
	alice := newUser(t, "rl-alice-"+org, "김민지", org, "teacher")
	bob := newUser(t, "rl-bob-"+org, "이준호", org, "student")
	servers[0].api(bob).me()
	var clients []*apiClient
	for _, s := range servers {
		clients = append(clients, s.api(alice))
	}
	conv := clients[0].createConversation("direct", "", bob.Sub)

	// 400 sends, as fast as the server answers.
	bodies := make([]string, 400)
	answers, elapsed := flood(t, clients, len(bodies), func(i int) (string, string, any) {
		bodies[i] = fmt.Sprintf("홍수 %d", i)
		return http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/messages", conv.ID),
			map[string]any{"body": bodies[i], "client_msg_id": uuid.NewString()}
	})
	passed := checkLimited(t, "send", answers, elapsed, http.StatusCreated, sendBurst, sendPerSecond, len(servers))

	// The database holds exactly the messages answered 201.
	stored, err := servers[0].api(bob).history(context.Background(), conv.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, i := range passed {
		want[bodies[i]] = true
	}
	got := map[string]bool{}
	for _, m := range stored {
		got[m.Body] = true
	}
	if len(stored) != len(passed) || len(got) != len(want) {
		t.Errorf("the conversation holds %d messages, %d answered 201", len(stored), len(passed))
	}
	for b := range want {
		if !got[b] {
			t.Errorf("%q was answered 201 but is not stored", b)
		}
	}

	// 200 typing signals.
	answers, elapsed = flood(t, clients, 200, func(i int) (string, string, any) {
		return http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/typing", conv.ID), map[string]any{"typing": i%2 == 0}
	})
	checkLimited(t, "typing", answers, elapsed, http.StatusNoContent, typingBurst, typingPerSecond, len(servers))
}

// TestRateLimits shows a flooding user limited: with the memory engine, and with Redis
// two processes sharing one budget.
func TestRateLimits(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		s := startServer(t)
		org := "org-rl-" + deliveryNonce()
		checkSendAndTypingFloods(t, []*server{s}, org)

		// Read marks, conversations and invitations, with their default buckets.
		teacher := newUser(t, "rl-teacher-"+org, "박선생", org, "teacher")
		pupil := newUser(t, "rl-pupil-"+org, "최학생", org, "student")
		s.api(pupil).me()
		a := s.api(teacher)
		conv := a.createConversation("group", "모둠", pupil.Sub)
		msg := a.mustSend(conv.ID, "첫 번째", "")
		answers, elapsed := flood(t, []*apiClient{s.api(pupil)}, 200, func(int) (string, string, any) {
			return http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/read", conv.ID), map[string]any{"seq": msg.Seq}
		})
		checkLimited(t, "read", answers, elapsed, http.StatusNoContent, 30, 10, 1)
		maker := s.api(newUser(t, "rl-maker-"+org, "한선생", org, "teacher"))
		answers, elapsed = flood(t, []*apiClient{maker}, 60, func(i int) (string, string, any) {
			return http.MethodPost, "/api/v1/conversations", map[string]any{
				"kind": "group", "title": fmt.Sprintf("모둠 %d", i), "participant_ids": []string{pupil.Sub}}
		})
		checkLimited(t, "create", answers, elapsed, http.StatusCreated, 20, 1, 1)
		answers, elapsed = flood(t, []*apiClient{a}, 60, func(i int) (string, string, any) {
			return http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/participants", conv.ID),
				map[string]any{"user_ids": []string{pupil.Sub}}
		})
		checkLimited(t, "invite", answers, elapsed, http.StatusOK, 20, 1, 1)

		// Sign-ins: one subject with many fresh tokens.
		var tokens []*apiClient
		for i := range 40 {
			u := newUser(t, "rl-signin-"+org, "정학생", org, "student")
			u.Token = mintToken(t, u, time.Hour+time.Duration(i)*time.Second)
			tokens = append(tokens, s.api(u))
		}
		answers, elapsed = flood(t, tokens, len(tokens), func(int) (string, string, any) {
			return http.MethodGet, "/api/v1/me", nil
		})
		checkLimited(t, "sign-in of one subject", answers, elapsed, http.StatusOK, 10, 1, 1)
	})

	t.Run("redis", func(t *testing.T) {
		a, b := twoServers(t)
		checkSendAndTypingFloods(t, []*server{a, b}, "org-rl-"+deliveryNonce())
	})
}

// TestSignInLimitPerAddress: tokens that do not verify, from one address, are limited
// (401 within the burst, then 429 with Retry-After); a valid token from the same address
// still signs in, so one pupil's garbage never locks the school out.
func TestSignInLimitPerAddress(t *testing.T) {
	s := startServer(t, "MESSENGER_RATE_SIGNIN_IP=1:12")
	org := "org-rlip-" + deliveryNonce()
	var clients []*apiClient
	for i := range 40 {
		u := newUser(t, fmt.Sprintf("rl-ip-%02d-%s", i, org), "학생", org, "student")
		u.Token = fmt.Sprintf("not-a-token-%d", i)
		clients = append(clients, s.api(u))
	}
	answers, elapsed := flood(t, clients, len(clients), func(int) (string, string, any) {
		return http.MethodGet, "/api/v1/me", nil
	})
	checkLimited(t, "refused sign-ins from one address", answers, elapsed, http.StatusUnauthorized, 12, 1, 1)
	valid := s.api(newUser(t, "rl-ip-valid-"+org, "학생", org, "student"))
	if a, err := valid.call(context.Background(), http.MethodGet, "/api/v1/me", nil); err != nil || a.status != http.StatusOK {
		t.Fatalf("a valid sign-in from the same address after the flood: %+v %v, want 200", a, err)
	}
}

// mintToken mints u's token with its own lifetime, so that each is a new token.
func mintToken(t testing.TB, u testUser, ttl time.Duration) string {
	t.Helper()
	token, err := auth.MintToken([]byte(auth.DevSecret), "messenger", auth.Claims{
		Issuer: "dreamseed-portal", Subject: u.Sub, Name: u.Name, OrgID: u.Org, Role: u.Role,
	}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// TestComposerRateLimitedInBrowser sends past the limit from the composer: the page says
// so in the reader's language, keeps the text, stores nothing, and the retry sends it
// once the bucket has a token again. Without JavaScript the form answers the thread with
// the same message and the text kept.
func TestComposerRateLimitedInBrowser(t *testing.T) {
	browser := newBrowser(t)
	// Three in a burst, then one every 2 s: the test can spend the burst and wait.
	srv := startServer(t, "MESSENGER_RATE_SEND=0.5:3")
	teacherAPI := newLiveAPI(t, srv, demoTeacher)
	direct, _ := demoConversationIDs(t, teacherAPI)
	threadURL := srv.URL + "/c/" + strconv.FormatInt(direct, 10)
	nonce := deliveryNonce()

	ko := newLiveTab(t, browser, "ko")
	signInDev(ko, srv.URL, demoTeacher.Name)
	openThread(ko, threadURL)
	en := newLiveTab(t, browser, "en")
	signInDev(en, srv.URL, demoTeacher.Name)
	openThread(en, threadURL)

	for _, c := range []struct {
		tb   *tab
		want string
	}{
		{ko, "메시지를 너무 빨리 보내고 있습니다. 잠시 후 다시 시도하세요."},
		{en, "You are sending messages too quickly. Wait a moment and try again."},
	} {
		tb := c.tb
		// Another client of the same person spends the burst.
		for i := range 3 {
			st, _, _ := teacherAPI.trySend(t, direct, fmt.Sprintf("버스트 %s %s %d", tb.lang, nonce, i))
			if st != http.StatusCreated && st != http.StatusTooManyRequests {
				t.Fatalf("spending the burst: status %d", st)
			}
		}
		text := "너무 빠른 메시지 " + tb.lang + " " + nonce
		typeInComposer(tb, text)
		pressEnter(tb)
		waitJS(tb, "the composer shows the rate limit", `!document.getElementById("composer-error").classList.contains("hidden")`, 5*time.Second)
		screenshot(tb, screenshotDir(t), "rate-limited-"+tb.lang+"-390x844", 390, 844, true)
		if msg := eval[string](tb, `document.getElementById("composer-error-text").textContent.trim()`); msg != c.want {
			t.Errorf("%s: composer error %q, want %q", tb.lang, msg, c.want)
		}
		if v := run(tb, chromedp.Value(chromedp.ID("composer"))); v != text {
			t.Errorf("%s: after a 429 the composer holds %q, want the text %q", tb.lang, v, text)
		}
		if n := teacherAPI.countBody(t, direct, text); n != 0 {
			t.Errorf("%s: the refused text is stored %d times", tb.lang, n)
		}
		// The retry, once a token is back, sends it once.
		time.Sleep(2100 * time.Millisecond) // the bucket refills one token in 2 s
		tb.do(chromedp.Click(chromedp.ID("composer-retry")))
		waitJS(tb, "the retried message shows and the composer clears",
			countTextJS(text)+` === 1 && document.getElementById("composer").value === "" && document.getElementById("composer-error").classList.contains("hidden")`, 5*time.Second)
		if n := teacherAPI.countBody(t, direct, text); n != 1 {
			t.Errorf("%s: the retried text is stored %d times, want once", tb.lang, n)
		}
	}

	// Without JavaScript: a plain form post past the limit.
	web := srv.signInPortal(testUser{Sub: demoTeacher.Sub, Name: demoTeacher.Name, Token: teacherAPI.token})
	for range 3 {
		teacherAPI.trySend(t, direct, "버스트 "+nonce)
	}
	text := "자바스크립트 없이 " + nonce
	status, page, _ := web.request(http.MethodPost, "/c/"+strconv.FormatInt(direct, 10)+"/messages",
		url.Values{"body": {text}, "client_msg_id": {uuid.NewString()}, "csrf_token": {web.csrf}})
	if status != http.StatusUnprocessableEntity || !strings.Contains(page, "메시지를 너무 빨리 보내고 있습니다.") || !strings.Contains(page, text) {
		t.Errorf("a plain form post past the limit: status %d; the page shows the message: %v, keeps the text: %v",
			status, strings.Contains(page, "메시지를 너무 빨리"), strings.Contains(page, text))
	}
	if n := teacherAPI.countBody(t, direct, text); n != 0 {
		t.Errorf("the refused form post is stored %d times", n)
	}
}

// trySend sends a message and answers the status, whatever it is.
func (c *liveAPI) trySend(t testing.TB, convID int64, body string) (int, []byte, error) {
	t.Helper()
	in, _ := json.Marshal(map[string]string{"body": body, "client_msg_id": uuid.NewString()})
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/api/v1/conversations/%d/messages", c.srv.URL, convID), bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := liveHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}
