// Package cpuprofile fetches a CPU profile from a server's pprof listener, for the benchmarks.
package cpuprofile

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"
)

// Take fetches a CPU profile of the server lasting d from profileURL
// (/debug/pprof/profile) and writes it to out.
func Take(ctx context.Context, profileURL string, d time.Duration, out string) error {
	u, err := url.Parse(profileURL)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("seconds", strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second))))
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("GET %s: HTTP %d %s", u, resp.StatusCode, raw)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
