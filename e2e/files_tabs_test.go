package e2e

import (
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dreamseed/messenger/scan/clamdtest"
)

// TestUploadBubbleInEveryTab: the sender has the thread open in two tabs and sends EICAR.
// Both tabs show the bubble that says the file was removed; a "scanning" for it arriving
// late (a job of another process told the result first) does not bring "scanning…" back;
// dismissing it in one tab takes it out of the other at once, and out of the thread for good.
func TestUploadBubbleInEveryTab(t *testing.T) {
	browser := newBrowser(t)
	clamd := clamdtest.Start(t, clamdtest.Config{})
	srv := startServer(t, "MESSENGER_CLAMD_ADDR="+clamd.TCP)
	teacher := newLiveAPI(t, srv, demoTeacher)
	direct, _ := demoConversationIDs(t, teacher)
	threadURL := srv.URL + "/c/" + strconv.FormatInt(direct, 10)

	one, two := newLiveTab(t, browser, "ko"), newLiveTab(t, browser, "ko")
	for _, tb := range []*tab{one, two} {
		signInDev(tb, srv.URL, demoTeacher.Name)
		openThread(tb, threadURL)
	}
	id := teacher.uploadFiles(t, direct, "", []string{"eicar.txt"}, [][]byte{clamdtest.EICAR()})
	bubble := `document.querySelector("#uploads > li.upload[data-upload=\"` + id + `\"]")`
	for _, tb := range []*tab{one, two} {
		waitJS(tb, "the bubble says the file was removed", `!!`+bubble+` && `+bubble+`.dataset.state === "infected"`, 20*time.Second)
	}

	// A late "scanning" of the same upload, as the stream renders it.
	two.do(chromedp.Evaluate[chromedp.Void](`(() => {
	  const li = ` + bubble + `.cloneNode(true);
	  li.dataset.state = "scanning";
	  const tpl = document.createElement("template");
	  tpl.dataset.conversation = "` + strconv.FormatInt(direct, 10) + `";
	  tpl.dataset.upload = li.dataset.upload;
	  tpl.dataset.state = "scanning";
	  tpl.dataset.clientMsgId = li.dataset.clientMsgId;
	  tpl.content.append(li);
	  const box = document.createElement("div");
	  box.append(tpl);
	  document.dispatchEvent(new CustomEvent("upload.updated", {detail: {data: box.innerHTML}}));
	})()`))
	time.Sleep(200 * time.Millisecond)
	if st := eval[string](two, bubble+`.dataset.state`); st != "infected" {
		t.Errorf("after a late scanning event the bubble is %q, want it still infected", st)
	}

	start := time.Now()
	one.do(chromedp.Click(`#uploads > li.upload[data-upload="` + id + `"] form[data-upload-dismiss] button`))
	waitJS(one, "the dismissed bubble goes from the tab that dismissed it", `!`+bubble, 5*time.Second)
	waitJS(two, "the dismissed bubble goes from the other tab", `!`+bubble, 5*time.Second)
	t.Logf("the other tab dropped the bubble %s after the click", time.Since(start).Round(time.Millisecond))
	openThread(two, threadURL)
	if eval[bool](two, `!!`+bubble) {
		t.Error("a dismissed upload is back after a reload")
	}
	checkConsole(one)
	checkConsole(two)
}
