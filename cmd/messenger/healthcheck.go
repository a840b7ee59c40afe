package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheckTimeout bounds one health check; the container's own HEALTHCHECK timeout is
// the operator's bound, this one only keeps a hung check from outliving it.
const healthcheckTimeout = 5 * time.Second

// healthcheck GETs url (by default this process's /readyz, from MESSENGER_ADDR) and fails
// unless it answers 200: the container image has no curl or wget, so its HEALTHCHECK
// runs the messenger binary itself.
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	url := ""
	switch len(args) {
	case 0:
		addr := getenv("MESSENGER_ADDR")
		if addr == "" {
			addr = ":8001"
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("healthcheck: MESSENGER_ADDR %q is not host:port", addr)
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			host = "127.0.0.1" // listening on every address: this one is reachable from inside
		}
		url = "http://" + net.JoinHostPort(host, port) + "/readyz"
	case 1:
		url = args[0]
	default:
		return fmt.Errorf("healthcheck takes at most one URL, like http://127.0.0.1:9101/metrics")
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d %s", url, resp.StatusCode, body)
	}
	fmt.Fprintf(stdout, "%s: %d\n", url, resp.StatusCode)
	return nil
}
