// Package hang reports a test binary that is about to reach its -timeout:
// which tests are still running and where each is blocked, printed last, so
// that a CI log that keeps only the tail of the output still names them.
// Go's own timeout panic names the running tests first and then dumps every
// goroutine, which in a package with a few live raft nodes is thousands of
// lines: a truncated log keeps only anonymous raft goroutines.
//
// It imports no package of this module, so any test can use it.
package hang

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Main runs the tests of m under Watch and exits with their result.
func Main(m *testing.M) {
	stop := Watch(os.Stderr, func() { os.Exit(2) })
	code := m.Run()
	stop()
	os.Exit(code)
}

// Watch arms a report for shortly before the binary's -test.timeout (a
// tenth of it, at most a minute, ahead): every goroutine's stack, then the
// stacks of the goroutines running a test, then exit is called. It must
// be called after flag.Parse (testing.M.Run parses, TestMain may too) or
// from TestMain, which Main does. The returned func disarms it; without
// a -test.timeout there is nothing to arm.
func Watch(w io.Writer, exit func()) (stop func()) {
	timeout := testTimeout()
	if timeout <= 0 {
		return func() {}
	}
	t := time.AfterFunc(timeout-min(timeout/10, time.Minute), func() {
		report(w, timeout)
		exit()
	})
	return func() { t.Stop() }
}

// testTimeout is -test.timeout, parsing the flags if nobody has yet.
func testTimeout() time.Duration {
	f := flag.Lookup("test.timeout")
	if f == nil {
		return 0
	}
	if !flag.Parsed() {
		flag.Parse()
	}
	d, _ := f.Value.(flag.Getter).Get().(time.Duration)
	return d
}

// report writes the full dump, then the running tests' goroutines last.
func report(w io.Writer, timeout time.Duration) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	fmt.Fprintf(w, "\nhang: the tests are about to reach -test.timeout=%v; every goroutine:\n\n", timeout)
	w.Write(buf)
	tests := Running(buf)
	fmt.Fprintf(w, "\nhang: %d test goroutine(s) still running (the tests that hung):\n\n", len(tests))
	for _, g := range tests {
		fmt.Fprintf(w, "%s\n\n", g)
	}
	fmt.Fprintf(w, "hang: still running: %s\n", strings.Join(names(tests), ", "))
}

// Running returns, from a runtime.Stack(all) dump, the goroutines that run
// a test: top-level tests, subtests, fuzz targets and examples.
func Running(dump []byte) [][]byte {
	var out [][]byte
	for _, g := range bytes.Split(dump, []byte("\n\n")) {
		if testName(g) != "" {
			out = append(out, bytes.TrimSpace(g))
		}
	}
	return out
}

// testName is the function that testing.tRunner called in goroutine g
// (pkg.TestName, pkg.TestName.func1 for a subtest), "" when none did.
func testName(g []byte) string {
	lines := strings.Split(string(g), "\n")
	for i, l := range lines {
		// A frame is two lines, the call and its file: the test's frame
		// is the one just above tRunner's.
		if strings.HasPrefix(l, "testing.tRunner(") && i >= 2 {
			fn := lines[i-2]
			if j := strings.LastIndexByte(fn, '('); j > 0 {
				fn = fn[:j]
			}
			fn = fn[strings.LastIndexByte(fn, '/')+1:]
			if strings.HasPrefix(fn, "testing.") {
				return "" // the main goroutine's runTests
			}
			return fn
		}
	}
	return ""
}

// names returns the test function of each goroutine.
func names(gs [][]byte) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = testName(g)
	}
	return out
}
