package handlers_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/net/html"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/handlers"
)

// notWords are the Latin words a Korean page may show: names of things that have no
// Korean word of their own (the brand, file formats, products, units, time zone names),
// and the test's own user data (people's names).
var notWords = map[string]bool{
	"DreamSeed": true, "PDF": true, "JPG": true, "JPEG": true, "PNG": true, "WebP": true, "GIF": true,
	"HWP": true, "HWPX": true, "HEIC": true, "iPhone": true, "iPad": true, "Safari": true, "iOS": true,
	"ID": true, "KB": true, "MB": true, "GB": true, "Asia": true, "Seoul": true, "UTC": true,
	"Mina": true, "Joon": true, "Sora": true, "Nara": true,
}

var latinWord = regexp.MustCompile(`[A-Za-z]{2,}`)

// requestID matches the ids of requests that the audit log shows.
var requestID = regexp.MustCompile(`^[0-9a-fA-F-]{16,}$`)

// shownAttrs are the attributes a user reads (or hears from a screen reader).
var shownAttrs = map[string]bool{"aria-label": true, "title": true, "placeholder": true, "alt": true}

// visibleText answers what a reader of page sees and hears: its text outside scripts and
// styles, and the attributes that are read out.
func visibleText(page string) string {
	// Parsed as a browser without scripts would, so that <noscript> holds elements.
	doc, err := html.ParseWithOptions(strings.NewReader(page), html.ParseOptionEnableScripting(false))
	if err != nil {
		return page
	}
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		switch {
		case n.Type == html.ElementNode && (n.Data == "script" || n.Data == "style"):
			return
		case n.Type == html.TextNode:
			b.WriteString(n.Data)
			b.WriteString(" ")
		case n.Type == html.ElementNode:
			for _, a := range n.Attr {
				if shownAttrs[a.Key] || (a.Key == "value" && n.Data == "input" && attr(n, "type") == "submit") {
					b.WriteString(a.Val)
					b.WriteString(" ")
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return b.String()
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// otherLanguage answers the words of text that are not in lang: Hangul on an English page,
// Latin words beyond notWords on a Korean one.
func otherLanguage(lang, text string) []string {
	var out []string
	if lang == "en" {
		for _, w := range strings.Fields(text) {
			if strings.IndexFunc(w, func(r rune) bool { return unicode.Is(unicode.Hangul, r) }) >= 0 {
				out = append(out, w)
			}
		}
		return out
	}
	for _, field := range strings.Fields(text) {
		if requestID.MatchString(field) {
			continue
		}
		for _, w := range latinWord.FindAllString(field, -1) {
			if !notWords[w] {
				out = append(out, w)
			}
		}
	}
	return out
}

// TestPagesSpeakOneLanguage renders every page and fragment, and the errors a browser and
// an API client meet, in Korean and in English, and finds no word of the other language.
func TestPagesSpeakOneLanguage(t *testing.T) {
	e := newEnv(t, func(c *handlers.Config) { c.Dev = true })
	token := sign(t, validClaims("w1", "Mina", "org-w"))
	for _, who := range []struct{ sub, name string }{{"w2", "Joon"}, {"w3", "Sora"}} {
		sign(t, validClaims(who.sub, who.name, "org-w"))
		mustUser(t, e.db, who.sub, who.name, "org-w")
	}
	var direct, group struct{ ID int64 }
	json.Unmarshal([]byte(e.apiDo(token, "POST", "/api/v1/conversations", `{"kind":"direct","participant_ids":["w2"]}`)), &direct)
	json.Unmarshal([]byte(e.apiDo(token, "POST", "/api/v1/conversations", `{"kind":"group","title":"3-2","participant_ids":["w2"]}`)), &group)
	e.apiDo(token, "POST", fmt.Sprintf("/api/v1/conversations/%d/messages", direct.ID), `{"body":"1234 👋"}`)
	e.apiDo(token, "POST", fmt.Sprintf("/api/v1/conversations/%d/participants", group.ID), `{"user_ids":["w3"]}`)
	e.apiDo(token, "PUT", fmt.Sprintf("/api/v1/conversations/%d", group.ID), `{"title":"3-3"}`)
	e.apiDo(token, "PUT", fmt.Sprintf("/api/v1/conversations/%d/participants/w2", group.ID), `{"role":"admin"}`)
	e.apiDo(token, "POST", fmt.Sprintf("/api/v1/conversations/%d/messages", group.ID), `{"body":"5678"}`)

	var many string
	for i := range 60 {
		many += fmt.Sprintf("%d\n", i)
	}
	var list struct {
		Conversations []struct {
			ID   int64
			Kind string
		}
	}
	json.Unmarshal([]byte(e.apiDo(token, "GET", "/api/v1/conversations", "")), &list)
	ann := ""
	for _, c := range list.Conversations {
		if c.Kind == "announcement" {
			ann = fmt.Sprintf("/c/%d", c.ID)
		}
	}
	if ann == "" {
		t.Fatal("no announcements in the list")
	}
	e.apiDo(token, "POST", "/api/v1/conversations"+ann[2:]+"/messages", `{"body":"42"}`)
	// Sora was removed from the group.
	e.apiDo(token, "DELETE", fmt.Sprintf("/api/v1/conversations/%d/participants/w3", group.ID), "")
	d, g := fmt.Sprintf("/c/%d", direct.ID), fmt.Sprintf("/c/%d", group.ID)
	for _, lang := range []string{"ko", "en"} {
		accept := map[string]string{"ko": "ko-KR,ko;q=0.9", "en": "en-US,en;q=0.9"}[lang]
		browser := e.signInBrowser("w1", "Mina", "org-w")
		csrf := e.csrfToken(browser)
		check := func(what, body string) {
			t.Helper()
			if words := otherLanguage(lang, visibleText(body)); len(words) > 0 {
				t.Errorf("%s in %s shows words of the other language: %q", what, lang, words)
			}
		}
		get := func(c *http.Client, path string, header map[string]string) {
			t.Helper()
			h := map[string]string{"Accept-Language": accept}
			for k, v := range header {
				h[k] = v
			}
			resp := e.do(c, "GET", path, nil, h)
			check("GET "+path, readBody(t, resp))
		}
		for _, path := range []string{
			"/", "/conversations", "/fragments/list", "/fragments/list?active=" + d[3:], "/new", "/people?q=o", d, d + "/messages?after_seq=0", d + "/header",
			d + "/header?members=1", g, g + "/header?members=1", g + "/invite", g + "/invite/people?q=o",
			g + "/audit", "/settings", "/settings?saved=1", "/push/devices", "/nowhere", "/c/99999999",
			ann, ann + "/header?members=1", "/c/abc",
		} {
			get(browser, path, nil)
		}
		get(e.signInBrowser("w3", "Sora", "org-w"), g, nil) // removed from the group
		newcomer := e.signInBrowser("w9-"+lang, "Nara", "org-new-"+lang)
		get(newcomer, "/", nil)
		get(newcomer, "/new", nil)
		for _, path := range []string{"/conversations", d + "/messages?after_seq=0", g + "/header?members=1", "/push/devices", "/c/99999999"} {
			get(browser, path, map[string]string{"HX-Request": "true"})
		}
		for _, path := range []string{"/", "/push/enable", "/unsubscribe?t=x", "/nowhere"} {
			get(e.client(), path, nil)
		}
		if lang == "ko" { // the demo people and schools have Korean names in either language
			get(e.client(), "/dev/login", nil)
		}

		post := func(path string, form url.Values, hx bool) {
			t.Helper()
			h := map[string]string{"Accept-Language": accept, "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded"}
			if hx {
				h["HX-Request"] = "true"
			}
			resp := e.do(browser, "POST", path, strings.NewReader(form.Encode()), h)
			if resp.StatusCode < 400 {
				t.Errorf("POST %s in %s: status %d, want a refusal", path, lang, resp.StatusCode)
			}
			check("POST "+path, readBody(t, resp))
		}
		for _, hx := range []bool{true, false} {
			post(g+"/messages", url.Values{"body": {" "}}, hx)
			post(g+"/messages", url.Values{"body": {strings.Repeat("9", 4001)}}, hx)
			post(g+"/rename", url.Values{"title": {"\u202e"}}, hx)
			post("/settings", url.Values{"quiet_mode": {"custom"}, "quiet_from": {"25:00"}, "quiet_to": {"x"}}, hx)
			post("/settings", url.Values{"time_zone": {"Mars/Base"}}, hx)
			post(g+"/settings", url.Values{"mute": {"2h"}}, hx)
			post(g+"/settings", url.Values{"keywords": {many}}, hx)
			post(g+"/settings", url.Values{"keywords": {strings.Repeat("7", 100)}}, hx)
			post("/conversations", url.Values{"members": {"nobody"}}, hx)
		}

		for _, path := range []string{"/api/v1/me", "/api/v1/nowhere"} {
			resp := e.do(nil, "GET", path, nil, map[string]string{"Accept-Language": accept})
			code, msg := decodeError(t, resp)
			if code == "" || msg == "" {
				t.Errorf("%s in %s: error %q %q, want a code and a message", path, lang, code, msg)
			}
			check(path, msg)
		}
		resp := e.do(nil, "POST", fmt.Sprintf("/api/v1/conversations/%d/messages", group.ID), strings.NewReader(`{"body":""}`),
			map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json", "Accept-Language": accept})
		if code, msg := decodeError(t, resp); code != "invalid" {
			t.Errorf("empty body in %s: code %q, want invalid", lang, code)
		} else {
			check("the API's refusal of an empty message", msg)
		}
	}
}

// TestAPIErrorsInTheCallersLanguage: every refusal of the API answers a stable code and
// the message of its key in the caller's language: the portal's locale of the user when
// the token names one, else the request's Accept-Language (Korean when it names neither).
// It must not be English text where a key belongs, nor a key the table lacks.
func TestAPIErrorsInTheCallersLanguage(t *testing.T) {
	e := newEnv(t, nil)
	plain := sign(t, validClaims("ae1", "Mina", "org-ae"))
	mustUser(t, e.db, "ae2", "Sora", "org-ae")
	withLocale := func(locale string) string {
		c := validClaims("ae-"+locale, "Joon", "org-ae")
		c["locale"] = locale
		return sign(t, c)
	}
	var group struct{ ID int64 }
	json.Unmarshal([]byte(e.apiDo(plain, "POST", "/api/v1/conversations", `{"kind":"group","title":"3-2","participant_ids":["ae2"]}`)), &group)
	if group.ID == 0 {
		t.Fatal("no group created")
	}
	refusals := []struct {
		what, method, path, body string
		bearer                   bool
		code, key                string
	}{
		{"no token", "GET", "/api/v1/me", "", false, messenger.EUNAUTHORIZED, "error.token.bearer"},
		{"a conversation that is not there", "GET", "/api/v1/conversations/99999999", "", true, messenger.ENOTFOUND, "error.conversation.not_found"},
		{"an empty message", "POST", fmt.Sprintf("/api/v1/conversations/%d/messages", group.ID), `{"body":"  "}`, true, messenger.EINVALID, "error.body.empty"},
		// No route reads a token it does not take: Accept-Language alone decides.
		{"no such route", "GET", "/api/v1/nowhere", "", false, messenger.ENOTFOUND, "error.page.not_found"},
	}
	callers := []struct {
		what, token, accept, lang string
	}{
		{"Korean browser", plain, "ko-KR,ko;q=0.9", messenger.LangKorean},
		{"English browser", plain, "en-US,en;q=0.9", messenger.LangEnglish},
		{"no preference", plain, "", messenger.LangKorean},
		{"English user, Korean browser", withLocale("en"), "ko-KR", messenger.LangEnglish},
		{"Korean user, English browser", withLocale("ko"), "en-US", messenger.LangKorean},
	}
	for _, c := range callers {
		for _, r := range refusals {
			if !r.bearer && c.token != plain {
				continue // without a token read, nobody's locale is known
			}
			h := map[string]string{"Content-Type": "application/json"}
			if c.accept != "" {
				h["Accept-Language"] = c.accept
			}
			if r.bearer {
				h["Authorization"] = "Bearer " + c.token
			}
			var body io.Reader
			if r.body != "" {
				body = strings.NewReader(r.body)
			}
			code, msg := decodeError(t, e.do(nil, r.method, r.path, body, h))
			if want := messenger.Text(c.lang, r.key); code != r.code || msg != want {
				t.Errorf("%s, %s: %q %q, want %q %q", c.what, r.what, code, msg, r.code, want)
			}
		}
	}
}
