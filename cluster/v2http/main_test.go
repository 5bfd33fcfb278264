package v2http

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run when a goroutine is still inside the handler after
// every test ended: a watch that outlived its request.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := handlerGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines left in the handler:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// handlerGoroutines polls until no goroutine runs handler code, or returns
// the stacks of those that still do after wait.
func handlerGoroutines(wait time.Duration) string {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(wait)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "cairn/cluster/v2http.(*Handler)") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return ""
		}
		select {
		case <-tick.C:
		case <-deadline:
			return strings.Join(leaked, "\n\n")
		}
	}
}
