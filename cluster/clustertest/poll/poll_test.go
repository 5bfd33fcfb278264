package poll

import (
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// fakeTB records a Fatalf instead of ending the test.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
}

func TestUntil(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		calls := 0
		Until(t, time.Second, "the third call", func() bool { calls++; return calls == 3 })
		if calls != 3 {
			t.Errorf("cond called %d times, want 3", calls)
		}
		// The backoff starts short: 1 ms, then 2 ms.
		if d := time.Since(start); d != 3*time.Millisecond {
			t.Errorf("took %v of simulated time, want 3ms", d)
		}

		ftb := &fakeTB{TB: t}
		start = time.Now()
		calls = 0
		Until(ftb, 200*time.Millisecond, "never", func() bool { calls++; return false })
		if !strings.Contains(ftb.failed, "timed out after 200ms waiting for never") {
			t.Errorf("failure %q; want what and the timeout", ftb.failed)
		}
		// Timed out at the deadline, having polled with a capped backoff.
		if d := time.Since(start); d != 200*time.Millisecond || calls < 200/int(maxBackoff/time.Millisecond) {
			t.Errorf("gave up after %v and %d calls", d, calls)
		}
	})
}

func TestCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		notYet := errors.New("not yet")
		calls := 0
		if err := Check(time.Second, func() error {
			if calls++; calls < 4 {
				return notYet
			}
			return nil
		}); err != nil || calls != 4 {
			t.Errorf("Check = %v after %d calls; want nil after 4", err, calls)
		}
		if err := Check(50*time.Millisecond, func() error { return notYet }); err != notYet {
			t.Errorf("Check after the timeout = %v; want the last error", err)
		}
		gone := errors.New("gone")
		calls = 0
		if err := Check(time.Second, func() error { calls++; return Stop(gone) }); err != gone || calls != 1 {
			t.Errorf("Check with Stop = %v after %d calls; want gone at once", err, calls)
		}
	})
}

// The package imports no package of this module, so that any test of the
// module can use it (DESIGN.md's direction has no rule for test helpers).
func TestImportsNoModulePackage(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); strings.HasPrefix(p, "github.com/cairnkv/cairn") {
				t.Errorf("%s imports %s", name, p)
			}
		}
	}
}
