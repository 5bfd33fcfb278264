package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pythonEtcdChecks are the names testdata/python_etcd.py prints, in order,
// one per group of checks that passed.
var pythonEtcdChecks = []string{
	"version-machines-leader", "mtls-required", "write-read", "ttl",
	"compare-and-swap", "create", "in-order-keys", "recursive-read",
	"watch-index", "delete", "lock-recipe", "done",
}

// TestPythonEtcd drives python-etcd (Debian's python3-etcd 0.4.5,
// jplana/python-etcd) against a cairn process over mutual TLS: writes and
// reads, TTLs (expiry, refresh), compare-and-swap on the previous value and
// index, create (prevExist=false), in-order keys, recursive reads, watches
// from an index and waiting ones, deletes, and its lock recipe. The checks
// are testdata/python_etcd.py's; this test starts the member, runs the
// script, and checks that every group of checks reported success and that
// the script's last write is in the store.
func TestPythonEtcd(t *testing.T) {
	t.Parallel()
	py := needPythonEtcd(t)
	s := startCairn(t)
	port := strings.TrimPrefix(s.URL, "https://127.0.0.1:")
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatalf("server URL %s: want https://127.0.0.1:PORT", s.URL)
	}
	const prefix = "/python-etcd"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "testdata/python_etcd.py",
		"127.0.0.1", port, s.Files.CAFile, s.Files.CertFile, s.Files.KeyFile, prefix)
	// python-etcd logs nothing by default; its tracebacks go to stderr.
	out, err := cmd.CombinedOutput()
	t.Logf("%s testdata/python_etcd.py:\n%s", py, out)
	var passed []string
	for _, line := range strings.Split(string(out), "\n") {
		if name, ok := strings.CutPrefix(line, "ok "); ok {
			passed = append(passed, name)
		}
	}
	if err != nil {
		next := "?"
		if len(passed) < len(pythonEtcdChecks) {
			next = pythonEtcdChecks[len(passed)]
		}
		t.Fatalf("python-etcd against %s: %v; the checks %q failed (see the traceback above); passed before it: %v", s.URL, err, next, passed)
	}
	if !slices.Equal(passed, pythonEtcdChecks) {
		t.Fatalf("python-etcd checks reported %v, want %v", passed, pythonEtcdChecks)
	}
	ev, err := s.GetKey(t, prefix+"/done")
	if err != nil || ev.Node.Value == nil || *ev.Node.Value != "yes" {
		t.Fatalf("GET %s/done after the script: %+v, %v; want the value yes it wrote", prefix, ev, err)
	}
}

// needPythonEtcd returns a python3 interpreter that can import python-etcd:
// the first python3 in PATH, else Debian's /usr/bin/python3 (which the
// python3-etcd package installs for; a pyenv or virtualenv python3 earlier
// in PATH does not see it). Without one the test is skipped, or failed with
// CAIRN_REQUIRE_EXTERNAL=1.
func needPythonEtcd(t testing.TB) string {
	t.Helper()
	py, why := findPythonEtcd()
	if py != "" {
		return py
	}
	msg := "this test needs python-etcd (Debian: apt-get install python3-etcd): " + why
	if os.Getenv(RequireExternalEnv) == "1" {
		t.Fatalf("%s; %s=1 makes that a failure", msg, RequireExternalEnv)
	}
	t.Skip(msg)
	return ""
}

// findPythonEtcd returns the path of a python3 that imports etcd, or "" and
// what was tried.
func findPythonEtcd() (string, string) {
	var candidates, tried []string
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		candidates = append(candidates, "/usr/bin/python3")
	}
	for _, py := range candidates {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, py, "-c", "import etcd").CombinedOutput()
		cancel()
		if err == nil {
			return py, ""
		}
		last := strings.TrimSpace(string(out))
		if i := strings.LastIndex(last, "\n"); i >= 0 {
			last = last[i+1:]
		}
		tried = append(tried, fmt.Sprintf("%s: %s", py, last))
	}
	if len(tried) == 0 {
		return "", "no python3 in PATH or at /usr/bin/python3"
	}
	return "", "no python3 imports etcd (" + strings.Join(tried, "; ") + ")"
}
