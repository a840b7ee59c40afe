package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/uuid"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/handlers"
	"github.com/dreamseed/messenger/internal/browsertest"
	"github.com/dreamseed/messenger/scan"
	"github.com/dreamseed/messenger/scan/clamdtest"
)

// TestFilePagesInBrowser renders a thread with files in Chromium, as a teacher and a
// parent see it, at 390 and 1280 px in Korean and English: a photo album, a single
// whiteboard photo at its own aspect ratio, document cards with long names, a tombstone,
// a pending bubble and the viewer. It checks what a user would notice (nothing wider than
// the phone, pictures with their size known before they load, the viewer's dialog) and
// leaves screenshots in $SCREENSHOT_DIR.
func TestFilePagesInBrowser(t *testing.T) {
	chromium := chromiumOrSkip(t)
	// With clamd at hand the files are scanned (and one is infected), as in production.
	var scanner chat.Scanner
	if clamdtest.Binary() != "" {
		clamd := clamdtest.Start(t, clamdtest.Config{})
		sc, err := scan.New(clamd.TCP, scan.Options{})
		if err != nil {
			t.Fatal(err)
		}
		scanner = sc
	}
	e := newScannedFilesEnv(t, true, scanner, func(c *handlers.Config) { c.CookieSecure, c.CookieSameSite = false, http.SameSiteLaxMode })
	teacher := mustUser(t, e.db, "demo-teacher", "김선영", "org-a")
	parent := mustUser(t, e.db, "demo-parent", "최지훈", "org-a")
	conv := directConversation(t, e.env, teacher, parent)
	e.names["demo-teacher"], e.names["demo-parent"] = "김선영", "최지훈"

	clean := func(sub, caption string, files ...filePart) messenger.APIUpload {
		resp, up := e.apiUpload(sub, "org-a", conv, uuid.NewString(), caption, files...)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("upload: %d %s", resp.StatusCode, readBody(t, resp))
		}
		return e.waitUpload(sub, "org-a", up.ID, messenger.UploadClean)
	}
	clean("demo-teacher", "오늘 운동장 수업 사진입니다 😊",
		filePart{"운동장1.jpg", sceneJPEG(t, 1600, 1200, 0)}, filePart{"운동장2.jpg", sceneJPEG(t, 1200, 1600, 1)}, filePart{"운동장3.jpg", sceneJPEG(t, 1600, 900, 2)})
	clean("demo-teacher", "", filePart{"칠판.png", whiteboardPNG(t, 1200, 800)})
	clean("demo-teacher", "현장학습 안내문 보내드립니다. 금요일까지 회신 부탁드려요.",
		filePart{"2026학년도 2학기 현장체험학습 안내 및 참가 동의서 (5학년 2반 학부모님께 드리는 가정통신문).pdf", pdfFile},
		filePart{"준비물 목록.txt", []byte("도시락, 물, 모자\n")})
	gone := clean("demo-parent", "", filePart{"잘못 보낸 사진.jpg", sceneJPEG(t, 800, 600, 3)})
	clean("demo-parent", "", filePart{"스크린샷.png", pngFile(t, 600, 2400)})
	clean("demo-parent", "아이 결석계입니다. 확인 부탁드립니다.", filePart{"결석계.txt", []byte("결석 사유: 감기\n")})
	if resp := e.api("demo-parent", "org-a", http.MethodDelete, "/api/v1/files/"+gone.Files[0].ID); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if scanner != nil {
		resp, up := e.apiUpload("demo-teacher", "org-a", conv, uuid.NewString(), "", filePart{"숙제 안내.txt", clamdtest.EICAR()})
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("upload: %d", resp.StatusCode)
		}
		e.waitUpload("demo-teacher", "org-a", up.ID, messenger.UploadInfected)
	}
	// A pending bubble: no job runs the scan of the last upload.
	stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	e.runner.Stop(stop)
	cancel()
	if resp, _ := e.apiUpload("demo-teacher", "org-a", conv, uuid.NewString(), "알림장 사진", filePart{"알림장.jpg", sceneJPEG(t, 800, 600, 4)}); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("pending upload: %d", resp.StatusCode)
	}

	shots := screenshotDir(t)
	browser := startChromium(t, chromium)
	threadURL := fmt.Sprintf("%s/c/%d", e.srv.URL, conv)
	for _, who := range []struct{ sub, name string }{{"demo-teacher", "김선영"}, {"demo-parent", "최지훈"}} {
		for _, lang := range []string{"ko", "en"} {
			ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
			defer cancel()
			if err := chromedp.Do(ctx); err != nil { // opens the tab, without a deadline
				t.Fatal(err)
			}
			do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
				t.Helper()
				browserStep(t, ctx, what+" ("+who.sub+", "+lang+")", 500, actions...)
			}
			wait := func(what, expr string, timeout time.Duration) {
				t.Helper()
				c, done := context.WithTimeout(ctx, timeout+5*time.Second)
				defer done()
				if _, err := chromedp.Run(c, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout))); err != nil {
					t.Fatalf("%s (%s, %s): %v", what, who.sub, lang, err)
				}
			}
			evalJS := func(expr string, out any) {
				t.Helper()
				c, done := context.WithTimeout(ctx, 10*time.Second)
				defer done()
				v, err := chromedp.Run(c, chromedp.Evaluate[any](expr))
				if err != nil {
					t.Fatalf("eval %s: %v", expr, err)
				}
				switch o := out.(type) {
				case *bool:
					*o, _ = v.(bool)
				case *float64:
					*o, _ = v.(float64)
				case *string:
					*o, _ = v.(string)
				}
			}
			accept := map[string]string{"ko": "ko-KR,ko;q=0.9", "en": "en-US,en;q=0.9"}[lang]
			token := sign(t, validClaims(who.sub, who.name, "org-a"))
			do("sign in",
				browsertest.Call(network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": accept}}),
				chromedp.Navigate(e.srv.URL+"/healthz"),
				chromedp.Evaluate[chromedp.Void](`fetch("/auth/portal", {method: "POST", body: new URLSearchParams({token: `+fmt.Sprintf("%q", token)+`}), redirect: "manual"}).then(() => true)`, chromedp.EvalAwaitPromise),
			)
			for _, size := range []struct {
				w, h   int64
				mobile bool
			}{{390, 844, true}, {1280, 800, false}} {
				var opts []chromedp.EmulateViewportOption
				if size.mobile {
					opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
				}
				do("set the viewport", chromedp.EmulateViewport(size.w, size.h, opts...))
				do("open the thread", chromedp.Navigate(threadURL))
				do("see the composer", chromedp.WaitVisible(chromedp.ID("composer")))
				wait("pictures load", `Array.from(document.querySelectorAll("#messages img")).every((i) => i.complete && i.naturalWidth > 0)`, 10*time.Second)
				var wide float64
				evalJS(`document.documentElement.scrollWidth - window.innerWidth`, &wide)
				if wide > 0 {
					t.Errorf("%s %s %d px: the page is %v px wider than the screen", who.sub, lang, size.w, wide)
				}
				var sized bool
				evalJS(`Array.from(document.querySelectorAll("#messages img")).every((i) => i.getAttribute("width") > 0 && i.getAttribute("height") > 0 && i.loading === "lazy")`, &sized)
				if !sized {
					t.Errorf("a picture without width, height or lazy loading")
				}
				name := fmt.Sprintf("files-%s-%s-%d", who.sub[5:], lang, size.w)
				do("scroll down", chromedp.Evaluate[chromedp.Void](`document.getElementById("thread-scroll").scrollTop = 1e9`))
				shot(t, ctx, shots, name)
				do("scroll to the album", chromedp.Evaluate[chromedp.Void](`document.querySelector("#messages a[data-viewer]").closest("li").scrollIntoView({block: "start"})`))
				shot(t, ctx, shots, name+"-album")
				do("open the viewer", chromedp.Click(`#messages a[data-viewer]`))
				wait("the viewer", `document.getElementById("viewer").checkVisibility() && document.getElementById("viewer-img").complete && document.getElementById("viewer-img").naturalWidth > 0`, 5*time.Second)
				do("next picture", chromedp.KeyEvent(kb.ArrowRight))
				wait("the next picture", `document.getElementById("viewer-count").textContent.startsWith("2") && document.getElementById("viewer-img").complete`, 3*time.Second)
				shot(t, ctx, shots, name+"-viewer")
				do("close the viewer", chromedp.KeyEvent(kb.Escape))
				wait("the viewer closes", `!document.getElementById("viewer").checkVisibility()`, 3*time.Second)
				if who.sub == "demo-teacher" {
					dir := t.TempDir()
					photo := filepath.Join(dir, "운동장.jpg")
					doc := filepath.Join(dir, "가정통신문 11월호.pdf")
					os.WriteFile(photo, sceneJPEG(t, 400, 300, 5), 0o644)
					os.WriteFile(doc, pdfFile, 0o644)
					do("choose files", chromedp.SetUploadFiles("#composer-files", []string{photo, doc}))
					wait("the tray", `document.querySelectorAll("#composer-tray > li").length === 2`, 3*time.Second)
					shot(t, ctx, shots, name+"-tray")
				}
			}
		}
	}
}

// chromiumOrSkip answers the Chromium of $CHROMIUM_PATH (or "chromium" on PATH), and
// skips t without one.
func chromiumOrSkip(t *testing.T) string {
	chromium := os.Getenv("CHROMIUM_PATH")
	if chromium == "" {
		chromium = "chromium"
	}
	if _, err := exec.LookPath(chromium); err != nil {
		t.Skipf("no Chromium (%s): %v", chromium, err)
	}
	return chromium
}

// screenshotDir is $SCREENSHOT_DIR, or a temporary directory of t.
func screenshotDir(t *testing.T) string {
	shots := os.Getenv("SCREENSHOT_DIR")
	if shots == "" {
		shots = t.TempDir()
	}
	os.MkdirAll(shots, 0o755)
	return shots
}

// browserStep does actions in tab within 20 s; if they fail, it fails the test with what,
// the error, the page's address and the first chars characters of its text.
func browserStep(t *testing.T, tab context.Context, what string, chars int, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, done := context.WithTimeout(tab, 20*time.Second)
	defer done()
	if err := chromedp.Do(c, actions...); err != nil {
		c2, done2 := context.WithTimeout(tab, 3*time.Second)
		defer done2()
		page, _ := chromedp.Run(c2, chromedp.Evaluate[string](fmt.Sprintf(`location.href + "\n" + document.body.innerText.slice(0, %d)`, chars)))
		t.Fatalf("%s: %v\n%s", what, err, page)
	}
}

func startChromium(t *testing.T, path string) context.Context {
	t.Helper()
	return startChromiumSized(t, path, 1280, 800)
}

// startChromiumSized starts a headless Chromium of its own, its window w×h, with more
// flags, and closes it when the test ends.
func startChromiumSized(t *testing.T, path string, w, h int, more ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.Headless,
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(w, h))
	opts = append(opts, more...)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		stop, done := context.WithTimeout(ctx, 10*time.Second)
		defer done()
		if err := chromedp.Cancel(stop); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("close Chromium: %v", err)
		}
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	c, done := context.WithTimeout(ctx, 10*time.Second)
	defer done()
	if err := chromedp.Do(c, chromedp.Evaluate[chromedp.Void](`document.fonts.ready.then(() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))))`, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(c, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sceneJPEG is a photo-like picture: sky, a sun, hills and a field, varied by n.
func sceneJPEG(t *testing.T, w, h, n int) []byte {
	t.Helper()
	sunX, sunY, sunR := w*(2+n%3)/6, h/4, min(w, h)/9
	img := picture(w, h, func(x, y int) color.RGBA {
		hill := h*3/5 + int(float64(h)/14*math.Sin(float64(x)/float64(w)*6.28*float64(1+n%2)+float64(n)))
		switch {
		case (x-sunX)*(x-sunX)+(y-sunY)*(y-sunY) < sunR*sunR:
			return color.RGBA{255, 214, 90, 255}
		case y < hill:
			return color.RGBA{uint8(110 + 80*y/h), uint8(170 + 50*y/h), 235, 255}
		case y < hill+h/12:
			return color.RGBA{70, 140, 80, 255}
		default:
			return color.RGBA{uint8(150 + 30*(x/40%2)), 120, 80, 255}
		}
	})
	return encoded(t, func(w io.Writer) error { return jpeg.Encode(w, img, &jpeg.Options{Quality: 80}) })
}

// whiteboardPNG is a whiteboard photo: a frame, white, lines of blue writing.
func whiteboardPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := picture(w, h, func(x, y int) color.RGBA {
		switch {
		case x < 14 || y < 14 || x >= w-14 || y >= h-14:
			return color.RGBA{130, 130, 140, 255}
		case (y/48)%2 == 1 && y%48 < 7 && (x/36)%6 != 5 && x > 70 && x < w-70:
			return color.RGBA{30, 70, 170, 255}
		}
		return color.RGBA{246, 247, 249, 255}
	})
	return encoded(t, func(w io.Writer) error { return png.Encode(w, img) })
}
