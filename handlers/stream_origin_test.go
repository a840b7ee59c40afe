package handlers_test

import (
	"net/http"
	"testing"
)

// TestSiblingSiteStreamRefused: a page on a sibling subdomain (Sec-Fetch-Site:
// same-site) carries the user's Lax cookie; it may not open the user's stream, which
// would push a real tab out under the stream cap. This app itself and the portal may.
func TestSiblingSiteStreamRefused(t *testing.T) {
	e := newEnv(t, nil)
	c := e.signInBrowser("ss1", "한도윤", "org-a")
	resp := e.do(c, "GET", "/events", nil, map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "https://blog.school.example"})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("same-site stream: status %d, want 403", resp.StatusCode)
	}
	e.openSSE(c, "/events", map[string]string{"Sec-Fetch-Site": "same-origin"})
	e.openSSE(c, "/events", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": portal})
}
