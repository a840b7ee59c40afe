// Package freeport finds a TCP port for a server a test or `make run` starts.
package freeport

import (
	"fmt"
	"net"
)

// Get answers a TCP port on 127.0.0.1 that nothing listened on a moment ago. Another
// process may take it before the caller's server binds it: callers that can, try again.
func Get() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
