package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest"
	"github.com/cairnkv/cairn/cluster/clustertest/poll"
)

// RequireExternalEnv names the environment variable that turns a missing
// external binary from a skip into a failure.
const RequireExternalEnv = "CAIRN_REQUIRE_EXTERNAL"

// NeedBinary returns the path of the external program name. When it is not
// installed the test is skipped, or failed if RequireExternalEnv is "1".
func NeedBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("this test needs %q in PATH (Debian: apt-get install etcd-server etcd-client): %v", name, err)
	if os.Getenv(RequireExternalEnv) == "1" {
		t.Fatalf("%s; %s=1 makes that a failure", msg, RequireExternalEnv)
	}
	t.Skip(msg)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that no FreePort or clustertest.FreePortOn call of this process returned
// before (clustertest.FreePortOn).
func FreePort(t testing.TB) int {
	t.Helper()
	port, _ := strconv.Atoi(clustertest.FreePortOn(t, "127.0.0.1"))
	return port
}

// errNotYet is what a Poll condition returns while it waits.
var errNotYet = errors.New("not yet")

// Poll is poll.Check for the test goroutine: it fails the test with
// cond's last error if cond has not returned nil within timeout. (Other
// goroutines call poll.Check and report its error.)
func Poll(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := poll.Check(timeout, cond); err != nil {
		t.Fatalf("waiting %v for %s: %v", timeout, what, err)
	}
}

// Proc is a child process owned by a test. Its stdout and stderr go to one
// buffer, shown (its tail) when the test fails.
type Proc struct {
	Name string
	Cmd  *exec.Cmd

	out  *lockedBuffer
	done chan struct{}
	err  error // cmd.Wait's result; read only after done is closed
}

// StartProc starts cmd in its own process group and registers a cleanup
// that kills the group and waits for the process, then logs the output's
// tail if the test failed.
func StartProc(t testing.TB, name string, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{Name: name, Cmd: cmd, out: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	// A process left behind in another process group (cairn lock's
	// command has one of its own) may hold the output pipe: Wait stops
	// copying 10 s after the process ended instead of waiting for it.
	cmd.WaitDelay = 10 * time.Second
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s (%s): %v", name, cmd.Path, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("--- %s (pid %d, %v) output, last 12 KiB ---\n%s", name, cmd.Process.Pid, cmd.Args, p.Tail(12<<10))
		}
	})
	return p
}

// Output is everything the process wrote so far.
func (p *Proc) Output() string { return p.out.String() }

// Tail is the last n bytes of Output.
func (p *Proc) Tail(n int) string {
	s := p.out.String()
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}

// Exited reports whether the process has ended, and its wait error.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Done is closed when the process has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Kill sends SIGKILL to the process group and waits for the process.
// Killing an ended process is a no-op.
func (p *Proc) Kill() {
	if ok, _ := p.Exited(); !ok {
		killGroup(p.Cmd, syscall.SIGKILL)
	}
	<-p.done
}

// Stop sends sig to the process only (not its group) and waits up to
// timeout for it to exit. It returns the wait error, or an error if the
// process had to be killed.
func (p *Proc) Stop(sig syscall.Signal, timeout time.Duration) error {
	if ok, err := p.Exited(); ok {
		return fmt.Errorf("%s had already exited: %v", p.Name, err)
	}
	if err := p.Cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s: %w", p.Name, err)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("%s did not exit within %v of %v; killed", p.Name, timeout, sig)
	}
}

// lockedBuffer is a bytes.Buffer safe for the writer goroutines of exec
// and readers in the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
