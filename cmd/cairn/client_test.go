package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/clustertest/refused"
	"github.com/cairnkv/cairn/cluster/v2http"
	"github.com/cairnkv/cairn/cmd/cairn/server"
	"github.com/cairnkv/cairn/cmd/cairn/server/servertest"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// fakeMembers is a Cluster with MemberAdmin for the client commands: only
// the membership is real.
type fakeMembers struct {
	st *store.Store

	mu        sync.Mutex
	leader    uint64
	members   []cluster.Member
	nextID    uint64
	addErr    error // answered by AddMember when set
	removeErr error // answered by RemoveMember when set
	adds      int
	removes   int
}

var (
	_ v2http.Cluster     = (*fakeMembers)(nil)
	_ v2http.MemberAdmin = (*fakeMembers)(nil)
)

// newFakeMembers is a 3-member cluster led by node1, whose third member
// was added but has not started.
func newFakeMembers() *fakeMembers {
	return &fakeMembers{
		st:     store.New(store.Config{}),
		leader: 1,
		nextID: 0x8e9e05c52164694d,
		members: []cluster.Member{
			{ID: 1, Name: "node1", PeerURLs: []string{"https://10.0.0.1:7001"}, ClientURLs: []string{"https://10.0.0.1:4001"}},
			{ID: 2, Name: "node2", PeerURLs: []string{"https://10.0.0.2:7001"}, ClientURLs: []string{"https://10.0.0.2:4001", "https://[::1]:4001"}},
			{ID: 3, PeerURLs: []string{"https://10.0.0.3:7001"}},
		},
	}
}

// memberErr is a membership error with the status v2http maps it to.
type memberErr struct {
	code int
	msg  string
}

func (e *memberErr) Error() string   { return e.msg }
func (e *memberErr) StatusCode() int { return e.code }

func (f *fakeMembers) Store() *store.Store { return f.st }

func (f *fakeMembers) Propose(context.Context, *store.Request) (*store.Event, error) {
	return nil, &memberErr{500, "fake: no writes"}
}

func (f *fakeMembers) ReadBarrier(context.Context) error { return nil }

func (f *fakeMembers) Status() cluster.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return cluster.Status{ID: 1, Name: "node1", ClusterID: 0xcdf818194e3a8c32, LeaderID: f.leader}
}

func (f *fakeMembers) Members() []cluster.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.members)
}

func (f *fakeMembers) AddMember(_ context.Context, peerURLs []string) (cluster.Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.adds++
	if f.addErr != nil {
		return cluster.Member{}, f.addErr
	}
	for _, m := range f.members {
		if slices.Equal(m.PeerURLs, peerURLs) {
			return cluster.Member{}, &memberErr{409, "Peer URLs already exists"}
		}
	}
	m := cluster.Member{ID: f.nextID, PeerURLs: peerURLs}
	f.nextID++
	f.members = append(f.members, m)
	return m, nil
}

func (f *fakeMembers) UpdateMember(context.Context, uint64, []string) error { return nil }

func (f *fakeMembers) RemoveMember(_ context.Context, id uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removes++
	if f.removeErr != nil {
		return f.removeErr
	}
	i := slices.IndexFunc(f.members, func(m cluster.Member) bool { return m.ID == id })
	if i < 0 {
		return &memberErr{404, "no such member"}
	}
	f.members = slices.Delete(f.members, i, i+1)
	return nil
}

// TransferLeadership moves the leadership to a started member: to, else
// the first started one that does not lead.
func (f *fakeMembers) TransferLeadership(_ context.Context, to uint64) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.members {
		if m.Name != "" && (m.ID == to || (to == 0 && m.ID != f.leader)) {
			f.leader = m.ID
			return m.ID, nil
		}
	}
	return 0, &memberErr{404, "no such voter"}
}

// count is the number of AddMember calls so far.
func (f *fakeMembers) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.adds
}

func (f *fakeMembers) set(fn func(f *fakeMembers)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// newDevPKI makes the development PKI of a data dir, as cairn serve does
// on its first start, and returns the data dir.
func newDevPKI(t *testing.T) (string, pki.Dev) {
	t.Helper()
	dataDir := t.TempDir()
	p, _, err := pki.EnsureDev(filepath.Join(dataDir, "pki"), "node1", "cairn.internal", nil)
	if err != nil {
		t.Fatal(err)
	}
	return dataDir, p
}

// startServer serves h over mutual TLS with the node certificate of p on
// 127.0.0.1, on the client port's listener, and returns its URL: a fake
// member, for answers no real member gives on cue (failures, scripted
// protocols). Tests of a real member start one with servertest.
func startServer(t *testing.T, p pki.Dev, h http.Handler) string {
	t.Helper()
	m, err := tlsconf.LoadMaterial(tlsconf.DevFiles(p))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Requests' contexts end when the test does, so that handlers that
	// wait for it (hung members) return; conns counts the connections'
	// goroutines, which Serve starts and the cleanup waits for.
	ctx, cancel := context.WithCancel(context.Background())
	var conns sync.WaitGroup
	srv := &http.Server{
		Handler: h, ErrorLog: log.New(io.Discard, "", 0),
		BaseContext: func(net.Listener) context.Context { return ctx },
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				conns.Add(1)
			case http.StateClosed, http.StateHijacked:
				conns.Done()
			}
		},
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(server.NewTLSListener(ln, m.ServerConfig(tlsconf.Options{})))
	}()
	t.Cleanup(func() {
		cancel()
		_ = srv.Close()
		<-done
		conns.Wait()
	})
	return "https://" + ln.Addr().String()
}

// startMember serves the v2 API of c, a fake cluster (fakeMembers, or a
// real node's with a capability hidden), with startServer.
func startMember(t *testing.T, p pki.Dev, c v2http.Cluster) string {
	t.Helper()
	h, err := v2http.New(v2http.Config{Cluster: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return startServer(t, p, h)
}

// refusedEndpoint is an address where connections are refused.
func refusedEndpoint(t *testing.T) string { return "https://" + refused.Addr(t) }

// silentEndpoint accepts connections and never says anything: a TLS
// handshake with it hangs until the client gives up.
func silentEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "https://" + ln.Addr().String()
}

// runCairn runs the cairn command line with args in environ.
func runCairn(t *testing.T, environ []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb, environ)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

// TestClientPrecedenceEndToEnd: a broken environment does not matter when
// flags are given, and the development PKI is used for what neither gives.
func TestClientPrecedenceEndToEnd(t *testing.T) {
	s := servertest.Start(t, nil)
	url, dataDir, dev := s.URL, s.Config().DataDir, *s.DevPKI()
	_, other := newDevPKI(t)
	badEnv := []string{"CAIRN_ENDPOINTS=" + refusedEndpoint(t), "CAIRN_CACERT=" + other.CAFile,
		"CAIRN_CERT=" + other.ClientCertFile, "CAIRN_KEY=" + other.ClientKeyFile}

	// Flags beat the environment.
	if _, _, err := runCairn(t, badEnv, "member", "list", "--endpoints", url,
		"--cacert", dev.CAFile, "--cert", dev.ClientCertFile, "--key", dev.ClientKeyFile); err != nil {
		t.Errorf("flags: %v", err)
	}
	// The environment beats the development PKI.
	goodEnv := []string{"CAIRN_ENDPOINTS=" + url, "CAIRN_CACERT=" + dev.CAFile,
		"CAIRN_CERT=" + dev.ClientCertFile, "CAIRN_KEY=" + dev.ClientKeyFile}
	if _, _, err := runCairn(t, goodEnv, "member", "list", "--data-dir", t.TempDir()); err != nil {
		t.Errorf("env: %v", err)
	}
	// The development PKI of --data-dir, with an endpoint from a flag.
	if _, _, err := runCairn(t, nil, "member", "list", "--data-dir", dataDir, "--endpoints", url); err != nil {
		t.Errorf("dev PKI: %v", err)
	}
	// The environment's CA, which does not know the member, is used when
	// no flag overrides it: the error says which option to fix.
	_, _, err := runCairn(t, []string{"CAIRN_CACERT=" + other.CAFile}, "member", "list", "--data-dir", dataDir, "--endpoints", url)
	if err == nil || !strings.Contains(err.Error(), "not signed by a CA in "+other.CAFile+")") || !strings.HasSuffix(err.Error(), "pass the cluster's CA with --cacert or CAIRN_CACERT") {
		t.Errorf("foreign CA: %v", err)
	}
}

// TestClientFailover: reads and writes go to the next endpoint when one
// refuses, hangs in the handshake or takes the request and never answers.
// The member that answers is a fake that counts the adds it gets, so
// that the test can tell a write sent twice.
func TestClientFailover(t *testing.T) {
	_, dev := newDevPKI(t)
	refused, silent := refusedEndpoint(t), silentEndpoint(t)
	fm := newFakeMembers()
	good := startMember(t, dev, fm)
	// hung takes requests and never answers them.
	hung := startServer(t, dev, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	flags := []string{"--cacert", dev.CAFile, "--cert", dev.ClientCertFile, "--key", dev.ClientKeyFile, "--timeout", "300ms"}

	t.Run("read fails over", func(t *testing.T) {
		out, _, err := runCairn(t, nil, append([]string{"member", "list", "--endpoints", strings.Join([]string{refused, silent, hung, good}, ",")}, flags...)...)
		if err != nil || !strings.HasPrefix(out, "1: name=node1") {
			t.Fatalf("%q, %v", out, err)
		}
	})
	t.Run("all down", func(t *testing.T) {
		_, _, err := runCairn(t, nil, append([]string{"member", "list", "--endpoints", refused + "," + silent}, flags...)...)
		if err == nil {
			t.Fatal("no error")
		}
		for _, want := range []string{"no endpoint answered", refused + ": dial tcp", "connection refused",
			silent + ": no answer within 300ms", "raise --timeout", "pass --endpoints or set CAIRN_ENDPOINTS"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
	})
	t.Run("write fails over before it is sent", func(t *testing.T) {
		out, _, err := runCairn(t, nil, append([]string{"member", "add", "node4", "https://10.0.0.4:7001", "--endpoints", refused + "," + silent + "," + good}, flags...)...)
		if err != nil || !strings.HasPrefix(out, "Added member named node4") {
			t.Fatalf("%q, %v", out, err)
		}
	})
	t.Run("write is not sent twice", func(t *testing.T) {
		adds := fm.count()
		_, _, err := runCairn(t, nil, append([]string{"member", "add", "node5", "https://10.0.0.5:7001", "--endpoints", hung + "," + good}, flags...)...)
		if err == nil || !strings.Contains(err.Error(), "the member may have applied it, so it was not sent elsewhere") {
			t.Fatalf("error %v", err)
		}
		if fm.count() != adds {
			t.Errorf("the add reached the second endpoint")
		}
	})
}

func TestClientRejectedCertificate(t *testing.T) {
	s := servertest.Start(t, nil)
	url, dev := s.URL, *s.DevPKI()
	_, other := newDevPKI(t)
	_, _, err := runCairn(t, nil, "member", "list", "--endpoints", url,
		"--cacert", dev.CAFile, "--cert", other.ClientCertFile, "--key", other.ClientKeyFile)
	// The refusal reaches the client as the member's TLS alert or, when the
	// request was on its way already, as a closed connection; either way the
	// client names the certificate.
	if err == nil || !strings.Contains(err.Error(), "the member refused the client certificate "+other.ClientCertFile+" (tls: ") {
		t.Fatalf("error %v", err)
	}
}
