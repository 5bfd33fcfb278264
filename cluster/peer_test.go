package cluster

import (
	"context"
	"errors"
	"testing"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

const testTD = tlstest.TrustDomain

// peerMaterial issues a node ("node") or client certificate from ca into dir.
func peerMaterial(t *testing.T, ca *pki.CA, caFile, dir, name string, node bool) *tlsconf.Material {
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

func newTestTLSNetwork(t *testing.T, m *tlsconf.Material, bind string) *TLSNetwork {
	t.Helper()
	n, err := NewTLSNetwork(TLSNetworkConfig{
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

// TestTLSNetworkCall: forwarding frames travel over mutual TLS between
// nodes; a pooled connection whose peer went away is noticed before a
// request is sent on it; a client certificate cannot call.
func TestTLSNetworkCall(t *testing.T) {
	p := tlstest.NewPKI(t)
	dir, ca, caFile := p.Dir, p.CA, p.CAFile
	mA := peerMaterial(t, ca, caFile, dir, "a", true)
	mB := peerMaterial(t, ca, caFile, dir, "b", true)

	a := newTestTLSNetwork(t, mA, "127.0.0.1:0")
	b := newTestTLSNetwork(t, mB, "127.0.0.1:0")
	b.Serve(echo)
	addrB := b.Addr().String()
	ctx := context.Background()
	for i := range 3 { // the second and third reuse the pooled connection
		ans, err := a.Call(ctx, addrB, []byte{byte('0' + i)})
		if err != nil || string(ans) != "echo:"+string(rune('0'+i)) {
			t.Fatalf("call %d: %q, %v", i, ans, err)
		}
	}

	// b restarts at the same address: a's pooled connection is dead, and
	// the next call must notice before sending, not fail after.
	b.Close()
	b2 := newTestTLSNetwork(t, mB, addrB)
	b2.Serve(echo)
	// Wait for the FIN to reach a's pooled connection (the probe leaves it
	// in the pool, as dead as before).
	poll.Until(t, waitTimeout, "a's pooled connection to see b close it", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		ics := a.idle[addrB]
		return len(ics) == 1 && !alive(ics[0].c)
	})
	if ans, err := a.Call(ctx, addrB, []byte("x")); err != nil || string(ans) != "echo:x" {
		t.Fatalf("call after the peer restarted: %q, %v", ans, err)
	}

	// Nothing listens: the call is refused before sending, and says so.
	b2.Close()
	if _, err := a.Call(ctx, addrB, []byte("y")); !errors.Is(err, ErrNotSent) {
		t.Fatalf("call to a closed peer: %v, want ErrNotSent", err)
	}

	// A client certificate is refused on the peer port.
	mC := peerMaterial(t, ca, caFile, dir, "c", false)
	b3 := newTestTLSNetwork(t, mB, "127.0.0.1:0")
	b3.Serve(echo)
	cli := &TLSNetwork{cfg: TLSNetworkConfig{ClientTLS: mC.ClientConfig(tlsconf.Options{})}, idle: map[string][]idleConn{}}
	if ans, err := cli.Call(ctx, b3.Addr().String(), []byte("z")); err == nil {
		t.Fatalf("a client certificate called the peer port: %q", ans)
	}
}
