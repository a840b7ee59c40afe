package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/uuid"
)

// TestFileAttachments is the demo teacher (A) sending photos and a PDF to the demo parent
// (B) on phones (390 px), in Korean: the tray, real upload progress, the pending bubble
// that becomes the message on both sides, the viewer, a retry after a failed upload that
// stores one message, and the plain form without JavaScript.
func TestFileAttachments(t *testing.T) {
	browser := newBrowser(t)
	srv := startServer(t)
	nonce := runNonce()
	teacherAPI, direct, threadURL := teacherDirect(t, srv)

	dir := t.TempDir()
	photo := writeTestFile(t, dir, "운동장.jpg", noisyJPEG(t, 1600, 1200))
	board := writeTestFile(t, dir, "칠판.png", boardPNG(t, 1200, 900))
	pdf := writeTestFile(t, dir, "현장학습 안내문.pdf", testPDF)

	a := newLiveTab(t, browser, "ko")
	signInDev(a, srv.URL, demoTeacher.Name)
	b := newLiveTab(t, browser, "ko")
	signInDev(b, srv.URL, demoParent.Name)
	a2 := newLiveTab(t, browser, "ko") // the teacher's other device
	signInDev(a2, srv.URL, demoTeacher.Name)
	for _, tb := range []*tab{a, b, a2} {
		phone(tb)
		openThread(tb, threadURL)
	}

	t.Run("attach and send", func(t *testing.T) {
		a, b := a.with(t), b.with(t)
		if !eval[bool](a, `document.getElementById("composer-attach").checkVisibility() && !document.getElementById("composer-nojs-files").checkVisibility()`) {
			t.Fatal("with JavaScript the attach button shows and the plain file field does not")
		}
		if label := eval[string](a, `document.getElementById("composer-attach").getAttribute("aria-label")`); label != "파일 첨부" {
			t.Errorf("attach button label %q", label)
		}
		a.do(chromedp.SetUploadFiles("#composer-files", []string{photo, board, pdf}))
		waitJS(a, "the tray shows three files", `document.querySelectorAll("#composer-tray > li").length === 3 && document.getElementById("composer-tray").checkVisibility()`, 3*time.Second)
		if n := eval[int](a, `document.querySelectorAll("#composer-tray img").length`); n != 2 {
			t.Errorf("the tray shows %d picture previews, want 2", n)
		}
		// Upload slowly, so that progress is seen as it goes.
		a.do(cdpDo(network.Enable, network.EnableParams{}),
			cdpDo(network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
				MatchedNetworkConditions: []*network.Conditions{{DownloadThroughput: -1, UploadThroughput: 400 << 10}},
			}))
		a.do(chromedp.Evaluate[chromedp.Void](`window.__progress = []; new MutationObserver((ms) => ms.forEach((m) => {
		  if (m.attributeName === "aria-valuenow") window.__progress.push(+m.target.getAttribute("aria-valuenow"));
		})).observe(document.getElementById("uploads"), {attributes: true, subtree: true})`))
		caption := "오늘 현장학습 사진입니다 " + nonce
		typeInComposer(a, caption)
		start := time.Now()
		pressEnter(a)
		waitJS(a, "a sending bubble at once", `document.querySelectorAll("#uploads li.upload [role=progressbar]").length === 3`, 2*time.Second)
		if v := run(a, chromedp.Value(chromedp.ID("composer"))); v != "" {
			t.Errorf("the composer still holds %q after the send", v)
		}
		a2.do(chromedp.Evaluate[chromedp.Void](`window.__pending = []; new MutationObserver(() => document.querySelectorAll("#uploads > li.upload[data-state]").forEach((li) => window.__pending.push(li.dataset.state))).observe(document.getElementById("uploads"), {childList: true, subtree: true, attributes: true})`))
		waitJS(a, "a progress bar part way", `window.__progress.some((v) => v > 0 && v < 100)`, 10*time.Second)
		a.do(cdpDo(network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			MatchedNetworkConditions: []*network.Conditions{{DownloadThroughput: -1, UploadThroughput: -1}},
		}))
		row := `Array.from(document.querySelectorAll("#messages > li.msg[data-kind=file]")).find((li) => li.innerText.includes(` + jsString(caption) + `))`
		waitJS(b, "B sees the file message live", `!!(`+row+`)`, 20*time.Second)
		t.Logf("B saw the files %s after A pressed Enter", time.Since(start).Round(time.Millisecond))
		waitJS(a, "A's bubble becomes the message", `!!(`+row+`) && document.querySelectorAll("#uploads > li").length === 0`, 10*time.Second)
		for _, tb := range []*tab{a, b} {
			got := eval[map[string]any](tb, `(() => { const li = `+row+`; return {
			  images: li.querySelectorAll("img[loading=lazy][width][height][srcset]").length,
			  doc: (li.querySelector(".msg-doc [data-role=file-name]") || {}).textContent || "",
			  download: (li.querySelector("a.msg-doc[download]") || {}).href || ""} })()`)
			if got["images"] != float64(2) || got["doc"] != "현장학습 안내문.pdf" || !strings.Contains(got["download"].(string), "/content") {
				t.Errorf("the file message shows %v", got)
			}
		}
		// B's list asks the server for itself once B has marked the message read.
		if p, _, ok := pollJS(b, fmt.Sprintf(`document.querySelector("#conv-%d [data-role=preview]").textContent.trim()`, direct), 3*time.Second,
			func(p string) bool { return p == "파일 3개" }); !ok {
			t.Errorf("B's list preview %q", p)
		}
		// The teacher's other device showed the pending bubble while it was scanned, and
		// then the message in its place.
		a2 := a2.with(t)
		waitJS(a2, "the other device shows the message", `!!(`+row+`) && document.querySelectorAll("#uploads > li").length === 0`, 10*time.Second)
		if states := eval[[]string](a2, `window.__pending`); len(states) == 0 || states[0] != "scanning" {
			t.Errorf("the other device's pending bubble went through %q, want scanning first", states)
		}
	})

	t.Run("viewer", func(t *testing.T) {
		b := b.with(t)
		b.do(chromedp.Click(`#messages li.msg:last-of-type a[data-viewer]`))
		waitJS(b, "the viewer opens", `document.getElementById("viewer").checkVisibility() && document.getElementById("viewer").contains(document.activeElement)`, 3*time.Second)
		if c := eval[string](b, `document.getElementById("viewer-count").textContent`); !strings.HasPrefix(c, "1 / ") {
			t.Errorf("viewer count %q", c)
		}
		b.do(chromedp.KeyEvent(kb.ArrowRight))
		waitJS(b, "the arrow shows the next picture", `document.getElementById("viewer-count").textContent.startsWith("2 / ")`, 2*time.Second)
		waitJS(b, "the large picture loads", `document.getElementById("viewer-img").complete && document.getElementById("viewer-img").naturalWidth > 300`, 5*time.Second)
		// A swipe to the right goes back to the first picture.
		touch := func(typ input.DispatchTouchEventType, x float64) chromedp.Action[chromedp.Void] {
			var points []*input.TouchPoint
			if typ != input.DispatchTouchEventTypeTouchEnd {
				points = []*input.TouchPoint{{X: x, Y: 400}}
			}
			return cdpDo(input.DispatchTouchEvent, input.DispatchTouchEventParams{Type: typ, TouchPoints: points})
		}
		b.do(touch(input.DispatchTouchEventTypeTouchStart, 80), touch(input.DispatchTouchEventTypeTouchMove, 200), touch(input.DispatchTouchEventTypeTouchMove, 320), touch(input.DispatchTouchEventTypeTouchEnd, 0))
		waitJS(b, "the swipe shows the previous picture", `document.getElementById("viewer-count").textContent.startsWith("1 / ")`, 2*time.Second)
		b.do(chromedp.KeyEvent(kb.ArrowRight))
		b.do(chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Tab))
		if !eval[bool](b, `document.getElementById("viewer").contains(document.activeElement)`) {
			t.Error("focus left the viewer")
		}
		b.do(chromedp.KeyEvent(kb.Escape))
		waitJS(b, "Esc closes the viewer", `!document.getElementById("viewer").checkVisibility()`, 2*time.Second)
		b.do(chromedp.Click(`#messages a[data-viewer]`))
		waitJS(b, "the viewer opens again", `document.getElementById("viewer").checkVisibility()`, 2*time.Second)
		b.do(chromedp.Evaluate[chromedp.Void](`history.back()`))
		waitJS(b, "the back button closes the viewer", `!document.getElementById("viewer").checkVisibility()`, 2*time.Second)
		if loc := b.location(); loc != threadURL {
			t.Errorf("after back the tab is at %s, want the thread", loc)
		}
	})

	t.Run("delete", func(t *testing.T) {
		a, b := a.with(t), b.with(t)
		caption := "오늘 현장학습 사진입니다 " + nonce
		row := `Array.from(document.querySelectorAll("#messages > li.msg[data-kind=file]")).find((li) => li.innerText.includes(` + jsString(caption) + `))`
		// The sender's menu asks first; the row becomes a tombstone for both, live.
		a.do(chromedp.Evaluate[chromedp.Void](`window.confirm = () => true; (` + row + `).querySelector(".msg-menu summary").click()`))
		waitJS(a, "the menu offers delete", `(`+row+`).querySelector(".msg-menu button").checkVisibility()`, 2*time.Second)
		a.do(chromedp.Evaluate[chromedp.Void](`(` + row + `).querySelector(".msg-menu button").click()`))
		tomb := `Array.from(document.querySelectorAll("#messages > li.msg[data-kind=file] .msg-tombstone")).length`
		before := eval[int](b, tomb)
		waitJS(a, "A's row is a tombstone", `!(`+row+`) && `+tomb+` === `+strconv.Itoa(before+1), 5*time.Second)
		waitJS(b, "B's row turns into a tombstone live", `!(`+row+`) && `+tomb+` === `+strconv.Itoa(before+1), 5*time.Second)
		if txt := eval[string](b, `Array.from(document.querySelectorAll(".msg-tombstone")).pop().innerText.trim()`); txt != "삭제된 파일입니다" {
			t.Errorf("B's tombstone reads %q", txt)
		}
	})

	t.Run("retry after a failed upload", func(t *testing.T) {
		a := a.with(t)
		retryShown := `Array.from(document.querySelectorAll("#uploads button")).some((b) => b.textContent === "다시 보내기")`
		clickRetry := `Array.from(document.querySelectorAll("#uploads button")).find((b) => b.textContent === "다시 보내기").click()`
		arrived := func(caption string) string {
			return `Array.from(document.querySelectorAll("#messages > li.msg[data-kind=file]")).filter((li) => li.innerText.includes(` + jsString(caption) + `)).length === 1 && document.querySelectorAll("#uploads > li").length === 0`
		}

		// Offline: the upload never reaches the server; the bubble keeps the files and a
		// retry sends them once the network is back.
		caption := "다시 보내기 " + nonce
		a.do(chromedp.SetUploadFiles("#composer-files", []string{pdf}))
		waitJS(a, "the tray", `document.querySelectorAll("#composer-tray > li").length === 1`, 3*time.Second)
		typeInComposer(a, caption)
		setOffline(a, nil, true)
		pressEnter(a)
		waitJS(a, "the failed upload offers a retry", retryShown, 10*time.Second)
		setOffline(a, nil, false)
		waitConnected(a, 2)
		a.do(chromedp.Evaluate[chromedp.Void](clickRetry))
		waitJS(a, "the retried upload is the message", arrived(caption), 20*time.Second)

		// The answer is lost after the server stored the upload: the live stream or the
		// retry (same client_msg_id) shows it, and it is stored once.
		caption2 := "응답이 사라진 파일 " + nonce
		a.do(chromedp.SetUploadFiles("#composer-files", []string{pdf}))
		waitJS(a, "the tray", `document.querySelectorAll("#composer-tray > li").length === 1`, 3*time.Second)
		typeInComposer(a, caption2)
		stop := failNextPostResponse(a, "*/files")
		pressEnter(a)
		waitJS(a, "a retry or the message", retryShown+" || "+arrived(caption2), 15*time.Second)
		stop()
		if eval[bool](a, retryShown) {
			a.do(chromedp.Evaluate[chromedp.Void](clickRetry))
		}
		waitJS(a, "the upload whose answer was lost is the message, once", arrived(caption2), 20*time.Second)
		time.Sleep(time.Second) // a second message would be stored by now
		for _, c := range []string{caption, caption2} {
			if n := teacherAPI.countBody(t, direct, c); n != 1 {
				t.Errorf("%d messages with %q, want exactly 1", n, c)
			}
		}
	})

	t.Run("paste, drop, early refusals, cancel", func(t *testing.T) {
		a := a.with(t)
		tray := `document.querySelectorAll("#composer-tray > li").length`
		// A picture pasted into the composer.
		a.do(chromedp.Evaluate[chromedp.Void](`(() => {
		  const c = document.createElement("canvas"); c.width = 40; c.height = 30;
		  const dt = new DataTransfer();
		  dt.items.add(new File([Uint8Array.from(atob(c.toDataURL("image/png").split(",")[1]), (ch) => ch.charCodeAt(0))], "image.png", {type: "image/png"}));
		  document.getElementById("composer").dispatchEvent(new ClipboardEvent("paste", {clipboardData: dt, bubbles: true, cancelable: true}));
		})()`))
		waitJS(a, "the pasted picture is in the tray", tray+` === 1 && !!document.querySelector("#composer-tray img")`, 3*time.Second)
		// Files dragged over the thread show the drop zone; dropped, they join the tray.
		a.do(chromedp.Evaluate[chromedp.Void](`window.__dt = new DataTransfer(); __dt.items.add(new File(["hello"], "메모.txt", {type: "text/plain"}));
		  document.getElementById("thread").dispatchEvent(new DragEvent("dragenter", {dataTransfer: __dt, bubbles: true, cancelable: true}))`))
		waitJS(a, "the drop zone shows", `document.getElementById("drop-zone").checkVisibility()`, 2*time.Second)
		a.do(chromedp.Evaluate[chromedp.Void](`document.getElementById("thread").dispatchEvent(new DragEvent("drop", {dataTransfer: __dt, bubbles: true, cancelable: true}))`))
		waitJS(a, "the dropped file is in the tray and the zone gone", tray+` === 2 && !document.getElementById("drop-zone").checkVisibility()`, 2*time.Second)
		// What the server would refuse is refused at once, in Korean.
		dir := t.TempDir()
		heic := writeTestFile(t, dir, "아이사진.heic", []byte("\x00\x00\x00\x18ftypheic"))
		exe := writeTestFile(t, dir, "setup.exe", []byte("MZ"))
		big := writeTestFile(t, dir, "큰파일.pdf", bytes.Repeat([]byte("a"), 10<<20+1))
		a.do(chromedp.SetUploadFiles("#composer-files", []string{heic, exe, big}))
		waitJS(a, "the refusals show", `document.getElementById("composer-error").checkVisibility()`, 2*time.Second)
		msg := eval[string](a, `document.getElementById("composer-error-text").textContent`)
		for _, want := range []string{"아이사진.heic: HEIC", "setup.exe: 보낼 수 없는 형식", "큰파일.pdf: 파일이 너무 큽니다. 10MB까지"} {
			if !strings.Contains(msg, want) {
				t.Errorf("the composer says %q, want it to include %q", msg, want)
			}
		}
		if n := eval[int](a, tray); n != 2 {
			t.Errorf("the tray holds %d files after the refusals, want 2", n)
		}
		// Cancel while it uploads: the bubble goes, the files come back to the tray.
		a.do(chromedp.SetUploadFiles("#composer-files", []string{photo}))
		waitJS(a, "three in the tray", tray+` === 3`, 2*time.Second)
		a.do(cdpDo(network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			MatchedNetworkConditions: []*network.Conditions{{DownloadThroughput: -1, UploadThroughput: 50 << 10}},
		}))
		pressEnter(a)
		waitJS(a, "the upload is under way", `document.querySelectorAll("#uploads li.upload [role=progressbar]").length === 3 && `+tray+` === 0`, 3*time.Second)
		a.do(chromedp.Evaluate[chromedp.Void](`Array.from(document.querySelectorAll("#uploads button")).find((b) => b.textContent === "취소").click()`))
		waitJS(a, "cancelled: the bubble goes and the files come back", `document.querySelectorAll("#uploads > li").length === 0 && `+tray+` === 3`, 3*time.Second)
		a.do(cdpDo(network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			MatchedNetworkConditions: []*network.Conditions{{DownloadThroughput: -1, UploadThroughput: -1}},
		}))
		for eval[int](a, tray) > 0 {
			a.do(chromedp.Evaluate[chromedp.Void](`document.querySelector("#composer-tray > li button").click()`))
		}
		if eval[bool](a, `document.getElementById("composer-tray").checkVisibility()`) {
			t.Error("the empty tray still shows")
		}
	})

	t.Run("without JavaScript", func(t *testing.T) {
		c := newLiveTab(t, browser, "ko")
		signInDev(c, srv.URL, demoTeacher.Name)
		c.do(cdpDo(emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}))
		c.do(chromedp.Navigate(threadURL), chromedp.WaitVisible(chromedp.ID("composer-files")))
		caption := "자바스크립트 없이 보낸 파일 " + nonce
		c.do(chromedp.SetUploadFiles("#composer-files", []string{board}),
			chromedp.Focus(chromedp.ID("composer")), chromedp.SendKeys(chromedp.ID("composer"), caption))
		if _, err := runErr(c, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(`#composer-nojs-files button`))); err != nil {
			t.Fatalf("post the files without JavaScript: %v", err)
		}
		if loc := run(c, chromedp.Location()); !regexp.MustCompile(`/c/\d+#(upload-[0-9a-f-]{36}|msg-\d+)$`).MatchString(loc) {
			t.Errorf("after the post the page is %s, want the thread", loc)
		}
		deadline := time.Now().Add(20 * time.Second)
		for teacherAPI.countBody(t, direct, caption) != 1 && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		if n := teacherAPI.countBody(t, direct, caption); n != 1 {
			t.Fatalf("%d messages with the caption, want 1", n)
		}
		c.do(chromedp.Navigate(threadURL), chromedp.WaitVisible(chromedp.ID("composer")))
		if !eval[bool](c, `Array.from(document.querySelectorAll("#messages > li.msg[data-kind=file]")).some((li) => li.innerText.includes(`+jsString(caption)+`) && li.querySelector("a[href*='/thumbnail/'] img"))`) {
			t.Error("the reloaded thread lacks the picture sent without JavaScript")
		}
	})

	checkLiveConsole(a) // the upload that failed on purpose
	checkConsole(b)
}

// phone makes the tab a 390 px phone.
func phone(tb *tab) {
	tb.t.Helper()
	tb.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait))
}

func writeTestFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// noisyJPEG is a phone-sized photo that does not compress away (about 1 MB): a sky, a
// field and grain.
func noisyJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(1, 2))
	for y := range h {
		for x := range w {
			n := uint8(r.IntN(40))
			if y < h*2/3 {
				img.Set(x, y, color.RGBA{90 + n, 160 + n, 220 + n/2, 255})
			} else {
				img.Set(x, y, color.RGBA{60 + n, 150 + n, 70 + n, 255})
			}
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// boardPNG is a whiteboard: white with dark lines of "writing", wider than high.
func boardPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{245, 246, 248, 255}
			if x < 12 || y < 12 || x >= w-12 || y >= h-12 {
				c = color.RGBA{120, 120, 130, 255}
			} else if (y/40)%2 == 1 && y%40 < 6 && (x/30)%5 != 4 && x > 60 && x < w-60 {
				c = color.RGBA{30, 60, 160, 255}
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var testPDF = []byte("%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")

// uploadFiles posts files (name → content) as one upload through the API and answers its id.
func (c *liveAPI) uploadFiles(t testing.TB, convID int64, caption string, names []string, contents [][]byte) string {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("client_msg_id", uuid.NewString())
	w.WriteField("caption", caption)
	for i, name := range names {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="file"; filename="`+name+`"`)
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		pw.Write(contents[i])
	}
	w.Close()
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/api/v1/conversations/%d/files", c.srv.URL, convID), &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := liveHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var up struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusAccepted || jsonDecodeBody(resp, &up) != nil {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	return up.ID
}

// waitUpload waits until one of my uploads has state want.
func (c *liveAPI) waitUpload(t testing.TB, id, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var up struct {
		State string `json:"state"`
	}
	for time.Now().Before(deadline) {
		c.call(t, http.MethodGet, "/api/v1/uploads/"+id, nil, &up, http.StatusOK)
		if up.State == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("upload %s is %q, want %q", id, up.State, want)
}

// TestFileScreenshots leaves screenshots of a thread with files (a photo album, a single
// whiteboard photo, document cards, a pending bubble) and of the viewer, at 390 and 1280
// px, in Korean and English ($SCREENSHOT_DIR).
func TestFileScreenshots(t *testing.T) {
	browser := newBrowser(t)
	data := "MESSENGER_DATA_DIR=" + t.TempDir() // both processes keep the files there
	srv := startServer(t, data)
	shots := screenshotDir(t)
	teacherAPI := newLiveAPI(t, srv, demoTeacher)
	parentAPI := newLiveAPI(t, srv, demoParent)
	direct, _ := demoConversationIDs(t, teacherAPI)

	hwp := []string{"2026학년도 2학기 현장체험학습 안내 및 참가 동의서 (5학년 2반 학부모님께 드리는 가정통신문).pdf", "결석계.txt"}
	for _, id := range []string{
		teacherAPI.uploadFiles(t, direct, "오늘 운동장 수업 사진입니다 😊", []string{"운동장1.jpg", "운동장2.jpg", "운동장3.jpg"},
			[][]byte{noisyJPEG(t, 1600, 1200), noisyJPEG(t, 1200, 1600), noisyJPEG(t, 1600, 900)}),
		teacherAPI.uploadFiles(t, direct, "", []string{"칠판.png"}, [][]byte{boardPNG(t, 1200, 900)}),
		teacherAPI.uploadFiles(t, direct, "현장학습 안내문 보내드립니다. 금요일까지 회신 부탁드려요.", hwp, [][]byte{testPDF, []byte("결석 사유: 감기\n")}),
	} {
		teacherAPI.waitUpload(t, id, "clean")
	}
	parentUp := parentAPI.uploadFiles(t, direct, "아이 진단서입니다", []string{"진단서.pdf"}, [][]byte{testPDF})
	parentAPI.waitUpload(t, parentUp, "clean")

	// A pending bubble: the next upload is made while no process works the jobs.
	srv.Stop()
	srv2 := startServerOn(t, srv, "MESSENGER_JOB_WORKERS=0", data)
	teacherAPI.srv = srv2
	teacherAPI.uploadFiles(t, direct, "알림장 사진", []string{"알림장.jpg"}, [][]byte{noisyJPEG(t, 800, 600)})

	for _, lang := range []string{"ko", "en"} {
		tb := newLiveTab(t, browser, lang)
		signInDev(tb, srv2.URL, demoTeacher.Name)
		for _, size := range []struct {
			w, h   int64
			mobile bool
		}{{390, 844, true}, {1280, 800, false}} {
			var opts []chromedp.EmulateViewportOption
			if size.mobile {
				opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
			}
			tb.do(chromedp.EmulateViewport(size.w, size.h, opts...))
			openThread(tb, srv2.URL+"/c/"+strconv.FormatInt(direct, 10))
			tb.do(chromedp.Evaluate[chromedp.Void](`document.getElementById("thread-scroll").scrollTop = 1e9`))
			waitJS(tb, "the pictures in view load", shownPicturesLoaded, 10*time.Second)
			name := fmt.Sprintf("files-thread-%s-%d", lang, size.w)
			screenshot(tb, shots, name, size.w, size.h, size.mobile)
			tb.do(chromedp.Evaluate[chromedp.Void](`document.querySelector("#messages a[data-viewer]").closest("li").scrollIntoView({block: "start"})`))
			waitJS(tb, "the pictures in view load", shownPicturesLoaded, 10*time.Second)
			screenshot(tb, shots, name+"-album", size.w, size.h, size.mobile)
			tb.do(chromedp.Click(`#messages a[data-viewer]`))
			waitJS(tb, "the viewer's picture loads", `document.getElementById("viewer-img").complete && document.getElementById("viewer-img").naturalWidth > 0`, 5*time.Second)
			screenshot(tb, shots, fmt.Sprintf("files-viewer-%s-%d", lang, size.w), size.w, size.h, size.mobile)
			tb.do(chromedp.KeyEvent(kb.Escape))
			// The composer with a tray of chosen files.
			tb.do(chromedp.SetUploadFiles("#composer-files", []string{
				writeTestFile(t, t.TempDir(), "운동장.jpg", noisyJPEG(t, 400, 300)),
				writeTestFile(t, t.TempDir(), "가정통신문.pdf", testPDF),
			}))
			waitJS(tb, "the tray", `document.querySelectorAll("#composer-tray > li").length === 2`, 3*time.Second)
			screenshot(tb, shots, fmt.Sprintf("files-tray-%s-%d", lang, size.w), size.w, size.h, size.mobile)
		}
		checkConsole(tb)
	}
}

// shownPicturesLoaded is true once every picture in view has loaded (those below or
// above it load lazily, when scrolled to).
const shownPicturesLoaded = `Array.from(document.querySelectorAll("#messages img")).filter((i) => {
  const r = i.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight }).every((i) => i.complete && i.naturalWidth > 0)`

func jsonDecodeBody(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}
