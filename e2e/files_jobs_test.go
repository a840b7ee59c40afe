package e2e

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/dreamseed/messenger/internal/syncbuf"
	"github.com/dreamseed/messenger/realtime/redistest"
	"github.com/dreamseed/messenger/scan/clamdtest"
)

// apiUpload is an Upload of the API: the fields the tests look at.
type apiUpload struct {
	ID             string `json:"id"`
	ConversationID int64  `json:"conversation_id"`
	State          string `json:"state"`
	MessageID      *int64 `json:"message_id"`
	Files          []struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"files"`
}

// fileMessage is a message.new of a file message: the fields the tests look at.
type fileMessage struct {
	ConversationID int64  `json:"conversation_id"`
	Seq            int64  `json:"seq"`
	Kind           string `json:"kind"`
	Files          []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"files"`
}

// upload posts one file as an upload through the JSON API; it must be accepted (202).
func (a *apiClient) upload(convID int64, caption, name string, content []byte) apiUpload {
	a.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("client_msg_id", uuid.NewString())
	w.WriteField("caption", caption)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+name+`"`)
	h.Set("Content-Type", "application/octet-stream")
	pw, err := w.CreatePart(h)
	if err != nil {
		a.t.Fatal(err)
	}
	pw.Write(content)
	w.Close()
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/api/v1/conversations/%d/files", a.base, convID), &body)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.user.Token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := a.http.Do(req)
	if err != nil {
		a.t.Fatalf("upload %s: %v", name, err)
	}
	defer resp.Body.Close()
	var up apiUpload
	if resp.StatusCode != http.StatusAccepted {
		a.t.Fatalf("upload %s: status %d", name, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&up); err != nil || up.ID == "" {
		a.t.Fatalf("upload %s: decode: %v", name, err)
	}
	return up
}

// ownerDB opens the test's database as its owner (the superuser of the tests: no
// row-level security), to look at what the messenger stored.
func ownerDB(t testing.TB, s *server) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", s.env("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// waitDB polls query (one integer) until it answers want or timeout passes; it answers the
// last value.
func waitDB(t testing.TB, db *sql.DB, timeout time.Duration, want int64, query string, args ...any) (int64, bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var n int64
	for {
		if err := db.QueryRow(query, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		if n == want || time.Now().After(deadline) {
			return n, n == want
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fileMessagesOn answers the message.new events of conversation conv that c received.
func fileMessagesOn(t testing.TB, c *sseClient, conv int64) []fileMessage {
	t.Helper()
	return decodedEvents(t, c, "message.new", func(m fileMessage) bool { return m.ConversationID == conv })
}

// uploadStates answers the states upload.updated told c of upload id, in order.
func uploadStates(t testing.TB, c *sseClient, id string) []string {
	t.Helper()
	var out []string
	for _, up := range decodedEvents(t, c, "upload.updated", func(up apiUpload) bool { return up.ID == id }) {
		out = append(out, up.State)
	}
	return out
}

// storedObject reports whether the disk store under dataDir holds key.
func storedObject(dataDir, key string) bool {
	_, err := os.Stat(filepath.Join(dataDir, "files", filepath.FromSlash(key)))
	return err == nil
}

// TestFileSurvivesKill9: a picture and EICAR are uploaded while the scanner hangs (clamd
// stopped), so both scans are in flight when the messenger is killed with SIGKILL. A new
// process on the same database and files takes the abandoned jobs up again: the picture
// becomes exactly one message, delivered once to the recipient's resuming stream; EICAR is
// infected, never a message, and its object is gone.
func TestFileSurvivesKill9(t *testing.T) {
	clamd := clamdtest.Start(t, clamdtest.Config{})
	redisURL := redistest.URL(t)
	dataDir := t.TempDir()
	common := []string{"REDIS_URL=" + redisURL, "MESSENGER_CLAMD_ADDR=" + clamd.TCP, "MESSENGER_DATA_DIR=" + dataDir}
	s1 := startServer(t, common...)
	db := ownerDB(t, s1)

	org := "org-kill9-" + deliveryNonce()
	alice := newUser(t, "kill9-alice", "서지민", org, "teacher")
	bob := newUser(t, "kill9-bob", "문채원", org, "parent")
	conv := s1.api(alice).directWith(s1.api(bob))
	recipient, sender := s1.newSSEClient(bob), s1.newSSEClient(alice)
	for _, c := range []*sseClient{recipient, sender} {
		c.Track(conv.ID)
		c.StartAndWait(10 * time.Second)
	}

	// The scanner hangs: a scan connects (the kernel accepts it) and never hears back.
	if err := syscall.Kill(clamd.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			syscall.Kill(clamd.Pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)

	a := s1.api(alice)
	picture := a.upload(conv.ID, "칠판 사진", "칠판.png", boardPNG(t, 640, 480))
	eicar := a.upload(conv.ID, "", "eicar.txt", clamdtest.EICAR())
	ids := pq.Array([]string{picture.ID, eicar.ID})
	if n, ok := waitDB(t, db, 20*time.Second, 2,
		`SELECT count(*) FROM files WHERE upload_id = ANY($1) AND state = 'scanning'`, ids); !ok {
		t.Fatalf("%d of the 2 files are scanning, want both (the scans in flight)", n)
	}
	var running int64
	db.QueryRow(`SELECT count(*) FROM river_job WHERE kind = 'file_scan' AND state = 'running'`).Scan(&running)
	t.Logf("both files scanning, %d scan jobs running; killing the messenger", running)

	s1.Kill()
	killedAt := time.Now()
	resume()
	s2 := startServerOn(t, s1, append(common, "MESSENGER_JOB_TIMEOUT=3s", "MESSENGER_JOB_RESCUE_AFTER=4s")...)
	recipient.SetBase(s2.URL)
	sender.SetBase(s2.URL)

	if !recipient.waitUntil(90*time.Second, func() bool {
		for _, ev := range recipient.events {
			if ev.Type == "message.new" {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("the recipient got no message.new within 90 s of the restart; problems %v", recipient.Problems())
	}
	t.Logf("the picture's message reached the recipient %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	var eicarKey, pictureKey string
	db.QueryRow(`SELECT storage_key FROM files WHERE upload_id = $1`, eicar.ID).Scan(&eicarKey)
	db.QueryRow(`SELECT storage_key FROM files WHERE upload_id = $1`, picture.ID).Scan(&pictureKey)
	if _, ok := waitDB(t, db, 60*time.Second, 1,
		`SELECT count(*) FROM uploads WHERE id = $1 AND state = 'infected'`, eicar.ID); !ok {
		t.Fatal("the EICAR upload is not infected")
	}
	deadline := time.Now().Add(30 * time.Second)
	for storedObject(dataDir, eicarKey) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a second delivery would come now

	msgs := fileMessagesOn(t, recipient, conv.ID)
	if len(msgs) != 1 {
		t.Fatalf("the recipient's stream carried %d message.new of the conversation, want exactly 1: %+v", len(msgs), msgs)
	}
	if m := msgs[0]; m.Kind != "file" || len(m.Files) != 1 || m.Files[0].Name != "칠판.png" {
		t.Errorf("the message is %+v, want the file message of 칠판.png", m)
	}
	opened, resyncs, _ := recipient.Stats()
	if resyncs != 0 || recipient.Conv(conv.ID).Fetched != 0 {
		t.Errorf("the recipient needed %d resyncs and %d fetched messages; the resumed stream should have carried the message", resyncs, recipient.Conv(conv.ID).Fetched)
	}
	if opened < 2 {
		t.Errorf("the recipient's stream opened %d times, want a reconnection to the new process", opened)
	}
	recipient.checkExactlyOnce(t, conv.ID, 1)

	var fileMsgs, eicarFiles int64
	db.QueryRow(`SELECT count(*) FROM messages WHERE conversation_id = $1 AND kind = 'file'`, conv.ID).Scan(&fileMsgs)
	if fileMsgs != 1 {
		t.Errorf("the conversation has %d file messages, want 1", fileMsgs)
	}
	var pictureState string
	var pictureMsg sql.NullInt64
	db.QueryRow(`SELECT state, message_id FROM uploads WHERE id = $1`, picture.ID).Scan(&pictureState, &pictureMsg)
	if pictureState != "clean" || !pictureMsg.Valid {
		t.Errorf("the picture's upload is %s with message %v, want clean with its message", pictureState, pictureMsg)
	}
	db.QueryRow(`SELECT count(*) FROM files WHERE upload_id = $1 AND state = 'infected' AND message_id IS NULL`, eicar.ID).Scan(&eicarFiles)
	if eicarFiles != 1 {
		t.Error("the EICAR file is not infected outside any message")
	}
	var signature string
	db.QueryRow(`SELECT s.signature FROM file_scans s JOIN files f ON f.id = s.file_id
	  WHERE f.upload_id = $1 AND s.verdict = 'infected'`, eicar.ID).Scan(&signature)
	if signature != clamdtest.EICARSignature {
		t.Errorf("the EICAR scan recorded signature %q, want %q", signature, clamdtest.EICARSignature)
	}
	if storedObject(dataDir, eicarKey) {
		t.Errorf("the EICAR object %s is still stored", eicarKey)
	}
	if eicarKey == "" || !storedObject(dataDir, pictureKey) {
		t.Errorf("the picture's object %q should be stored (and EICAR's key %q known)", pictureKey, eicarKey)
	}
	var scans, rescued int64
	db.QueryRow(`SELECT count(*) FROM file_scans s JOIN files f ON f.id = s.file_id WHERE f.upload_id = ANY($1)`, ids).Scan(&scans)
	// Each scan job the killed process held ran again (its second attempt) and completed.
	db.QueryRow(`SELECT count(*) FROM river_job WHERE kind = 'file_scan' AND args->>'upload_id' = ANY($1)
	  AND attempt >= 2 AND state = 'completed'`, ids).Scan(&rescued)
	if rescued != 2 {
		t.Errorf("%d of the 2 scan jobs ran again after the kill and completed", rescued)
	}
	t.Logf("%d scan records for the two files", scans)

	// The uploader heard how each went; EICAR never as clean.
	if st := uploadStates(t, sender, picture.ID); len(st) == 0 || st[len(st)-1] != "clean" {
		t.Errorf("the uploader's stream told the picture's states %v, want it to end clean", st)
	}
	if st := uploadStates(t, sender, eicar.ID); len(st) == 0 || st[len(st)-1] != "infected" || strings.Contains(strings.Join(st, ","), "clean") {
		t.Errorf("the uploader's stream told EICAR's states %v, want it to end infected, never clean", st)
	}
	if msgs := fileMessagesOn(t, sender, conv.ID); len(msgs) != 1 {
		t.Errorf("the uploader's stream carried %d message.new, want 1", len(msgs))
	}
}

// worker is a `messenger worker` process under test.
type worker struct {
	*server
}

// startWorker runs `messenger worker` on base's database, Redis and environment (its own
// metrics port, no HTTP) and waits until it says it runs; extraEnv as in startServer.
func startWorker(t testing.TB, base *server, extraEnv ...string) *worker {
	t.Helper()
	env := map[string]string{}
	for _, kv := range base.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	env["MESSENGER_METRICS_ADDR"] = "127.0.0.1:" + strconv.Itoa(freePort(t))
	delete(env, "MESSENGER_ADDR")
	for _, kv := range extraEnv {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	w := &worker{&server{t: t, logs: &syncbuf.Buffer{}, done: make(chan struct{})}}
	for k, v := range env {
		if v != "" {
			w.Env = append(w.Env, k+"="+v)
		}
	}
	w.cmd = exec.Command(binary, "worker")
	w.cmd.Env = w.Env
	w.cmd.Dir = t.TempDir()
	w.cmd.Stdout, w.cmd.Stderr = w.logs, w.logs
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("start messenger worker: %v", err)
	}
	go func() {
		w.err = w.cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() {
		if w.running() {
			w.signal(syscall.SIGINT)
			select {
			case <-w.done:
			case <-time.After(stopTimeout):
				w.signal(syscall.SIGKILL)
				<-w.done
				t.Errorf("messenger worker did not stop within %s of SIGINT; killed it", stopTimeout)
			}
		}
		if t.Failed() {
			t.Logf("messenger worker output:\n%s", w.Logs())
		}
	})
	deadline := time.Now().Add(readyTimeout)
	for !strings.Contains(w.Logs(), `"msg":"messenger worker running"`) {
		if !w.running() || time.Now().After(deadline) {
			t.Fatalf("messenger worker did not start (exited: %v):\n%s", !w.running(), w.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return w
}

// TestWorkerProcess: serve works no jobs (MESSENGER_JOB_WORKERS=0); a separate `messenger
// worker` on the same database, Redis and files scans the upload, makes its thumbnails and
// stores its message, which reaches the recipient's stream on serve live.
func TestWorkerProcess(t *testing.T) {
	clamd := clamdtest.Start(t, clamdtest.Config{})
	redisURL := redistest.URL(t)
	dataDir := t.TempDir()
	srv := startServer(t, "REDIS_URL="+redisURL, "MESSENGER_CLAMD_ADDR="+clamd.TCP, "MESSENGER_DATA_DIR="+dataDir,
		"MESSENGER_JOB_WORKERS=0")
	db := ownerDB(t, srv)

	org := "org-worker-" + deliveryNonce()
	alice := newUser(t, "worker-alice", "배서연", org, "teacher")
	bob := newUser(t, "worker-bob", "송민재", org, "parent")
	conv := srv.api(alice).directWith(srv.api(bob))
	recipient := srv.liveStream(bob, conv.ID)

	// Without a worker the upload waits, scanned by nobody.
	a := srv.api(alice)
	up := a.upload(conv.ID, "알림장", "알림장.png", boardPNG(t, 800, 600))
	time.Sleep(time.Second)
	var state string
	db.QueryRow(`SELECT state FROM files WHERE upload_id = $1`, up.ID).Scan(&state)
	if state != "uploaded" {
		t.Fatalf("with no worker anywhere the file is %q, want uploaded (not yet scanned)", state)
	}
	if n := len(fileMessagesOn(t, recipient, conv.ID)); n != 0 {
		t.Fatalf("the recipient got %d messages before any worker ran", n)
	}

	started := time.Now()
	w := startWorker(t, srv, "MESSENGER_JOB_WORKERS=2")
	if !recipient.waitUntil(30*time.Second, func() bool {
		for _, ev := range recipient.events {
			if ev.Type == "message.new" {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("the recipient on serve got no message.new within 30 s of the worker's start")
	}
	t.Logf("the message reached the recipient on serve %s after the worker was started", time.Since(started).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	msgs := fileMessagesOn(t, recipient, conv.ID)
	if len(msgs) != 1 || msgs[0].Kind != "file" || len(msgs[0].Files) != 1 || msgs[0].Files[0].Name != "알림장.png" {
		t.Fatalf("the recipient's stream carried %+v, want one file message of 알림장.png", msgs)
	}
	recipient.checkExactlyOnce(t, conv.ID, 1)
	if _, resyncs, _ := recipient.Stats(); resyncs != 0 || recipient.Conv(conv.ID).Fetched != 0 {
		t.Errorf("the message came by resync or catch-up, not live")
	}

	// The worker did the work: the scan's verdict, and the thumbnail serve hands out.
	var verdict string
	db.QueryRow(`SELECT s.verdict FROM file_scans s JOIN files f ON f.id = s.file_id WHERE f.upload_id = $1`, up.ID).Scan(&verdict)
	if verdict != "clean" {
		t.Errorf("the scan's verdict is %q, want clean", verdict)
	}
	fileID := msgs[0].Files[0].ID
	status, _, err := srv.api(bob).raw(t.Context(), http.MethodGet, "/api/v1/files/"+fileID+"/thumbnail/medium", "", nil)
	if err != nil || status != http.StatusOK {
		t.Errorf("the recipient's thumbnail through serve: status %d, %v", status, err)
	}
	w.Stop()
}

// TestAnnouncementFileDeleted: a teacher's photo in the zone's announcements, deleted by
// the teacher through the other process, becomes a tombstone live for every user of the
// zone (each once), the teacher's own streams included, and for nobody of another zone.
func TestAnnouncementFileDeleted(t *testing.T) {
	clamd := clamdtest.Start(t, clamdtest.Config{})
	redisURL := redistest.URL(t)
	common := []string{"REDIS_URL=" + redisURL, "MESSENGER_CLAMD_ADDR=" + clamd.TCP, "MESSENGER_DATA_DIR=" + t.TempDir()}
	a := startServer(t, common...)
	b := startServerOn(t, a, common...)
	org := "org-zone-file-" + deliveryNonce()
	teacher := newZoneUser(t, "zf-teacher", "김선영", org, "grade5", "teacher")
	student := newZoneUser(t, "zf-student", "이민준", org, "grade5", "student")
	elsewhere := newZoneUser(t, "zf-other", "오세훈", org, "grade6", "student")
	notices := a.api(teacher).announcements()
	streams := []*sseClient{b.newSSEClient(student), a.newSSEClient(teacher), b.newSSEClient(elsewhere)}
	for _, c := range streams {
		c.StartAndWait(10 * time.Second)
	}
	onStudent, onTeacher, onOther := streams[0], streams[1], streams[2]

	up := a.api(teacher).upload(notices, "운동회 사진", "운동회.png", boardPNG(t, 400, 300))
	for _, c := range []*sseClient{onStudent, onTeacher} {
		if !c.waitUntil(30*time.Second, func() bool {
			for _, ev := range c.events {
				if ev.Type == "message.new" && strings.Contains(ev.Data, up.Files[0].ID) {
					return true
				}
			}
			return false
		}) {
			t.Fatalf("%s did not get the photo's notice", c.user.Sub)
		}
	}

	status, body := b.api(teacher).do(http.MethodDelete, "/api/v1/files/"+up.Files[0].ID, nil)
	if status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", status, body)
	}
	tombstones := func(c *sseClient) []apiMessage {
		var out []apiMessage
		for _, ev := range c.Events() {
			if ev.Type != "message.updated" {
				continue
			}
			var m struct {
				apiMessage
				Deleted bool `json:"deleted"`
			}
			if json.Unmarshal([]byte(ev.Data), &m) == nil && m.ConversationID == notices && m.Deleted {
				out = append(out, m.apiMessage)
			}
		}
		return out
	}
	for _, c := range []*sseClient{onStudent, onTeacher} {
		deadline := time.Now().Add(5 * time.Second)
		for len(tombstones(c)) == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(300 * time.Millisecond)
	for _, c := range []*sseClient{onStudent, onTeacher} {
		if n := len(tombstones(c)); n != 1 {
			t.Errorf("%s got %d tombstones of the notice, want 1", c.user.Sub, n)
		}
	}
	for _, ev := range onOther.Events() {
		if strings.Contains(ev.Data, fmt.Sprintf(`"conversation_id":%d`, notices)) {
			t.Errorf("a user of another zone got %s: %s", ev.Type, ev.Data)
		}
	}
}
