// Package tick runs a piece of work every period until told to stop: the realtime
// engines' presence and ping loops and the benchmark programs' samplers.
package tick

import "time"

// Every calls fn each period, the first time one period from now, until stop or stop2 is
// closed (a nil one never is). A call in progress when one closes finishes first.
func Every(period time.Duration, stop, stop2 <-chan struct{}, fn func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-stop2:
			return
		case <-t.C:
			fn()
		}
	}
}
