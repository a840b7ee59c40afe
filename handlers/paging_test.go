package handlers_test

import (
	"encoding/base64"
	"net/http"
	"testing"
)

// TestPagingParamsBounded: cursors and paging numbers a client makes up get a 200 or a
// clear 400, never a server error.
func TestPagingParamsBounded(t *testing.T) {
	e := newEnv(t, nil)
	cursor := func(raw string) string { return base64.RawURLEncoding.EncodeToString([]byte(raw)) }
	for _, tt := range []struct {
		path string
		want int
	}{
		{"/api/v1/conversations?cursor=" + cursor("-9223372036854775808.1"), http.StatusBadRequest},
		{"/api/v1/conversations?cursor=" + cursor("9223372036854775807.1"), http.StatusBadRequest},
		{"/api/v1/conversations?cursor=" + cursor("-62135596800000001.1"), http.StatusBadRequest},
		{"/api/v1/conversations?cursor=" + cursor("1700000000000000.1"), http.StatusOK},
		{"/api/v1/conversations?cursor=" + cursor("0.1"), http.StatusOK},
		{"/api/v1/conversations?cursor=" + cursor("1700000000000000.0"), http.StatusBadRequest},
		{"/api/v1/conversations?cursor=%00", http.StatusBadRequest},
	} {
		resp := e.apiAs("c1", "GET", tt.path, nil)
		if resp.StatusCode != tt.want {
			t.Errorf("GET %s: status %d, want %d: %s", tt.path, resp.StatusCode, tt.want, readBody(t, resp))
		}
	}
}
