package e2e

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cairnKV runs `cairn kv ARGS` against s with its client certificate.
func cairnKV(t *testing.T, s *Server, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	all := append([]string{"kv", "--endpoints", s.URL,
		"--cacert", s.Files.CAFile, "--cert", s.Files.CertFile, "--key", s.Files.KeyFile}, args...)
	cmd := exec.CommandContext(ctx, needCairn(t), all...)
	cmd.Env = cleanEnv("CAIRN_")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("cairn kv %v: %v\n%s", args, err, out)
	return "", 0
}

// TestCairnKVMatchesEtcdctl runs the etcdctl command list of TestEtcdctl,
// whose expected outputs are etcdctl's against etcd 3.4, as `cairn kv`
// commands against cairn: same output, same exit code.
func TestCairnKVMatchesEtcdctl(t *testing.T) {
	t.Parallel()
	s := startCairn(t)
	for i, c := range etcdctlCases {
		out, code := cairnKV(t, s, c.args...)
		out = etcdctlIndexRE.ReplaceAllString(out, "$1$3#$2")
		if out != c.out || code != c.exit {
			t.Errorf("#%d cairn kv %s:\n got (exit %d) %q\nwant (exit %d) %q", i, strings.Join(c.args, " "), code, out, c.exit, c.out)
		}
	}
}

// TestCairnStatus: a healthy member is listed with its leader mark and
// exit 0; an unreachable endpoint makes the exit code non-zero.
func TestCairnStatus(t *testing.T) {
	t.Parallel()
	s := startCairn(t)
	run := func(endpoints string) (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, needCairn(t), "status", "--endpoints", endpoints,
			"--cacert", s.Files.CAFile, "--cert", s.Files.CertFile, "--key", s.Files.KeyFile)
		cmd.Env = cleanEnv("CAIRN_")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	out, code := run(s.URL)
	if code != 0 || !strings.Contains(out, "healthy") || !strings.Contains(out, s.URL) || !strings.Contains(out, "leader:") {
		t.Fatalf("status of a healthy member (exit %d):\n%s", code, out)
	}
	dead := "https://127.0.0.1:" + strconv.Itoa(FreePort(t))
	if out, code := run(dead); code == 0 {
		t.Fatalf("status against an unreachable endpoint exited 0:\n%s", out)
	}
}

// TestCairnKVWatch: `cairn kv watch` prints the next value written, and
// with --after-index N the event after N from the history, as etcdctl.
func TestCairnKVWatch(t *testing.T) {
	t.Parallel()
	s := startCairn(t)
	cmd := exec.Command(needCairn(t), "kv", "--endpoints", s.URL, "--cacert", s.Files.CAFile,
		"--cert", s.Files.CertFile, "--key", s.Files.KeyFile, "watch", "/kvw/k")
	cmd.Env = cleanEnv("CAIRN_")
	p := StartProc(t, "cairn kv watch", cmd)
	written := writeUntil(t, s, "/kvw/k", func() bool { done, _ := p.Exited(); return done })
	if _, err := p.Exited(); err != nil {
		t.Fatalf("cairn kv watch: %v\n%s", err, p.Output())
	}
	if out := p.Output(); !written[strings.TrimSuffix(out, "\n")] || strings.Count(out, "\n") != 1 {
		t.Errorf("cairn kv watch printed %q; want one line with a value written (%d writes)", out, len(written))
	}
	ev, err := s.SetKey(t, "/kvw/h", "hist")
	if err != nil {
		t.Fatal(err)
	}
	after := int(ev.EtcdIndex)
	if out, code := cairnKV(t, s, "watch", "--after-index", strconv.Itoa(after-1), "/kvw/h"); code != 0 || out != "hist\n" {
		t.Errorf("cairn kv watch --after-index %d: exit %d, %q; want hist", after-1, code, out)
	}
}
