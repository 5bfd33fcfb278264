package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// kvCases are etcdctl v2 commands that `cairn kv` must answer byte for
// byte as etcdctl does. In the arguments, {p} is the key prefix of the run
// and {i+N} the store index N writes after its start. Values are not
// numbers, so that every number in an output is an index. Comments "(i+N)"
// give the index a successful write takes.
var kvCases = []string{
	"set {p}/a one",   // i+1
	"get {p}/a",       //
	"mk {p}/b two",    // i+2
	"mk {p}/b two",    // 105
	"mkdir {p}/d",     // i+3
	"mkdir {p}/d",     // 105
	"set {p}/d/x три", // i+4
	"ls --recursive --sort {p}",
	"ls --sort -p {p}",
	"ls -r -p {p}/d",
	"ls {p}/a",
	"ls {p}/none/deeper",
	"get {p}/d",
	"update {p}/a ten",                            // i+5
	"update {p}/none one",                         // 100
	"set --swap-with-value ten {p}/a eleven",      // i+6
	"set --swap-with-value ten {p}/a twelve",      // 101
	"set --swap-with-index {i+6} {p}/a twelve",    // i+7
	"set --swap-with-index {i+6} {p}/a thirteen",  // 101 [i+6 != i+7]
	"rm --with-value nope {p}/a",                  // 101
	"rm --with-index {i+7} {p}/a",                 // i+8: compareAndDelete
	"rmdir {p}/d",                                 // 108
	"rm {p}/d",                                    // 102
	"rm --dir {p}/d",                              // 108
	"rm {p}/d/x",                                  // i+9
	"rmdir {p}/d",                                 // i+10
	"mk --in-order {p}/q first",                   // i+11
	"mk --in-order --ttl 100 {p}/q second",        // i+12
	"ls --sort {p}/q",                             //
	"setdir {p}/dd",                               // i+13
	"setdir --ttl 100 {p}/dd",                     // 102: Set refuses a directory
	"updatedir --ttl 100 {p}/dd",                  // i+14
	"updatedir {p}/dd",                            // i+15
	"updatedir {p}/none",                          // 100
	"mk --ttl 100 {p}/t v",                        // i+16
	"get {p}/t",                                   //
	"update --ttl 50 {p}/t w",                     // i+17
	"set {p}/t/child v",                           // 104
	"set {p}/e",                                   // value required (stdin is empty)
	"get",                                         // key required
	"exec-watch {p}/k",                            // key and command required
	"watch --after-index {i+1} {p}/a",             // i+5 from history
	"watch -r --after-index {i+2} {p}/d",          // skips the mkdir at i+3
	"watch --after-index {i+8} {p}/d/x",           // the delete at i+9
	"watch --recursive --after-index {i+15} {p}/", // i+16
	"rm -r {p}/q",                                 // i+18
	"rm --recursive {p}",                          // i+19
	"get {p}/b",                                   // 100, cause {p}
}

var (
	kvPlaceholderRE = regexp.MustCompile(`\{i\+(\d+)\}`)
	kvIndexRE       = regexp.MustCompile(`("createdIndex":|"modifiedIndex":|Created-Index: |Modified-Index: |\nIndex: |^Index: |@)(\d+)`)
	kvErrIndexRE    = regexp.MustCompile(`\[(\d+)\]\n`)
	kvCompareRE     = regexp.MustCompile(`\[(\d+) != (\d+)\]`)
	kvInOrderRE     = regexp.MustCompile(`/(\d{20})\b`)
	kvTTLRE         = regexp.MustCompile(`("ttl":|TTL: )[1-9]\d*`)
	kvExpirationRE  = regexp.MustCompile(`"expiration":"[^"]*"`)
)

// kvNormalize makes an output of a run with prefix p that started at
// store index base comparable with another run's: p becomes {p}, indexes
// become relative (i+N), TTLs T and expirations E.
func kvNormalize(out, p string, base uint64) string {
	out = strings.ReplaceAll(out, p, "{p}")
	out = kvIndexRE.ReplaceAllStringFunc(out, func(m string) string {
		sub := kvIndexRE.FindStringSubmatch(m)
		return sub[1] + relString(sub[2], base)
	})
	out = kvErrIndexRE.ReplaceAllStringFunc(out, func(m string) string {
		return "[" + relString(kvErrIndexRE.FindStringSubmatch(m)[1], base) + "]\n"
	})
	out = kvCompareRE.ReplaceAllStringFunc(out, func(m string) string {
		sub := kvCompareRE.FindStringSubmatch(m)
		return "[" + relString(sub[1], base) + " != " + relString(sub[2], base) + "]"
	})
	out = kvInOrderRE.ReplaceAllStringFunc(out, func(m string) string {
		return "/k" + strings.TrimPrefix(relString(m[1:], base), "i")
	})
	out = kvTTLRE.ReplaceAllString(out, "${1}T")
	return kvExpirationRE.ReplaceAllString(out, `"expiration":"E"`)
}

// kvResult is what one command printed.
type kvResult struct {
	stdout, stderr string
	code           int
}

func (r kvResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, indentLines(r.stdout), indentLines(r.stderr))
}

func indentLines(s string) string {
	if s == "" {
		return "    (none)\n"
	}
	return "    " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n    ") + "\n"
}

// kvClient runs one client (etcdctl or cairn kv) against a server.
type kvClient struct {
	name string
	cmd  func(ctx context.Context, args []string) *exec.Cmd
}

func etcdctlClient(t *testing.T, s *Server) kvClient {
	bin := NeedBinary(t, "etcdctl")
	return kvClient{name: "etcdctl", cmd: func(ctx context.Context, args []string) *exec.Cmd {
		c := exec.CommandContext(ctx, bin, etcdctlArgs(s, args...)...)
		c.Env = etcdctlEnv()
		return c
	}}
}

func cairnKVClient(t *testing.T, s *Server) kvClient {
	bin := needCairn(t)
	return kvClient{name: "cairn kv", cmd: func(ctx context.Context, args []string) *exec.Cmd {
		c := exec.CommandContext(ctx, bin, append([]string{"kv", "--endpoints", s.URL,
			"--cacert", s.Files.CAFile, "--cert", s.Files.CertFile, "--key", s.Files.KeyFile}, args...)...)
		c.Env = cleanEnv("CAIRN_")
		return c
	}}
}

// run runs one command with an empty stdin and a 15-second limit.
func (c kvClient) run(t *testing.T, args []string) kvResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := c.cmd(ctx, args)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := kvResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ctx.Err() == nil:
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%s %v: %v\n%s", c.name, args, err, r)
	}
	return r
}

// storeIndex is the server's current X-Etcd-Index.
func storeIndex(t *testing.T, s *Server) uint64 {
	t.Helper()
	ev, err := s.GetKey(t, "/")
	if err != nil {
		t.Fatalf("%s: GET /: %v", s, err)
	}
	return ev.EtcdIndex
}

// runKVCases runs kvCases with c under prefix p, each with the global
// flags before it, and returns the normalized results.
func runKVCases(t *testing.T, s *Server, c kvClient, p string, global []string) []kvResult {
	t.Helper()
	base := storeIndex(t, s)
	out := make([]kvResult, len(kvCases))
	for i, line := range kvCases {
		line = strings.ReplaceAll(line, "{p}", p)
		line = kvPlaceholderRE.ReplaceAllStringFunc(line, func(m string) string {
			n, _ := strconv.ParseUint(kvPlaceholderRE.FindStringSubmatch(m)[1], 10, 64)
			return strconv.FormatUint(base+n, 10)
		})
		r := c.run(t, append(slices.Clone(global), strings.Fields(line)...))
		r.stdout, r.stderr = kvNormalize(r.stdout, p, base), kvNormalize(r.stderr, p, base)
		out[i] = r
	}
	return out
}

// TestKVDifferential runs kvCases with etcdctl (v2 mode) and with
// `cairn kv`, in each output format, against etcd 3.4 and against cairn,
// and wants the same output, error output and exit status from both
// clients on each server. etcdctl and the cairn binary are the only
// external programs; etcd runs when installed (CAIRN_REQUIRE_EXTERNAL=1
// makes its absence a failure).
func TestKVDifferential(t *testing.T) {
	NeedBinary(t, "etcdctl")
	t.Parallel()
	for _, kind := range []string{KindCairn, KindEtcd} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			var s *Server
			if kind == KindEtcd {
				s = StartEtcd(t, testPKI, "kvdiff")
			} else {
				s = startCairn(t)
			}
			ref, sut := etcdctlClient(t, s), cairnKVClient(t, s)
			for _, format := range []string{"simple", "json", "extended"} {
				t.Run(format, func(t *testing.T) {
					global := []string{"-o", format}
					want := runKVCases(t, s, ref, "/kv-"+format+"-etcdctl", global)
					got := runKVCases(t, s, sut, "/kv-"+format+"-cairn", global)
					for i := range kvCases {
						if got[i] != want[i] {
							t.Errorf("#%d %s:\ncairn kv: %s\netcdctl: %s", i, kvCases[i], got[i], want[i])
						}
					}
				})
			}
			t.Run("exec-watch", func(t *testing.T) { testKVExecWatch(t, s) })
		})
	}
}

// testKVExecWatch runs exec-watch from history with both clients and
// compares what the hook saw. etcdctl runs hooks concurrently, so the
// lines are compared sorted.
func testKVExecWatch(t *testing.T, s *Server) {
	type run struct {
		client kvClient
		args   func(after uint64, hook, key string) []string
	}
	runs := []run{
		{etcdctlClient(t, s), func(after uint64, hook, key string) []string {
			// etcdctl takes the key last when the command comes first.
			return []string{"exec-watch", "--after-index", fmt.Sprint(after), "-r", hook, key}
		}},
		{cairnKVClient(t, s), func(after uint64, hook, key string) []string {
			return []string{"exec-watch", "--after-index", fmt.Sprint(after), "-r", key, "--", hook}
		}},
	}
	var results [2]string
	for i, r := range runs {
		p := "/kvx-" + strings.ReplaceAll(r.client.name, " ", "-")
		base := storeIndex(t, s)
		for _, args := range [][]string{{"set", p + "/a", "one"}, {"mkdir", p + "/d"}, {"set", p + "/a", "two"}, {"rm", p + "/a"}, {"set", p + "/d/x", "three"}} {
			if res := r.client.run(t, args); res.code != 0 {
				t.Fatalf("%s %v: %s", r.client.name, args, res)
			}
		}
		dir := t.TempDir()
		events := filepath.Join(dir, "events")
		hook := filepath.Join(dir, "hook.sh")
		script := "#!/bin/sh\necho \"$ETCD_WATCH_ACTION $ETCD_WATCH_KEY=$ETCD_WATCH_VALUE @$ETCD_WATCH_MODIFIED_INDEX\" >> " + events + "\n"
		if err := os.WriteFile(hook, []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
		proc := StartProc(t, r.client.name+" exec-watch", r.client.cmd(context.Background(), r.args(base, hook, p)))
		Poll(t, 15*time.Second, r.client.name+" exec-watch to run the hook 4 times", func() error {
			if done, err := proc.Exited(); done {
				t.Fatalf("%s exec-watch exited (%v):\n%s", r.client.name, err, proc.Output())
			}
			if b, _ := os.ReadFile(events); strings.Count(string(b), "\n") < 4 {
				return errNotYet
			}
			return nil
		})
		proc.Kill()
		b, _ := os.ReadFile(events)
		lines := strings.Split(strings.TrimSuffix(kvNormalize(string(b), p, base), "\n"), "\n")
		slices.Sort(lines)
		results[i] = strings.Join(lines, "\n") + "\n--- output:\n" + kvNormalize(proc.Output(), p, base)
	}
	want := "delete {p}/a= @i+4\nset {p}/a=one @i+1\nset {p}/a=two @i+3\nset {p}/d/x=three @i+5\n--- output:\nIgnored dir {p}/d change\n"
	if results[0] != want {
		t.Errorf("etcdctl exec-watch (the reference) saw:\n%s\nwant:\n%s", results[0], want)
	}
	if results[1] != results[0] {
		t.Errorf("cairn kv exec-watch saw:\n%s\netcdctl:\n%s", results[1], results[0])
	}
}
