package backup

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/dreamseed/messenger/store/pgserver"
)

// pgTool is pg_dump or pg_restore, found and ready to run against one database.
type pgTool struct {
	path string
	dsn  string   // the database's URL without its password
	env  []string // the password, in the environment rather than on the command line
}

// newPGTool finds the program name and prepares its connection to dsn: a password stays out
// of the process list (PGPASSWORD instead of the URL).
func newPGTool(name, dsn string) (*pgTool, error) {
	p, err := pgserver.ClientTool(name)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("DATABASE_URL must be a postgres:// URL")
	}
	env := os.Environ()
	if pw, ok := u.User.Password(); ok {
		env = append(env, "PGPASSWORD="+pw)
		u.User = url.User(u.User.Username())
	}
	return &pgTool{path: p, dsn: u.String(), env: env}, nil
}

// run runs the program with args and the database, answering its error output in the error.
func (t *pgTool) run(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, t.path, append(args, "--dbname="+t.dsn)...)
	cmd.Env = t.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", t.path, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

var majorRE = regexp.MustCompile(`\) (\d+)`)

// major answers the program's major version, from its --version ("pg_dump (PostgreSQL) 15.20").
func (t *pgTool) major(ctx context.Context) (int, error) {
	out, err := exec.CommandContext(ctx, t.path, "--version").Output()
	if err != nil {
		return 0, fmt.Errorf("%s --version: %w", t.path, err)
	}
	m := majorRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("%s --version: unexpected answer %q", t.path, out)
	}
	return strconv.Atoi(string(m[1]))
}

// checkNewEnough refuses a program older than the server (server_version_num, e.g. 150020):
// pg_dump refuses to dump a newer server, and pg_restore may not read a newer dump.
func (t *pgTool) checkNewEnough(ctx context.Context, serverVersionNum int) error {
	major, err := t.major(ctx)
	if err != nil {
		return err
	}
	if server := serverVersionNum / 10000; major < server {
		return fmt.Errorf("%s is PostgreSQL %d, older than the server's %d: install the server's version of the client", t.path, major, server)
	}
	return nil
}
