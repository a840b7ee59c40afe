package handlers_test

import (
	"archive/zip"
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/handlers"
	"github.com/dreamseed/messenger/internal/syncbuf"
	"github.com/dreamseed/messenger/internal/trace"
	"github.com/dreamseed/messenger/jobs"
	"github.com/dreamseed/messenger/scan"
	"github.com/dreamseed/messenger/scan/clamdtest"
	"github.com/dreamseed/messenger/storage"
	"github.com/dreamseed/messenger/upload"
)

// filesEnv is a server whose file use cases work: storage on disk in a directory of the
// test, no scanner (files are stored unscanned and marked so, as in development), and a
// job runner that works the file jobs, or only enqueues them (uploads then stay
// "scanning", as while a scan takes its time).
type filesEnv struct {
	*env
	dir    string // the storage's root
	runner *jobs.Runner
	names  map[string]string // display names by sub, for the tokens of API calls
	// jobLogs are the job runner's JSON log lines, DEBUG included (each attempt's).
	jobLogs *syncbuf.Buffer
}

// name answers the display name the tokens of sub carry.
func (e *filesEnv) name(sub string) string {
	if n, ok := e.names[sub]; ok {
		return n
	}
	return sub
}

func newFilesEnv(t *testing.T, work bool, mutate ...func(*handlers.Config)) *filesEnv {
	t.Helper()
	return newScannedFilesEnv(t, work, nil, mutate...)
}

// newScannedFilesEnv is newFilesEnv with a scanner (nil: none, as in development).
func newScannedFilesEnv(t *testing.T, work bool, scanner chat.Scanner, mutate ...func(*handlers.Config)) *filesEnv {
	t.Helper()
	e := newEnv(t, func(c *handlers.Config) {
		for _, m := range mutate {
			m(c)
		}
	})
	dir := t.TempDir()
	disk, err := storage.NewDisk(storage.DiskConfig{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { disk.Close() })
	appDB, err := sql.Open("postgres", e.appDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { appDB.Close() })
	workers := 0
	if work {
		workers = 2
	}
	jobLogs := &syncbuf.Buffer{}
	logger := slog.New(trace.NewJSON(jobLogs, slog.LevelDebug))
	runner, err := jobs.New(appDB, logger, jobs.Config{Workers: workers, PollInterval: 50 * time.Millisecond},
		prometheus.NewRegistry(), e.server.RegisterFileWorkersForTest)
	if err != nil {
		t.Fatal(err)
	}
	e.server.EnableFilesForTest(chat.Files{Storage: disk, Scanner: scanner, Jobs: runner, Limits: upload.DefaultLimits(), MaxFiles: handlers.DefaultMaxFilesPerUpload})
	ctx, cancel := context.WithCancel(context.Background())
	if err := runner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop, done := context.WithTimeout(context.Background(), 10*time.Second)
		defer done()
		runner.Stop(stop)
		cancel()
	})
	return &filesEnv{env: e, dir: dir, runner: runner, names: map[string]string{}, jobLogs: jobLogs}
}

// objects answers how many objects the storage holds.
func (e *filesEnv) objects() int {
	e.t.Helper()
	n := 0
	filepath.WalkDir(e.dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			n++
		}
		return nil
	})
	return n
}

// filePart is one file of a multipart upload; the file name goes into the part's header
// as it is (a hostile client sends what it likes).
type filePart struct {
	name    string
	content []byte
}

// uploadBody answers a multipart body of fields and files and its content type.
func uploadBody(t *testing.T, fields map[string]string, files ...filePart) (*bytes.Buffer, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for k, v := range fields {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		h := textproto.MIMEHeader{}
		name := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(f.name)
		h.Set("Content-Disposition", `form-data; name="file"; filename="`+name+`"`)
		h.Set("Content-Type", "application/octet-stream")
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		pw.Write(f.content)
	}
	w.Close()
	return &b, w.FormDataContentType()
}

// apiUpload posts files to a conversation through the API as sub.
func (e *filesEnv) apiUpload(sub, org string, convID int64, clientMsgID, caption string, files ...filePart) (*http.Response, messenger.APIUpload) {
	e.t.Helper()
	body, ct := uploadBody(e.t, map[string]string{"client_msg_id": clientMsgID, "caption": caption}, files...)
	resp := e.do(nil, http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/files", convID), body, map[string]string{
		"Authorization": "Bearer " + sign(e.t, validClaims(sub, e.name(sub), org)), "Content-Type": ct,
		"Accept-Language": "en", // the refusals are read in English here
	})
	var up messenger.APIUpload
	if resp.StatusCode < 300 {
		if err := jsonDecode(resp, &up); err != nil {
			e.t.Fatal(err)
		}
	}
	return resp, up
}

// api does a bearer request as sub and answers the response.
func (e *filesEnv) api(sub, org, method, path string) *http.Response {
	e.t.Helper()
	return e.do(nil, method, path, nil, map[string]string{"Authorization": "Bearer " + sign(e.t, validClaims(sub, e.name(sub), org))})
}

// waitUpload polls the upload until its state is want, within a minute: on a machine
// running other suites beside Chromium and clamd, three pictures' scans and thumbnails
// have taken longer than 20 s.
func (e *filesEnv) waitUpload(sub, org, id, want string) messenger.APIUpload {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	var up messenger.APIUpload
	for time.Now().Before(deadline) {
		resp := e.api(sub, org, http.MethodGet, "/api/v1/uploads/"+id)
		if resp.StatusCode != http.StatusOK {
			e.t.Fatalf("GET upload: %d %s", resp.StatusCode, readBody(e.t, resp))
		}
		if err := jsonDecode(resp, &up); err != nil {
			e.t.Fatal(err)
		}
		if up.State == want {
			return up
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("upload %s: state %q, want %q", id, up.State, want)
	return up
}

// picture is a w×h picture whose pixel at x, y is at(x, y).
func picture(w, h int, at func(x, y int) color.RGBA) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, at(x, y))
		}
	}
	return img
}

// encoded answers what encode writes.
func encoded(t *testing.T, encode func(w io.Writer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := encode(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func pngFile(t *testing.T, w, h int) []byte {
	t.Helper()
	img := picture(w, h, func(x, y int) color.RGBA { return color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 160, 255} })
	return encoded(t, func(w io.Writer) error { return png.Encode(w, img) })
}

func jpegFile(t *testing.T, w, h int) []byte {
	t.Helper()
	img := picture(w, h, func(x, y int) color.RGBA { return color.RGBA{uint8(x), uint8(y), 90, 255} })
	return encoded(t, func(w io.Writer) error { return jpeg.Encode(w, img, nil) })
}

func gifFile(t *testing.T) []byte {
	t.Helper()
	img := image.NewPaletted(image.Rect(0, 0, 10, 10), color.Palette{color.Black, color.White})
	return encoded(t, func(w io.Writer) error { return gif.Encode(w, img, nil) })
}

// pngHeader is a PNG whose header claims w×h pixels, with no picture data.
func pngHeader(w, h uint32) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2
	chunk := func(typ string, data []byte) []byte {
		out := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
		out = append(out, typ...)
		out = append(out, data...)
		return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, chunk("IHDR", ihdr)...)
	return append(out, chunk("IEND", nil)...)
}

// bombDOCX is a real DOCX with a part of 64 MiB of zeros, deflated to about 64 KiB.
func bombDOCX(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	add := func(name string, data []byte) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	add("[Content_Types].xml", []byte(`<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`))
	add("_rels/.rels", []byte(`<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>`))
	add("word/document.xml", []byte(`<?xml version="1.0" encoding="UTF-8"?><root/>`))
	add("word/media/image1.bin", make([]byte, 64<<20))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var pdfFile = []byte("%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")

// TestFileUploadRefused: each hostile upload, through the API and the page, is refused
// with the code and a message that says why, and nothing is stored: no upload row, no
// file row, no object.
func TestFileUploadRefused(t *testing.T) {
	e := newFilesEnv(t, false)
	me := mustUser(t, e.db, "f1", "f1", "org-a")
	friend := mustUser(t, e.db, "f2", "f2", "org-a")
	mustUser(t, e.db, "f3", "f3", "org-a")
	conv := directConversation(t, e.env, me, friend)
	stranger := mustUser(t, e.db, "f4", "f4", "org-a")
	theirs := directConversation(t, e.env, stranger, friend)

	jpg := jpegFile(t, 64, 48)
	tests := []struct {
		name   string
		conv   int64
		file   filePart
		status int
		code   string
		says   string
	}{
		{"renamed executable", conv, filePart{"가정통신문.pdf", append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"), "This program cannot be run in DOS mode."...)}, 415, "unsupported", "Programs"},
		{"zip bomb docx", conv, filePart{"report.docx", bombDOCX(t)}, 415, "unsupported", "zip bomb"},
		{"60-megapixel png", conv, filePart{"huge.png", pngHeader(10000, 6000)}, 413, "too_large", "10000×6000"},
		{"truncated jpeg", conv, filePart{"photo.jpg", jpg[:len(jpg)/2]}, 400, "invalid", "incomplete"},
		{"polyglot gif/js", conv, filePart{"cat.gif", append(gifFile(t), "*/=alert(1);"...)}, 415, "unsupported", "extra data"},
		{"svg", conv, filePart{"logo.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)}, 415, "unsupported", "SVG"},
		{"10 MB + 1 byte", conv, filePart{"big.txt", bytes.Repeat([]byte("a"), 10<<20+1)}, 413, "too_large", ""},
		{"name with NUL", conv, filePart{"a\x00.txt", []byte("hello")}, 400, "invalid", ""},
		{"name with an RTL override", conv, filePart{"photo\u202Egnp.exe", []byte("hello")}, 400, "invalid", "direction"},
		{"a conversation I am not in", theirs, filePart{"note.txt", []byte("hello")}, 404, "not_found", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			resp, _ := e.apiUpload("f1", "org-a", tc.conv, uuid.NewString(), "", tc.file)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, readBody(t, resp))
			}
			code, msg := decodeError(t, resp)
			if code != tc.code || !strings.Contains(msg, tc.says) {
				t.Errorf("error %s %q, want %s saying %q", code, msg, tc.code, tc.says)
			}
			if n, f, o := e.count("uploads"), e.count("files"), e.objects(); n+f+o != 0 {
				t.Errorf("stored after a refusal: %d uploads, %d files, %d objects", n, f, o)
			}
		})
	}

	// The same from the page without JavaScript: the thread again, with the reason in
	// the reader's language and the caption kept.
	browser := e.signInBrowser("f1", "f1", "org-a")
	csrf := e.csrfToken(browser)
	body, ct := uploadBody(t, map[string]string{"csrf_token": csrf, "client_msg_id": uuid.NewString(), "body": "현장학습 안내"},
		filePart{"logo.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)})
	resp := e.do(browser, http.MethodPost, fmt.Sprintf("/c/%d/files", conv), body, map[string]string{"Content-Type": ct, "Origin": e.srv.URL})
	page := readBody(t, resp)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "보낼 수 없는 형식") || !strings.Contains(page, "현장학습 안내") {
		t.Errorf("page upload of an SVG: %d, want 422 with the reason and the caption kept:\n%.2000s", resp.StatusCode, page)
	}
	// The plain form's button with no file chosen: the browser sends an empty file part.
	body, ct = uploadBody(t, map[string]string{"csrf_token": csrf, "client_msg_id": uuid.NewString(), "body": ""}, filePart{"", nil})
	resp = e.do(browser, http.MethodPost, fmt.Sprintf("/c/%d/files", conv), body, map[string]string{"Content-Type": ct, "Origin": e.srv.URL})
	if page := readBody(t, resp); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "보낼 파일을 고르세요") {
		t.Errorf("page upload without a file: %d", resp.StatusCode)
	}
	if n := e.count("uploads"); n != 0 {
		t.Errorf("%d uploads stored", n)
	}
}

// with answers the env reporting to t, for a sub-test.
func (e *filesEnv) with(t *testing.T) *filesEnv {
	c := *e.env
	c.t = t
	return &filesEnv{env: &c, dir: e.dir, runner: e.runner, names: e.names}
}

// TestFileNamesRepaired: what an honest client may send is kept, repaired: a path is cut
// to its last element, a 300-character name is shortened keeping its extension, and
// decomposed Hangul (macOS) is stored composed.
func TestFileNamesRepaired(t *testing.T) {
	e := newFilesEnv(t, false)
	me := mustUser(t, e.db, "n1", "n1", "org-a")
	friend := mustUser(t, e.db, "n2", "n2", "org-a")
	conv := directConversation(t, e.env, me, friend)
	long := strings.Repeat("가", 296) + ".txt"
	nfd := "\u1100\u1161\u110c\u1165\u11bc.txt" // 가정.txt decomposed
	resp, up := e.apiUpload("n1", "org-a", conv, uuid.NewString(), "",
		filePart{"../../etc/passwd.txt", []byte("a")}, filePart{long, []byte("b")}, filePart{nfd, []byte("c")})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	names := []string{}
	for _, f := range up.Files {
		names = append(names, f.Name)
	}
	if len(names) != 3 || names[0] != "passwd.txt" || !strings.HasSuffix(names[1], ".txt") ||
		utf8.RuneCountInString(names[1]) > upload.DefaultMaxNameRunes || names[2] != "가정.txt" {
		t.Errorf("stored names %q", names)
	}
}

// TestFileMessageFlow: an upload is a pending bubble for its sender only (also after a
// reload), then a file message for everyone; the same client_msg_id again, from a retry,
// answers the same upload and never stores a second message. Downloads carry the
// headers that keep a file from running in the page, HEAD and Range work, and a
// thumbnail is cached for good; another organization's id is not found.
func TestFileMessageFlow(t *testing.T) {
	e := newFilesEnv(t, true)
	me := mustUser(t, e.db, "m1", "김선영", "org-a")
	friend := mustUser(t, e.db, "m2", "최지훈", "org-a")
	mustUser(t, e.db, "m9", "외부", "org-b")
	conv := directConversation(t, e.env, me, friend)
	browser := e.signInBrowser("m1", "김선영", "org-a")
	csrf := e.csrfToken(browser)

	photo := pngFile(t, 640, 480)
	id := uuid.NewString()
	post := func(htmx bool) *http.Response {
		body, ct := uploadBody(t, map[string]string{"client_msg_id": id, "caption": "칠판 사진"},
			filePart{"칠판.png", photo}, filePart{"가정통신문.pdf", pdfFile})
		h := map[string]string{"Content-Type": ct, "Origin": e.srv.URL, "X-CSRF-Token": csrf}
		if htmx {
			h["HX-Request"] = "true"
		}
		return e.do(browser, http.MethodPost, fmt.Sprintf("/c/%d/files", conv), body, h)
	}
	first := post(true)
	html := readBody(t, first)
	if first.StatusCode != http.StatusAccepted || !strings.Contains(html, `id="upload-`) || !strings.Contains(html, "칠판.png") {
		t.Fatalf("first upload: %d\n%s", first.StatusCode, html)
	}
	upID := between(html, `id="upload-`, `"`)
	again := post(true)
	if again.StatusCode != http.StatusOK || !strings.Contains(readBody(t, again), `id="upload-`+upID+`"`) {
		t.Errorf("the retry with the same client_msg_id: %d, want 200 with the same upload", again.StatusCode)
	}
	up := e.waitUpload("m1", "org-a", upID, messenger.UploadClean)
	if up.MessageID == nil {
		t.Fatal("a clean upload without its message id")
	}
	noJS := post(false) // a third time, as a form without JavaScript
	if loc := noJS.Header.Get("Location"); noJS.StatusCode != http.StatusSeeOther || loc != fmt.Sprintf("/c/%d#msg-%d", conv, *up.MessageID) {
		t.Errorf("plain form retry: %d to %q", noJS.StatusCode, loc)
	}
	var n int
	if err := e.owner.QueryRow(`SELECT count(*) FROM messages WHERE conversation_id = $1 AND kind = 'file'`, conv).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d file messages (%v), want exactly 1", n, err)
	}

	// The recipient's thread shows the picture with its size known, the card, the caption.
	friendBrowser := e.signInBrowser("m2", "최지훈", "org-a")
	page := readBody(t, e.do(friendBrowser, http.MethodGet, fmt.Sprintf("/c/%d", conv), nil, nil))
	var img, pdf messenger.APIFile
	for _, f := range up.Files {
		if f.ContentType == "image/png" {
			img = f
		} else {
			pdf = f
		}
	}
	for _, want := range []string{
		`src="/files/` + img.ID + `/thumbnail/medium"`, `width="300" height="225"`, `loading="lazy"`,
		`/files/` + img.ID + `/thumbnail/large 2x`, "가정통신문.pdf", `href="/files/` + pdf.ID + `/content"`, "칠판 사진", "검사 안 됨",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the recipient's thread lacks %q", want)
		}
	}

	// Downloads.
	resp := e.api("m2", "org-a", http.MethodGet, "/api/v1/files/"+pdf.ID+"/content")
	got := readBody(t, resp)
	h := resp.Header
	if resp.StatusCode != http.StatusOK || got != string(pdfFile) {
		t.Fatalf("download: %d %q", resp.StatusCode, got)
	}
	for k, want := range map[string]string{
		"Content-Type":            "application/pdf",
		"Content-Disposition":     upload.ContentDisposition("가정통신문.pdf"),
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'none'; sandbox",
	} {
		if h.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, h.Get(k), want)
		}
	}
	if !strings.HasPrefix(h.Get("Content-Disposition"), "attachment;") || !strings.Contains(h.Get("Content-Disposition"), "filename*=UTF-8''") {
		t.Errorf("Content-Disposition %q", h.Get("Content-Disposition"))
	}
	if cc := h.Get("Cache-Control"); !strings.Contains(cc, "private") {
		t.Errorf("original Cache-Control %q, want private", cc)
	}
	head := e.do(friendBrowser, http.MethodHead, "/files/"+pdf.ID+"/content", nil, nil)
	if head.StatusCode != http.StatusOK || head.ContentLength != int64(len(pdfFile)) || readBody(t, head) != "" {
		t.Errorf("HEAD: %d, length %d", head.StatusCode, head.ContentLength)
	}
	part := e.do(friendBrowser, http.MethodGet, "/files/"+pdf.ID+"/content", nil, map[string]string{"Range": "bytes=0-7"})
	if body := readBody(t, part); part.StatusCode != http.StatusPartialContent || body != "%PDF-1.7" ||
		part.Header.Get("Content-Range") != fmt.Sprintf("bytes 0-7/%d", len(pdfFile)) {
		t.Errorf("Range: %d %q %q", part.StatusCode, body, part.Header.Get("Content-Range"))
	}
	thumb := e.do(friendBrowser, http.MethodGet, "/files/"+img.ID+"/thumbnail/medium", nil, nil)
	if thumb.StatusCode != http.StatusOK || thumb.Header.Get("Content-Type") != "image/webp" ||
		thumb.Header.Get("Cache-Control") != "private, max-age=31536000, immutable" || thumb.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("thumbnail: %d %q %q", thumb.StatusCode, thumb.Header.Get("Content-Type"), thumb.Header.Get("Cache-Control"))
	}
	for _, path := range []string{"/files/" + pdf.ID + "/content", "/files/" + img.ID + "/thumbnail/small", "/files/" + img.ID + "/thumbnail/huge", "/files/not-a-uuid/content"} {
		resp := e.api("m9", "org-b", http.MethodGet, "/api/v1"+path)
		if code, _ := decodeError(t, resp); resp.StatusCode != http.StatusNotFound || code != "not_found" {
			t.Errorf("another organization's GET %s: %d %s", path, resp.StatusCode, code)
		}
	}

	// The sender deletes it: a tombstone for the recipient, the file gone.
	del := e.do(browser, http.MethodPost, "/files/"+img.ID+"/delete", strings.NewReader("all=1"), map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Origin": e.srv.URL, "X-CSRF-Token": csrf, "HX-Request": "true",
	})
	if row := readBody(t, del); del.StatusCode != http.StatusOK || !strings.Contains(row, "삭제된 파일입니다") {
		t.Errorf("delete: %d\n%s", del.StatusCode, row)
	}
	page = readBody(t, e.do(friendBrowser, http.MethodGet, fmt.Sprintf("/c/%d", conv), nil, nil))
	if !strings.Contains(page, "삭제된 파일입니다") || strings.Contains(page, "/files/"+img.ID) {
		t.Errorf("the recipient's thread after the delete lacks the tombstone or still shows the file")
	}
	if resp := e.do(friendBrowser, http.MethodGet, "/files/"+pdf.ID+"/content", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a deleted file downloads: %d", resp.StatusCode)
	}
}

// TestPendingUploadSurvivesReload: while its scan has not run, my upload is a pending
// bubble on my thread page (a reload shows it again), and nobody else sees anything.
func TestPendingUploadSurvivesReload(t *testing.T) {
	e := newFilesEnv(t, false) // no workers: the scan waits
	me := mustUser(t, e.db, "p1", "p1", "org-a")
	friend := mustUser(t, e.db, "p2", "p2", "org-a")
	conv := directConversation(t, e.env, me, friend)
	resp, up := e.apiUpload("p1", "org-a", conv, uuid.NewString(), "", filePart{"note.txt", []byte("hello")})
	if resp.StatusCode != http.StatusAccepted || up.State != messenger.UploadScanning {
		t.Fatalf("upload: %d %+v", resp.StatusCode, up)
	}
	mine := readBody(t, e.do(e.signInBrowser("p1", "p1", "org-a"), http.MethodGet, fmt.Sprintf("/c/%d", conv), nil, nil))
	if !strings.Contains(mine, `id="upload-`+up.ID+`"`) || !strings.Contains(mine, "검사 중") {
		t.Errorf("my thread lacks the pending bubble")
	}
	theirs := readBody(t, e.do(e.signInBrowser("p2", "p2", "org-a"), http.MethodGet, fmt.Sprintf("/c/%d", conv), nil, nil))
	if strings.Contains(theirs, up.ID) || strings.Contains(theirs, "note.txt") {
		t.Errorf("the recipient sees an upload that is not a message")
	}
	if resp := e.api("p2", "org-a", http.MethodGet, "/api/v1/files/"+up.Files[0].ID); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the recipient reads a file before its scan: %d", resp.StatusCode)
	}
}

func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, end)
	return v
}

// TestInfectedUpload: a file the scanner (a real clamd) finds infected never becomes a
// message: the sender's thread shows the bubble saying it was deleted as unsafe, with a
// dismiss button that works without JavaScript; the recipient sees nothing.
func TestInfectedUpload(t *testing.T) {
	clamd := clamdtest.Start(t, clamdtest.Config{})
	scanner, err := scan.New(clamd.TCP, scan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := newScannedFilesEnv(t, true, scanner)
	me := mustUser(t, e.db, "v1", "v1", "org-a")
	friend := mustUser(t, e.db, "v2", "v2", "org-a")
	conv := directConversation(t, e.env, me, friend)
	resp, up := e.apiUpload("v1", "org-a", conv, uuid.NewString(), "숙제", filePart{"숙제.txt", clamdtest.EICAR()})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload: %d %s", resp.StatusCode, readBody(t, resp))
	}
	e.waitUpload("v1", "org-a", up.ID, messenger.UploadInfected)

	browser := e.signInBrowser("v1", "v1", "org-a")
	page := readBody(t, e.do(browser, http.MethodGet, fmt.Sprintf("/c/%d", conv), nil, nil))
	for _, want := range []string{`data-state="infected"`, "안전하지 않은 파일이 있어 보내지 않고 삭제했습니다", `action="/uploads/` + up.ID + `/dismiss"`, "닫기"} {
		if !strings.Contains(page, want) {
			t.Errorf("the sender's thread lacks %q", want)
		}
	}
	theirs := readBody(t, e.do(e.signInBrowser("v2", "v2", "org-a"), http.MethodGet, fmt.Sprintf("/c/%d", conv), nil, nil))
	if strings.Contains(theirs, up.ID) || strings.Contains(theirs, "숙제") {
		t.Error("the recipient sees the infected upload")
	}

	csrf := e.csrfToken(browser)
	dismiss := e.do(browser, http.MethodPost, "/uploads/"+up.ID+"/dismiss", strings.NewReader("csrf_token="+csrf), map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Origin": e.srv.URL,
	})
	if loc := dismiss.Header.Get("Location"); dismiss.StatusCode != http.StatusSeeOther || loc != fmt.Sprintf("/c/%d", conv) {
		t.Fatalf("dismiss: %d to %q", dismiss.StatusCode, loc)
	}
	page = readBody(t, e.do(browser, http.MethodGet, fmt.Sprintf("/c/%d", conv), nil, nil))
	if strings.Contains(page, up.ID) {
		t.Error("the dismissed bubble is still shown")
	}
	if n := e.objects(); n != 0 {
		t.Errorf("%d objects left after the infected upload", n)
	}
}

// pageStream opens the page stream GET /events of a signed-in browser client.
func (e *filesEnv) pageStream(client *http.Client) <-chan sseEvent {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/events", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		e.t.Fatalf("open the page stream: %v %v", err, resp)
	}
	return streamEvents(resp.Body)
}

// eventOf waits for the next event of type typ on events, skipping others (presence).
func eventOf(t *testing.T, events <-chan sseEvent, typ string) sseEvent {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the stream ended before %s", typ)
			}
			if ev.typ == typ {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s within 20 s", typ)
		}
	}
}

// TestFileEvents: the page stream renders the file events for each viewer: my pending
// bubble (upload.updated) to my other tabs, the file message to everyone (message.new)
// with its picture's size known, my bubble's end (upload.updated clean), and a deleted
// file's tombstone (message.updated); the API stream carries the same events as JSON.
func TestFileEvents(t *testing.T) {
	e := newFilesEnv(t, true)
	me := mustUser(t, e.db, "s1", "s1", "org-a")
	friend := mustUser(t, e.db, "s2", "s2", "org-a")
	conv := directConversation(t, e.env, me, friend)
	mine := e.pageStream(e.signInBrowser("s1", "s1", "org-a"))
	theirs := e.pageStream(e.signInBrowser("s2", "s2", "org-a"))
	api := e.openStream(sign(t, validClaims("s1", "s1", "org-a")), "")
	time.Sleep(200 * time.Millisecond) // the streams subscribe

	resp, up := e.apiUpload("s1", "org-a", conv, uuid.NewString(), "칠판", filePart{"칠판.png", pngFile(t, 900, 600)})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	ev := eventOf(t, mine, "upload.updated")
	for _, want := range []string{`data-upload="` + up.ID + `"`, `data-state="scanning"`, `id="upload-` + up.ID + `"`, "검사 중", "칠판.png"} {
		if !strings.Contains(ev.data, want) {
			t.Errorf("my upload.updated lacks %q: %s", want, ev.data)
		}
	}
	msg := eventOf(t, theirs, "message.new")
	for _, want := range []string{`data-kind="file"`, `width="300" height="200"`, `srcset="/files/`, `loading="lazy"`, "칠판"} {
		if !strings.Contains(msg.data, want) {
			t.Errorf("their message.new lacks %q: %s", want, msg.data)
		}
	}
	if m := eventOf(t, mine, "message.new"); !strings.Contains(m.data, `data-client-msg-id="`+up.ClientMsgID+`"`) {
		t.Errorf("my message.new row lacks its client_msg_id (the bubble's key): %s", m.data)
	}
	if ev := eventOf(t, mine, "upload.updated"); !strings.Contains(ev.data, `data-state="clean"`) {
		t.Errorf("the last upload.updated is not clean: %s", ev.data)
	}
	var apiUp messenger.APIUpload
	if ev := eventOf(t, api, "upload.updated"); json.Unmarshal([]byte(ev.data), &apiUp) != nil || apiUp.ID != up.ID {
		t.Errorf("the API stream's upload.updated: %s", ev.data)
	}

	if resp := e.api("s1", "org-a", http.MethodDelete, "/api/v1/files/"+up.Files[0].ID); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	upd := eventOf(t, theirs, "message.updated")
	if !strings.Contains(upd.data, "삭제된 파일입니다") || strings.Contains(upd.data, "/files/") {
		t.Errorf("their message.updated is not the tombstone: %s", upd.data)
	}
	var apiMsg messenger.APIMessage
	if ev := eventOf(t, api, "message.updated"); json.Unmarshal([]byte(ev.data), &apiMsg) != nil || !apiMsg.Deleted {
		t.Errorf("the API stream's message.updated: %s", ev.data)
	}
}
