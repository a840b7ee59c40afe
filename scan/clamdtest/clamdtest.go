// Package clamdtest gives tests a real clamd (Debian's clamav-daemon) with a signature
// database written for the test, since the public signature download is not reachable.
package clamdtest

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dreamseed/messenger/internal/daemon"
	"github.com/dreamseed/messenger/internal/freeport"
)

// Signature names as clamd reports them: it adds ".UNOFFICIAL" to every signature that is not
// from the official, signed databases.
const (
	// EICARSignature is the name reported for EICAR.
	EICARSignature = "Eicar-Signature.UNOFFICIAL"
	// MarkerSignature is the name reported for Marker.
	MarkerSignature = "DreamSeed-Test-Marker.UNOFFICIAL"
)

// DefaultStreamMaxLength is clamd's StreamMaxLength when Config leaves it zero: above the
// messenger's 10 MB upload limit.
const DefaultStreamMaxLength = 12 << 20

// EICAR returns the EICAR test file, the string every anti-virus detects by agreement. It is
// assembled at run time so this source file itself is not flagged by a scanner.
func EICAR() []byte {
	return []byte(`X5O!P%@AP[4\PZX54(P^)7CC)7}$` + "EICAR-STANDARD-ANTIVIRUS-" + "TEST-FILE!$H+H*")
}

// Marker returns a harmless file that only the test database calls infected (by its MD5 and
// size, an .hdb entry), so a test can check hash signatures without malware.
func Marker() []byte {
	return []byte("DreamSeed messenger clamdtest marker: this file is harmless and detected only by the test database.\n")
}

// Config shapes the clamd a test gets.
type Config struct {
	// StreamMaxLength is clamd's StreamMaxLength in bytes (DefaultStreamMaxLength when zero);
	// MaxFileSize and MaxScanSize are set to it as well, with AlertExceedsMax, so that nothing
	// larger is ever reported clean.
	StreamMaxLength int64
}

// Server is a running clamd, stopped when the test ends.
type Server struct {
	// TCP is the TCP address, "tcp://127.0.0.1:PORT".
	TCP string
	// Unix is the local socket, "unix:///…/clamd.sock".
	Unix string
	// StartedIn is how long clamd took from exec to answering PING.
	StartedIn time.Duration
	// Pid is clamd's process id.
	Pid int
}

// Binary returns the path of clamd, or "" when it is not installed (Debian puts it in
// /usr/sbin, which is not on every user's PATH).
func Binary() string {
	if p, err := exec.LookPath("clamd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/clamd"); err == nil {
		return "/usr/sbin/clamd"
	}
	return ""
}

// Start starts a private clamd on a free TCP port and a unix socket, with its own database,
// and returns once it answers PING. Without clamd it skips t, unless $CI is set: CI must
// have a scanner, so there it fails.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		msg := "clamdtest: clamd is not installed (apt-get install clamav-daemon clamav)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s, stop, err := Launch(cfg)
	if err != nil {
		t.Fatalf("clamdtest: cannot start clamd: %v", err)
	}
	t.Cleanup(stop)
	return s
}

// Launch starts a private clamd as Start does, for a program rather than a test (a
// benchmark): stop ends it and removes its directory. It fails when clamd is not installed.
func Launch(cfg Config) (s *Server, stop func(), err error) {
	bin := Binary()
	if bin == "" {
		return nil, nil, fmt.Errorf("clamd is not installed (apt-get install clamav-daemon clamav)")
	}
	if cfg.StreamMaxLength <= 0 {
		cfg.StreamMaxLength = DefaultStreamMaxLength
	}
	// A short directory: a unix socket path must fit in 108 bytes, and t.TempDir's may not.
	dir, err := os.MkdirTemp("", "clamd")
	if err != nil {
		return nil, nil, err
	}
	removeDir := func() { _ = os.RemoveAll(dir) }
	if err := writeDatabase(filepath.Join(dir, "db")); err != nil {
		removeDir()
		return nil, nil, err
	}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o700); err != nil {
		removeDir()
		return nil, nil, err
	}
	for range 5 { // a free port may be taken before clamd binds it
		port, perr := freeport.Get()
		if perr != nil {
			removeDir()
			return nil, nil, perr
		}
		var stopClamd func()
		s, stopClamd, err = run(bin, dir, port, cfg)
		if err == nil {
			return s, func() { stopClamd(); removeDir() }, nil
		}
	}
	removeDir()
	return nil, nil, err
}

// writeDatabase writes the test's signatures: an .ndb body signature (hex of the EICAR
// string, any file type, any offset) and an .hdb hash signature (md5:size:name) of Marker.
// clamd exits when its database directory is empty.
func writeDatabase(db string) error {
	if err := os.Mkdir(db, 0o700); err != nil {
		return err
	}
	ndb := fmt.Sprintf("%s:0:*:%s\n", strings.TrimSuffix(EICARSignature, ".UNOFFICIAL"), hex.EncodeToString(EICAR()))
	if err := os.WriteFile(filepath.Join(db, "test.ndb"), []byte(ndb), 0o600); err != nil {
		return err
	}
	m := Marker()
	hdb := fmt.Sprintf("%x:%d:%s\n", md5.Sum(m), len(m), strings.TrimSuffix(MarkerSignature, ".UNOFFICIAL"))
	return os.WriteFile(filepath.Join(db, "test.hdb"), []byte(hdb), 0o600)
}

func run(bin, dir string, port int, cfg Config) (*Server, func(), error) {
	sock := filepath.Join(dir, fmt.Sprintf("clamd-%d.sock", port))
	conf := filepath.Join(dir, fmt.Sprintf("clamd-%d.conf", port))
	// No User line: clamd stays the test's user. No LogFile: it logs to stderr, which the
	// harness keeps for the failure message.
	text := fmt.Sprintf(`Foreground yes
TCPSocket %d
TCPAddr 127.0.0.1
LocalSocket %s
LocalSocketMode 600
DatabaseDirectory %s
TemporaryDirectory %s
StreamMaxLength %d
MaxFileSize %d
MaxScanSize %d
AlertExceedsMax yes
MaxThreads 12
MaxQueue 100
ReadTimeout 30
CommandReadTimeout 5
LogTime yes
`, port, sock, filepath.Join(dir, "db"), filepath.Join(dir, "tmp"),
		cfg.StreamMaxLength, cfg.StreamMaxLength, cfg.StreamMaxLength)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, nil, err
	}

	cmd := exec.Command(bin, "--foreground", "--config-file="+conf)
	tcp := fmt.Sprintf("127.0.0.1:%d", port)
	began := time.Now()
	p, err := daemon.Start(cmd, 5*time.Millisecond, 30*time.Second, func() bool {
		return ping("tcp", tcp) == nil && ping("unix", sock) == nil
	})
	if err != nil {
		return nil, nil, err
	}
	// SIGTERM lets clamd remove its socket; a clamd that ignores it is killed.
	stop := func() { p.Stop(syscall.SIGTERM, 5*time.Second) }
	return &Server{TCP: "tcp://" + tcp, Unix: "unix://" + sock, StartedIn: time.Since(began), Pid: p.Pid()}, stop, nil
}

// ping speaks the protocol itself, so the harness does not depend on the client under test.
func ping(network, addr string) error {
	c, err := net.DialTimeout(network, addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("zPING\x00")); err != nil {
		return err
	}
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != "PONG\x00" {
		return fmt.Errorf("unexpected reply %q", buf[:n])
	}
	return nil
}
