package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dreamseed/messenger/auth"
)

// fakePages signs a portal token in at /auth/portal and serves a thread, an empty
// conversation and a list to that session only, gzipped when asked.
type fakePages struct {
	t      *testing.T
	secret string
	gets   atomic.Int64
}

func (f *fakePages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == "/auth/portal" {
		r.ParseForm()
		v, err := auth.NewVerifier(r.Context(), auth.VerifierConfig{Secret: []byte(f.secret), Issuer: "dreamseed-portal", Audience: "messenger"})
		if err != nil {
			f.t.Error(err)
			return
		}
		claims, err := v.Verify(r.Context(), r.PostForm.Get("token"))
		if err != nil || claims.Subject != "bench-teacher" {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "s3cret"})
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if c, err := r.Cookie("session"); err != nil || c.Value != "s3cret" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	f.gets.Add(1)
	var page string
	switch r.URL.Path {
	case "/":
		page = `<a href="/c/1">3학년 2반 학부모</a><a href="/c/2">x</a><a href="/c/1">again</a>`
	case "/c/1":
		page = "<main>" + strings.Repeat(`<div class="bubble">message</div>`, 50) + "(110)</main>"
	case "/c/2":
		page = "<main>(110)</main>"
	default:
		http.NotFound(w, r)
		return
	}
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		io.WriteString(zw, page)
		zw.Close()
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(b.Bytes())
		return
	}
	io.WriteString(w, page)
}

func TestPagebenchWeighsAndOffersThePages(t *testing.T) {
	secret := strings.Repeat("k", 32)
	f := &fakePages{t: t, secret: secret}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := config{
		URL: srv.URL, Secret: secret, Sub: "bench-teacher", Name: "선생님", Thread: 1, Empty: 2, PageMessages: 50,
		ThreadMarker: "(110)", ListMarker: "3학년 2반 학부모", Rate: 200, Duration: 500 * time.Millisecond,
		Warmup: 100 * time.Millisecond, Conns: 8, Timeout: 2 * time.Second, CookieOut: t.TempDir() + "/cookie",
	}
	sum, err := run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Pages) != 2 || sum.Pages[0].Name != "thread" || sum.Pages[1].Name != "list" {
		t.Fatalf("pages = %+v", sum.Pages)
	}
	th := sum.Pages[0]
	if th.Weights[0].Encoding != "identity" || th.Weights[1].Encoding != "gzip" || th.Weights[2].Encoding != "identity" {
		t.Errorf("encodings answered: %+v", th.Weights)
	}
	if th.Weights[1].BodyBytes >= th.Weights[0].BodyBytes/4 || th.Weights[0].WireBytes <= th.Weights[0].BodyBytes {
		t.Errorf("weights: %+v, want gzip far smaller and the headers counted on the wire", th.Weights)
	}
	if want := float64(len(`<div class="bubble">message</div>`)); sum.MarkupPerMessage != want {
		t.Errorf("markup per message = %.1f, want %.0f", sum.MarkupPerMessage, want)
	}
	if sum.ListLinks != 2 {
		t.Errorf("list links = %d, want 2 distinct conversations", sum.ListLinks)
	}
	for _, p := range sum.Pages {
		ol := p.OpenLoop
		// 0.6 s at 200/s: 120 requests, every one answered; 100 in the measured window.
		if ol == nil || ol.OK != 120 || ol.Errors != 0 || ol.Latency.Count != 100 || ol.Achieved < 100 || ol.Achieved > 260 {
			t.Errorf("%s open loop = %+v", p.Name, ol)
		}
	}
}

func TestPagebenchRefusesTheWrongPage(t *testing.T) {
	secret := strings.Repeat("k", 32)
	srv := httptest.NewServer(&fakePages{t: t, secret: secret})
	defer srv.Close()
	cfg := config{URL: srv.URL, Secret: secret, Sub: "bench-teacher", Name: "x", Thread: 1, PageMessages: 50,
		ThreadMarker: "(999)", ListMarker: "x"}
	if _, err := run(context.Background(), cfg, io.Discard); err == nil || !strings.Contains(err.Error(), `lacks "(999)"`) {
		t.Errorf("err = %v, want the missing marker named", err)
	}
	cfg.ThreadMarker, cfg.Secret = "(110)", strings.Repeat("x", 32)
	if _, err := run(context.Background(), cfg, io.Discard); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("err = %v, want the refused sign-in", err)
	}
}
