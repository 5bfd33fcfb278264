package e2e

// Backup and restore with the real binary: cairn snapshot save against a
// running member, cairn snapshot restore into a fresh data dir, cairn serve
// on it, and a member that joins the restored cluster. The restored store
// must answer exactly as the original: keys, values, directories,
// createdIndex, modifiedIndex, expiration (absolute, so the remaining TTL
// agrees within a second), X-Etcd-Index, hidden keys and the watch history.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/store"
)

// snapNode is a node of a keys answer, flattened (Nodes emptied).
type snapNode = store.NodeExtern

// snapTree is what a member answers for the whole key space: the nodes of
// a recursive sorted GET of / in order, each hidden key read on its own,
// and X-Etcd-Index.
type snapTree struct {
	Index string
	Nodes []*snapNode
}

// hiddenKeys are not listed by a recursive GET; they are read one by one.
var hiddenKeys = []string{"/_hidden", "/dir/_secret/x", "/_hdir"}

func readTree(t *testing.T, s *Server) snapTree {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := s.Client(t).Get(ctx, "/", v2client.GetOptions{Recursive: true, Sorted: true})
	if err != nil {
		t.Fatalf("%s: GET /: %v", s, err)
	}
	tree := snapTree{Index: strconv.FormatUint(ev.EtcdIndex, 10)}
	var walk func(ns store.NodeExterns)
	walk = func(ns store.NodeExterns) {
		for _, n := range ns {
			tree.Nodes = append(tree.Nodes, n)
			walk(n.Nodes)
			n.Nodes = nil
		}
	}
	walk(ev.Node.Nodes)
	for _, k := range hiddenKeys {
		h, err := s.GetKey(t, k)
		if err != nil {
			t.Fatalf("%s: GET %s: %v", s, k, err)
		}
		h.Node.Nodes = nil
		tree.Nodes = append(tree.Nodes, h.Node)
	}
	return tree
}

// compareTrees reports every difference between got and want; TTLs may
// differ by a second (the two were read one after the other).
func compareTrees(t *testing.T, what string, got, want snapTree) {
	t.Helper()
	if got.Index != want.Index {
		t.Errorf("%s: X-Etcd-Index %s, want %s", what, got.Index, want.Index)
	}
	str := func(n *snapNode) string {
		c := *n
		c.TTL = 0
		b, _ := json.Marshal(c)
		return string(b)
	}
	if len(got.Nodes) != len(want.Nodes) {
		t.Errorf("%s: %d nodes, want %d", what, len(got.Nodes), len(want.Nodes))
	}
	for i := range min(len(got.Nodes), len(want.Nodes)) {
		g, w := got.Nodes[i], want.Nodes[i]
		if str(g) != str(w) {
			t.Errorf("%s: node %d is %s, want %s", what, i, str(g), str(w))
		}
		if d := g.TTL - w.TTL; d < -1 || d > 1 {
			t.Errorf("%s: %s has ttl %d, want %d (within a second)", what, w.Key, g.TTL, w.TTL)
		}
	}
}

// cairnCmd runs a cairn client command and returns its standard output.
func cairnCmd(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, needCairn(t), args...)
	cmd.Env = cleanEnv("CAIRN_")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cairn %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

func TestSnapshotSaveRestore(t *testing.T) {
	t.Parallel()
	src := startCairn(t)
	c := src.Client(t)
	h := time.Second
	for _, w := range []struct {
		method, key, value string
		o                  v2client.SetOptions
	}{
		{http.MethodPut, "/a", "1", v2client.SetOptions{}},
		{http.MethodPut, "/a", "1 again", v2client.SetOptions{}}, // createdIndex != modifiedIndex
		{http.MethodPut, "/dir/sub/b", strings.Repeat("x", 5000), v2client.SetOptions{}},
		{http.MethodPut, "/emptydir", "", v2client.SetOptions{Dir: true}},
		{http.MethodPut, "/ttl/k1", "t1", v2client.SetOptions{TTL: 3600 * h}},
		{http.MethodPut, "/ttl/k2", "t2", v2client.SetOptions{TTL: 7200 * h}},
		{http.MethodPut, "/ttldir", "", v2client.SetOptions{Dir: true, TTL: 5000 * h}},
		{http.MethodPut, "/_hidden", "h", v2client.SetOptions{}},
		{http.MethodPut, "/dir/_secret/x", "s", v2client.SetOptions{}},
		{http.MethodPut, "/_hdir", "", v2client.SetOptions{Dir: true}},
		{http.MethodPost, "/queue", "first", v2client.SetOptions{}},
		{http.MethodPost, "/queue", "second", v2client.SetOptions{}},
		{http.MethodPut, "/gone", "x", v2client.SetOptions{}},
		{http.MethodDelete, "/gone", "", v2client.SetOptions{}},
		{http.MethodPut, "/ttl/k1", "", v2client.SetOptions{Refresh: true, PrevExist: v2client.PrevExists, TTL: 3000 * h}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var err error
		switch w.method {
		case http.MethodPut:
			_, err = c.Set(ctx, w.key, w.value, w.o)
		case http.MethodPost:
			_, err = c.CreateInOrder(ctx, w.key, w.value, 0)
		case http.MethodDelete:
			_, err = c.Delete(ctx, w.key, v2client.DeleteOptions{Recursive: true})
		}
		cancel()
		if err != nil {
			t.Fatalf("%s %s %q %+v: %v", w.method, w.key, w.value, w.o, err)
		}
	}
	before := readTree(t, src)

	dir := t.TempDir()
	file := filepath.Join(dir, "backup.snap")
	out := cairnCmd(t, append([]string{"snapshot", "save", file}, nodeConn(src)...)...)
	m := regexp.MustCompile(`^Snapshot saved to .*: store index (\d+), raft index \d+, 8 keys, 8 directories, `).FindStringSubmatch(out)
	if m == nil || m[1] != before.Index {
		t.Fatalf("save printed %q; want store index %s, 8 keys and 8 directories", out, before.Index)
	}
	if out := cairnCmd(t, "snapshot", "status", file); !strings.Contains(out, "store index:  "+before.Index+"\n") {
		t.Errorf("status printed %q", out)
	}

	// The source keeps going; the backup has what it had when it was taken.
	if _, err := src.SetKey(t, "/after", "later"); err != nil {
		t.Fatalf("PUT /after: %v", err)
	}

	cfg := &CairnConfig{Bin: needCairn(t), PKI: testPKI, Name: "r1", DataDir: filepath.Join(dir, "restored"),
		Port: FreePort(t), PeerPort: FreePort(t)}
	peer := "127.0.0.1:" + strconv.Itoa(cfg.PeerPort)
	out = cairnCmd(t, "snapshot", "restore", file, "--data-dir", cfg.DataDir, "--name", "r1",
		"--addr", "127.0.0.1:"+strconv.Itoa(cfg.Port), "--peer-addr", peer)
	if !strings.Contains(out, "8 keys, 8 directories, store index "+before.Index) {
		t.Errorf("restore printed %q", out)
	}
	restored := StartCairn(t, cfg)

	// Read both now, one after the other, so that the remaining TTLs agree.
	srcNow, got := readTree(t, src), readTree(t, restored)
	srcNow.Nodes = without(srcNow.Nodes, "/after")
	srcNow.Index = before.Index
	compareTrees(t, "restored", got, srcNow)
	for _, n := range got.Nodes {
		if n.Key == "/ttl/k1" && (n.TTL < 2990 || n.TTL > 3000) {
			t.Errorf("/ttl/k1 after restore has ttl %d; want the refreshed 3000 minus the seconds since", n.TTL)
		}
	}
	// Raw HTTP: the cluster ID is a header.
	resp, _ := restored.Get(t, "/v2/keys/", "")
	if resp.Header.Get("X-Etcd-Cluster-Id") == "" || resp.Header.Get("X-Etcd-Cluster-Id") == srcClusterID(t, src) {
		t.Errorf("restored cluster ID %q; want a new one", resp.Header.Get("X-Etcd-Cluster-Id"))
	}

	// The watch history came along: a watch from index 1 sees the first write.
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	wa := restored.Client(t).Watch("/a", v2client.WatchOptions{})
	wa.Resume(0) // from index 1
	if ev, err := wa.Next(wctx); err != nil || *ev.Node.Value != "1" || ev.Node.ModifiedIndex != 1 || ev.Node.CreatedIndex != 1 {
		t.Errorf("watch from index 1 on the restored member: %+v, %v", ev, err)
	}
	// Writes go on from the backup's store index.
	next, _ := strconv.ParseUint(before.Index, 10, 64)
	if ev, err := restored.SetKey(t, "/new", "v"); err != nil || !ev.IsCreated() || ev.Node.CreatedIndex != next+1 {
		t.Errorf("write on the restored member: %+v, %v; want createdIndex %d", ev, err, next+1)
	}

	// A new member joins the restored cluster the usual way.
	joiner := StartCairn(t, &CairnConfig{Bin: needCairn(t), PKI: testPKI, Name: "r2", Args: []string{"--peers", peer}})
	Poll(t, 30*time.Second, "the joiner to list two members", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ms, err := joiner.Client(t).Members(ctx)
		if err != nil {
			return err
		}
		if len(ms) != 2 {
			return fmt.Errorf("%d members: %+v", len(ms), ms)
		}
		return nil
	})
	compareTrees(t, "joiner", readTree(t, joiner), readTree(t, restored))
}

func without(ns []*snapNode, key string) []*snapNode {
	var out []*snapNode
	for _, n := range ns {
		if n.Key != key {
			out = append(out, n)
		}
	}
	return out
}

func srcClusterID(t *testing.T, s *Server) string {
	t.Helper()
	resp, _ := s.Get(t, "/v2/keys/", "")
	return resp.Header.Get("X-Etcd-Cluster-Id")
}

// A restore refuses a data dir in use and a damaged backup, saying what to
// do, and changes nothing.
func TestSnapshotRestoreRefusals(t *testing.T) {
	t.Parallel()
	src := startCairn(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "b.snap")
	cairnCmd(t, append([]string{"snapshot", "save", file}, nodeConn(src)...)...)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.snap")
	if err := os.WriteFile(cut, b[:len(b)*2/3], 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		file, dataDir string
		want          []string
	}{
		{file, src.DataDir, []string{"is not empty", "restore into a new or empty directory"}},
		{cut, filepath.Join(dir, "new"), []string{"incomplete", "take a new backup with cairn snapshot save"}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, needCairn(t), "snapshot", "restore", tt.file, "--data-dir", tt.dataDir)
		cmd.Env = cleanEnv("CAIRN_")
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil {
			t.Errorf("restore %s into %s succeeded", tt.file, tt.dataDir)
		}
		for _, w := range tt.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("restore %s into %s: %s; want it to say %q", tt.file, tt.dataDir, out, w)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !os.IsNotExist(err) {
		t.Errorf("a refused restore created its data dir: %v", err)
	}
	// The running member's data dir is untouched: it still serves.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := src.Healthy(ctx); err != nil {
		t.Error(err)
	}
}

// nodeConn is serverConn with the member's node certificate, which sits
// next to the client's: a backup holds Cairn's private keys, so with
// authorization off only a node identity may take one.
func nodeConn(s *Server) []string {
	dir := filepath.Dir(s.Files.CertFile)
	return []string{"--endpoints", s.URL, "--cacert", s.Files.CAFile, "--cert", filepath.Join(dir, "node.crt"), "--key", filepath.Join(dir, "node.key")}
}
