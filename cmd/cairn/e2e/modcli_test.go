//go:build linux

package e2e

// `cairn lock` and `cairn elect` (cmd/cairn/modcli) against 3 real
// members: two holders of one lock never overlap and their tokens grow,
// the command's exit status is cairn's, a lock lost under a running
// command ends it, and an observer sees the leader change when the leader
// is stopped. Linux only, for clustertest.StartProcs.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest"
	"github.com/cairnkv/cairn/store"
)

// modCLI starts `cairn args...` against the members of p, each process
// with the members in another order (first: member first).
func modCLI(t *testing.T, p *clustertest.Procs, first int, name string, args ...string) *Proc {
	t.Helper()
	var eps []string
	for k := range p.Len() {
		eps = append(eps, p.Proc((first+k)%p.Len()).ClientURL)
	}
	conn := []string{"--endpoints", strings.Join(eps, ","), "--cacert", p.CAFile, "--cert", p.ClientCertFile, "--key", p.ClientKeyFile}
	// The connection flags go before "--": the command's own follow it.
	at := len(args)
	for i, a := range args {
		if a == "--" {
			at = i
			break
		}
	}
	argv := append(append(append([]string(nil), args[:at]...), conn...), args[at:]...)
	cmd := exec.Command(needCairn(t), argv...)
	cmd.Env = append(cleanEnv("CAIRN_"), "PATH="+os.Getenv("PATH"))
	return StartProc(t, name, cmd)
}

// exitStatus waits up to timeout for pr to exit and returns its status.
func exitStatus(t *testing.T, pr *Proc, timeout time.Duration) int {
	t.Helper()
	select {
	case <-pr.Done():
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %v", pr.Name, timeout)
	}
	_, err := pr.Exited()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("%s: %v", pr.Name, err)
	return -1
}

// queueOf is the queue of a lock or an election as the keys API shows it
// (/_mod/<kind>/<name>, read by path), in index order.
func queueOf(p *clustertest.Procs, i int, dir string) ([]*store.NodeExtern, error) {
	ev, err := clGet(p, i, dir, "")
	var se *store.Error
	if errors.As(err, &se) && se.ErrorCode == store.EcodeKeyNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	nodes := ev.Node.Nodes
	for a := 1; a < len(nodes); a++ { // few entries: insertion sort by index
		for b := a; b > 0 && nodes[b].CreatedIndex < nodes[b-1].CreatedIndex; b-- {
			nodes[b], nodes[b-1] = nodes[b-1], nodes[b]
		}
	}
	return nodes, nil
}

// leaders is the leaders an observer printed (its output without the
// log lines), separated by spaces.
func leaders(out string) string {
	var names []string
	for _, l := range strings.Split(out, "\n") {
		if l != "" && !strings.Contains(l, "level=") {
			names = append(names, l)
		}
	}
	return strings.Join(names, " ")
}

// TestModCLILockExclusive: a second `cairn lock` of a held lock waits (its
// entry queued through another member) until the first command exits, then
// runs with a greater token; the markers the commands append never
// interleave, and each cairn exits with its command's status.
func TestModCLILockExclusive(t *testing.T) {
	t.Parallel()
	p := startProcs(t, 3, clustertest.ProcOptions{})
	dir := t.TempDir()
	log, release := filepath.Join(dir, "log"), filepath.Join(dir, "release")
	script := func(wait string, code int) string {
		return fmt.Sprintf(`echo "start $CAIRN_LOCK_NAME $CAIRN_LOCK_INDEX" >> %s; %s echo "end $CAIRN_LOCK_INDEX" >> %s; exit %d`, log, wait, log, code)
	}
	first := modCLI(t, p, 0, "cairn lock A", "lock", "e2e/job", "--ttl", "5s", "--", "sh", "-c",
		script(`while [ ! -e `+release+` ]; do sleep 0.05; done;`, 0))
	Poll(t, 30*time.Second, "A's command to start", func() error {
		if done, err := first.Exited(); done {
			t.Fatalf("cairn lock A exited: %v", err)
		}
		b, _ := os.ReadFile(log)
		if !strings.HasPrefix(string(b), "start e2e/job ") {
			return fmt.Errorf("log %q", b)
		}
		return nil
	})
	second := modCLI(t, p, 1, "cairn lock B", "lock", "e2e/job", "--ttl", "5s", "--", "sh", "-c", script("", 3))
	Poll(t, 30*time.Second, "B queued behind A", func() error {
		q, err := queueOf(p, 2, "/_mod/lock/e2e/job")
		if err != nil || len(q) != 2 {
			return fmt.Errorf("queue %v, %v; want 2 entries", q, err)
		}
		return nil
	})
	if b, _ := os.ReadFile(log); strings.Contains(string(b), "end") || strings.Count(string(b), "start") != 1 {
		t.Fatalf("B ran while A held the lock: %q", b)
	}
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code := exitStatus(t, first, 30*time.Second); code != 0 {
		t.Fatalf("cairn lock A: status %d; want its command's 0", code)
	}
	if code := exitStatus(t, second, 30*time.Second); code != 3 {
		t.Fatalf("cairn lock B: status %d; want its command's 3", code)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^start e2e/job (\d+)\nend (\d+)\nstart e2e/job (\d+)\nend (\d+)\n$`).FindStringSubmatch(string(b))
	if m == nil || m[1] != m[2] || m[3] != m[4] {
		t.Fatalf("log %q: want A's start and end, then B's", b)
	}
	a, _ := strconv.ParseUint(m[1], 10, 64)
	bi, _ := strconv.ParseUint(m[3], 10, 64)
	if bi <= a {
		t.Fatalf("tokens %d then %d: want them to grow", a, bi)
	}
	if q, err := queueOf(p, 0, "/_mod/lock/e2e/job"); err != nil || len(q) != 0 {
		t.Fatalf("queue after both: %v, %v; want both released", q, err)
	}
}

// lockForever starts cairn lock NAME flags... (through member first)
// with a command that runs until killed, and returns it with the
// command's pid once the command runs.
func lockForever(t *testing.T, p *clustertest.Procs, first int, name string, flags ...string) (*Proc, int) {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "pid")
	args := append(append([]string{"lock", name}, flags...), "--", "sh", "-c",
		`echo $$ > `+pidFile+`.tmp && mv `+pidFile+`.tmp `+pidFile+`; while true; do sleep 0.05; done`)
	holder := modCLI(t, p, first, "cairn lock", args...)
	var pid int
	Poll(t, 30*time.Second, "the command to start", func() error {
		if done, err := holder.Exited(); done {
			t.Fatalf("cairn lock exited: %v", err)
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return err
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err
	})
	return holder, pid
}

// TestModCLILockLost: the holder's queue entry deleted under its running
// command (as an operator would, or as an expiry does) ends the command
// at the next renewal and cairn lock with status 125 and the reason; the
// command's process group is gone.
func TestModCLILockLost(t *testing.T) {
	t.Parallel()
	p := startProcs(t, 3, clustertest.ProcOptions{})
	holder, pid := lockForever(t, p, 1, "e2e/lost", "--ttl", "3s", "--grace", "5s")
	q, err := queueOf(p, 0, "/_mod/lock/e2e/lost")
	if err != nil || len(q) != 1 {
		t.Fatalf("queue %v, %v; want the holder's entry", q, err)
	}
	if resp, body, err := p.Do(2, "DELETE", "/v2/keys"+q[0].Key, "", ""); err != nil || resp.StatusCode != 200 {
		t.Fatalf("delete %s: %v %v %s", q[0].Key, err, clStatus(resp, err), body)
	}
	if code := exitStatus(t, holder, 30*time.Second); code != 125 {
		t.Fatalf("cairn lock: status %d; want 125", code)
	}
	out := holder.Output()
	if !strings.Contains(out, "lost the lock e2e/lost (index "+strconv.FormatUint(q[0].CreatedIndex, 10)+")") || !strings.Contains(out, "was stopped") {
		t.Fatalf("output %q: want why the lock was lost and that the command was stopped", out)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("the command (pid %d) still runs: kill -0: %v", pid, err)
	}
}

// TestModCLILockKilled: cairn lock SIGKILLed (it can neither forward the
// signal nor stop its command) takes its command with it on Linux: the
// command, in a process group of its own, would otherwise run on
// unprotected once the lock lapses.
func TestModCLILockKilled(t *testing.T) {
	t.Parallel()
	p := startProcs(t, 1, clustertest.ProcOptions{})
	holder, pid := lockForever(t, p, 0, "e2e/killed")
	if err := holder.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	Poll(t, 10*time.Second, "the command to end with cairn lock", func() error {
		// An orphan is reaped by whatever the container runs as pid 1,
		// perhaps never: a zombie has ended too.
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return nil
		}
		return fmt.Errorf("pid %d still runs: %s", pid, b)
	})
}

// TestModCLIElect: candidates alpha and beta through different members and
// an observer through the third; alpha leads, and once it is stopped
// (SIGTERM: it resigns) beta leads with a greater index, which the
// observer prints.
func TestModCLIElect(t *testing.T) {
	t.Parallel()
	p := startProcs(t, 3, clustertest.ProcOptions{})
	observer := modCLI(t, p, 2, "cairn elect --observe", "elect", "e2e/db", "--observe")
	alpha := modCLI(t, p, 0, "cairn elect alpha", "elect", "e2e/db", "--name", "alpha", "--ttl", "5s")
	elected := regexp.MustCompile(`(?m)^elected (\w+) index (\d+)$`)
	var alphaIndex uint64
	Poll(t, 30*time.Second, "alpha elected", func() error {
		m := elected.FindStringSubmatch(alpha.Output())
		if m == nil {
			return fmt.Errorf("output %q", alpha.Output())
		}
		alphaIndex, _ = strconv.ParseUint(m[2], 10, 64)
		return nil
	})
	Poll(t, 30*time.Second, "the observer to print alpha", func() error {
		if out := leaders(observer.Output()); out != "alpha" {
			return fmt.Errorf("observer output %q", out)
		}
		return nil
	})
	beta := modCLI(t, p, 1, "cairn elect beta", "elect", "e2e/db", "--name", "beta", "--ttl", "5s")
	Poll(t, 30*time.Second, "beta queued", func() error {
		q, err := queueOf(p, 2, "/_mod/leader/e2e/db")
		if err != nil || len(q) != 2 {
			return fmt.Errorf("queue %v, %v; want 2 candidates", q, err)
		}
		return nil
	})
	if strings.Contains(beta.Output(), "elected") {
		t.Fatalf("beta elected while alpha leads: %q", beta.Output())
	}
	if err := alpha.Stop(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("cairn elect alpha on SIGTERM: %v; want status 0", err)
	}
	Poll(t, 30*time.Second, "beta elected", func() error {
		m := elected.FindStringSubmatch(beta.Output())
		if m == nil || m[1] != "beta" {
			return fmt.Errorf("output %q", beta.Output())
		}
		if n, _ := strconv.ParseUint(m[2], 10, 64); n <= alphaIndex {
			t.Fatalf("beta's index %d is not above alpha's %d", n, alphaIndex)
		}
		return nil
	})
	Poll(t, 30*time.Second, "the observer to print beta", func() error {
		if out := leaders(observer.Output()); out != "alpha beta" {
			return fmt.Errorf("observer output %q", out)
		}
		return nil
	})
	for _, pr := range []*Proc{beta, observer} {
		if err := pr.Stop(syscall.SIGINT, 30*time.Second); err != nil {
			t.Errorf("%s on SIGINT: %v; want status 0", pr.Name, err)
		}
	}
	if q, err := queueOf(p, 0, "/_mod/leader/e2e/db"); err != nil || len(q) != 0 {
		t.Fatalf("queue after both: %v, %v; want both resigned", q, err)
	}
}

// TestModCLILockMemberKill: the holder and a waiter both talk to the raft
// leader first, and it is SIGKILLed. The holder's renewals move to the
// survivors and the lock is never lost (its command ends normally); the
// waiter's POST, repeated on a survivor with the same value, rejoins the
// entry it had queued (its token is that entry's index) instead of
// queueing twice.
func TestModCLILockMemberKill(t *testing.T) {
	t.Parallel()
	p := startProcs(t, 3, clustertest.ProcOptions{})
	victim := p.Leader(t)
	dir := t.TempDir()
	log, release := filepath.Join(dir, "log"), filepath.Join(dir, "release")
	script := func(wait string) string {
		return fmt.Sprintf(`echo "start $CAIRN_LOCK_INDEX" >> %s; %s echo "end $CAIRN_LOCK_INDEX" >> %s`, log, wait, log)
	}
	const lockDir = "/_mod/lock/e2e/ha"
	holder := modCLI(t, p, victim, "cairn lock holder", "lock", "e2e/ha", "--ttl", "8s", "--", "sh", "-c",
		script(`while [ ! -e `+release+` ]; do sleep 0.05; done;`))
	Poll(t, 30*time.Second, "the holder's command to start", func() error {
		if done, err := holder.Exited(); done {
			t.Fatalf("the holder exited: %v", err)
		}
		return fileExists(log)
	})
	waiter := modCLI(t, p, victim, "cairn lock waiter", "lock", "e2e/ha", "--ttl", "8s", "--", "sh", "-c", script(""))
	survivor := (victim + 1) % 3
	var queued []*store.NodeExtern
	Poll(t, 30*time.Second, "the waiter queued", func() error {
		q, err := queueOf(p, survivor, lockDir)
		if err != nil || len(q) != 2 {
			return fmt.Errorf("queue %v, %v; want 2 entries", q, err)
		}
		queued = q
		return nil
	})
	p.Kill(victim)
	// Several renewals' worth (every 8s/3) of the holder's on the
	// survivors, and the waiter's repeated POST, seen as the entries
	// being refreshed past their first expiration.
	deadline := queued[0].Expiration
	Poll(t, 60*time.Second, "both entries renewed through the survivors", func() error {
		q, err := queueOf(p, survivor, lockDir)
		if err != nil {
			return err // no leader yet: the survivors refuse until one is elected
		}
		if len(q) != 2 || q[0].Key != queued[0].Key || q[1].Key != queued[1].Key {
			t.Fatalf("queue %v; want the same 2 entries as before the kill, %s and %s", q, queued[0].Key, queued[1].Key)
		}
		for _, n := range q {
			if n.Expiration == nil || deadline == nil || !n.Expiration.After(*deadline) {
				return fmt.Errorf("%s expires at %v; want after %v", n.Key, n.Expiration, deadline)
			}
		}
		return nil
	})
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, pr := range []*Proc{holder, waiter} {
		if code := exitStatus(t, pr, 60*time.Second); code != 0 {
			t.Fatalf("%s: status %d; want 0", pr.Name, code)
		}
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("start %d\nend %d\nstart %d\nend %d\n", queued[0].CreatedIndex, queued[0].CreatedIndex, queued[1].CreatedIndex, queued[1].CreatedIndex)
	if string(b) != want {
		t.Fatalf("log %q; want %q: the holder's token, then the waiter's from its first entry", b, want)
	}
	t.Logf("holder:\n%s\nwaiter:\n%s", holder.Output(), waiter.Output())
}

func fileExists(path string) error {
	_, err := os.Stat(path)
	return err
}
