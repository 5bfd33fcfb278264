package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
)

// etcdctlCase is one etcdctl v2 command and its expected output, in which
// index numbers are written "#".
type etcdctlCase struct {
	args []string
	out  string
	exit int
}

// etcdctlCases run in order against one server, under /ctl. The expected
// outputs are etcd 3.4's.
var etcdctlCases = []etcdctlCase{
	{args: []string{"set", "/ctl/a", "1"}, out: "1\n"},
	{args: []string{"get", "/ctl/a"}, out: "1\n"},
	{args: []string{"mk", "/ctl/b", "2"}, out: "2\n"},
	{args: []string{"mk", "/ctl/b", "2"}, out: "Error:  105: Key already exists (/ctl/b) [#]\n", exit: 4},
	{args: []string{"mkdir", "/ctl/d"}, out: ""},
	{args: []string{"mkdir", "/ctl/d"}, out: "Error:  105: Key already exists (/ctl/d) [#]\n", exit: 4},
	{args: []string{"set", "/ctl/d/x", "3"}, out: "3\n"},
	{args: []string{"ls", "--recursive", "--sort", "/ctl"}, out: "/ctl/a\n/ctl/b\n/ctl/d\n/ctl/d/x\n"},
	{args: []string{"ls", "--sort", "-p", "/ctl"}, out: "/ctl/a\n/ctl/b\n/ctl/d/\n"},
	{args: []string{"ls", "/ctl/none"}, out: "Error:  100: Key not found (/ctl/none) [#]\n", exit: 4},
	{args: []string{"update", "/ctl/a", "10"}, out: "10\n"},
	{args: []string{"update", "/ctl/none", "1"}, out: "Error:  100: Key not found (/ctl/none) [#]\n", exit: 4},
	{args: []string{"set", "--swap-with-value", "10", "/ctl/a", "11"}, out: "11\n"},
	{args: []string{"set", "--swap-with-value", "10", "/ctl/a", "12"}, out: "Error:  101: Compare failed ([10 != 11]) [#]\n", exit: 4},
	{args: []string{"rm", "/ctl/a"}, out: "PrevNode.Value: 11\n"},
	{args: []string{"rmdir", "/ctl/d"}, out: "Error:  108: Directory not empty (/ctl/d) [#]\n", exit: 4},
	{args: []string{"rm", "/ctl/d/x"}, out: "PrevNode.Value: 3\n"},
	{args: []string{"rmdir", "/ctl/d"}, out: ""},
	{args: []string{"get", "/ctl/a"}, out: "Error:  100: Key not found (/ctl/a) [#]\n", exit: 4},
	{args: []string{"-o", "json", "get", "/ctl/b"}, out: `{"action":"get","node":{"key":"/ctl/b","value":"2","nodes":null,"createdIndex":#,"modifiedIndex":#},"prevNode":null}` + "\n"},
	{args: []string{"mk", "--in-order", "/ctl/q", "v"}, out: "v\n"},
	{args: []string{"ls", "/ctl/q"}, out: "/ctl/q/#\n"},
	{args: []string{"setdir", "/ctl/dd"}, out: ""},
	{args: []string{"updatedir", "--ttl", "100", "/ctl/dd"}, out: ""},
	{args: []string{"get", "/ctl/dd"}, out: "/ctl/dd: is a directory\n", exit: 1},
	{args: []string{"mk", "--ttl", "100", "/ctl/t", "v"}, out: "v\n"},
	{args: []string{"rm", "--recursive", "/ctl"}, out: ""},
	{args: []string{"get", "/ctl/b"}, out: "Error:  100: Key not found (/ctl) [#]\n", exit: 4},
}

// etcdctlIndexRE matches the index numbers of etcdctl's output: the
// trailing "[N]" of errors, JSON indexes and in-order key names.
var etcdctlIndexRE = regexp.MustCompile(`(\[)\d+(\]\n)$|(Index":|/ctl/q/)\d+`)

// etcdctl runs etcdctl in v2 mode against s with a 15-second limit and
// returns its combined output and exit code.
func etcdctl(t *testing.T, s *Server, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, NeedBinary(t, "etcdctl"), etcdctlArgs(s, args...)...)
	cmd.Env = etcdctlEnv()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("etcdctl %v: %v\n%s", args, err, out)
	return "", 0
}

func etcdctlArgs(s *Server, args ...string) []string {
	return append([]string{"--endpoints", s.URL,
		"--ca-file", s.Files.CAFile, "--cert-file", s.Files.CertFile, "--key-file", s.Files.KeyFile}, args...)
}

func etcdctlEnv() []string { return append(cleanEnv("ETCDCTL_"), "ETCDCTL_API=2") }

// TestEtcdctl drives etcdctl (v2 mode) against etcd, which validates the
// expectations, and against cairn.
func TestEtcdctl(t *testing.T) {
	NeedBinary(t, "etcdctl")
	t.Parallel()
	for _, kind := range []string{KindEtcd, KindCairn} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			var s *Server
			if kind == KindEtcd {
				s = StartEtcd(t, testPKI, "ctl")
			} else {
				s = startCairn(t)
			}
			t.Run("commands", func(t *testing.T) {
				for i, c := range etcdctlCases {
					out, code := etcdctl(t, s, c.args...)
					out = etcdctlIndexRE.ReplaceAllString(out, "$1$3#$2")
					if out != c.out || code != c.exit {
						t.Errorf("#%d etcdctl %s:\n got (exit %d) %q\nwant (exit %d) %q", i, strings.Join(c.args, " "), code, out, c.exit, c.out)
					}
				}
			})
			t.Run("members", func(t *testing.T) {
				out, code := etcdctl(t, s, "member", "list")
				if code != 0 || !strings.Contains(out, "clientURLs="+s.URL) {
					t.Errorf("member list (exit %d): want a member with clientURLs=%s:\n%s", code, s.URL, out)
				}
				out, code = etcdctl(t, s, "cluster-health")
				if code != 0 || !strings.Contains(out, "got healthy result from "+s.URL) || !strings.HasSuffix(out, "cluster is healthy\n") {
					t.Errorf("cluster-health (exit %d):\n%s", code, out)
				}
			})
			t.Run("watch", func(t *testing.T) { testEtcdctlWatch(t, s) })
			t.Run("exec-watch", func(t *testing.T) { testEtcdctlExecWatch(t, s) })
		})
	}
}

// testEtcdctlWatch starts `etcdctl watch` and writes the key until the
// watch returns (the first writes may come before the watch is
// registered). The watch prints one of the written values.
func testEtcdctlWatch(t *testing.T, s *Server) {
	cmd := exec.Command(NeedBinary(t, "etcdctl"), etcdctlArgs(s, "watch", "/ctlw/k")...)
	cmd.Env = etcdctlEnv()
	p := StartProc(t, "etcdctl watch", cmd)
	written := writeUntil(t, s, "/ctlw/k", func() bool { done, _ := p.Exited(); return done })
	if _, err := p.Exited(); err != nil {
		t.Fatalf("etcdctl watch: %v\n%s", err, p.Output())
	}
	if out := p.Output(); !written[strings.TrimSuffix(out, "\n")] || strings.Count(out, "\n") != 1 {
		t.Errorf("etcdctl watch printed %q; want one line with a value written (%d writes)", out, len(written))
	}

	// From history: --after-index N watches from N+1.
	ev, err := s.SetKey(t, "/ctlw/h", "hist")
	if err != nil {
		t.Fatal(err)
	}
	after := int(ev.EtcdIndex)
	out, code := etcdctl(t, s, "watch", "--after-index", fmt.Sprint(after-1), "/ctlw/h")
	if code != 0 || out != "hist\n" {
		t.Errorf("etcdctl watch --after-index %d: exit %d, %q; want hist", after-1, code, out)
	}
}

// testEtcdctlExecWatch runs `etcdctl exec-watch` with a hook that appends
// the watch environment to a file, writes the key until the hook ran once,
// and kills etcdctl.
func testEtcdctlExecWatch(t *testing.T, s *Server) {
	dir := t.TempDir()
	outFile := filepath.Join(dir, "events")
	hook := filepath.Join(dir, "hook.sh")
	script := "#!/bin/sh\necho \"$ETCD_WATCH_ACTION $ETCD_WATCH_KEY $ETCD_WATCH_VALUE\" >> " + outFile + "\n"
	if err := os.WriteFile(hook, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	// etcdctl's flag parser drops "--", after which exec-watch takes the
	// last argument as the key: pass the command first, the key last.
	cmd := exec.Command(NeedBinary(t, "etcdctl"), etcdctlArgs(s, "exec-watch", hook, "/ctlx/k")...)
	cmd.Env = etcdctlEnv()
	p := StartProc(t, "etcdctl exec-watch", cmd)
	written := writeUntil(t, s, "/ctlx/k", func() bool {
		b, _ := os.ReadFile(outFile)
		done, _ := p.Exited()
		return len(b) > 0 || done
	})
	if done, err := p.Exited(); done {
		t.Fatalf("etcdctl exec-watch exited (%v):\n%s", err, p.Output())
	}
	p.Kill()
	b, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatalf("hook never ran: %v; etcdctl output:\n%s", err, p.Output())
	}
	first, _, _ := strings.Cut(string(b), "\n")
	action, rest, _ := strings.Cut(first, " ")
	key, value, _ := strings.Cut(rest, " ")
	if action != "set" || key != "/ctlx/k" || !written[value] {
		t.Errorf("hook saw %q; want \"set /ctlx/k <a written value>\"", first)
	}
}

// writeUntil PUTs key with values v1, v2, ... until done holds (at most
// 15 s), and returns the set of values written. Nothing says when an
// etcdctl watch is in place: each poll writes a new value before the
// watch's reaction is checked again.
func writeUntil(t *testing.T, s *Server, key string, done func() bool) map[string]bool {
	t.Helper()
	written := map[string]bool{}
	poll.Until(t, 15*time.Second, "the watcher to fire on writes to "+key, func() bool {
		if done() {
			return true
		}
		v := fmt.Sprintf("v%d", len(written)+1)
		if _, err := s.SetKey(t, key, v); err != nil {
			t.Fatalf("PUT %s: %v", key, err)
		}
		written[v] = true
		return false
	})
	return written
}
