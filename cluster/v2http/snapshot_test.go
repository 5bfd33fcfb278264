package v2http

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/clustertest"
	"github.com/cairnkv/cairn/store"
)

// failingSnapshotter is a fake cluster whose backups fail as a member
// without quorum does.
type failingSnapshotter struct{ *fakeCluster }

func (failingSnapshotter) Backup(context.Context) (*cluster.Backup, error) {
	return nil, cluster.ErrTimeout
}

func TestSnapshotEndpoint(t *testing.T) {
	c := clustertest.New(t, 1)
	c.Leader()
	node := c.Node(0)
	ctx := context.Background()
	for _, k := range []string{"/a", "/dir/b", "/_hidden"} {
		if _, err := node.Propose(ctx, &store.Request{Method: store.MethodPut, Path: k, Value: "v" + k}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := New(Config{Cluster: node})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })

	w := doAs(h, "node/n1", http.MethodGet, snapshotPath, "")
	if w.Code != http.StatusOK {
		t.Fatalf("GET: %d %s", w.Code, w.Body)
	}
	idx := node.Store().Index()
	for k, v := range map[string]string{
		"Content-Type":        "application/octet-stream",
		"X-Etcd-Index":        strconv.FormatUint(idx, 10),
		"X-Etcd-Cluster-Id":   hexID(node.ClusterID()),
		"Content-Disposition": `attachment; filename="cairn-` + hexID(node.ClusterID()) + "-" + strconv.FormatUint(idx, 10) + `.snap"`,
	} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if ri, _ := strconv.ParseUint(w.Header().Get("X-Raft-Index"), 10, 64); ri == 0 {
		t.Errorf("X-Raft-Index %q", w.Header().Get("X-Raft-Index"))
	}
	file := filepath.Join(t.TempDir(), "b.snap")
	if err := os.WriteFile(file, w.Body.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	sum, err := cluster.VerifyBackup(file)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Keys != 3 || sum.Dirs != 1 || sum.StoreIndex != idx || sum.MemberID != node.ID() {
		t.Errorf("backup %+v; want 3 keys, 1 dir, index %d", sum, idx)
	}

	// Cut short anywhere, the body is refused.
	for _, n := range []int{w.Body.Len() - 1, w.Body.Len() / 2, 20} {
		if err := os.WriteFile(file, w.Body.Bytes()[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := cluster.VerifyBackup(file); !errors.Is(err, cluster.ErrBadBackup) {
			t.Errorf("%d of %d bytes: %v; want ErrBadBackup", n, w.Body.Len(), err)
		}
	}
}

func TestSnapshotEndpointErrors(t *testing.T) {
	h, _ := newTestHandler(t, store.Config{}, nil)
	w := do(h, http.MethodPost, snapshotPath, "")
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET" {
		t.Errorf("POST: %d, Allow %q", w.Code, w.Header().Get("Allow"))
	}
	checkResponse(t, doAs(h, "node/n1", http.MethodGet, snapshotPath, ""), http.StatusNotImplemented,
		`{"message":"snapshots are not supported by this server"}`)

	failing, _ := newTestHandler(t, store.Config{}, func(c *Config) {
		c.Cluster = failingSnapshotter{c.Cluster.(*fakeCluster)}
	})
	checkResponse(t, doAs(failing, "node/n1", http.MethodGet, snapshotPath, ""), http.StatusInternalServerError,
		`{"message":"cannot take a consistent snapshot: `+cluster.ErrTimeout.Error()+`"}`)

	// With every slot taken, a snapshot waits for none: 503 and Retry-After.
	for range maxSnapshotStreams {
		snapshotSlots <- struct{}{}
	}
	w = doAs(failing, "node/n1", http.MethodGet, snapshotPath, "")
	for range maxSnapshotStreams {
		<-snapshotSlots
	}
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("all slots taken: %d %s, Retry-After %q", w.Code, w.Body, w.Header().Get("Retry-After"))
	}
}

// With authorization on, only root (a root user or a node) may take a
// backup; nothing is taken for anyone else.
func TestSnapshotNeedsRoot(t *testing.T) {
	h, _ := newTestHandler(t, store.Config{}, func(c *Config) {
		c.Cluster = failingSnapshotter{c.Cluster.(*fakeCluster)}
	})
	setupPolicy(t, h)
	for _, id := range []string{"client/web", "client/none", "client/stranger", "", "spiffe://evil.example/client/root"} {
		w := doAs(h, id, http.MethodGet, snapshotPath, "")
		if w.Code != http.StatusUnauthorized || w.Body.String() != noAuth {
			t.Errorf("%q: %d %s, want 401 %s", id, w.Code, w.Body, noAuth)
		}
	}
	// Root gets through to the backup, which fails here.
	for _, id := range []string{rootID, "node/n2"} {
		mustCode(t, id, doAs(h, id, http.MethodGet, snapshotPath, ""), http.StatusInternalServerError)
	}
}
