package views

import (
	"testing"
	"time"

	"github.com/dreamseed/messenger"
)

// TestThreadItemsApplyJoins: rows rendered together take their runs from each message's
// JoinsPrevious; the first row of a page starts a run (the browser joins it to the row
// before it, from its data-joins), and a hole in the seqs starts one too.
func TestThreadItemsApplyJoins(t *testing.T) {
	at := time.Date(2026, 11, 25, 14, 0, 0, 0, Seoul)
	msg := func(seq int64, joins bool) messenger.Message {
		return messenger.Message{ID: seq, Seq: seq, Kind: messenger.MessageText, Sender: messenger.User{ID: 1, Sub: "kim"},
			CreatedAt: at.Add(time.Duration(seq) * time.Second), JoinsPrevious: joins}
	}
	items := ThreadItems([]messenger.Message{msg(5, true), msg(6, true), msg(7, false), msg(8, true), msg(10, true)}, "lee", ReadState{})
	type run struct{ start, end bool }
	want := []run{{true, false}, {false, true}, {true, false}, {false, true}, {true, true}}
	for i, it := range items {
		if got := (run{it.RunStart, it.RunEnd}); got != want[i] {
			t.Errorf("row of seq %d: run start, end = %v, want %v", it.Msg.Seq, got, want[i])
		}
	}
}
