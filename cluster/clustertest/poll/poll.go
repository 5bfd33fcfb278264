// Package poll waits in tests for a condition to hold: the one poll helper
// of the module. It imports no package of this module, so any test can use
// it without an import cycle.
//
// A poll calls its condition at once, then again after a short backoff
// (1 ms doubling up to 25 ms), until it holds or the timeout passes. It
// waits on timers, so it also runs inside a testing/synctest bubble, where
// the timeout is simulated time. Tests wait with it instead of sleeping.
package poll

import (
	"errors"
	"testing"
	"time"
)

const (
	firstBackoff = time.Millisecond
	maxBackoff   = 25 * time.Millisecond
)

// Until calls cond until it returns true. If it has not after timeout, it
// fails t with t.Fatalf, naming what was awaited and for how long. Call it
// from the test's goroutine.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !wait(timeout, cond) {
		t.Fatalf("poll: timed out after %v waiting for %s", timeout, what)
	}
}

// Check calls cond until it returns nil or an error made by Stop, or until
// timeout passes, and returns cond's last error (unwrapped from Stop): for
// helpers that report an error rather than fail a test. The error says what
// was still wrong when Check gave up.
func Check(timeout time.Duration, cond func() error) error {
	var last error
	wait(timeout, func() bool {
		last = cond()
		return last == nil || errors.As(last, new(stop))
	})
	var s stop
	if errors.As(last, &s) {
		return s.err
	}
	return last
}

// Stop marks err as final: Check returns it at once instead of polling
// on (a process that exited will not become healthy).
func Stop(err error) error { return stop{err} }

type stop struct{ err error }

func (s stop) Error() string { return s.err.Error() }
func (s stop) Unwrap() error { return s.err }

// wait polls cond until it holds (true) or timeout passes (false).
func wait(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	backoff := firstBackoff
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for !cond() {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		d := min(backoff, left)
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		<-timer.C
		backoff = min(2*backoff, maxBackoff)
	}
	return true
}
