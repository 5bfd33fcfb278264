//go:build unix

package modcli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
)

// These tests run cairn lock's logic against fake members (fake_test.go)
// with sh commands; they need sh.

// start runs f in a goroutine; the channel gets its error. A test that
// fails before the run has ended stops it (as SIGTERM would) before the
// fake members close.
func start(t *testing.T, f func(ctx context.Context) error) <-chan error {
	ctx, cancel := context.WithCancel(context.Background())
	done, ended := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(ended)
		done <- f(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-ended
	})
	return done
}

// result waits for the end of a run and returns its exit status and
// message.
func result(t *testing.T, done <-chan error) (int, string) {
	t.Helper()
	select {
	case err := <-done:
		if err == nil {
			return 0, ""
		}
		var ee *ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("error %v (%T) is not an *ExitError", err, err)
		}
		return ee.Code, err.Error()
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not end within 30s")
		return 0, ""
	}
}

// waitFile is a shell loop that waits until file exists: a command that
// runs until the test lets it end.
func waitFile(file string) string {
	return `while [ ! -e '` + file + `' ]; do sleep 0.05; done`
}

func lockOpts(name string, script string) LockOptions {
	return LockOptions{Name: name, TTL: time.Second, Timeout: -1, Grace: 5 * time.Second,
		Command: []string{"sh", "-c", script}}
}

// TestLockRunsCommand: the command runs with the fencing token and the
// name, its exit status is cairn's, and the lock is released after it.
func TestLockRunsCommand(t *testing.T) {
	f, _, c := fakeCluster(t, 1)
	for _, code := range []int{0, 3} {
		e, out, _ := testEnv(t)
		done := start(t, func(ctx context.Context) error {
			return Lock(ctx, c, lockOpts("/jobs//nightly/", `echo "token=$CAIRN_LOCK_INDEX name=$CAIRN_LOCK_NAME"; exit `+strconv.Itoa(code)), e)
		})
		if got, msg := result(t, done); got != code {
			t.Fatalf("exit status %d (%s); want the command's, %d", got, msg, code)
		}
		if !regexp.MustCompile(`^token=[1-9][0-9]* name=jobs/nightly\n$`).MatchString(out.String()) {
			t.Errorf("command output %q", out.String())
		}
		if q := f.queue("lock/jobs/nightly"); len(q) != 0 {
			t.Errorf("queue after the run: %q; want it released", q)
		}
	}
}

// TestLockExclusive: two runs of one lock never overlap, and the second
// holder's token is the greater.
func TestLockExclusive(t *testing.T) {
	_, _, c := fakeCluster(t, 1)
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	script := `echo "start $CAIRN_LOCK_INDEX" >> ` + log + `; sleep 0.2; echo "end $CAIRN_LOCK_INDEX" >> ` + log
	var runs []<-chan error
	for range 3 {
		e, _, _ := testEnv(t)
		runs = append(runs, start(t, func(ctx context.Context) error { return Lock(ctx, c, lockOpts("x", script), e) }))
	}
	for _, done := range runs {
		if code, msg := result(t, done); code != 0 {
			t.Fatalf("exit status %d: %s", code, msg)
		}
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 6 {
		t.Fatalf("log %q: want 3 start/end pairs", lines)
	}
	last := 0
	for i := 0; i < len(lines); i += 2 {
		s, end := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if s[0] != "start" || end[0] != "end" || s[1] != end[1] {
			t.Fatalf("log %q: runs overlap", lines)
		}
		n, _ := strconv.Atoi(s[1])
		if n <= last {
			t.Fatalf("log %q: tokens do not grow", lines)
		}
		last = n
	}
}

// TestLockLost: the entry deleted under a running command (as an operator
// would, or an expiry) ends it with SIGTERM, or SIGKILL if it ignores
// that, and cairn with status 125.
func TestLockLost(t *testing.T) {
	for _, tc := range []struct {
		name, trap string
		grace      time.Duration
	}{
		{"SIGTERM", "", 10 * time.Second},
		{"SIGKILL after the grace", "trap '' TERM; ", 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _, c := fakeCluster(t, 1)
			started := filepath.Join(t.TempDir(), "started")
			e, _, _ := testEnv(t)
			o := lockOpts("lost", tc.trap+"touch "+started+"; "+waitFile("/nonexistent/never"))
			o.Grace = tc.grace
			done := start(t, func(ctx context.Context) error { return Lock(ctx, c, o, e) })
			poll.Until(t, 10*time.Second, "the command to start", func() bool {
				_, err := os.Stat(started)
				return err == nil
			})
			value, _ := f.holder("lock/lost")
			if !f.remove("lock/lost", value) {
				t.Fatal("no entry to delete")
			}
			code, msg := result(t, done)
			if code != ExitFailed || !strings.Contains(msg, "lost the lock lost") || !strings.Contains(msg, "its queue entry is gone") {
				t.Fatalf("exit status %d (%s); want 125 and why", code, msg)
			}
			want := "status " + strconv.Itoa(exitSignalBase+int(syscall.SIGTERM))
			if tc.trap != "" {
				want = "status " + strconv.Itoa(exitSignalBase+int(syscall.SIGKILL))
			}
			if !strings.Contains(msg, want) {
				t.Errorf("message %q; want the command's %s", msg, want)
			}
		})
	}
}

// TestLockRenewalFailover: with the member that granted the lock down,
// renewals go to the other one and the lock is kept; with every member
// down, it is lost once a TTL has passed without a renewal.
func TestLockRenewalFailover(t *testing.T) {
	f, members, c := fakeCluster(t, 2)
	dir := t.TempDir()
	started, finish := filepath.Join(dir, "started"), filepath.Join(dir, "finish")
	e, _, _ := testEnv(t)
	done := start(t, func(ctx context.Context) error {
		return Lock(ctx, c, lockOpts("ha", "touch "+started+"; "+waitFile(finish)+"; exit 4"), e)
	})
	poll.Until(t, 10*time.Second, "the command to start", func() bool {
		_, err := os.Stat(started)
		return err == nil
	})
	first := 0
	if members[1].count("POST lock") > 0 {
		first = 1
	}
	other := members[1-first]
	members[first].down.Store(true)
	before := other.count("PUT lock")
	poll.Until(t, 10*time.Second, "three renewals on the other member", func() bool { return other.count("PUT lock") >= before+3 })
	if _, index := f.holder("lock/ha"); index == 0 {
		t.Fatal("the lock was lost during the failover")
	}
	if err := os.WriteFile(finish, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, msg := result(t, done); code != 4 {
		t.Fatalf("exit status %d (%s); want the command's, 4", code, msg)
	}

	// Every member down: no renewal succeeds, the lock is lost.
	members[first].down.Store(false)
	started2 := filepath.Join(dir, "started2")
	done = start(t, func(ctx context.Context) error {
		return Lock(ctx, c, lockOpts("ha", "touch "+started2+"; "+waitFile("/nonexistent/never")), e)
	})
	poll.Until(t, 10*time.Second, "the command to start", func() bool {
		_, err := os.Stat(started2)
		return err == nil
	})
	members[0].down.Store(true)
	members[1].down.Store(true)
	code, msg := result(t, done)
	if code != ExitFailed || !strings.Contains(msg, "no renewal succeeded within its TTL of 1s") {
		t.Fatalf("exit status %d (%s); want 125, no renewal", code, msg)
	}
}

// TestLockWaiterMemberKilled: the member a waiting POST hangs on dies.
// The entry is renewed by value through the next member at once, and the
// POST repeated there rejoins it: the lock comes with the token of the
// entry first queued.
func TestLockWaiterMemberKilled(t *testing.T) {
	f, members, c := fakeCluster(t, 2)
	f.add("lock/w", "someone", time.Hour)
	e, out, _ := testEnv(t)
	o := lockOpts("w", `echo "token $CAIRN_LOCK_INDEX"`)
	o.TTL = 5 * time.Second // the member's death is noticed well within it
	done := start(t, func(ctx context.Context) error { return Lock(ctx, c, o, e) })
	poll.Until(t, 10*time.Second, "the waiter queued", func() bool { return len(f.queue("lock/w")) == 2 })
	f.mu.Lock()
	waiter := f.queues["lock/w"][1]
	f.mu.Unlock()
	members[0].kill()
	poll.Until(t, 10*time.Second, "a renewal by value and the POST again on the other member", func() bool {
		return members[1].count("PUT lock") >= 1 && members[1].count("POST lock") >= 1
	})
	if q := f.queue("lock/w"); len(q) != 2 {
		t.Fatalf("queue %q; want the holder and the waiter's one entry", q)
	}
	f.remove("lock/w", "someone")
	if code, msg := result(t, done); code != 0 {
		t.Fatalf("status %d (%s)", code, msg)
	}
	if want := fmt.Sprintf("token %d\n", waiter.index); out.String() != want {
		t.Fatalf("output %q; want %q, the first entry's token", out.String(), want)
	}
}

// TestLockTimeout: a lock someone holds is not acquired within --timeout
// (0: one try); nothing runs, and nothing is left queued.
func TestLockTimeout(t *testing.T) {
	f, _, c := fakeCluster(t, 1)
	f.add("lock/busy", "someone", time.Hour)
	for _, timeout := range []time.Duration{0, time.Second} {
		e, out, _ := testEnv(t)
		o := lockOpts("busy", "echo ran")
		o.Timeout = timeout
		code, msg := result(t, start(t, func(ctx context.Context) error { return Lock(ctx, c, o, e) }))
		if code != ExitFailed || !strings.Contains(msg, "not acquired within --timeout") {
			t.Fatalf("timeout %v: exit status %d (%s); want 125, not acquired", timeout, code, msg)
		}
		if out.String() != "" {
			t.Fatalf("the command ran: %q", out.String())
		}
		if q := f.queue("lock/busy"); len(q) != 1 {
			t.Fatalf("queue %q; want only the holder's entry", q)
		}
	}
}

// TestLockSignals: a signal while waiting gives up the wait (status
// 128+N, nothing run, nothing queued); a signal while the command runs is
// forwarded to it, and its status is cairn's.
func TestLockSignals(t *testing.T) {
	f, _, c := fakeCluster(t, 1)
	index := f.add("lock/sig", "someone", time.Hour)
	e, out, sigs := testEnv(t)
	done := start(t, func(ctx context.Context) error { return Lock(ctx, c, lockOpts("sig", "echo ran"), e) })
	poll.Until(t, 10*time.Second, "the wait to be queued", func() bool { return len(f.queue("lock/sig")) == 2 })
	sigs <- syscall.SIGINT
	if code, msg := result(t, done); code != 130 || out.String() != "" {
		t.Fatalf("SIGINT while waiting: status %d (%s), output %q; want 130 and nothing run", code, msg, out.String())
	}
	if q := f.queue("lock/sig"); len(q) != 1 {
		t.Fatalf("queue %q; want the waiter's entry gone", q)
	}
	f.mu.Lock()
	f.removeLocked("lock/sig", f.findLocked("lock/sig", index, ""))
	f.mu.Unlock()

	started := filepath.Join(t.TempDir(), "started")
	done = start(t, func(ctx context.Context) error {
		return Lock(ctx, c, lockOpts("sig", `trap 'echo got TERM; exit 7' TERM; touch `+started+`; `+waitFile("/nonexistent/never")), e)
	})
	poll.Until(t, 10*time.Second, "the command to start", func() bool {
		_, err := os.Stat(started)
		return err == nil
	})
	sigs <- syscall.SIGTERM
	if code, msg := result(t, done); code != 7 || !strings.Contains(out.String(), "got TERM") {
		t.Fatalf("SIGTERM while running: status %d (%s), output %q; want 7 from the command's trap", code, msg, out.String())
	}
	if q := f.queue("lock/sig"); len(q) != 0 {
		t.Fatalf("queue %q; want it released", q)
	}
}

// TestLockCommandNotRun: a command that is not found or not executable
// gives 127 or 126, and the lock is released.
func TestLockCommandNotRun(t *testing.T) {
	f, _, c := fakeCluster(t, 1)
	notExec := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		argv []string
		code int
	}{
		{[]string{"cairn-no-such-command"}, ExitNotFound},
		{[]string{notExec}, ExitCannotRun},
	} {
		e, _, _ := testEnv(t)
		o := lockOpts("run", "")
		o.Command = tc.argv
		if code, msg := result(t, start(t, func(ctx context.Context) error { return Lock(ctx, c, o, e) })); code != tc.code {
			t.Errorf("%s: status %d (%s); want %d", tc.argv[0], code, msg, tc.code)
		}
		if q := f.queue("lock/run"); len(q) != 0 {
			t.Fatalf("queue %q; want it released", q)
		}
	}
}

// TestModuleURI: names are cleaned like keys and escaped per segment.
func TestModuleURI(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"a", "/mod/v2/lock/a?ttl=5"},
		{"/jobs//nightly/", "/mod/v2/lock/jobs/nightly?ttl=5"},
		{"a b/c?d", "/mod/v2/lock/a%20b/c%3Fd?ttl=5"},
	} {
		n, err := cleanName(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if got := (module{kind: "lock", name: n}).uri(map[string][]string{"ttl": {"5"}}); got != tc.want {
			t.Errorf("%q: %s; want %s", tc.name, got, tc.want)
		}
	}
	for _, bad := range []string{"", "/", "//"} {
		if _, err := cleanName(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
