package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

// TestTLSNetworkDialTLS: with DialTLS, a network's new connections use the
// material reloaded since start, so a peer CA replaced on disk is trusted
// without a restart; a network whose ClientTLS was made at start cannot
// reach the rotated peer.
func TestTLSNetworkDialTLS(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.crt")
	newCA := func() *pki.CA {
		ca := tlstest.NewCA(t)
		if err := ca.WriteFiles(caFile, filepath.Join(dir, "ca.key")); err != nil {
			t.Fatal(err)
		}
		return ca
	}
	ca := newCA()
	mA := peerMaterial(t, ca, caFile, dir, "a", true)
	mB := peerMaterial(t, ca, caFile, dir, "b", true)

	reloading, err := NewTLSNetwork(TLSNetworkConfig{
		BindAddr: "127.0.0.1:0", AdvertiseAddr: "127.0.0.1:0",
		ServerTLS: mA.PeerServerConfig(tlsconf.Options{}, testTD, nil),
		DialTLS:   mA.PeerDialConfig(tlsconf.Options{}, testTD, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reloading.Close() })
	fixed := newTestTLSNetwork(t, mA, "127.0.0.1:0")

	// A new CA replaces the old one; both nodes get certificates from it.
	ca = newCA()
	mA = reissue(t, mA, ca, dir, "a")
	mB = reissue(t, mB, ca, dir, "b")
	b := newTestTLSNetwork(t, mB, "127.0.0.1:0")
	b.Serve(echo)

	ctx := context.Background()
	if ans, err := reloading.Call(ctx, b.Addr().String(), []byte("x")); err != nil || string(ans) != "echo:x" {
		t.Fatalf("call with DialTLS after the rotation: %q, %v", ans, err)
	}
	if _, err := fixed.Call(ctx, b.Addr().String(), []byte("y")); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("call with a ClientTLS made before the rotation: %v, want unknown authority", err)
	}
}

// reissue writes a new node certificate from ca over name's files and
// reloads m.
func reissue(t *testing.T, m *tlsconf.Material, ca *pki.CA, dir, name string) *tlsconf.Material {
	t.Helper()
	tlstest.WritePair(t, dir, name, m.Files().CAFile, tlstest.IssueNode(t, ca, testTD, name))
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTLSNetworkDialTLSError(t *testing.T) {
	bad := errors.New("no material")
	_, err := NewTLSNetwork(TLSNetworkConfig{
		BindAddr: "127.0.0.1:0", AdvertiseAddr: "127.0.0.1:0",
		ServerTLS: &tls.Config{},
		DialTLS:   func() (*tls.Config, error) { return nil, bad },
	})
	if !errors.Is(err, bad) {
		t.Fatalf("NewTLSNetwork: %v, want the DialTLS error", err)
	}
}
