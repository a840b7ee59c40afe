package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dreamseed/messenger/store/storetest"
)

// TestBackupRestoreBinary: the operator's round trip with the real binary. A server's
// messages and file are backed up by `messenger backup`, restored by `messenger restore`
// into a new database and data folder, and a server started on the copy shows them; a
// message deleted from the copy makes `messenger check` fail, and a restore into the
// now full database is refused.
func TestBackupRestoreBinary(t *testing.T) {
	srcData := t.TempDir()
	srv := startServer(t, "MESSENGER_DATA_DIR="+srcData)
	teacher := newLiveAPI(t, srv, demoTeacher)
	direct, _ := demoConversationIDs(t, teacher)
	body := "백업 확인 " + runNonce()
	teacher.send(t, direct, body)
	content := []byte("가정통신문: 현장학습 안내 " + runNonce())
	teacher.uploadFiles(t, direct, "", []string{"안내.txt"}, [][]byte{content})
	owner := ownerDB(t, srv)
	if _, ok := waitDB(t, owner, 30*time.Second, 1, `SELECT count(*) FROM uploads WHERE message_id IS NOT NULL`); !ok {
		t.Fatal("the upload is no message after 30 s")
	}
	var fileID string
	if err := owner.QueryRow(`SELECT id FROM files`).Scan(&fileID); err != nil {
		t.Fatal(err)
	}

	backups := t.TempDir()
	srcEnv := []string{"DATABASE_URL=" + srv.env("DATABASE_URL"), "MESSENGER_DATA_DIR=" + srcData}
	out := runCommand(t, srcEnv, 0, "backup", backups)
	stamp := regexp.MustCompile(`backup (\S+): schema \d+, `).FindStringSubmatch(out)
	if stamp == nil {
		t.Fatalf("backup said %q", out)
	}
	dir := stamp[1]
	if filepath.Dir(dir) != backups {
		t.Fatalf("backup written to %s, not under %s", dir, backups)
	}
	runCommand(t, srcEnv, 0, "check") // the running source, as an operator checks it

	dstDSN := storetest.NewEmptyDatabase(t)
	dstData := t.TempDir()
	dstEnv := []string{"DATABASE_URL=" + dstDSN, "MESSENGER_DATA_DIR=" + dstData}
	if pw := srv.env("MESSENGER_APP_DB_PASSWORD"); pw != "" {
		dstEnv = append(dstEnv, "MESSENGER_APP_DB_PASSWORD="+pw)
	}
	if out := runCommand(t, dstEnv, 0, "restore", dir); !strings.Contains(out, ", 0 problems") {
		t.Fatalf("restore said %q", out)
	}
	runCommand(t, dstEnv, 0, "check", dir)

	copyServer := startServer(t, dstEnv...)
	copyTeacher := newLiveAPI(t, copyServer, demoTeacher)
	if n := copyTeacher.countBody(t, direct, body); n != 1 {
		t.Errorf("the restored server shows the message %d times", n)
	}
	if got := fileContent(t, copyTeacher, fileID); !bytes.Equal(got, content) {
		t.Errorf("the restored server serves the file as %q, want %q", got, content)
	}
	copyServer.Stop()

	copyOwner := storetest.Conn(t, dstDSN)
	if _, err := copyOwner.Exec(`DELETE FROM messages WHERE conversation_id = $1 AND body = $2`, direct, body); err != nil {
		t.Fatal(err)
	}
	out = runCommand(t, dstEnv, 1, "check", dir)
	if !strings.Contains(out, fmt.Sprintf("problem: conversation %d: messages missing at seq", direct)) {
		t.Errorf("check of the damaged copy said %q", out)
	}
	out = runCommand(t, dstEnv, 1, "restore", dir)
	if !strings.Contains(out, "restore only into a new, empty database") {
		t.Errorf("restore into a full database said %q", out)
	}
}

// runCommand runs the messenger binary with env and args, fails unless it exits with
// status want, and answers its output (stdout and stderr).
func runCommand(t *testing.T, env []string, want int, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	status := cmd.ProcessState.ExitCode()
	if err != nil && status < 0 {
		t.Fatalf("messenger %s: %v", strings.Join(args, " "), err)
	}
	if status != want {
		t.Fatalf("messenger %s: exit status %d, want %d\n%s", strings.Join(args, " "), status, want, out)
	}
	t.Logf("messenger %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// fileContent downloads a file's bytes as c.
func fileContent(t *testing.T, c *liveAPI, id string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.srv.URL+"/api/v1/files/"+url.PathEscape(id)+"/content", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := liveHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET file %s: %d %s", id, resp.StatusCode, raw)
	}
	return raw
}
