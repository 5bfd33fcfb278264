package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/cmd/cairn/server"
	"github.com/cairnkv/cairn/cmd/cairn/server/servertest"
	"github.com/cairnkv/cairn/tlsauth/pki"
)

// kvNow is the clock of the kv test members: TTLs and expirations are
// exact, and nothing expires.
var kvNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// startKVNode starts a member, the server type as cairn serve runs it,
// whose clock stands still at kvNow, and returns it and its development
// PKI. Only the test writes to its store: managed certificates, which
// keep theirs there, are off, so that store indexes are the test's.
// historySize 0 is the default.
func startKVNode(t *testing.T, historySize int) (*servertest.Server, pki.Dev) {
	t.Helper()
	s := servertest.Start(t, func(c *server.Config) {
		c.TLSManagedCerts = false
		if historySize != 0 {
			c.HistorySize = historySize
		}
	}, server.WithClock(func() time.Time { return kvNow }))
	return s, *s.DevPKI()
}

// kvRun is one in-process run of the command line.
type kvRun struct {
	environ []string
	stdin   string
	args    []string
	// ctx, when set, is the run's context (for watches that a test ends).
	ctx context.Context
	// stdout and stderr, when set, receive the output as it is written.
	stdout, stderr io.Writer
}

// run executes r and returns its output and exit status, as main
// reports them (exitStatus prints what the command did not).
func (r kvRun) run(t *testing.T) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	var ow, ew io.Writer = &out, &errb
	if r.stdout != nil {
		ow = io.MultiWriter(&out, r.stdout)
	}
	if r.stderr != nil {
		ew = io.MultiWriter(&errb, r.stderr)
	}
	root := newRootCmd(ow, ew, r.environ)
	root.SetIn(strings.NewReader(r.stdin))
	root.SetArgs(r.args)
	ctx := r.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	code = exitStatus(root.ExecuteContext(ctx), ew)
	return out.String(), errb.String(), code
}

// kvBackground is a kvRun running in the background.
type kvBackground struct {
	cancel         context.CancelFunc
	done           chan struct{}
	stdout, stderr syncBuffer // as written so far
	outs, errs     string     // the run's output once done
	code           int
}

// start runs r in the background, in a context that stop ends (as an
// interrupt does). The run is stopped and waited for when the test ends.
func (r kvRun) start(t *testing.T) *kvBackground {
	t.Helper()
	b := &kvBackground{done: make(chan struct{})}
	ctx := r.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, b.cancel = context.WithCancel(ctx)
	r.ctx, r.stdout, r.stderr = ctx, &b.stdout, &b.stderr
	go func() {
		defer close(b.done)
		b.outs, b.errs, b.code = r.run(t)
	}()
	t.Cleanup(func() { b.stop() })
	return b
}

// finished reports whether the run has returned.
func (b *kvBackground) finished() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// stop ends the run if it still runs and returns its output and status.
func (b *kvBackground) stop() (stdout, stderr string, code int) {
	b.cancel()
	<-b.done
	return b.outs, b.errs, b.code
}

func devFlags(url string, dev pki.Dev) []string {
	return []string{"--endpoints", url, "--cacert", dev.CAFile, "--cert", dev.ClientCertFile, "--key", dev.ClientKeyFile}
}

// kvStep is a kv command and what it prints. stdin is its standard input.
type kvStep struct {
	args   string // split on spaces
	stdin  string
	stdout string
	stderr string
	code   int
}

// runKVSteps runs steps in order against url, each as `cairn kv <args>`.
func runKVSteps(t *testing.T, url string, dev pki.Dev, steps []kvStep) {
	t.Helper()
	for i, st := range steps {
		args := append(append([]string{"kv"}, devFlags(url, dev)...), strings.Fields(st.args)...)
		stdout, stderr, code := kvRun{args: args, stdin: st.stdin}.run(t)
		if stdout != st.stdout || stderr != st.stderr || code != st.code {
			t.Errorf("#%d cairn kv %s:\n got exit %d, stdout %q, stderr %q\nwant exit %d, stdout %q, stderr %q",
				i, st.args, code, stdout, stderr, st.code, st.stdout, st.stderr)
		}
	}
}

// TestKVSimple runs etcdctl's commands in the simple format against a
// fresh cluster: every index below is the store index the write takes.
func TestKVSimple(t *testing.T) {
	s, dev := startKVNode(t, 0)
	url := s.URL
	runKVSteps(t, url, dev, []kvStep{
		{args: "set /a 1", stdout: "1\n"}, // 1
		{args: "get /a", stdout: "1\n"},
		{args: "get --sort --quorum a", stdout: "1\n"},
		{args: "mk /b 2", stdout: "2\n"}, // 2
		{args: "mk /b 2", stderr: "Error:  105: Key already exists (/b) [2]\n", code: 4},
		{args: "mkdir /d"}, // 3
		{args: "mkdir /d", stderr: "Error:  105: Key already exists (/d) [3]\n", code: 4},
		{args: "set /d/x 3", stdout: "3\n"}, // 4
		{args: "ls --recursive --sort /", stdout: "/a\n/b\n/d\n/d/x\n"},
		{args: "ls -r --sort -p", stdout: "/a\n/b\n/d/\n/d/x\n"},
		{args: "ls --sort -p /", stdout: "/a\n/b\n/d/\n"},
		{args: "ls /d", stdout: "/d/x\n"},
		{args: "ls /a", stdout: "/a\n"},
		{args: "ls /none/x", stderr: "Error:  100: Key not found (/none) [4]\n", code: 4},
		{args: "update /a 10", stdout: "10\n"}, // 5
		{args: "update /none 1", stderr: "Error:  100: Key not found (/none) [5]\n", code: 4},
		{args: "set --swap-with-value 10 /a 11", stdout: "11\n"}, // 6
		{args: "set --swap-with-value 10 /a 12", stderr: "Error:  101: Compare failed ([10 != 11]) [6]\n", code: 4},
		{args: "set --swap-with-index 6 /a 12", stdout: "12\n"}, // 7
		{args: "set --swap-with-index 6 /a 13", stderr: "Error:  101: Compare failed ([6 != 7]) [7]\n", code: 4},
		{args: "rm --with-value nope /a", stderr: "Error:  101: Compare failed ([nope != 12]) [7]\n", code: 4},
		// compareAndDelete is not "delete": etcdctl prints the (empty) value.
		{args: "rm --with-index 7 /a", stdout: "\n"}, // 8
		{args: "rmdir /d", stderr: "Error:  108: Directory not empty (/d) [8]\n", code: 4},
		{args: "rm /d", stderr: "Error:  102: Not a file (/d) [8]\n", code: 4},
		{args: "rm /d/x", stdout: "PrevNode.Value: 3\n"}, // 9
		{args: "rmdir /d"}, // 10
		{args: "get /a", stderr: "Error:  100: Key not found (/a) [10]\n", code: 4},
		{args: "mk --in-order /q v", stdout: "v\n"}, // 11
		{args: "ls /q", stdout: "/q/00000000000000000011\n"},
		{args: "setdir /dd"},              // 12
		{args: "updatedir --ttl 100 /dd"}, // 13
		// etcd's Set refuses a directory: setdir cannot do what its help says.
		{args: "setdir --ttl 50 /dd", stderr: "Error:  102: Not a file (/dd) [13]\n", code: 4},
		{args: "updatedir /none", stderr: "Error:  100: Key not found (/none) [13]\n", code: 4},
		{args: "get /dd", stderr: "/dd: is a directory\n", code: 1},
		{args: "get /", stderr: ": is a directory\n", code: 1},
		{args: "set /s", stdin: "from stdin\n", stdout: "from stdin\n\n"}, // 14
		{args: "update /s", stdin: "again", stdout: "again\n"},            // 15
		{args: "set /s", stderr: "Error:  value required\n", code: 1},
		{args: "mk /s2", stderr: "Error:  value required\n", code: 1},
		{args: "set -- /dash -v", stdout: "-v\n"}, // 16
		{args: "get", stderr: "Error:  key required\n", code: 1},
		{args: "rm", stderr: "Error:  key required\n", code: 1},
		{args: "mkdir", stderr: "Error:  key required\n", code: 1},
		{args: "watch", stderr: "Error:  key required\n", code: 1},
		{args: "exec-watch /k", stderr: "Error:  key and command to exec required\n", code: 1},
		{args: "rm -r /q"},                                   // 17: a directory: nothing printed
		{args: "set --ttl 100 /t v", stdout: "v\n"},          // 18
		{args: "rm --dir /t", stdout: "PrevNode.Value: v\n"}, // 19
		{args: "set /sp%20ce/x?y#z v", stdout: "v\n"},        // 20
		{args: "ls /sp%20ce", stdout: "/sp%20ce/x?y#z\n"},
		{args: "set /n/./../n//k v", stdout: "v\n"}, // 21: the client cleans the path
		{args: "get /n/k", stdout: "v\n"},
		{args: "-o yaml get /n/k", stderr: "Error:  unsupported output format \"yaml\": use simple, json or extended\n", code: 1},
		{args: "set /dd v", stderr: "Error:  102: Not a file (/dd) [21]\n", code: 4},
		{args: "mkdir /n/k/sub", stderr: "Error:  104: Not a directory (/n/k) [21]\n", code: 4},
		{args: "rm /", stderr: "Error:  107: Root is read only (/) [21]\n", code: 4},
	})
}

// TestKVJSON and TestKVExtended pin etcdctl's other two formats, index by
// index, on fresh clusters. The clock stands still: TTLs are exact.
func TestKVJSON(t *testing.T) {
	s, dev := startKVNode(t, 0)
	url := s.URL
	const exp = `"expiration":"2030-01-02T03:05:45Z","ttl":100`
	runKVSteps(t, url, dev, []kvStep{
		{args: "-o json set /b 2", stdout: `{"action":"set","node":{"key":"/b","value":"2","nodes":null,"createdIndex":1,"modifiedIndex":1},"prevNode":null}` + "\n"},
		{args: "-o json set --ttl 100 /b 3", stdout: `{"action":"set","node":{"key":"/b","value":"3","nodes":null,"createdIndex":2,"modifiedIndex":2,` + exp + `},"prevNode":{"key":"/b","value":"2","nodes":null,"createdIndex":1,"modifiedIndex":1}}` + "\n"},
		{args: "get /b -o json", stdout: `{"action":"get","node":{"key":"/b","value":"3","nodes":null,"createdIndex":2,"modifiedIndex":2,` + exp + `},"prevNode":null}` + "\n"},
		// etcdctl prints errors the same way in every format.
		{args: "-o json get /nope", stderr: "Error:  100: Key not found (/nope) [2]\n", code: 4},
		{args: "-o json rm /b", stdout: `{"action":"delete","node":{"key":"/b","value":"","nodes":null,"createdIndex":2,"modifiedIndex":3},"prevNode":{"key":"/b","value":"3","nodes":null,"createdIndex":2,"modifiedIndex":2,` + exp + `}}` + "\n"},
		{args: "-o json mkdir /d", stdout: `{"action":"create","node":{"key":"/d","dir":true,"value":"","nodes":null,"createdIndex":4,"modifiedIndex":4},"prevNode":null}` + "\n"},
		{args: "-o json mk /d/<x>&", stdin: "1", stdout: `{"action":"create","node":{"key":"/d/\u003cx\u003e\u0026","value":"1","nodes":null,"createdIndex":5,"modifiedIndex":5},"prevNode":null}` + "\n"},
		{args: "-o json ls /", stdout: `{"action":"get","node":{"key":"","dir":true,"value":"","nodes":[{"key":"/d","dir":true,"value":"","nodes":null,"createdIndex":4,"modifiedIndex":4}],"createdIndex":0,"modifiedIndex":0},"prevNode":null}` + "\n"},
		{args: "-o json ls -r /d", stdout: `{"action":"get","node":{"key":"/d","dir":true,"value":"","nodes":[{"key":"/d/\u003cx\u003e\u0026","value":"1","nodes":null,"createdIndex":5,"modifiedIndex":5}],"createdIndex":4,"modifiedIndex":4},"prevNode":null}` + "\n"},
		{args: "-o json get /d", stderr: "/d: is a directory\n", code: 1},
		{args: "-o json updatedir --ttl 100 /d", stdout: `{"action":"update","node":{"key":"/d","dir":true,"value":"","nodes":null,"createdIndex":4,"modifiedIndex":6,` + exp + `},"prevNode":{"key":"/d","dir":true,"value":"","nodes":null,"createdIndex":4,"modifiedIndex":4}}` + "\n"},
		{args: "-o json updatedir /d", stdout: `{"action":"update","node":{"key":"/d","dir":true,"value":"","nodes":null,"createdIndex":4,"modifiedIndex":7},"prevNode":{"key":"/d","dir":true,"value":"","nodes":null,"createdIndex":4,"modifiedIndex":6,` + exp + `}}` + "\n"},
		{args: "-o json rm -r /d", stdout: `{"action":"delete","node":{"key":"/d","dir":true,"value":"","nodes":null,"createdIndex":4,"modifiedIndex":8},"prevNode":{"key":"/d","dir":true,"value":"","nodes":null,"createdIndex":4,"modifiedIndex":7}}` + "\n"},
		{args: "-o json mk --in-order /q v", stdout: `{"action":"create","node":{"key":"/q/00000000000000000009","value":"v","nodes":null,"createdIndex":9,"modifiedIndex":9},"prevNode":null}` + "\n"},
		{args: "-o json update /q/00000000000000000009 w", stdout: `{"action":"update","node":{"key":"/q/00000000000000000009","value":"w","nodes":null,"createdIndex":9,"modifiedIndex":10},"prevNode":{"key":"/q/00000000000000000009","value":"v","nodes":null,"createdIndex":9,"modifiedIndex":9}}` + "\n"},
		{args: "-o json set --swap-with-value w /q/00000000000000000009 x", stdout: `{"action":"compareAndSwap","node":{"key":"/q/00000000000000000009","value":"x","nodes":null,"createdIndex":9,"modifiedIndex":11},"prevNode":{"key":"/q/00000000000000000009","value":"w","nodes":null,"createdIndex":9,"modifiedIndex":10}}` + "\n"},
		{args: "-o json rmdir /q", stderr: "Error:  108: Directory not empty (/q) [11]\n", code: 4},
	})
}

func TestKVExtended(t *testing.T) {
	s, dev := startKVNode(t, 0)
	url := s.URL
	runKVSteps(t, url, dev, []kvStep{
		{args: "-o extended set /b 2", stdout: "Key: /b\nCreated-Index: 1\nModified-Index: 1\nTTL: 0\nIndex: 1\n\n2\n"},
		{args: "-o extended set --ttl 100 /b 3", stdout: "Key: /b\nCreated-Index: 2\nModified-Index: 2\nPrevNode.Value: 2\nTTL: 100\nIndex: 2\n\n3\n"},
		{args: "-o extended get /b", stdout: "Key: /b\nCreated-Index: 2\nModified-Index: 2\nTTL: 100\nIndex: 2\n\n3\n"},
		{args: "-o extended get /nope", stderr: "Error:  100: Key not found (/nope) [2]\n", code: 4},
		{args: "-o extended rm /b", stdout: "Key: /b\nCreated-Index: 2\nModified-Index: 3\nPrevNode.Value: 3\nTTL: 0\nIndex: 3\n"},
		{args: "-o extended mkdir /d", stdout: "Key: /d\nCreated-Index: 4\nModified-Index: 4\nTTL: 0\nIndex: 4\n\n\n"},
		{args: "-o extended ls /", stdout: "Key: \nCreated-Index: 0\nModified-Index: 0\nTTL: 0\nIndex: 4\n\n\n"},
		{args: "-o extended rmdir /d", stdout: "Key: /d\nCreated-Index: 4\nModified-Index: 5\nPrevNode.Value: \nTTL: 0\nIndex: 5\n"},
		{args: "-o extended mk --in-order --ttl 100 /q v", stdout: "Key: /q/00000000000000000006\nCreated-Index: 6\nModified-Index: 6\nTTL: 100\nIndex: 6\n\nv\n"},
		{args: "-o extended update /q/00000000000000000006 w", stdout: "Key: /q/00000000000000000006\nCreated-Index: 6\nModified-Index: 7\nPrevNode.Value: v\nTTL: 0\nIndex: 7\n\nw\n"},
	})
}

// TestKVConnection: exit 2 when no member answers, 1 without
// certificates, and the client settings of the other client commands.
func TestKVConnection(t *testing.T) {
	s, dev := startKVNode(t, 0)
	url, dataDir := s.URL, s.Config().DataDir
	refused := refusedEndpoint(t)

	_, stderr, code := kvRun{args: append([]string{"kv", "get", "/a"}, devFlags(refused, dev)...)}.run(t)
	if code != exitBadConnection || !strings.HasPrefix(stderr, "Error:  no endpoint answered ("+refused+": dial tcp") {
		t.Errorf("refused: exit %d, %q", code, stderr)
	}
	// Failover to the next endpoint; the development PKI of --data-dir.
	stdout, stderr, code := kvRun{args: []string{"kv", "set", "/a", "1", "--data-dir", dataDir, "--endpoints", refused + "," + url}}.run(t)
	if code != 0 || stdout != "1\n" {
		t.Errorf("failover: exit %d, %q %q", code, stdout, stderr)
	}
	// The environment.
	env := []string{"CAIRN_ENDPOINTS=" + url, "CAIRN_CACERT=" + dev.CAFile, "CAIRN_CERT=" + dev.ClientCertFile, "CAIRN_KEY=" + dev.ClientKeyFile}
	stdout, stderr, code = kvRun{environ: env, args: []string{"kv", "get", "/a", "--data-dir", t.TempDir()}}.run(t)
	if code != 0 || stdout != "1\n" {
		t.Errorf("environment: exit %d, %q %q", code, stdout, stderr)
	}
	_, stderr, code = kvRun{args: []string{"kv", "get", "/a", "--data-dir", t.TempDir()}}.run(t)
	if code != 1 || !strings.HasPrefix(stderr, "Error:  no client certificate: pass --cert/--key") {
		t.Errorf("no certificate: exit %d, %q", code, stderr)
	}
	// A flag cobra does not know: main's message and status.
	_, stderr, code = kvRun{args: []string{"kv", "get", "--nope", "/a"}}.run(t)
	if code != 1 || !strings.Contains(stderr, "unknown flag: --nope") {
		t.Errorf("unknown flag: exit %d, %q", code, stderr)
	}
}

// TestKVErrorAnswers: answers that are not etcd key errors are still
// cluster errors (exit 4), and say what came back. The answers are a fake
// server's: no member gives them.
func TestKVErrorAnswers(t *testing.T) {
	_, dev := newDevPKI(t)
	url := startServer(t, dev, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/keys/text":
			http.Error(w, "upstream broke", http.StatusBadGateway)
		case "/v2/keys/message":
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"message":"Internal Server Error"}`)
		case "/v2/keys/garbage":
			io.WriteString(w, `{"action":"get"`)
		}
	}))
	tests := []struct{ key, stderr string }{
		{"/text", "Error:  HTTP 502 from " + url + ": upstream broke\n"},
		{"/message", "Error:  Internal Server Error (HTTP 500 from " + url + "; its log says why)\n"},
		{"/garbage", "Error:  unexpected answer from " + url + " (HTTP 200): \"{\\\"action\\\":\\\"get\\\"\"\n"},
	}
	for _, tt := range tests {
		_, stderr, code := kvRun{args: append([]string{"kv", "get", tt.key}, devFlags(url, dev)...)}.run(t)
		if code != exitServerError || stderr != tt.stderr {
			t.Errorf("%s: exit %d, %q; want 4, %q", tt.key, code, stderr, tt.stderr)
		}
	}
}

// putKey writes key=value with `cairn kv set` and fails the test otherwise.
func putKey(t *testing.T, url string, dev pki.Dev, args ...string) {
	t.Helper()
	_, stderr, code := kvRun{args: append(append([]string{"kv"}, args...), devFlags(url, dev)...)}.run(t)
	if code != 0 {
		t.Fatalf("cairn kv %v: exit %d, %s", args, code, stderr)
	}
}

// watchUntil runs args in the background and ends the run (as an
// interrupt does) once its stdout contains want, or fails after 10 s. It
// returns the run's output and status.
func watchUntil(t *testing.T, env []string, args []string, want string, while func(out *syncBuffer)) (string, string, int) {
	t.Helper()
	b := kvRun{environ: env, args: args}.start(t)
	if while != nil {
		while(&b.stdout)
	}
	ok := false
	defer func() {
		if !ok {
			t.Logf("cairn %v: stdout %q, stderr %q", args, b.stdout.String(), b.stderr.String())
		}
	}()
	poll.Until(t, 10*time.Second, fmt.Sprintf("%q on the stdout of cairn %v", want, args), func() bool {
		return b.finished() || strings.Contains(b.stdout.String(), want)
	})
	ok = true
	return b.stop()
}

func TestKVWatch(t *testing.T) {
	s, dev := startKVNode(t, 0)
	url := s.URL
	flags := devFlags(url, dev)
	putKey(t, url, dev, "set", "/w/k", "a")     // 1
	putKey(t, url, dev, "mkdir", "/w/d")        // 2
	putKey(t, url, dev, "set", "/w/k", "b")     // 3
	putKey(t, url, dev, "set", "/w/d/x", "c")   // 4
	putKey(t, url, dev, "rm", "/w/k")           // 5
	putKey(t, url, dev, "set", "/other", "zzz") // 6

	tests := []struct {
		name, args, stdout string
	}{
		{"from history", "watch --after-index 1 /w/k", "b\n"},
		{"after-index 0 is now", "watch --after-index 0 /w/k", ""}, // waits: ended below
		{"recursive skips directories", "watch -r --after-index 1 /w", "[set] /w/k\nb\n"},
		{"recursive json", "-o json watch -r --after-index 3 /w", "[set] /w/d/x\n" +
			`{"action":"set","node":{"key":"/w/d/x","value":"c","nodes":null,"createdIndex":4,"modifiedIndex":4},"prevNode":null}` + "\n"},
		// Index: X-Etcd-Index, the store index when the watch started.
		{"extended delete", "-o extended watch --after-index 4 /w/k", "Key: /w/k\nCreated-Index: 3\nModified-Index: 5\nPrevNode.Value: b\nTTL: 0\nIndex: 6\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{"kv"}, strings.Fields(tt.args)...), flags...)
			if tt.stdout == "" {
				// A watch with nothing to report waits (the store counts
				// its watcher); an interrupt ends it with status 0.
				b := kvRun{args: args}.start(t)
				poll.Until(t, 10*time.Second, "the watch to wait in the store", func() bool {
					return b.finished() || s.Node().Store().Stats().Watchers == 1
				})
				stdout, stderr, code := b.stop()
				if stdout != "" || stderr != "" || code != 0 {
					t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
				}
				return
			}
			stdout, stderr, code := kvRun{args: args}.run(t)
			if stdout != tt.stdout || stderr != "" || code != 0 {
				t.Errorf("exit %d, stdout %q, stderr %q; want %q", code, stdout, stderr, tt.stdout)
			}
		})
	}

	t.Run("forever", func(t *testing.T) {
		// From history, then live: every change once, in order.
		args := append([]string{"kv", "watch", "--forever", "-r", "--after-index", "4", "/w"}, flags...)
		stdout, stderr, code := watchUntil(t, nil, args, "live\n", func(out *syncBuffer) {
			poll.Until(t, 10*time.Second, "the change from history", func() bool { return out.String() != "" })
			putKey(t, url, dev, "set", "/w/k", "live") // 7
		})
		if want := "[delete] /w/k\nPrevNode.Value: b\n[set] /w/k\nlive\n"; code != 0 || stderr != "" || stdout != want {
			t.Errorf("exit %d, stdout %q, stderr %q; want %q", code, stdout, stderr, want)
		}
	})
}

// TestKVWatchHistoryCleared: a watch from an index that left the history
// warns and goes on from the current index (etcdctl would stop with
// error 401).
func TestKVWatchHistoryCleared(t *testing.T) {
	s, dev := startKVNode(t, 2)
	url := s.URL
	for i := range 5 {
		putKey(t, url, dev, "set", "/h", fmt.Sprint(i)) // 1..5
	}
	args := append([]string{"kv", "watch", "--after-index", "1", "/h"}, devFlags(url, dev)...)
	b := kvRun{args: args}.start(t)
	poll.Until(t, 10*time.Second, "the warning", func() bool { return strings.Contains(b.stderr.String(), "Warning:") })
	putKey(t, url, dev, "set", "/h", "new") // 6
	poll.Until(t, 10*time.Second, "the watch to resume and report the change", b.finished)
	stdout, stderr, code := b.stop()
	want := "Warning: the changes from index 2 on have left the history of " + url +
		" (the requested history has been cleared [4/2]); changes up to index 5 are lost: watching from index 6\n"
	if stdout != "new\n" || stderr != want || code != 0 {
		t.Errorf("exit %d, stdout %q, stderr %q; want %q", code, stdout, stderr, want)
	}
}

// TestKVWatchProtocol pins the wait indexes a watch asks for: past each
// change it reports, the same again after an empty answer, past the
// current index after error 401, and on the next endpoint from the same
// index after a connection failure. The members are fakes that script
// each answer, which a real member cannot be made to give in order.
func TestKVWatchProtocol(t *testing.T) {
	_, dev := newDevPKI(t)
	var mu sync.Mutex
	var asked []string
	event := func(idx int) string {
		return fmt.Sprintf(`{"action":"set","node":{"key":"/k","value":"v%d","modifiedIndex":%d,"createdIndex":%d}}`, idx, idx, idx)
	}
	answers := []func(w http.ResponseWriter, r *http.Request){
		func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, event(5)) },
		func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("X-Etcd-Index", "7") }, // empty: ask again
		func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, event(9)) },
		func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Etcd-Index", "20")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"errorCode":401,"message":"The event in requested index is outdated and cleared","cause":"the requested history has been cleared [15/10]","index":20}`)
		},
		// No headers within --timeout: the next endpoint.
		func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
	}
	handler := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			asked = append(asked, name+" "+r.URL.Path+"?"+r.URL.RawQuery)
			n := len(asked)
			mu.Unlock()
			if n <= len(answers) {
				answers[n-1](w, r)
				return
			}
			// A watch that waits: headers at once, then nothing.
			w.WriteHeader(http.StatusOK)
			http.NewResponseController(w).Flush()
			<-r.Context().Done()
		})
	}
	first, second := startServer(t, dev, handler("first")), startServer(t, dev, handler("second"))
	args := append([]string{"kv", "watch", "-f", "-r", "--after-index", "1", "/k", "--timeout", "300ms"}, devFlags(first+","+second, dev)...)
	stdout, stderr, code := watchUntil(t, nil, args, "v9\n", func(*syncBuffer) {
		poll.Until(t, 10*time.Second, "6 requests", func() bool { mu.Lock(); defer mu.Unlock(); return len(asked) == 6 })
	})
	wantErr := "Warning: the changes from index 10 on have left the history of " + first +
		" (the requested history has been cleared [15/10]); changes up to index 20 are lost: watching from index 21\n"
	if stdout != "[set] /k\nv5\n[set] /k\nv9\n" || code != 0 || stderr != wantErr {
		t.Errorf("exit %d, stdout %q, stderr %q; want stderr %q", code, stdout, stderr, wantErr)
	}
	want := []string{
		"first /v2/keys/k?recursive=true&wait=true&waitIndex=2",   // --after-index 1
		"first /v2/keys/k?recursive=true&wait=true&waitIndex=6",   // past 5
		"first /v2/keys/k?recursive=true&wait=true&waitIndex=6",   // empty answer: again
		"first /v2/keys/k?recursive=true&wait=true&waitIndex=10",  // past 9
		"first /v2/keys/k?recursive=true&wait=true&waitIndex=21",  // past X-Etcd-Index 20
		"second /v2/keys/k?recursive=true&wait=true&waitIndex=21", // no answer: next endpoint, same index
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(asked, "\n") != strings.Join(want, "\n") {
		t.Errorf("asked\n%s\nwant\n%s", strings.Join(asked, "\n"), strings.Join(want, "\n"))
	}
}

func TestKVExecWatch(t *testing.T) {
	s, dev := startKVNode(t, 0)
	url := s.URL
	putKey(t, url, dev, "set", "/pad", "0") // 1
	putKey(t, url, dev, "set", "/x/a", "1") // 2
	putKey(t, url, dev, "mkdir", "/x/d")    // 3
	putKey(t, url, dev, "set", "/x/a", "2") // 4
	putKey(t, url, dev, "rm", "/x/a")       // 5
	const hook = `echo "$FROM_ENV $ETCD_WATCH_ACTION $ETCD_WATCH_KEY=$ETCD_WATCH_VALUE @$ETCD_WATCH_MODIFIED_INDEX"`
	want := "outer set /x/a=1 @2\nouter set /x/a=2 @4\nouter delete /x/a= @5\n"
	env := []string{"FROM_ENV=outer", "PATH=/usr/bin:/bin"}
	for _, form := range [][]string{
		{"exec-watch", "-r", "--after-index", "1", "/x", "--", "sh", "-c", hook},
		{"exec-watch", "--after-index", "1", "-r", "/x", "sh", "-c", hook}, // everything after the key is the command's
		{"exec-watch", "-r", "--after-index", "1", "--", "/x", "sh", "-c", hook},
	} {
		t.Run(strings.Join(form[:len(form)-3], " "), func(t *testing.T) {
			args := append(append([]string{"kv"}, devFlags(url, dev)...), form...)
			stdout, stderr, code := watchUntil(t, env, args, "@5\n", nil)
			if stdout != want || stderr != "Ignored dir /x/d change\n" || code != 0 {
				t.Errorf("exit %d, stdout %q, stderr %q; want %q", code, stdout, stderr, want)
			}
		})
	}
	t.Run("no such command", func(t *testing.T) {
		args := append(append([]string{"kv"}, devFlags(url, dev)...), "exec-watch", "-r", "--after-index", "1", "/x", "/nonexistent/hook")
		_, stderr, code := kvRun{environ: env, args: args}.run(t)
		if code != 1 || stderr != "Error:  fork/exec /nonexistent/hook: no such file or directory\n" {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}

// TestCompletion: cobra's completion scripts, the kv subcommands and key
// names from the cluster.
func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{
		"bash": "# bash completion V2 for cairn",
		"zsh":  "#compdef cairn",
		"fish": "# fish completion for cairn",
	} {
		stdout, _, err := runCairn(t, nil, "completion", shell)
		if err != nil || !strings.Contains(stdout, want) {
			t.Errorf("completion %s: %v, no %q in %.100q", shell, err, want, stdout)
		}
	}
	stdout, _, err := runCairn(t, nil, "__complete", "")
	for _, sub := range []string{"kv\t", "status\t", "completion\t", "member\t"} {
		if err != nil || !strings.Contains(stdout, sub) {
			t.Errorf("cairn <TAB>: %v, no %q in %q", err, sub, stdout)
		}
	}
	stdout, _, err = runCairn(t, nil, "__complete", "kv", "")
	for _, sub := range []string{"get", "set", "mk", "mkdir", "setdir", "update", "updatedir", "rm", "rmdir", "ls", "watch", "exec-watch"} {
		if err != nil || !strings.Contains(stdout, "\n"+sub+"\t") && !strings.HasPrefix(stdout, sub+"\t") {
			t.Errorf("cairn kv <TAB>: %v, no %s in %q", err, sub, stdout)
		}
	}

	s, dev := startKVNode(t, 0)
	url := s.URL
	putKey(t, url, dev, "set", "/app/mode", "1")
	putKey(t, url, dev, "set", "/app/conf/x", "1")
	putKey(t, url, dev, "set", "/apex", "1")
	tests := []struct{ typed, want string }{
		{"", "/apex\n/app/\n:6\n"},
		{"/ap", "/apex\n/app/\n:6\n"},
		{"/app/", "/app/conf/\n/app/mode\n:6\n"},
		{"/app/c", "/app/conf/\n:6\n"},
		{"/none/", ":4\n"},
	}
	for _, tt := range tests {
		args := append([]string{"__complete", "kv", "get"}, devFlags(url, dev)...)
		stdout, _, err := runCairn(t, nil, append(args, tt.typed)...)
		if err != nil || !strings.HasPrefix(stdout, tt.want) {
			t.Errorf("cairn kv get %s<TAB>: %v, %q; want %q", tt.typed, err, stdout, tt.want)
		}
	}
}
