package handlers_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
)

// directConversation answers the id of the 1:1 between me and friend.
func directConversation(t *testing.T, e *env, me, friend messenger.User) int64 {
	t.Helper()
	ctx := context.Background()
	var id int64
	err := e.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
		var err error
		id, _, err = tx.DirectConversation(ctx, friend.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// zeros is an endless reader of zero bytes that allocates nothing.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// multipartBody answers a multipart/form-data body with a token field and one file of
// size bytes, streamed, and its content type.
func multipartBody(token string, size int64) (io.Reader, string) {
	const boundary = "hostile-boundary-7f3a"
	head := "--" + boundary + "\r\n" +
		`Content-Disposition: form-data; name="token"` + "\r\n\r\n" + token + "\r\n" +
		"--" + boundary + "\r\n" +
		`Content-Disposition: form-data; name="file"; filename="big.bin"` + "\r\n" +
		"Content-Type: application/octet-stream\r\n\r\n"
	tail := "\r\n--" + boundary + "--\r\n"
	return io.MultiReader(strings.NewReader(head), io.LimitReader(zeros{}, size), strings.NewReader(tail)),
		"multipart/form-data; boundary=" + boundary
}

// TestBodyLimit: every form and JSON body is limited before it is read; over the limit
// the API answers 413 too_large, a browser a fragment or a page, and nothing is stored.
// The longest message, escaped as heavily as JSON and forms allow, stays well inside it.
func TestBodyLimit(t *testing.T) {
	e := newEnv(t, nil)
	browser := e.signInBrowser("b1", "김민준", "org-a")
	csrf := e.csrfToken(browser)
	me := mustUser(t, e.db, "b1", "김민준", "org-a")
	friend := mustUser(t, e.db, "b2", "이서연", "org-a")
	conv := directConversation(t, e, me, friend)
	apiPath := fmt.Sprintf("/api/v1/conversations/%d/messages", conv)
	pagePath := fmt.Sprintf("/c/%d/messages", conv)
	api := map[string]string{"Authorization": "Bearer " + sign(t, validClaims("b1", "김민준", "org-a")), "Content-Type": "application/json"}
	form := func(htmx bool) map[string]string {
		h := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": e.srv.URL}
		if htmx {
			h["HX-Request"] = "true"
		}
		return h
	}

	// The longest messages: 4,000 emoji as JSON surrogate escapes (12 bytes each) or
	// percent-encoded (12 bytes each), 4,000 Hangul as \uXXXX.
	for name, escaped := range map[string]string{"emoji": `\ud83d\ude00`, "hangul": `\ud55c`} {
		body := `{"body":"` + strings.Repeat(escaped, messenger.MaxMessageLength) + `","client_msg_id":"` + uuid.NewString() + `"}`
		if resp := e.do(nil, "POST", apiPath, strings.NewReader(body), api); resp.StatusCode != http.StatusCreated {
			t.Errorf("longest %s message as JSON (%d bytes): status %d: %.200s", name, len(body), resp.StatusCode, readBody(t, resp))
		}
	}
	longest := url.Values{"body": {strings.Repeat("😀", messenger.MaxMessageLength)}, "client_msg_id": {uuid.NewString()}, "csrf_token": {csrf}}.Encode()
	if resp := e.do(browser, "POST", pagePath, strings.NewReader(longest), form(true)); resp.StatusCode != http.StatusCreated {
		t.Errorf("longest message from the composer (%d bytes): status %d", len(longest), resp.StatusCode)
	}

	before := e.count("messages")
	huge := strings.Repeat("가", 100<<10) // 300 KB of text
	tooLarge := []struct {
		name, method, path string
		client             bool
		body               io.Reader
		header             map[string]string
		json               bool
	}{
		{"API JSON", "POST", apiPath, false, strings.NewReader(`{"body":"` + huge + `"}`), api, true},
		{"composer (htmx)", "POST", pagePath, true, strings.NewReader(url.Values{"body": {huge}, "csrf_token": {csrf}}.Encode()), form(true), false},
		{"composer (plain form)", "POST", pagePath, true, strings.NewReader(url.Values{"body": {huge}, "csrf_token": {csrf}}.Encode()), form(false), false},
		{"portal sign-in", "POST", "/auth/portal", false, strings.NewReader(url.Values{"token": {huge}}.Encode()), form(false), false},
		{"portal sign-in, chunked", "POST", "/auth/portal", false, io.MultiReader(strings.NewReader("token="), io.LimitReader(zeros{}, 10<<20)), form(false), false},
	}
	for _, tt := range tooLarge {
		t.Run(tt.name, func(t *testing.T) {
			client := (*http.Client)(nil)
			if tt.client {
				client = browser
			}
			resp := e.do(client, tt.method, tt.path, tt.body, tt.header)
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d, want 413: %.200s", resp.StatusCode, readBody(t, resp))
			}
			if tt.json {
				if code, _ := decodeError(t, resp); code != messenger.ETOOLARGE {
					t.Errorf("code %q, want too_large", code)
				}
			} else if body := readBody(t, resp); body == "" || strings.Contains(body, `"error"`) {
				t.Errorf("a browser got %q, want a page or fragment", body)
			}
		})
	}
	if n := e.count("messages"); n != before {
		t.Errorf("refused bodies stored %d messages", n-before)
	}
}

// TestMultipartOnlyForUploads: no route but an upload route takes multipart/form-data;
// the others answer 415 unsupported and do nothing.
func TestMultipartOnlyForUploads(t *testing.T) {
	e := newEnv(t, nil)
	browser := e.signInBrowser("u1", "김민준", "org-a")
	csrf := e.csrfToken(browser)
	me := mustUser(t, e.db, "u1", "김민준", "org-a")
	friend := mustUser(t, e.db, "u2", "이서연", "org-a")
	conv := directConversation(t, e, me, friend)
	sessions := e.count("sessions")

	body, ct := multipartBody(sign(t, validClaims("u3", "박지호", "org-a")), 10)
	resp := e.do(nil, "POST", "/auth/portal", body, map[string]string{"Content-Type": ct, "Origin": portal, "Sec-Fetch-Site": "cross-site"})
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("multipart portal sign-in: status %d, want 415", resp.StatusCode)
	}
	if n := e.count("sessions"); n != sessions {
		t.Errorf("a multipart sign-in made %d sessions", n-sessions)
	}

	var mp strings.Builder
	mp.WriteString("--b\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\nhello\r\n")
	mp.WriteString("--b\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n" + csrf + "\r\n--b--\r\n")
	resp = e.do(browser, "POST", fmt.Sprintf("/c/%d/messages", conv), strings.NewReader(mp.String()), map[string]string{
		"Content-Type": "multipart/form-data; boundary=b", "Origin": e.srv.URL, "HX-Request": "true",
	})
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("multipart composer post: status %d, want 415", resp.StatusCode)
	}
	resp = e.do(nil, "POST", fmt.Sprintf("/api/v1/conversations/%d/messages", conv), strings.NewReader(mp.String()), map[string]string{
		"Content-Type": "multipart/form-data; boundary=b", "Authorization": "Bearer " + sign(t, validClaims("u1", "김민준", "org-a")),
	})
	if code, _ := decodeError(t, resp); resp.StatusCode != http.StatusUnsupportedMediaType || code != messenger.EUNSUPPORTED {
		t.Errorf("multipart API post: status %d code %q, want 415 unsupported", resp.StatusCode, code)
	}
	if n := e.count("messages"); n != 0 {
		t.Errorf("multipart posts stored %d messages", n)
	}
}

// TestUploadRouteException: a route registered as an upload route takes multipart up to
// its own limit, above the form limit, and its temporary files are removed.
func TestUploadRouteException(t *testing.T) {
	e := newEnv(t, nil)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	e.server.UploadRouteForTest(e.echo, "/test-upload", 2<<20)

	body, ct := multipartBody("x", 1<<20)
	resp := e.do(nil, "POST", "/test-upload", body, map[string]string{"Content-Type": ct})
	if got := readBody(t, resp); resp.StatusCode != http.StatusOK || got != fmt.Sprint(1<<20) {
		t.Errorf("1 MiB upload: status %d body %q, want 200 %d", resp.StatusCode, got, 1<<20)
	}
	body, ct = multipartBody("x", 3<<20)
	if resp := e.do(nil, "POST", "/test-upload", body, map[string]string{"Content-Type": ct}); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("3 MiB upload over a 2 MiB limit: status %d, want 413", resp.StatusCode)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("upload left %d temporary files: %v", len(left), left)
	}
}

// TestHugeMultipartLeavesNothing is the attack on POST /auth/portal: 20 bodies of 40 MiB
// multipart leave no file in the temporary folder, and the server neither buffers them
// nor keeps memory afterwards.
func TestHugeMultipartLeavesNothing(t *testing.T) {
	e := newEnv(t, nil)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	token := sign(t, validClaims("h1", "김민준", "org-a"))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < 20; i++ {
		body, ct := multipartBody(token, 40<<20)
		req, err := http.NewRequest("POST", e.srv.URL+"/auth/portal", body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Origin", portal)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		// The server may close the connection while the body is still being sent: the
		// client then sees a write error instead of the answer, which is fine here.
		if resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Errorf("request %d: status %d, want a refusal", i, resp.StatusCode)
			}
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)

	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("%d files left in the temporary folder, e.g. %s", len(left), left[0].Name())
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("20 refused bodies allocated %d MiB in the process, want a few", alloc>>20)
	}
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 8<<20 {
		t.Errorf("heap in use grew by %d MiB", grown>>20)
	}
}
