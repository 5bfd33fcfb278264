package bench

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Progress writes a live line a second during a run, and the setup's
// messages. A nil *Progress writes nothing.
type Progress struct {
	W io.Writer
	// Live rewrites one line (\r) instead of writing one per second:
	// for a terminal.
	Live bool
	// Interval between lines (default 1s).
	Interval time.Duration
}

func (p *Progress) printf(format string, args ...any) {
	if p != nil {
		fmt.Fprintf(p.W, format, args...)
	}
}

// start writes a line every Interval until the returned func is called,
// which writes the last one.
func (p *Progress) start(label string, c *counters) func() {
	if p == nil {
		return func() {}
	}
	every := p.Interval
	if every <= 0 {
		every = time.Second
	}
	begin := time.Now()
	var lastOK uint64
	last := begin
	line := func(end bool) {
		now := time.Now()
		ok, errs := c.ok.Load(), c.errs.Load()
		rate := float64(ok-lastOK) / now.Sub(last).Seconds()
		lastOK, last = ok, now
		what := "now"
		if end {
			rate = float64(ok) / now.Sub(begin).Seconds()
			what = "overall"
		}
		text := fmt.Sprintf("%s: %5.1fs  %d ok  %d errors  %.0f/s %s", label, now.Sub(begin).Seconds(), ok, errs, rate, what)
		switch {
		case p.Live && end:
			fmt.Fprintf(p.W, "\r%-72s\n", text)
		case p.Live:
			fmt.Fprintf(p.W, "\r%-72s", text)
		default:
			fmt.Fprintln(p.W, text)
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				line(false)
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		line(true)
	}
}
