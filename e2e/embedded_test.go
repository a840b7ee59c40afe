package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dreamseed/messenger/auth"
)

// TestEmbeddedRun is `make run` on a fresh machine: no DATABASE_URL, so the binary runs a
// private PostgreSQL in its data directory, loads the demo data and stops the database
// with itself; a second start reuses the directory and adds nothing twice.
func TestEmbeddedRun(t *testing.T) {
	dataDir := embeddedDataDir(t)
	env := []string{"DATABASE_URL=", "MESSENGER_DEV=", "MESSENGER_DATA_DIR=" + dataDir}
	token := portalToken(t)

	// First start: initdb, migrations, demo data.
	start := time.Now()
	first := startServer(t, env...)
	firstReady := time.Since(start)
	if status, body := first.get("/dev/login"); status != 200 || !strings.Contains(body, "김선영") {
		t.Fatalf("GET /dev/login: %d; want 200 listing 김선영 (embedded mode is dev mode by default):\n%s", status, body)
	}
	firstConvs := demoConversations(t, first, token)
	first.Stop()
	checkPostgresGone(t, dataDir)

	// Second start: the same cluster, the same data.
	start = time.Now()
	second := startServer(t, env...)
	secondReady := time.Since(start)
	t.Logf("ready after %s on a new data directory, %s on the existing one", firstReady.Round(time.Millisecond), secondReady.Round(time.Millisecond))
	if secondReady >= firstReady {
		t.Errorf("the second start (%s) was not faster than the first (%s): was the cluster initialized again?", secondReady, firstReady)
	}
	secondConvs := demoConversations(t, second, token)
	// The demo data puts the teacher in three conversations: the zone's announcements, the
	// class's group and the direct conversation with 최지훈 (demo/demo.go).
	if want := []string{"announcement:학교 공지", "direct:최지훈", "group:5학년 2반 알림방"}; !slices.Equal(firstConvs, want) || !slices.Equal(secondConvs, want) {
		t.Errorf("the demo teacher's conversations:\nafter the first start  %q\nafter the second start %q\nwant %q both times (demo data is loaded once)", firstConvs, secondConvs, want)
	}
	second.Stop()
	checkPostgresGone(t, dataDir)
}

// embeddedDataDir makes a data directory under /tmp that the unprivileged postgres user
// can reach when the tests run as root (t.TempDir's parents may be 0700).
func embeddedDataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "messenger-e2e-data-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "postgres.log")); err == nil {
				t.Logf("postgres.log:\n%s", b)
			}
		}
		os.RemoveAll(dir)
	})
	return dir
}

// portalToken is the token the portal would send for the demo teacher, signed with the
// dev secret.
func portalToken(t *testing.T) string {
	t.Helper()
	now := time.Now()
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss":     "dreamseed-portal",
		"aud":     "messenger",
		"sub":     "demo-teacher-kim",
		"org_id":  "demo-org-dreamseed",
		"zone_id": "demo-zone-grade5",
		"role":    "teacher",
		"name":    "김선영",
		"iat":     now.Unix(),
		"exp":     now.Add(10 * time.Minute).Unix(),
	}).SignedString([]byte(auth.DevSecret))
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// demoConversations answers the conversations GET /api/v1/conversations lists, as
// "kind:title", sorted.
func demoConversations(t *testing.T, s *server, token string) []string {
	t.Helper()
	status, body := s.get("/api/v1/conversations", "Authorization: Bearer "+token)
	if status != 200 {
		t.Fatalf("GET /api/v1/conversations: %d %s", status, body)
	}
	var out struct {
		Conversations []struct {
			ID    int64  `json:"id"`
			Kind  string `json:"kind"`
			Title string `json:"title"`
		} `json:"conversations"`
		NextCursor *string `json:"next_cursor"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("GET /api/v1/conversations: %v\n%s", err, body)
	}
	if out.NextCursor != nil {
		t.Errorf("GET /api/v1/conversations: next_cursor %q for a handful of conversations", *out.NextCursor)
	}
	var convs []string
	for _, c := range out.Conversations {
		convs = append(convs, c.Kind+":"+c.Title)
	}
	slices.Sort(convs)
	t.Logf("conversations of the demo teacher: %q", convs)
	return convs
}

// checkPostgresGone fails the test if a postgres process still runs on the data directory,
// or the cluster was not shut down cleanly (postmaster.pid left behind).
func checkPostgresGone(t *testing.T, dataDir string) {
	t.Helper()
	pgdata := filepath.Join(dataDir, "postgres")
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if !strings.Contains(filepath.Base(args[0]), "postgres") {
			continue
		}
		if strings.Contains(string(b), pgdata) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			t.Errorf("postgres (pid %d) still runs on %s after the messenger stopped: %q", pid, pgdata, args)
		}
	}
	if _, err := os.Stat(filepath.Join(pgdata, "postmaster.pid")); err == nil {
		t.Errorf("%s/postmaster.pid is still there: PostgreSQL was not shut down cleanly", pgdata)
	}
}
