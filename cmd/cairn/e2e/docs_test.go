package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
)

// TestDocs runs every shell block of README.md and docs/*.md, one subtest
// per file (go test -run 'TestDocs/README.md' or 'TestDocs/clustering.md').
//
// The blocks of one document run in order in one bash session (variables,
// exports and the working directory carry over) with set -e and pipefail,
// in a scratch directory, with the cairn binary that TestMain built first on
// PATH. Documented ports are moved to free ports and /tmp to the scratch
// directory (DocRewriter); `go run ./cmd/cairn` becomes that binary. A block
// marked background runs until the end of the document; every process the
// document started is stopped then, on success and on failure. The marker
// convention is described in docblocks.go. CAIRN_DOCS_OUTPUT=1 logs each
// document's output even when it passes, to compare it with the text.
func TestDocs(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the docs are written for a POSIX shell")
	}
	bash := NeedBinary(t, "bash")
	root := repoRoot(t)
	docs := []string{filepath.Join(root, "README.md")}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, more...)
	bin := needCairn(t)
	for _, path := range docs {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			blocks, err := ParseDocBlocks(string(src))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			runDoc(t, bash, bin, root, name, blocks)
		})
	}
}

// TestParseDocBlocks checks the extractor and the rewriter on small inputs.
func TestParseDocBlocks(t *testing.T) {
	src := "# T\n\n```sh\necho a\n```\n\n<!-- docs-test: skip: needs systemd -->\n```sh\nsystemctl start cairn\n```\n" +
		"<!-- docs-test: background; ready=4001 -->\n```sh\ngo run ./cmd/cairn serve --data-dir /tmp/d\n```\n" +
		"```text\noutput\n```\n  ```sh\n  curl https://127.0.0.1:4001/x -d '{\"port\":8080}'\n  ```\n" +
		"```console\n$ cairn kv get /a \\\n  -o json\nout\n$ ls\n```\n"
	blocks, err := ParseDocBlocks(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 6 {
		t.Fatalf("got %d blocks, want 6: %+v", len(blocks), blocks)
	}
	if b := blocks[5]; !b.IsShell() || b.Text != "cairn kv get /a \\\n  -o json\n\nls\n" {
		t.Errorf("console block: %q", b.Text)
	}
	if b := blocks[1]; b.Skip != "needs systemd" || b.Line != 8 {
		t.Errorf("skip block: %+v", b)
	}
	if b := blocks[2]; !b.Background || len(b.Ready) != 1 || b.Ready[0] != 4001 {
		t.Errorf("background block: %+v", b)
	}
	if blocks[3].IsShell() || !blocks[4].IsShell() || blocks[4].Text != "curl https://127.0.0.1:4001/x -d '{\"port\":8080}'\n" {
		t.Errorf("blocks 3, 4: %+v %+v", blocks[3], blocks[4])
	}
	ports := DocPorts(blocks)
	if fmt.Sprint(ports) != "[4001 7001 8053 8080]" {
		t.Errorf("DocPorts = %v", ports)
	}
	r := DocRewriter{Ports: map[int]int{4001: 40001, 8080: 50000}, Tmp: "/s/tmp"}
	for in, want := range map[string]string{
		"go run ./cmd/cairn serve --data-dir /tmp/d":    "cairn serve --data-dir /s/tmp/d",
		"go build -o cairn ./cmd/cairn && ./cairn":      `ln -sf "$DOCS_CAIRN_BIN" cairn && ./cairn`,
		"curl https://127.0.0.1:4001/a?index=4001.5":    "curl https://127.0.0.1:40001/a?index=4001.5",
		`-d value='{"host":"10.0.4001.1","port":8080}'`: `-d value='{"host":"10.0.4001.1","port":50000}'`,
		"P=/tmp/x; ls /tmpfoo /var/tmp/x":               "P=/s/tmp/x; ls /tmpfoo /var/tmp/x",
	} {
		if got := r.Rewrite(in); got != want {
			t.Errorf("Rewrite(%q) = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{
		"```\nls\n```\n",
		"<!-- docs-test: skip: -->\n```sh\nls\n```\n",
		"<!-- docs-test: sometimes -->\n```sh\nls\n```\n",
		"<!-- docs-test: skip: x -->\n```toml\na = 1\n```\n",
		"<!-- docs-test: skip: x -->\ntext\n```sh\nls\n```\n",
		"```sh\nls\n",
	} {
		if _, err := ParseDocBlocks(bad); err == nil {
			t.Errorf("ParseDocBlocks(%q) did not fail", bad)
		} else {
			t.Logf("%q: %v", bad, err)
		}
	}
	if got := fmt.Sprint(DocTools("P=x\ncurl -s a | jq .\nx=$(openssl rand 4)\necho digits\nkdig @127.0.0.1 x\n")); got != "[curl kdig openssl jq]" {
		t.Errorf("DocTools = %s", got)
	}
}

// repoRoot is the module root: the directory above cmd/cairn/e2e.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(wd, "..", "..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod in %s: %v", root, err)
	}
	return root
}

const (
	// docBlockTimeout bounds one foreground block.
	docBlockTimeout = 3 * time.Minute
	// docReadyTimeout bounds the wait for a background block's ports.
	docReadyTimeout = time.Minute
)

// runDoc runs the shell blocks of one document in one bash session.
func runDoc(t *testing.T, bash, bin, root, name string, blocks []DocBlock) {
	var run, skipped []DocBlock
	for _, b := range blocks {
		switch {
		case !b.IsShell():
		case b.Skip != "":
			skipped = append(skipped, b)
		default:
			run = append(run, b)
		}
	}
	for _, b := range skipped {
		t.Logf("%s:%d: not run: %s", name, b.Line, b.Skip)
	}
	if len(run) == 0 {
		t.Logf("%s: no shell block to run (%d skipped)", name, len(skipped))
		return
	}
	var all strings.Builder
	for _, b := range run {
		all.WriteString(b.Text)
	}
	for _, tool := range DocTools(all.String()) {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("%s runs %s, which is not in PATH (Debian: apt-get install %s)", name, tool, debianPackage[tool])
			if os.Getenv(RequireExternalEnv) == "1" {
				t.Fatalf("%s; %s=1 makes that a failure", msg, RequireExternalEnv)
			}
			t.Skip(msg)
		}
	}
	pyEtcd := docPythonEtcd(t, name, all.String())

	scratch := t.TempDir()
	dirs := map[string]string{}
	for _, d := range []string{"work", "tmp", "home", "bin", ".docs-test"} {
		dirs[d] = filepath.Join(scratch, d)
		if err := os.Mkdir(dirs[d], 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(bin, filepath.Join(dirs["bin"], "cairn")); err != nil {
		t.Fatal(err)
	}
	if pyEtcd != "" {
		if err := os.Symlink(pyEtcd, filepath.Join(dirs["bin"], "python3")); err != nil {
			t.Fatal(err)
		}
	}
	linkRepo(t, root, dirs["work"])
	ports := freePorts(t, DocPorts(blocks))
	rw := DocRewriter{Ports: ports, Tmp: dirs["tmp"]}
	var mapping []string
	for _, p := range DocPorts(blocks) {
		mapping = append(mapping, fmt.Sprintf("%d→%d", p, ports[p]))
	}
	t.Logf("%s: %d blocks to run, %d skipped; ports %s; scratch %s", name, len(run), len(skipped), strings.Join(mapping, " "), scratch)

	sh := startDocShell(t, bash, bin, dirs, ports)
	start := time.Now()
	for i, b := range run {
		file := filepath.Join(dirs[".docs-test"], fmt.Sprintf("block%d.sh", i))
		if err := os.WriteFile(file, []byte(rw.Rewrite(b.Text)), 0o600); err != nil {
			t.Fatal(err)
		}
		if b.Stop {
			sh.stopBackground(t, name, b)
		}
		if b.Background {
			sh.background(t, name, b, i, file, rw)
			continue
		}
		sh.foreground(t, name, b, i, file)
	}
	t.Logf("%s: %d blocks ran in %v", name, len(run), time.Since(start).Round(time.Millisecond))
}

// docPythonEtcd returns, for a document whose blocks import python-etcd
// ("import etcd"), the python3 that has it when that is not the first
// python3 in PATH (Debian's python3-etcd is installed for /usr/bin/python3;
// a pyenv or virtualenv python3 may come first): the runner puts it first
// on the document's PATH, as a reader would call Debian's python3. Without
// python-etcd the document is skipped, or failed with
// CAIRN_REQUIRE_EXTERNAL=1.
func docPythonEtcd(t *testing.T, doc, text string) string {
	t.Helper()
	if !strings.Contains(text, "import etcd") {
		return ""
	}
	py, why := findPythonEtcd()
	if py == "" {
		msg := fmt.Sprintf("%s runs python-etcd, which no python3 here imports (Debian: apt-get install python3-etcd): %s", doc, why)
		if os.Getenv(RequireExternalEnv) == "1" {
			t.Fatalf("%s; %s=1 makes that a failure", msg, RequireExternalEnv)
		}
		t.Skip(msg)
	}
	if first, err := exec.LookPath("python3"); err == nil && first == py {
		return ""
	}
	return py
}

// linkRepo makes the work directory look like a clone, as the docs
// assume: a symbolic link to every top-level entry of the repository but
// .git (config.example.toml, deploy/, ...).
func linkRepo(t *testing.T, root, work string) {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == ".git" {
			continue
		}
		if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(work, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

// freePorts maps each documented port to a distinct port that is free for
// TCP and UDP on every interface (cairn binds the client and peer ports on
// all interfaces by default, and other tests listen on other loopback
// addresses): it holds every listener open until all are chosen.
func freePorts(t *testing.T, documented []int) map[int]int {
	t.Helper()
	m := make(map[int]int, len(documented))
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for _, p := range documented {
		for try := 0; ; try++ {
			l, err := net.Listen("tcp", ":0")
			if err != nil {
				t.Fatalf("free port: %v", err)
			}
			held = append(held, l)
			port := l.Addr().(*net.TCPAddr).Port
			u, err := net.ListenPacket("udp", fmt.Sprintf(":%d", port))
			if err != nil {
				if try > 20 {
					t.Fatalf("free port: no TCP port that is free for UDP too: %v", err)
				}
				continue
			}
			held = append(held, u)
			m[p] = port
			break
		}
	}
	return m
}

// docShell is a bash process reading commands from a pipe. It reports each
// finished block on fd 3; its ERR trap writes the failing status, file and
// line to errFile.
type docShell struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	out     string // file with the shell's stdout and stderr
	errFile string
	status  chan string   // lines from fd 3
	done    chan struct{} // closed when bash has exited
	bg      []bgJob       // running background blocks
	stopped []bgJob       // background blocks stopped by stop-background
}

type bgJob struct {
	line int
	pid  int
	log  string
}

func startDocShell(t *testing.T, bash, bin string, dirs map[string]string, ports map[int]int) *docShell {
	t.Helper()
	internal := dirs[".docs-test"]
	out, err := os.Create(filepath.Join(internal, "output.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer statusW.Close()
	sh := &docShell{
		out:     out.Name(),
		errFile: filepath.Join(internal, "err"),
		status:  make(chan string, 16),
		done:    make(chan struct{}),
	}
	cmd := exec.Command(bash, "--noprofile", "--norc")
	cmd.Dir = dirs["work"]
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = []*os.File{statusW}
	// A clean environment: the docs must not depend on the caller's, and
	// cairn refuses CAIRN_* variables it does not know (such as
	// CAIRN_REQUIRE_EXTERNAL). The defaults of a cairn started without
	// address flags point at the free ports of 4001, 7001 and 8053.
	cmd.Env = []string{
		"PATH=" + dirs["bin"] + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + dirs["home"],
		"TMPDIR=" + dirs["tmp"],
		"LC_ALL=C",
		"TERM=dumb",
		"DOCS_CAIRN_BIN=" + bin,
		"DOCS_ERR=" + sh.errFile,
		fmt.Sprintf("CAIRN_ADDR=127.0.0.1:%d", ports[4001]),
		fmt.Sprintf("CAIRN_PEER_ADDR=127.0.0.1:%d", ports[7001]),
		fmt.Sprintf("CAIRN_DNS_ADDR=127.0.0.1:%d", ports[8053]),
		fmt.Sprintf("CAIRN_ENDPOINTS=https://127.0.0.1:%d", ports[4001]),
	}
	// A session of its own: the shell's process group (which the
	// stop kills) is its session's, and no controlling terminal of the
	// caller reaches the shell, whose set -m (one process group per
	// background block) would otherwise fight over it.
	setProcAttr(cmd)
	cmd.SysProcAttr.Setpgid = false
	cmd.SysProcAttr.Setsid = true
	if sh.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bash, err)
	}
	sh.cmd = cmd
	go func() {
		defer statusR.Close()
		sc := bufio.NewScanner(statusR)
		for sc.Scan() {
			sh.status <- sc.Text()
		}
	}()
	go func() {
		cmd.Wait()
		close(sh.done)
	}()
	t.Cleanup(func() { sh.stop(t) })
	sh.send(t, `set -eE -o pipefail
trap 'echo "$? ${BASH_SOURCE[0]:-} $LINENO" > "$DOCS_ERR"' ERR
`)
	return sh
}

func (sh *docShell) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(sh.stdin, s); err != nil {
		t.Fatalf("write to the docs shell: %v", err)
	}
}

// foreground runs one block and fails the test, naming the document line of
// the failing command, when it fails or does not finish in time.
func (sh *docShell) foreground(t *testing.T, doc string, b DocBlock, i int, file string) {
	t.Helper()
	from := fileSize(sh.out)
	start := time.Now()
	// The block's stdin is /dev/null so that no command reads the shell's
	// own input, and fd 3 is closed so that what it leaves running does
	// not hold the status pipe.
	sh.send(t, fmt.Sprintf("source %q </dev/null 3>&-; echo \"ok %d\" >&3\n", file, i))
	timeout := time.NewTimer(docBlockTimeout)
	defer timeout.Stop()
	for {
		select {
		case line := <-sh.status:
			if line == fmt.Sprintf("ok %d", i) {
				t.Logf("%s:%d: ok (%v)", doc, b.Line, time.Since(start).Round(time.Millisecond))
				return
			}
		case <-sh.done:
			// set -e ended the shell: report the failing command.
			status, where := "?", fmt.Sprintf("%s:%d (the block)", doc, b.Line)
			if e, err := os.ReadFile(sh.errFile); err == nil {
				f := strings.Fields(string(e))
				if len(f) == 3 {
					status = f[0]
					if n, err := strconv.Atoi(f[2]); err == nil && f[1] == file {
						where = fmt.Sprintf("%s:%d", doc, b.Line+n)
					}
				}
			}
			t.Fatalf("%s: a command failed (exit status %s) in the block at %s:%d:\n%s\n--- its output ---\n%s%s",
				where, status, doc, b.Line, numbered(file), tailFrom(sh.out, from, 8<<10), sh.bgLogs())
		case <-timeout.C:
			t.Fatalf("%s:%d: the block did not finish within %v (a server that should be marked <!-- docs-test: background -->?):\n%s\n--- its output ---\n%s%s",
				doc, b.Line, docBlockTimeout, numbered(file), tailFrom(sh.out, from, 8<<10), sh.bgLogs())
		}
	}
}

// background starts a block in a subshell (its own log, no ERR trap) and
// waits until its ready ports accept connections.
func (sh *docShell) background(t *testing.T, doc string, b DocBlock, i int, file string, rw DocRewriter) {
	t.Helper()
	log := filepath.Join(filepath.Dir(file), fmt.Sprintf("background%d.log", i))
	// set -m gives the job its own process group, so that stopping it
	// stops what it started.
	sh.send(t, fmt.Sprintf("set -m; ( trap - ERR; source %q ) </dev/null >%q 2>&1 3>&- & echo \"bg %d $!\" >&3; set +m\n", file, log, i))
	var pid int
	select {
	case line := <-sh.status:
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "bg" || f[1] != strconv.Itoa(i) {
			t.Fatalf("%s:%d: unexpected status %q", doc, b.Line, line)
		}
		pid, _ = strconv.Atoi(f[2])
	case <-sh.done:
		t.Fatalf("%s:%d: the shell ended starting a background block:\n%s", doc, b.Line, tailFrom(sh.out, 0, 8<<10))
	}
	sh.bg = append(sh.bg, bgJob{line: b.Line, pid: pid, log: log})
	start := time.Now()
	for _, p := range b.Ready {
		addr := fmt.Sprintf("127.0.0.1:%d", rw.Ports[p])
		err := poll.Check(docReadyTimeout, func() error {
			if syscall.Kill(pid, 0) != nil {
				return poll.Stop(errBgEnded)
			}
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return err
			}
			c.Close()
			return nil
		})
		if err != nil {
			t.Fatalf("%s:%d: background block not ready: port %d (%s): %v\n%s%s", doc, b.Line, p, addr, err, numbered(file), sh.bgLogs())
		}
	}
	t.Logf("%s:%d: started in the background (pid %d), ready in %v", doc, b.Line, pid, time.Since(start).Round(time.Millisecond))
}

var errBgEnded = errors.New("the background block has ended")

// stopBackground stops the background blocks started so far.
func (sh *docShell) stopBackground(t *testing.T, doc string, b DocBlock) {
	t.Helper()
	start := time.Now()
	if err := stopGroups(sh.bgGroups()); err != nil {
		t.Logf("%s:%d: %v", doc, b.Line, err)
	}
	t.Logf("%s:%d: stopped %d background blocks in %v", doc, b.Line, len(sh.bg), time.Since(start).Round(time.Millisecond))
	sh.stopped = append(sh.stopped, sh.bg...)
	sh.bg = nil
}

func (sh *docShell) bgGroups() []int {
	var pgids []int
	for _, j := range sh.bg {
		pgids = append(pgids, j.pid)
	}
	return pgids
}

// stopGroups sends SIGTERM to process groups, all at once, and SIGKILL to
// what is left of them after 10 s.
func stopGroups(pgids []int) error {
	for _, g := range pgids {
		_ = syscall.Kill(-g, syscall.SIGTERM)
	}
	var left []int
	err := poll.Check(10*time.Second, func() error {
		left = left[:0]
		for _, g := range pgids {
			if syscall.Kill(-g, 0) == nil {
				left = append(left, g)
			}
		}
		if len(left) > 0 {
			return errors.New("processes left")
		}
		return nil
	})
	if err != nil {
		for _, g := range left {
			_ = syscall.Kill(-g, syscall.SIGKILL)
		}
		return fmt.Errorf("process groups %v still running 10 s after SIGTERM; killed", left)
	}
	return nil
}

// stop ends the shell and everything it started: the background blocks
// (each in its own process group) and the shell's own group, where what a
// block starts with & stays; SIGTERM first, SIGKILL after 10 s.
func (sh *docShell) stop(t *testing.T) {
	sh.stdin.Close()
	start := time.Now()
	if err := stopGroups(append(sh.bgGroups(), sh.cmd.Process.Pid)); err != nil {
		t.Logf("docs: %v", err)
	}
	<-sh.done
	t.Logf("docs: stopped every process in %v", time.Since(start).Round(time.Millisecond))
	switch {
	case os.Getenv("CAIRN_DOCS_OUTPUT") == "1":
		t.Logf("--- output of the document's shell ---\n%s%s", tailFrom(sh.out, 0, 1<<30), sh.bgLogs())
	case t.Failed():
		t.Logf("--- output of the document's shell, last 12 KiB ---\n%s%s", tailFrom(sh.out, 0, 12<<10), sh.bgLogs())
	}
}

// bgLogs is the tail of every background block's log.
func (sh *docShell) bgLogs() string {
	var sb strings.Builder
	for _, j := range append(sh.stopped, sh.bg...) {
		fmt.Fprintf(&sb, "\n--- background block at line %d (pid %d), last 4 KiB ---\n%s", j.line, j.pid, tailFrom(j.log, 0, 4<<10))
	}
	return sb.String()
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// tailFrom is the last n bytes of path from offset from.
func tailFrom(path string, from int64, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	if from < int64(len(b)) {
		b = b[from:]
	} else {
		b = nil
	}
	if len(b) > n {
		b = append([]byte("..."), b[len(b)-n:]...)
	}
	return string(b)
}

// numbered is the rewritten block with line numbers relative to its fence.
func numbered(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	var sb strings.Builder
	for i, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		fmt.Fprintf(&sb, "  +%-3d %s\n", i+1, l)
	}
	return sb.String()
}
