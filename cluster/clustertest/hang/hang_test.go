package hang

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// blockedIn parks a goroutine of a subtest on a channel until the test ends.
func blockedIn(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	t.Cleanup(func() { close(release) })
	go t.Run("Parked", func(t *testing.T) {
		close(started)
		<-release
	})
	<-started
}

func TestReportNamesRunningTestsLast(t *testing.T) {
	blockedIn(t)
	var out bytes.Buffer
	report(&out, 15*time.Minute)
	s := out.String()
	if !strings.HasPrefix(s, "\nhang: the tests are about to reach -test.timeout=15m0s; every goroutine:\n\ngoroutine ") {
		t.Fatalf("report does not start with the dump:\n%.300s", s)
	}
	last := s[strings.LastIndex(strings.TrimSuffix(s, "\n"), "\n")+1:]
	// This test's goroutine (which made the report) and its parked
	// subtest, a func literal of blockedIn.
	if want := "hang: still running: hang.TestReportNamesRunningTestsLast, hang.blockedIn.func"; !strings.HasPrefix(last, want) || strings.Count(last, ",") != 1 {
		t.Fatalf("last line %q, want %q and a number", last, want)
	}
	tail := s[strings.LastIndex(s, "test goroutine(s) still running"):]
	if !strings.Contains(tail, "chan receive") {
		t.Errorf("the running tests' stacks do not show where the subtest waits:\n%s", tail)
	}
}

func TestRunningIgnoresOtherGoroutines(t *testing.T) {
	dump := []byte(`goroutine 1 [chan receive]:
testing.(*T).Run(0xc000003a00, {0x5c2d6e, 0x8}, 0x5d1e48)
	/usr/lib/go/src/testing/testing.go:2005 +0x485
testing.runTests.func1(0xc000003a00)
	/usr/lib/go/src/testing/testing.go:2477 +0x37

goroutine 7 [select]:
github.com/hashicorp/raft.(*Raft).runSnapshots(0xc4a23c8)
	/root/go/pkg/mod/github.com/hashicorp/raft@v1.7.3/snapshot.go:74 +0x12a

goroutine 35 [semacquire]:
sync.(*WaitGroup).Wait(0xc0001a6010)
	/usr/lib/go/src/sync/waitgroup.go:118 +0x48
github.com/cairnkv/cairn/cluster.TestClusterLeaderKill.func3()
	/work/main/cluster/node_test.go:58 +0x4b
github.com/cairnkv/cairn/cluster.TestClusterLeaderKill(0xc000003c00)
	/work/main/cluster/node_test.go:40 +0x1d
testing.tRunner(0xc000003c00, 0x5d1e48)
	/usr/lib/go/src/testing/testing.go:1934 +0xea
created by testing.(*T).Run in goroutine 1
	/usr/lib/go/src/testing/testing.go:1997 +0x465
`)
	got := Running(dump)
	if len(got) != 1 || !bytes.HasPrefix(got[0], []byte("goroutine 35 [semacquire]")) {
		t.Fatalf("Running = %q, want goroutine 35 only", got)
	}
	if n := names(got); len(n) != 1 || n[0] != "cluster.TestClusterLeaderKill" {
		t.Fatalf("names = %q", n)
	}
}

func TestWatchWithoutTimeoutArmsNothing(t *testing.T) {
	// go test sets -test.timeout (10m by default); this binary's value is
	// whatever it was given, and Watch must not fire within this test.
	fired := make(chan struct{})
	stop := Watch(&bytes.Buffer{}, func() { close(fired) })
	stop()
	select {
	case <-fired:
		t.Fatal("Watch fired at once")
	default:
	}
}

func TestMain(m *testing.M) { Main(m) }

// TestMainReportsAHang runs this binary with a test that never ends and a
// short -test.timeout: Main must end it before Go's own timeout does, with
// the hung test named on the last line.
func TestMainReportsAHang(t *testing.T) {
	if os.Getenv("HANG_TEST_HELPER") == "1" {
		select {} // the hung test
	}
	if testing.Short() {
		t.Skip("waits 9 s for the helper's report")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainReportsAHang$", "-test.timeout=10s")
	cmd.Env = append(os.Environ(), "HANG_TEST_HELPER=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("helper: %v, want exit status 2; stderr:\n%s", err, tailOf(stderr.String()))
	}
	if want := "hang: still running: hang.TestMainReportsAHang\n"; !strings.HasSuffix(stderr.String(), want) {
		t.Fatalf("helper's stderr does not end with %q:\n%s", want, tailOf(stderr.String()))
	}
	if strings.Contains(stderr.String(), "panic: test timed out") {
		t.Fatal("Go's own timeout fired before the report")
	}
}

func tailOf(s string) string { return s[max(0, len(s)-2000):] }
