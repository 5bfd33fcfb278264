package v2client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest"
	refusedaddr "github.com/cairnkv/cairn/cluster/clustertest/refused"
	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/cluster/v2http"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// testPKI is a development PKI: the node's server config and a client
// config of the same CA.
type testPKI struct {
	server *tls.Config
	client *tls.Config
	files  pki.Dev
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	p, _, err := pki.EnsureDev(filepath.Join(t.TempDir(), "pki"), "node1", "cairn.internal", nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tlsconf.LoadMaterial(tlsconf.DevFiles(p))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := tlsconf.ClientConfigFromFiles(tlsconf.DevClientFiles(p))
	if err != nil {
		t.Fatal(err)
	}
	return testPKI{server: m.ServerConfig(tlsconf.Options{}), client: cc, files: p}
}

// serve serves h over mutual TLS on loopback until the test ends and
// returns its URL and a function that stops it early.
func serve(t *testing.T, p testPKI, h http.Handler) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(tls.NewListener(ln, p.server))
	}()
	var once sync.Once
	stop := func() { once.Do(func() { _ = srv.Close(); <-done }) }
	t.Cleanup(stop)
	return "https://" + ln.Addr().String(), stop
}

// node is a one-member cluster serving its v2 API; it returns the API's
// handler and URL.
func node(t *testing.T, p testPKI) (http.Handler, string) {
	t.Helper()
	c := clustertest.New(t, 1)
	c.Leader()
	h, err := v2http.New(v2http.Config{Cluster: c.Node(0)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	url, _ := serve(t, p, h)
	return h, url
}

func newClient(t *testing.T, p testPKI, timeout time.Duration, eps ...string) *v2client.Client {
	t.Helper()
	c, err := v2client.New(v2client.Config{Endpoints: eps, TLS: p.client, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// refused is an address where connections are refused.
func refused(t *testing.T) string { return "https://" + refusedaddr.Addr(t) }

func value(ev *store.Event) string {
	if ev == nil || ev.Node == nil || ev.Node.Value == nil {
		return "<none>"
	}
	return *ev.Node.Value
}

func code(err error) int {
	var se *store.Error
	if errors.As(err, &se) {
		return se.ErrorCode
	}
	return 0
}

func TestKeys(t *testing.T) {
	p := newPKI(t)
	_, url := node(t, p)
	c := newClient(t, p, 5*time.Second, url)
	ctx := context.Background()

	ev, err := c.Set(ctx, "/a", "1", v2client.SetOptions{})
	if err != nil || ev.Action != store.ActionSet || value(ev) != "1" || ev.EtcdIndex != ev.Node.ModifiedIndex {
		t.Fatalf("set: %+v, %v", ev, err)
	}
	if _, err := c.Create(ctx, "/a", "2", 0); code(err) != store.EcodeNodeExist {
		t.Fatalf("create existing: %v; want error 105", err)
	}
	var se *store.Error
	if _, err := c.Get(ctx, "/nope", v2client.GetOptions{}); !errors.As(err, &se) || se.ErrorCode != 100 || se.Cause != "/nope" || se.Index != ev.EtcdIndex {
		t.Fatalf("get missing: %#v; want error 100 at index %d", err, ev.EtcdIndex)
	}
	if ev, err = c.Update(ctx, "/a", "2", 10*time.Second); err != nil || ev.Action != store.ActionUpdate || ev.Node.TTL != 10 || value(ev) != "2" {
		t.Fatalf("update: %+v, %v", ev, err)
	}
	if ev, err = c.Refresh(ctx, "a", 20*time.Second); err != nil || ev.Node.TTL != 20 || value(ev) != "2" {
		t.Fatalf("refresh: %+v, %v", ev, err)
	}
	if _, err = c.Set(ctx, "/a", "3", v2client.SetOptions{PrevValue: "x"}); code(err) != store.EcodeTestFailed {
		t.Fatalf("CAS: %v", err)
	}
	if _, err = c.Set(ctx, "/d", "", v2client.SetOptions{Dir: true}); err != nil {
		t.Fatal(err)
	}
	if ev, err = c.CreateInOrder(ctx, "/d", "q", 0); err != nil || !strings.HasPrefix(ev.Node.Key, "/d/0000") {
		t.Fatalf("in order: %+v, %v", ev, err)
	}
	if ev, err = c.Get(ctx, "/", v2client.GetOptions{Recursive: true, Sorted: true}); err != nil || len(ev.Node.Nodes) != 2 || ev.Node.Nodes[1].Key != "/d" || len(ev.Node.Nodes[1].Nodes) != 1 {
		t.Fatalf("recursive get: %+v, %v", ev, err)
	}
	if _, err = c.Get(ctx, "/a", v2client.GetOptions{Stale: true, Quorum: true}); err != nil {
		t.Fatal(err)
	}
	if _, err = c.CompareAndDelete(ctx, "/a", "x"); code(err) != store.EcodeTestFailed {
		t.Fatalf("CAD: %v", err)
	}
	if ev, err = c.CompareAndDelete(ctx, "/a", "2"); err != nil || ev.Action != store.ActionCompareAndDelete {
		t.Fatalf("CAD: %+v, %v", ev, err)
	}
	if _, err = c.Delete(ctx, "/d", v2client.DeleteOptions{Dir: true}); code(err) != store.EcodeDirNotEmpty {
		t.Fatalf("rmdir: %v", err)
	}
	if ev, err = c.Delete(ctx, "/d", v2client.DeleteOptions{Recursive: true}); err != nil || ev.Action != store.ActionDelete {
		t.Fatalf("rm -r: %+v, %v", ev, err)
	}
	if _, err = c.Set(ctx, "/t", "v", v2client.SetOptions{TTL: 1500 * time.Millisecond}); err == nil {
		t.Fatal("a fractional TTL was sent")
	}
}

func TestMembersAndMisc(t *testing.T) {
	p := newPKI(t)
	_, url := node(t, p)
	c := newClient(t, p, 5*time.Second, url)
	ctx := context.Background()
	ms, err := c.Members(ctx)
	if err != nil || len(ms) != 1 || ms[0].Name != "n0" {
		t.Fatalf("members: %+v, %v", ms, err)
	}
	l, err := c.Leader(ctx)
	if err != nil || l.ID != ms[0].ID {
		t.Fatalf("leader: %+v, %v", l, err)
	}
	if err := c.Health(ctx); err != nil {
		t.Fatalf("health: %v", err)
	}
	if s, err := c.SelfStats(ctx); err != nil || s.State != "StateLeader" {
		t.Fatalf("stats: %+v, %v", s, err)
	}
	if v, err := c.Version(ctx); err != nil || v.Server == "" {
		t.Fatalf("version: %+v, %v", v, err)
	}
	m, err := c.AddMember(ctx, []string{"https://10.0.0.9:7001"})
	if err != nil || m.ID == "" || m.Name != "" {
		t.Fatalf("add: %+v, %v", m, err)
	}
	if _, err := c.AddMember(ctx, []string{"https://10.0.0.9:7001"}); v2client.StatusCode(err) != http.StatusConflict {
		t.Fatalf("add twice: %v; want 409", err)
	}
	if err := c.RemoveMember(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	var e *v2client.Error
	if err := c.RemoveMember(ctx, m.ID); !errors.As(err, &e) || e.Status != http.StatusGone {
		t.Fatalf("remove twice: %v; want 410", err)
	}
	cert, err := c.PeerCertificate(ctx, url)
	if err != nil || len(cert.URIs) == 0 || cert.URIs[0].String() != "spiffe://cairn.internal/node/node1" {
		t.Fatalf("peer certificate: %v", err)
	}
}

// down answers 500 with etcd error 300, as a member without a leader
// does, counting requests.
type down struct {
	n        atomic.Int32
	unmarked bool // no X-Cairn-Not-Applied: the write may have been applied
}

func (d *down) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.n.Add(1)
	w.Header().Set("Content-Type", "application/json")
	if !d.unmarked {
		w.Header().Set("X-Cairn-Not-Applied", "true") // as Cairn marks ErrNotLeader
	}
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = io.WriteString(w, `{"errorCode":300,"message":"Raft Internal Error","cause":"no leader","index":0}`+"\n")
}

func TestFailover(t *testing.T) {
	p := newPKI(t)
	_, good := node(t, p)
	sick := &down{}
	sickURL, _ := serve(t, p, sick)
	hung, _ := serve(t, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	unsure := &down{unmarked: true}
	unsureURL, _ := serve(t, p, unsure)
	gone := refused(t) // last: a server started after it could be given its port
	ctx := context.Background()

	// A write goes past a refused dial and a member that proposed nothing
	// (its answer says so); a read goes past a hung member too.
	c := newClient(t, p, 300*time.Millisecond, gone, sickURL, good)
	if _, err := c.Set(ctx, "/k", "v", v2client.SetOptions{}); err != nil {
		t.Fatalf("set through the third endpoint: %v", err)
	}
	if _, err := newClient(t, p, 300*time.Millisecond, hung, good).Get(ctx, "/k", v2client.GetOptions{}); err != nil {
		t.Fatalf("get through a hung member: %v", err)
	}
	if sick.n.Load() != 1 {
		t.Fatalf("%d requests to the sick member; want 1", sick.n.Load())
	}
	// The endpoint that answered is asked first from now on.
	if ev, err := c.Get(ctx, "/k", v2client.GetOptions{}); err != nil || value(ev) != "v" || sick.n.Load() != 1 {
		t.Fatalf("get: %v, %d requests to the sick member", err, sick.n.Load())
	}

	// A write that is not safe twice is not sent after a timeout.
	c = newClient(t, p, 300*time.Millisecond, hung, good)
	_, err := c.Create(ctx, "/new", "v", 0)
	if !errors.Is(err, v2client.ErrMayHaveApplied) || !errors.Is(err, v2client.ErrTimeout) {
		t.Fatalf("create through a hung member: %v; want ErrMayHaveApplied", err)
	}
	if _, err := newClient(t, p, time.Second, good).Get(ctx, "/new", v2client.GetOptions{}); code(err) != 100 {
		t.Fatalf("the create reached the second member: %v", err)
	}

	// Nor is a plain set or delete: a second copy could overwrite another
	// client's write made in between.
	c = newClient(t, p, 300*time.Millisecond, hung, good)
	if _, err := c.Set(ctx, "/k", "again", v2client.SetOptions{}); !errors.Is(err, v2client.ErrMayHaveApplied) {
		t.Fatalf("set through a hung member: %v; want ErrMayHaveApplied", err)
	}
	if _, err := c.Delete(ctx, "/k", v2client.DeleteOptions{}); !errors.Is(err, v2client.ErrMayHaveApplied) {
		t.Fatalf("delete through a hung member: %v; want ErrMayHaveApplied", err)
	}
	// A 5xx without the mark (a raft timeout: maybe applied) is the answer.
	if _, err := newClient(t, p, time.Second, unsureURL, good).Set(ctx, "/unsure", "v", v2client.SetOptions{}); code(err) != store.EcodeRaftInternal {
		t.Fatalf("set answered 500 without the mark: %v; want that answer, not a second copy elsewhere", err)
	}
	if _, err := newClient(t, p, time.Second, good).Get(ctx, "/unsure", v2client.GetOptions{}); code(err) != 100 {
		t.Fatalf("the set reached the second member: %v", err)
	}
	// A refresh is: it changes no value.
	if _, err := c.Set(ctx, "/k", "", v2client.SetOptions{Refresh: true, PrevExist: v2client.PrevExists, TTL: 10 * time.Second}); err != nil {
		t.Fatalf("refresh through a hung member, then a good one: %v", err)
	}

	// Every member answers 5xx: the answer is the cluster's.
	c = newClient(t, p, 300*time.Millisecond, gone, sickURL)
	if _, err := c.Get(ctx, "/k", v2client.GetOptions{}); code(err) != store.EcodeRaftInternal || !errors.Is(err, v2client.ErrNotApplied) {
		t.Fatalf("get: %v; want error 300 marked as not applied", err)
	}
	if _, err := newClient(t, p, time.Second, unsureURL).Get(ctx, "/k", v2client.GetOptions{}); code(err) != store.EcodeRaftInternal || errors.Is(err, v2client.ErrNotApplied) {
		t.Fatalf("get from a member that did not mark its answer: %v; want error 300, not marked", err)
	}
	// No member answers.
	c = newClient(t, p, 300*time.Millisecond, gone, hung)
	_, err = c.Get(ctx, "/k", v2client.GetOptions{})
	if !errors.Is(err, v2client.ErrUnavailable) || !strings.Contains(err.Error(), gone+": dial tcp") ||
		!strings.Contains(err.Error(), hung+": no answer within 300ms") {
		t.Fatalf("get: %v", err)
	}
}

func TestRejectedCertificate(t *testing.T) {
	p, other := newPKI(t), newPKI(t)
	_, url := node(t, p)
	c, err := v2client.New(v2client.Config{Endpoints: []string{url}, TLS: other.client, CAFile: "other-ca.crt"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Get(context.Background(), "/", v2client.GetOptions{})
	if !errors.Is(err, v2client.ErrUntrustedMember) || !strings.Contains(err.Error(), "not signed by a CA in other-ca.crt") {
		t.Fatalf("foreign CA: %v", err)
	}
}

func TestBoundedAnswer(t *testing.T) {
	p := newPKI(t)
	url, _ := serve(t, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("x", 2000))
	}))
	c, err := v2client.New(v2client.Config{Endpoints: []string{url}, TLS: p.client, MaxResponseBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Get(context.Background(), "/", v2client.GetOptions{}); err == nil || !strings.Contains(err.Error(), "larger than 1000 bytes") {
		t.Fatalf("get: %v", err)
	}
}

func TestCheckEndpoints(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"https://a:1/", "https://a:1"},
		{"http://a:4001", "Cairn serves HTTPS only: write https://a:4001"},
		{"a:4001", `endpoint "a:4001" is not a URL: write https://a:4001`},
		{"ftp://a:1", "the scheme must be https"},
		{"https://a:1/v2/keys", "give only https://host:port"},
		{"https://", "has no host"},
	}
	for _, tt := range tests {
		got, err := v2client.CheckEndpoints([]string{tt.in})
		if err != nil {
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%q: %v; want %q", tt.in, err, tt.want)
			}
			continue
		}
		if got[0] != tt.want {
			t.Errorf("%q: %q; want %q", tt.in, got[0], tt.want)
		}
	}
	if _, err := v2client.New(v2client.Config{Endpoints: []string{"https://a:1"}}); err == nil {
		t.Error("a client without TLS")
	}
}

func TestCanonicalKey(t *testing.T) {
	for in, want := range map[string]string{
		"": "/", "/": "/", "a": "/a", "/a/": "/a/", "//a//b/": "/a/b/", "/a/../b": "/b", "/..": "/", "/n/./../n//k": "/n/k",
	} {
		if got := v2client.CanonicalKey(in); got != want {
			t.Errorf("CanonicalKey(%q) = %q; want %q", in, got, want)
		}
	}
}

// TestBlocking: a Blocking request may wait past Config.Timeout for its
// answer; the same request without it gives up at the timeout. Err decodes
// a failed answer.
func TestBlocking(t *testing.T) {
	p := newPKI(t)
	const timeout = 100 * time.Millisecond
	url, _ := serve(t, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"errorCode":100,"message":"Key not found","cause":"/x","index":0}`)
			return
		}
		// A server that answers late, as a lock granted after a wait. The
		// GET never gets an answer, not even the empty 200 of a handler
		// that returns: only its client's timeout can end it.
		late := time.After(5 * timeout)
		if r.Method == http.MethodGet {
			late = nil
		}
		select {
		case <-late:
		case <-r.Context().Done():
			panic(http.ErrAbortHandler) // close the connection, answer nothing
		}
		_, _ = io.WriteString(w, "42")
	}))
	c := newClient(t, p, timeout, url)
	ctx := context.Background()
	if _, err := c.Do(ctx, v2client.Request{Method: http.MethodGet, Path: "/slow"}); !errors.Is(err, v2client.ErrTimeout) {
		t.Fatalf("not blocking: %v; want ErrTimeout", err)
	}
	resp, err := c.Do(ctx, v2client.Request{Method: http.MethodPost, Path: "/slow", Blocking: true, Idempotent: true})
	if err != nil || string(resp.Body) != "42" || resp.Err() != nil {
		t.Fatalf("blocking request: %+v, %v", resp, err)
	}
	resp, err = c.Do(ctx, v2client.Request{Method: http.MethodGet, Path: "/missing"})
	if err != nil {
		t.Fatal(err)
	}
	if code(resp.Err()) != store.EcodeKeyNotFound {
		t.Fatalf("Err of a 404: %v", resp.Err())
	}
}
