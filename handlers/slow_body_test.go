package handlers_test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dreamseed/messenger/handlers"
)

// TestSlowBodyLetGo: a client that announces a form body and then trickles it (or sends
// nothing) is answered and let go once the body read timeout passes, instead of holding
// a connection and a goroutine for as long as it likes. A live stream on the same server
// is not cut by the deadline.
func TestSlowBodyLetGo(t *testing.T) {
	e := newEnv(t, func(c *handlers.Config) { c.BodyReadTimeout = time.Second })
	c := e.signInBrowser("slow1", "한도윤", "org-a")
	stream := e.openSSE(c, "/events", map[string]string{"Sec-Fetch-Site": "same-origin"})

	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	conn.Write([]byte("POST /auth/portal HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
		"Content-Length: 60000\r\n\r\ntoken="))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("no answer to a trickled body after %s: %v", took.Round(time.Millisecond), err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusRequestTimeout || took > 5*time.Second {
		t.Errorf("trickled body: status %d after %s, want 408 within about a second: %.300s", resp.StatusCode, took.Round(time.Millisecond), body)
	}
	time.Sleep(1500 * time.Millisecond) // past the body deadline: the stream must live on
	select {
	case <-stream.ended:
		t.Error("the live stream ended with the body read deadline")
	default:
	}
}

// TestSlowUploadLetGo: an upload's body has its own deadline (UploadReadTimeout), longer
// than a form's but not forever: a client that announces ten megabytes and trickles them
// is answered 408 and its connection closed.
func TestSlowUploadLetGo(t *testing.T) {
	e := newEnv(t, func(c *handlers.Config) { c.UploadReadTimeout = time.Second })
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	conn.Write([]byte("POST /api/v1/conversations/1/files HTTP/1.1\r\nHost: x\r\n" +
		"Authorization: Bearer " + sign(t, validClaims("slow-uploader", "한도윤", "org-a")) + "\r\n" +
		"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 10000000\r\n\r\n" +
		"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n\r\n%PDF-1.7\n"))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("no answer to a trickled upload after %s: %v", took.Round(time.Millisecond), err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusRequestTimeout || took > 5*time.Second || !resp.Close {
		t.Errorf("trickled upload: status %d (close %v) after %s, want 408 and close within about a second: %.300s",
			resp.StatusCode, resp.Close, took.Round(time.Millisecond), body)
	}
}
