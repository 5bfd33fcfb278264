package peer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

const testTD = tlstest.TrustDomain

// peerMaterial issues a node ("node") or client certificate from ca into dir.
func peerMaterial(t testing.TB, ca *pki.CA, caFile, dir, name string, node bool) *tlsconf.Material {
	t.Helper()
	var iss pki.Issued
	if node {
		iss = tlstest.IssueNode(t, ca, testTD, name)
	} else {
		iss = tlstest.IssueClient(t, ca, name)
	}
	m, err := tlsconf.LoadMaterial(tlstest.WritePair(t, dir, name, caFile, iss))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// twoPeers is two networks on loopback with node certificates of one CA.
func twoPeers(t testing.TB) (a, b *Network) {
	t.Helper()
	p := tlstest.NewPKI(t)
	mA := peerMaterial(t, p.CA, p.CAFile, p.Dir, "a", true)
	mB := peerMaterial(t, p.CA, p.CAFile, p.Dir, "b", true)
	return newTestNetwork(t, mA, "127.0.0.1:0"), newTestNetwork(t, mB, "127.0.0.1:0")
}

func newTestNetwork(t testing.TB, m *tlsconf.Material, bind string) *Network {
	t.Helper()
	n, err := New(Config{
		BindAddr: bind, AdvertiseAddr: bind,
		ServerTLS: m.PeerServerConfig(tlsconf.Options{}, testTD, nil),
		ClientTLS: m.PeerClientConfig(tlsconf.Options{}, testTD, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func echo(_ context.Context, req []byte) []byte { return append([]byte("echo:"), req...) }

// TestNetworkCall: forwarding frames travel over mutual TLS between
// nodes, on a shared multiplexed connection; a connection whose peer went
// away is dropped before a request is sent on it; a client certificate
// cannot call.
func TestNetworkCall(t *testing.T) {
	p := tlstest.NewPKI(t)
	dir, ca, caFile := p.Dir, p.CA, p.CAFile
	mA := peerMaterial(t, ca, caFile, dir, "a", true)
	mB := peerMaterial(t, ca, caFile, dir, "b", true)

	a := newTestNetwork(t, mA, "127.0.0.1:0")
	b := newTestNetwork(t, mB, "127.0.0.1:0")
	b.Serve(echo)
	addrB := b.Addr().String()
	ctx := context.Background()
	for i := range 3 { // the second and third reuse the connection
		ans, err := a.Call(ctx, addrB, []byte{byte('0' + i)})
		if err != nil || string(ans) != "echo:"+string(rune('0'+i)) {
			t.Fatalf("call %d: %q, %v", i, ans, err)
		}
	}
	if c := muxConns(a, addrB); c != 1 {
		t.Fatalf("%d connections after sequential calls, want 1", c)
	}

	// b restarts at the same address: a's connection is dead, and is
	// dropped when its FIN arrives; the next call dials afresh.
	b.Close()
	b2 := newTestNetwork(t, mB, addrB)
	b2.Serve(echo)
	poll.Until(t, 10*time.Second, "a to drop its connection to the closed b", func() bool { return muxConns(a, addrB) == 0 })
	if ans, err := a.Call(ctx, addrB, []byte("x")); err != nil || string(ans) != "echo:x" {
		t.Fatalf("call after the peer restarted: %q, %v", ans, err)
	}

	// Nothing listens: the call is refused before sending, and says so.
	b2.Close()
	if _, err := a.Call(ctx, addrB, []byte("y")); !errors.Is(err, cluster.ErrNotSent) {
		t.Fatalf("call to a closed peer: %v, want cluster.ErrNotSent", err)
	}

	// A client certificate is refused on the peer port.
	mC := peerMaterial(t, ca, caFile, dir, "c", false)
	b3 := newTestNetwork(t, mB, "127.0.0.1:0")
	b3.Serve(echo)
	cli := &Network{cfg: Config{ClientTLS: mC.ClientConfig(tlsconf.Options{})}, idle: map[string][]idleConn{}, mux: map[string]*muxPool{}}
	if ans, err := cli.Call(ctx, b3.Addr().String(), []byte("z")); err == nil {
		t.Fatalf("a client certificate called the peer port: %q", ans)
	}
}

func muxConns(n *Network, addr string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p := n.mux[addr]; p != nil {
		return len(p.conns)
	}
	return 0
}

// TestNetworkCallConcurrent: many calls in flight share at most
// muxConnsPerPeer connections, and each gets its own answer, whatever the
// order the handler finishes them in.
func TestNetworkCallConcurrent(t *testing.T) {
	a, b := twoPeers(t)
	release := make(chan struct{})
	b.Serve(func(ctx context.Context, req []byte) []byte {
		if req[0]%2 == 0 {
			<-release // even requests wait until every odd one is answered
		}
		return echo(ctx, req)
	})
	const calls = 100
	var odd sync.WaitGroup
	odd.Add(calls / 2)
	errs := make(chan error, calls)
	var all sync.WaitGroup
	for i := range calls {
		all.Go(func() {
			ans, err := a.Call(context.Background(), b.Addr().String(), []byte{byte(i)})
			if err == nil && string(ans) != "echo:"+string([]byte{byte(i)}) {
				err = fmt.Errorf("call %d got %q", i, ans)
			}
			errs <- err
			if i%2 == 1 {
				odd.Done()
			}
		})
	}
	odd.Wait()
	close(release)
	all.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if c := muxConns(a, b.Addr().String()); c < 1 || c > muxConnsPerPeer {
		t.Fatalf("%d connections, want 1 to %d", c, muxConnsPerPeer)
	}
}

// TestNetworkCallLegacy: a peer that predates protoMux closes the
// multiplexed connection at once; the caller then speaks protoForward to
// it, and nothing is lost.
func TestNetworkCallLegacy(t *testing.T) {
	a, b := twoPeers(t)
	b.noMux = true
	b.Serve(echo)
	for i := range 3 {
		ans, err := a.Call(context.Background(), b.Addr().String(), []byte{byte('0' + i)})
		if err != nil || string(ans) != "echo:"+string(rune('0'+i)) {
			t.Fatalf("call %d to an old peer: %q, %v", i, ans, err)
		}
	}
	if c := muxConns(a, b.Addr().String()); c != 0 {
		t.Fatalf("%d multiplexed connections to a peer that refuses them", c)
	}
}

// TestNetworkCallAbandoned: a call whose context ends gets the context's
// error; the connection still serves the next call.
func TestNetworkCallAbandoned(t *testing.T) {
	a, b := twoPeers(t)
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	b.Serve(func(ctx context.Context, req []byte) []byte {
		if string(req) == "block" {
			<-block
		}
		return echo(ctx, req)
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		poll.Until(t, 10*time.Second, "the call in flight", func() bool { return muxConns(a, b.Addr().String()) == 1 })
		cancel()
	}()
	if _, err := a.Call(ctx, b.Addr().String(), []byte("block")); !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned call: %v, want context.Canceled", err)
	}
	if ans, err := a.Call(context.Background(), b.Addr().String(), []byte("x")); err != nil || string(ans) != "echo:x" {
		t.Fatalf("call after an abandoned one: %q, %v", ans, err)
	}
}

// TestNetworkCallShortDeadline: a call with a short deadline that a busy
// peer does not answer in time gets its context's error, and the
// connections stay up: the calls in flight on them still get their
// answers (a lock refresh's 20 ms deadline once closed a loaded peer's
// connections under every forwarded write).
func TestNetworkCallShortDeadline(t *testing.T) {
	a, b := twoPeers(t)
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	var held atomic.Int32
	b.Serve(func(ctx context.Context, req []byte) []byte {
		if string(req) != "quick" {
			held.Add(1)
		}
		<-release
		return echo(ctx, req)
	})
	addr := b.Addr().String()
	// Fill every connection with a call that waits.
	errs := make(chan error, muxConnsPerPeer)
	for i := range muxConnsPerPeer {
		go func() {
			want := fmt.Sprintf("held%d", i)
			ans, err := a.Call(context.Background(), addr, []byte(want))
			if err == nil && string(ans) != "echo:"+want {
				err = fmt.Errorf("answer %q to %q", ans, want)
			}
			errs <- err
		}()
	}
	poll.Until(t, 10*time.Second, "the held calls at the peer", func() bool { return held.Load() == muxConnsPerPeer })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := a.Call(ctx, addr, []byte("quick")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call past its deadline: %v, want context.DeadlineExceeded", err)
	}
	free()
	for range muxConnsPerPeer {
		if err := <-errs; err != nil {
			t.Errorf("a call in flight beside one past its short deadline: %v", err)
		}
	}
}

func benchMaterial(b *testing.B, p *tlstest.PKI, name string) *tlsconf.Material {
	return peerMaterial(b, p.CA, p.CAFile, p.Dir, name, true)
}
