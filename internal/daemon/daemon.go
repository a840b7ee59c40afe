// Package daemon starts the servers that tests run beside them (redis-server, clamd,
// versitygw, mailpit): each started with its output kept for the failure message, waited
// for until it answers, and ended when the test is done.
package daemon

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/dreamseed/messenger/internal/syncbuf"
)

// Process is a started server.
type Process struct {
	cmd    *exec.Cmd
	out    syncbuf.Buffer
	exited chan struct{}
}

// Start starts cmd and asks ready every poll until it answers true, which Start then
// returns on. When cmd exits first, or within passes, Start fails with what it wrote,
// the process gone.
func Start(cmd *exec.Cmd, poll, within time.Duration, ready func() bool) (*Process, error) {
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	name := filepath.Base(cmd.Path)
	deadline := time.Now().Add(within)
	for !ready() {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited: %s", name, p.Output())
		case <-time.After(poll):
		}
		if time.Now().After(deadline) {
			p.Kill()
			return nil, fmt.Errorf("%s did not answer within %v: %s", name, within, p.Output())
		}
	}
	return p, nil
}

// Kill ends the process at once and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Stop asks the process to end with sig, and kills it when it has not after grace.
func (p *Process) Stop(sig os.Signal, grace time.Duration) {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(grace):
		p.Kill()
	}
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output is what the process wrote so far, trimmed.
func (p *Process) Output() string { return strings.TrimSpace(p.out.String()) }
