package e2e

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chromedp/chromedp"
)

// TestComposerLimitsFromConfig: the limits the composer checks before sending come from
// the server's configuration, and the page counts a message's length as the server does.
// 4,000 emoji (8,000 UTF-16 units) are a message the page sends and the server stores;
// 4,001 are one the page refuses, as the server does.
func TestComposerLimitsFromConfig(t *testing.T) {
	browser := newBrowser(t)
	srv := startServer(t, "MESSENGER_MAX_UPLOAD_BYTES=3145728", "MESSENGER_MAX_FILES_PER_UPLOAD=3")
	teacherAPI := newLiveAPI(t, srv, demoTeacher)
	direct, _ := demoConversationIDs(t, teacherAPI)
	tb := newLiveTab(t, browser, "en")
	signInDev(tb, srv.URL, demoTeacher.Name)
	openThread(tb, srv.URL+"/c/"+strconv.FormatInt(direct, 10))

	got := eval[map[string]string](tb, `(() => { const d = document.getElementById("composer-form").dataset;
	  return {chars: d.maxChars, bytes: d.maxBytes, files: d.maxFiles, accept: d.accept} })()`)
	for k, want := range map[string]string{"chars": "4000", "bytes": "3145728", "files": "3"} {
		if got[k] != want {
			t.Errorf("the composer's %s limit is %q, want %q (the configured value)", k, got[k], want)
		}
	}
	if !strings.Contains(got["accept"], ".hwp") || !strings.Contains(got["accept"], "image/png") {
		t.Errorf("the composer's data-accept %q lacks the server's types", got["accept"])
	}

	// The page refuses files by the configured size and count.
	dir := t.TempDir()
	big := writeTestFile(t, dir, "big.pdf", bytes.Repeat([]byte("a"), 3<<20+1))
	tb.do(chromedp.SetUploadFiles("#composer-files", []string{big}))
	waitJS(tb, "the too large file is refused", `document.getElementById("composer-error").checkVisibility()`, 2*time.Second)
	if msg := eval[string](tb, `document.getElementById("composer-error-text").textContent`); msg != "big.pdf is too large. Files can be up to 3 MB." {
		t.Errorf("the composer says %q about a file of 3 MB and a byte", msg)
	}
	var four []string
	for _, name := range []string{"1.txt", "2.txt", "3.txt", "4.txt"} {
		four = append(four, writeTestFile(t, dir, name, []byte("note\n")))
	}
	tb.do(chromedp.SetUploadFiles("#composer-files", four))
	waitJS(tb, "three files in the tray, the fourth refused", `document.querySelectorAll("#composer-tray > li").length === 3 && document.getElementById("composer-error-text").textContent === "You can send up to 3 files at once."`, 2*time.Second)
	for eval[int](tb, `document.querySelectorAll("#composer-tray > li").length`) > 0 {
		tb.do(chromedp.Click(`#composer-tray button`))
	}

	// 4,000 characters, each but the nonce an emoji outside the BMP: the page sends it,
	// the server stores it whole.
	nonce := deliveryNonce()
	longest := nonce + strings.Repeat("😀", 4000-utf8.RuneCountInString(nonce))
	typeInComposer(tb, longest)
	if v := run(tb, chromedp.Value(chromedp.ID("composer"))); v != longest {
		t.Fatalf("the composer holds %d characters of the %d typed", utf8.RuneCountInString(v), utf8.RuneCountInString(longest))
	}
	pressEnter(tb)
	waitJS(tb, "the longest message is sent and the composer clears",
		`document.getElementById("composer").value === "" && document.getElementById("composer-error").classList.contains("hidden")`, 10*time.Second)
	if n := teacherAPI.countBody(t, direct, longest); n != 1 {
		t.Errorf("the 4,000-character message is stored %d times, want once", n)
	}

	// One more emoji: the page says it is too long and keeps the text; the server,
	// asked directly, refuses it too.
	tooLong := deliveryNonce() + strings.Repeat("😀", 4000-len(nonce)+1)
	typeInComposer(tb, tooLong)
	pressEnter(tb)
	waitJS(tb, "the page refuses 4,001 characters", `document.getElementById("composer-error").checkVisibility()`, 2*time.Second)
	if msg := eval[string](tb, `document.getElementById("composer-error-text").textContent.trim()`); msg != "A message can be at most 4,000 characters." {
		t.Errorf("the composer says %q about 4,001 characters", msg)
	}
	if v := run(tb, chromedp.Value(chromedp.ID("composer"))); v != tooLong {
		t.Errorf("the refused text is not kept in the composer")
	}
	if n := teacherAPI.countBody(t, direct, tooLong); n != 0 {
		t.Errorf("the 4,001-character message is stored %d times", n)
	}
	if status, body, _ := teacherAPI.trySend(t, direct, tooLong); status != http.StatusBadRequest {
		t.Errorf("the API takes 4,001 characters: %d %s", status, body)
	}
	if status, body, _ := teacherAPI.trySend(t, direct, "api "+strings.Repeat("😀", 3996)); status != http.StatusCreated {
		t.Errorf("the API refuses 4,000 characters: %d %s", status, body)
	}
}
