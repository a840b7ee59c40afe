package tick

import (
	"testing"
	"time"
)

func TestEveryRunsUntilEitherStopCloses(t *testing.T) {
	for _, which := range []int{0, 1} {
		stops := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
		calls := make(chan struct{}, 100)
		returned := make(chan struct{})
		go func() {
			Every(time.Millisecond, stops[0], stops[1], func() { calls <- struct{}{} })
			close(returned)
		}()
		<-calls
		<-calls
		close(stops[which])
		select {
		case <-returned:
		case <-time.After(5 * time.Second):
			t.Fatalf("Every still running 5 s after stop %d closed", which)
		}
	}
}
