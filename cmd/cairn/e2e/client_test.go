package e2e

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	client "go.etcd.io/etcd/client/v2"
)

// newGoClient returns a Go v2 client (go.etcd.io/etcd/client/v2) for s.
func newGoClient(t *testing.T, s *Server) client.Client {
	t.Helper()
	cfg, err := tlsconf.ClientConfigFromFiles(s.Files)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{
		Endpoints:               []string{s.URL},
		Transport:               &http.Transport{TLSClientConfig: cfg},
		HeaderTimeoutPerRequest: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	return c
}

// TestGoClient is a smoke test of the Go v2 client against etcd (which
// validates the test) and cairn: members sync, version, the key operations
// it exposes, and watches.
func TestGoClient(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{KindEtcd, KindCairn} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			var s *Server
			if kind == KindEtcd {
				s = StartEtcd(t, testPKI, "goc")
			} else {
				s = startCairn(t)
			}
			testGoClient(t, s)
		})
	}
}

func testGoClient(t *testing.T, s *Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := newGoClient(t, s)

	if err := c.Sync(ctx); err != nil {
		t.Fatalf("Sync (GET /v2/members): %v", err)
	}
	if got := c.Endpoints(); !slices.Equal(got, []string{s.URL}) {
		t.Errorf("endpoints after Sync = %v, want [%s]", got, s.URL)
	}
	mapi := client.NewMembersAPI(c)
	ms, err := mapi.List(ctx)
	if err != nil || len(ms) != 1 || !slices.Equal(ms[0].ClientURLs, []string{s.URL}) || ms[0].ID == "" {
		t.Errorf("members: %+v, %v; want one member with clientURLs [%s]", ms, err, s.URL)
	}
	if l, err := mapi.Leader(ctx); err != nil || l == nil || !slices.Equal(l.ClientURLs, []string{s.URL}) {
		t.Errorf("leader: %+v, %v", l, err)
	}
	if v, err := c.GetVersion(ctx); err != nil || v.Server == "" || v.Cluster == "" {
		t.Errorf("GetVersion: %+v, %v", v, err)
	}

	kapi := client.NewKeysAPI(c)
	set, err := kapi.Set(ctx, "/goc/a", "1", nil)
	if err != nil || set.Action != "set" || set.Node.Value != "1" || set.Index == 0 || set.ClusterID == "" {
		t.Fatalf("Set: %+v, %v", set, err)
	}
	if r, err := kapi.Get(ctx, "/goc/a", nil); err != nil || r.Node.Value != "1" || r.Node.ModifiedIndex != set.Node.ModifiedIndex {
		t.Errorf("Get: %+v, %v", r, err)
	}
	_, err = kapi.Set(ctx, "/goc/a", "2", &client.SetOptions{PrevExist: client.PrevNoExist})
	wantCode(t, "Set PrevNoExist on an existing key", err, client.ErrorCodeNodeExist)
	if r, err := kapi.Create(ctx, "/goc/b", "b"); err != nil || r.Action != "create" {
		t.Errorf("Create: %+v, %v", r, err)
	}
	if r, err := kapi.Update(ctx, "/goc/b", "b2"); err != nil || r.Action != "update" || r.PrevNode.Value != "b" {
		t.Errorf("Update: %+v, %v", r, err)
	}
	_, err = kapi.Update(ctx, "/goc/none", "x")
	wantCode(t, "Update of a missing key", err, client.ErrorCodeKeyNotFound)
	if r, err := kapi.Set(ctx, "/goc/b", "b3", &client.SetOptions{PrevValue: "b2"}); err != nil || r.Action != "compareAndSwap" {
		t.Errorf("CAS: %+v, %v", r, err)
	}
	_, err = kapi.Set(ctx, "/goc/b", "b4", &client.SetOptions{PrevValue: "wrong"})
	wantCode(t, "CAS with a wrong prevValue", err, client.ErrorCodeTestFailed)
	if r, err := kapi.Set(ctx, "/goc/t", "t", &client.SetOptions{TTL: 100 * time.Second}); err != nil || r.Node.TTL == 0 || r.Node.Expiration == nil {
		t.Errorf("Set with TTL: %+v, %v", r, err)
	}
	if r, err := kapi.Set(ctx, "/goc/t", "", &client.SetOptions{TTL: 200 * time.Second, Refresh: true, PrevExist: client.PrevExist}); err != nil || r.Node.Value != "t" || r.Node.TTL < 199 {
		t.Errorf("refresh: %+v, %v", r, err)
	}
	if r, err := kapi.Set(ctx, "/goc/nv", "x", &client.SetOptions{NoValueOnSuccess: true}); err != nil || r.Node != nil || r.Action != "set" {
		t.Errorf("NoValueOnSuccess: %+v, %v", r, err)
	}
	q1, err := kapi.CreateInOrder(ctx, "/goc/q", "first", nil)
	if err != nil {
		t.Fatalf("CreateInOrder: %v", err)
	}
	if _, err := kapi.CreateInOrder(ctx, "/goc/q", "second", nil); err != nil {
		t.Fatalf("CreateInOrder: %v", err)
	}
	q, err := kapi.Get(ctx, "/goc/q", &client.GetOptions{Sort: true, Recursive: true})
	if err != nil || len(q.Node.Nodes) != 2 || q.Node.Nodes[0].Key != q1.Node.Key || q.Node.Nodes[1].Value != "second" {
		t.Errorf("sorted in-order listing: %+v, %v", q, err)
	}
	if r, err := kapi.Delete(ctx, "/goc/a", &client.DeleteOptions{PrevIndex: set.Node.ModifiedIndex}); err != nil || r.Action != "compareAndDelete" {
		t.Errorf("CAD: %+v, %v", r, err)
	}
	if r, err := kapi.Delete(ctx, "/goc/q", &client.DeleteOptions{Recursive: true}); err != nil || r.Action != "delete" || !r.Node.Dir {
		t.Errorf("recursive delete: %+v, %v", r, err)
	}

	// Watches: from history, then a live one that a later write fires.
	// AfterIndex pins the start, so a write that lands before the watch
	// request is registered is still found in history.
	w1, err := kapi.Set(ctx, "/goc/w", "w1", nil)
	if err != nil {
		t.Fatal(err)
	}
	hist := kapi.Watcher("/goc/w", &client.WatcherOptions{AfterIndex: w1.Index - 1})
	if r, err := hist.Next(ctx); err != nil || r.Node.Value != "w1" {
		t.Errorf("watch from history: %+v, %v", r, err)
	}
	type result struct {
		r   *client.Response
		err error
	}
	got := make(chan result, 1)
	rec := kapi.Watcher("/goc", &client.WatcherOptions{AfterIndex: w1.Index, Recursive: true})
	go func() {
		r, err := rec.Next(ctx)
		got <- result{r, err}
	}()
	w2, err := kapi.Set(ctx, "/goc/sub/x", "w2", nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-got:
		if res.err != nil || res.r.Node.Key != "/goc/sub/x" || res.r.Node.ModifiedIndex != w2.Node.ModifiedIndex {
			t.Errorf("recursive watch: %+v, %v; want the set of /goc/sub/x", res.r, res.err)
		}
	case <-ctx.Done():
		t.Fatal("recursive watch did not fire")
	}
}

// wantCode checks that err is an etcd error with code.
func wantCode(t *testing.T, what string, err error, code int) {
	t.Helper()
	var e client.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Errorf("%s: got %v, want etcd error %d", what, err, code)
	}
}
