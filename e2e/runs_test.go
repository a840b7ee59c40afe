package e2e

import (
	"fmt"
	"testing"
	"time"
)

// runRow is how a thread row shows its place in a run.
type runRow struct {
	Start bool `json:"start"` // run-start: the name and avatar show
	End   bool `json:"end"`   // run-end: the time shows
	Name  bool `json:"name"`  // the sender's name is visible
}

// TestLiveRuns: messages that arrive live are grouped as the server says (data-joins):
// two of one sender within five minutes show the name once — the second row is no
// run-start and only it shows the time — and a message from someone else starts a new
// run.
func TestLiveRuns(t *testing.T) {
	browser := newBrowser(t)
	srv := startServer(t)
	nonce := runNonce()
	teacherAPI, parentAPI := newLiveAPI(t, srv, demoTeacher), newLiveAPI(t, srv, demoParent)
	_, group := demoConversationIDs(t, teacherAPI)

	parent := signedInTab(t, browser, srv, demoParent.Name)
	openThread(parent, fmt.Sprintf("%s/c/%d", srv.URL, group))

	mine, first, second, reply := "질문 "+nonce, "첫째 안내 "+nonce, "둘째 안내 "+nonce, "감사합니다 "+nonce
	parentAPI.send(t, group, mine)
	teacherAPI.send(t, group, first)
	teacherAPI.send(t, group, second)
	waitJS(parent, "the teacher's two messages to arrive", countTextJS(second)+" === 1", 5*time.Second)
	row := func(text string) runRow {
		t.Helper()
		id := rowWithText(parent, text).ID
		return eval[runRow](parent, fmt.Sprintf(`(() => {
  const li = document.getElementById(%q), name = li.querySelector(".msg-name");
  return {start: li.classList.contains("run-start"), end: li.classList.contains("run-end"),
    name: !!name && name.checkVisibility()};
})()`, id))
	}
	// Mine may continue a run of my own (the demo's messages are recent); the teacher's
	// next one does not join it.
	if got := row(mine); !got.End {
		t.Errorf("my message before the teacher's: %+v, want run-end", got)
	}
	if got, want := row(first), (runRow{Start: true, End: false, Name: true}); got != want {
		t.Errorf("the teacher's first message: %+v, want %+v (a new run, the name shown, no time)", got, want)
	}
	if got, want := row(second), (runRow{Start: false, End: true, Name: false}); got != want {
		t.Errorf("the teacher's second message: %+v, want %+v (joined: no name again, the time)", got, want)
	}

	parentAPI.send(t, group, reply)
	waitJS(parent, "the parent's reply to arrive", countTextJS(reply)+" === 1", 5*time.Second)
	if got := row(reply); !got.Start || !got.End {
		t.Errorf("the parent's reply after the teacher: %+v, want a run of its own", got)
	}
	if got := row(second); got.Start || !got.End {
		t.Errorf("the teacher's second message after the reply: %+v, want it still the end of the teacher's run", got)
	}
	checkConsole(parent)
}
