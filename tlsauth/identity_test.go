package tlsauth

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/url"
	"testing"
)

const testTD = "cairn.internal"

func certWith(cn string, uris ...string) *x509.Certificate {
	c := &x509.Certificate{Subject: pkix.Name{CommonName: cn}}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			panic(err)
		}
		c.URIs = append(c.URIs, u)
	}
	return c
}

func TestIdentityFromCert(t *testing.T) {
	tests := []struct {
		name    string
		cert    *x509.Certificate
		want    Identity
		str     string
		wantErr error
	}{
		{"node", certWith("ignored", "spiffe://cairn.internal/node/n1"), Identity{"n1", KindNode}, "node/n1", nil},
		{"client", certWith("alice", "spiffe://cairn.internal/client/alice"), Identity{"alice", KindClient}, "client/alice", nil},
		{"CN only", certWith("etcd-peer-1"), Identity{"etcd-peer-1", KindCN}, "etcd-peer-1", nil},
		{"non-SPIFFE URI falls back to CN", certWith("web", "https://example.com/web"), Identity{"web", KindCN}, "web", nil},
		{"first SPIFFE URI wins", certWith("", "https://example.com", "spiffe://cairn.internal/client/a", "spiffe://cairn.internal/node/b"), Identity{"a", KindClient}, "client/a", nil},
		{"trust domain case-insensitive", certWith("", "spiffe://CAIRN.internal/node/n1"), Identity{"n1", KindNode}, "node/n1", nil},
		{"foreign trust domain", certWith("admin", "spiffe://evil.example/node/n1"), Identity{}, "", ErrForeignTrustDomain},
		{"foreign first, ours second", certWith("", "spiffe://evil.example/node/n1", "spiffe://cairn.internal/node/n1"), Identity{}, "", ErrForeignTrustDomain},
		{"unknown namespace", certWith("admin", "spiffe://cairn.internal/workload/x"), Identity{}, "", ErrInvalidIdentity},
		{"nested path", certWith("", "spiffe://cairn.internal/node/a/b"), Identity{}, "", ErrInvalidIdentity},
		{"no name", certWith("", "spiffe://cairn.internal/node/"), Identity{}, "", ErrInvalidIdentity},
		{"port", certWith("", "spiffe://cairn.internal:443/node/n1"), Identity{}, "", ErrInvalidIdentity},
		{"query", certWith("", "spiffe://cairn.internal/node/n1?x=1"), Identity{}, "", ErrInvalidIdentity},
		{"escaped name", certWith("", "spiffe://cairn.internal/node/a%2Fb"), Identity{}, "", ErrInvalidIdentity},
		{"empty", certWith(""), Identity{}, "", ErrNoIdentity},
		{"nil", nil, Identity{}, "", ErrNoIdentity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := IdentityFromCert(tt.cert, testTD)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("identity = %#v, want %#v", got, tt.want)
			}
			if err == nil && got.String() != tt.str {
				t.Errorf("String() = %q, want %q", got.String(), tt.str)
			}
		})
	}
	if _, err := IdentityFromCert(certWith("x"), "Bad Domain"); !errors.Is(err, ErrInvalidTrustDomain) {
		t.Errorf("invalid trust domain: err = %v", err)
	}
}

func TestIsNode(t *testing.T) {
	allowed := []string{"peer.example"}
	tests := []struct {
		id   Identity
		want bool
	}{
		{Identity{"n1", KindNode}, true},
		{Identity{"n1", KindClient}, false},
		{Identity{"peer.example", KindClient}, false},
		{Identity{"peer.example", KindCN}, true},
		{Identity{"other", KindCN}, false},
		{Identity{"PEER.example", KindCN}, false},
		{Identity{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			if got := IsNode(tt.id, allowed); got != tt.want {
				t.Errorf("IsNode(%v) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

func TestPeerIdentityRequiresVerifiedChain(t *testing.T) {
	leaf := certWith("", "spiffe://cairn.internal/node/n1")
	leaf.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	// Unverified peer certificates alone are not an identity.
	if _, err := PeerIdentity(tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}, testTD); !errors.Is(err, ErrNoVerifiedPeer) {
		t.Errorf("unverified: err = %v, want ErrNoVerifiedPeer", err)
	}
	got, err := PeerIdentity(tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf}}}, testTD)
	if err != nil || got != (Identity{"n1", KindNode}) {
		t.Errorf("verified: %v, %v", got, err)
	}
}

// TestClientIdentity: the one identity rule refuses a certificate without
// the clientAuth usage (no extension at all included), a foreign trust
// domain and a certificate without identity.
func TestClientIdentity(t *testing.T) {
	withEKU := func(c *x509.Certificate, eku ...x509.ExtKeyUsage) *x509.Certificate {
		c.ExtKeyUsage = eku
		return c
	}
	for _, tt := range []struct {
		name string
		c    *x509.Certificate
		want error
	}{
		{"client in the trust domain", withEKU(certWith("", "spiffe://cairn.internal/client/a"), x509.ExtKeyUsageClientAuth), nil},
		{"CN", withEKU(certWith("alice"), x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth), nil},
		{"no EKU extension", certWith("alice"), ErrNoClientAuth},
		{"serverAuth only", withEKU(certWith("alice"), x509.ExtKeyUsageServerAuth), ErrNoClientAuth},
		{"foreign trust domain", withEKU(certWith("root", "spiffe://evil.example/client/root"), x509.ExtKeyUsageClientAuth), ErrForeignTrustDomain},
		{"no identity", withEKU(certWith(""), x509.ExtKeyUsageClientAuth), ErrNoIdentity},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ClientIdentity(tt.c, testTD); !errors.Is(err, tt.want) {
				t.Errorf("ClientIdentity: %v, want %v", err, tt.want)
			}
		})
	}
}
