//go:build unix

package modcli

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
)

func electOpts(id string, command ...string) ElectOptions {
	return ElectOptions{Name: "db", ID: id, TTL: time.Second, Timeout: -1, Grace: 5 * time.Second, Command: command}
}

// TestElectHold: without a command, the candidate prints its election,
// leads (renewed: it outlives its TTL) until a signal, then resigns; the
// next candidate leads then.
func TestElectHold(t *testing.T) {
	f, _, c := fakeCluster(t, 1)
	e1, out1, sigs1 := testEnv(t)
	first := start(t, func(ctx context.Context) error { return Elect(ctx, c, electOpts("n1"), e1) })
	poll.Until(t, 10*time.Second, "n1 elected", func() bool { return out1.String() != "" })
	if !regexp.MustCompile(`^elected n1 index [1-9][0-9]*\n$`).MatchString(out1.String()) {
		t.Fatalf("output %q", out1.String())
	}
	e2, out2, sigs2 := testEnv(t)
	second := start(t, func(ctx context.Context) error { return Elect(ctx, c, electOpts("n2"), e2) })
	poll.Until(t, 10*time.Second, "n2 queued", func() bool { return len(f.queue("leader/db")) == 2 })
	// Renewals keep n1 leading past its TTL of 1s: seen as a renewal
	// count, not a time.
	poll.Until(t, 10*time.Second, "n1 renewed 4 times", func() bool {
		holder, _ := f.holder("leader/db")
		return holder == "n1" && renewals(f, "leader/db") >= 4
	})
	sigs1 <- syscall.SIGTERM
	if code, msg := result(t, first); code != 0 {
		t.Fatalf("n1 on SIGTERM: status %d (%s); want 0", code, msg)
	}
	poll.Until(t, 10*time.Second, "n2 elected", func() bool { return strings.HasPrefix(out2.String(), "elected n2 ") })
	sigs2 <- syscall.SIGINT
	if code, msg := result(t, second); code != 0 {
		t.Fatalf("n2 on SIGINT: status %d (%s); want 0", code, msg)
	}
	if q := f.queue("leader/db"); len(q) != 0 {
		t.Fatalf("queue %q; want both resigned", q)
	}
}

// renewals counts the renewals of an existing entry the fake got for q.
func renewals(f *fakeModules, q string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.renewed[q]
}

// TestElectLost: the leader's entry deleted under its command ends the
// command and cairn with 125; the candidate does not lead again with a new
// entry behind the command's back.
func TestElectLost(t *testing.T) {
	f, _, c := fakeCluster(t, 1)
	started := filepath.Join(t.TempDir(), "started")
	e, out, _ := testEnv(t)
	done := start(t, func(ctx context.Context) error {
		return Elect(ctx, c, electOpts("n1", "sh", "-c",
			`echo "$CAIRN_ELECTION $CAIRN_LEADER_ID $CAIRN_LEADER_INDEX"; touch `+started+`; `+waitFile("/nonexistent/never")), e)
	})
	poll.Until(t, 10*time.Second, "the command to start", func() bool {
		_, err := os.Stat(started)
		return err == nil
	})
	if !regexp.MustCompile(`^db n1 [1-9][0-9]*\n$`).MatchString(out.String()) {
		t.Fatalf("command's environment: %q", out.String())
	}
	f.remove("leader/db", "n1")
	code, msg := result(t, done)
	if code != ExitFailed || !strings.Contains(msg, "lost the leadership of db") {
		t.Fatalf("status %d (%s); want 125, leadership lost", code, msg)
	}
	if q := f.queue("leader/db"); len(q) != 0 {
		t.Fatalf("queue %q; want no entry of n1 left", q)
	}
}

// TestElectCommandStatus: the command's exit status is cairn's, and the
// candidate resigns when it exits.
func TestElectCommandStatus(t *testing.T) {
	f, _, c := fakeCluster(t, 1)
	e, _, _ := testEnv(t)
	if code, msg := result(t, start(t, func(ctx context.Context) error {
		return Elect(ctx, c, electOpts("n1", "sh", "-c", "exit 9"), e)
	})); code != 9 {
		t.Fatalf("status %d (%s); want 9", code, msg)
	}
	if q := f.queue("leader/db"); len(q) != 0 {
		t.Fatalf("queue %q; want n1 resigned", q)
	}
}

// TestObserve: the observer prints the leader, then each new one, and
// ends on a signal with status 0.
func TestObserve(t *testing.T) {
	// A change between the observer's read and its wait is seen at the
	// next read: soon, here.
	was := observeRefresh
	t.Cleanup(func() { observeRefresh = was }) // after the observer has ended
	observeRefresh = 500 * time.Millisecond
	f, _, c := fakeCluster(t, 1)
	e, out, sigs := testEnv(t)
	done := start(t, func(ctx context.Context) error { return Observe(ctx, c, "db", e) })
	f.add("leader/db", "n1", time.Hour)
	poll.Until(t, 10*time.Second, "n1 printed", func() bool { return out.String() == "n1\n" })
	f.add("leader/db", "n2", time.Hour)
	f.remove("leader/db", "n1")
	poll.Until(t, 10*time.Second, "n2 printed", func() bool { return out.String() == "n1\nn2\n" })
	f.remove("leader/db", "n2")
	f.add("leader/db", "n3", time.Hour)
	poll.Until(t, 10*time.Second, "n3 printed", func() bool { return out.String() == "n1\nn2\nn3\n" })
	sigs <- syscall.SIGINT
	if code, msg := result(t, done); code != 0 {
		t.Fatalf("status %d (%s); want 0", code, msg)
	}
}
