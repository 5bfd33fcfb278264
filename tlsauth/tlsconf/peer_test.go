package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/tlsauth"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

// loadIssued writes iss as <name>.crt/.key in p.dir trusting p.caFile and
// loads it.
func loadIssued(t *testing.T, p *tlstest.PKI, name string, iss pki.Issued) *tlsconf.Material {
	t.Helper()
	m, err := tlsconf.LoadMaterial(tlstest.WritePair(t, p.Dir, name, p.CAFile, iss))
	if err != nil {
		t.Fatalf("LoadMaterial %s: %v", name, err)
	}
	return m
}

// loadSigned is loadIssued for a certificate made by signLeaf.
func loadSigned(t *testing.T, p *tlstest.PKI, name string, c tls.Certificate) *tlsconf.Material {
	t.Helper()
	return loadIssued(t, p, name, tlstest.Issued(t, c))
}

func TestPeerHandshake(t *testing.T) {
	p := tlstest.NewPKI(t) // p.nodeMat is node/n1, p.clientMat client/alice
	allowed := []string{"peer9.example"}
	n2 := loadIssued(t, p, "n2", tlstest.IssueNode(t, p.CA, tlstest.TrustDomain, "n2"))
	root := loadIssued(t, p, "root", tlstest.IssueClient(t, p.CA, "root"))
	foreignTD := loadIssued(t, p, "foreign-td", tlstest.IssueNode(t, p.CA, "other.internal", "n3"))
	cnAllowed := loadSigned(t, p, "peer9", tlstest.Sign(t, p.CA, tlstest.PeerTemplate("peer9.example", "")))
	cnOther := loadSigned(t, p, "peer8", tlstest.Sign(t, p.CA, tlstest.PeerTemplate("peer8.example", "")))
	// A client identity in a certificate that may also serve: only the
	// identity check stands between it and the peer port.
	clientServing := loadSigned(t, p, "client-serving", tlstest.Sign(t, p.CA, tlstest.PeerTemplate("mallory", "spiffe://"+tlstest.TrustDomain+"/client/mallory")))
	// A client-only certificate (clientAuth usage) that names the host, so
	// that the usage, not the name, is what refuses it as a server.
	clientOnlyTmpl := tlstest.PeerTemplate("root", "spiffe://"+tlstest.TrustDomain+"/client/root")
	clientOnlyTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	clientOnly := loadSigned(t, p, "client-only", tlstest.Sign(t, p.CA, clientOnlyTmpl))

	peerServer := func(m *tlsconf.Material, allowedCNs []string) *tls.Config {
		return m.PeerServerConfig(tlsconf.Options{}, tlstest.TrustDomain, allowedCNs)
	}
	peerClient := func(m *tlsconf.Material, allowedCNs []string) *tls.Config {
		return m.PeerClientConfig(tlsconf.Options{}, tlstest.TrustDomain, allowedCNs)
	}
	h2Client := p.NodeMaterial.ClientConfig(tlsconf.Options{})
	h2Client.NextProtos = []string{"h2"}
	byIP := peerClient(n2, nil)
	byIP.ServerName = "127.0.0.1"

	n1 := tlsauth.Identity{Name: "n1", Kind: tlsauth.KindNode}
	tests := []struct {
		name   string
		server *tls.Config
		client *tls.Config
		// On success, the identities each side sees.
		wantClientID, wantServerID tlsauth.Identity
		// On failure (wantClientID zero), what the server's or the
		// client's error must contain, and the sentinel it wraps.
		wantSrvErr, wantCliErr string
		wantIs                 error
	}{
		{name: "node to node", server: peerServer(p.NodeMaterial, nil), client: peerClient(n2, nil),
			wantClientID: tlsauth.Identity{Name: "n2", Kind: tlsauth.KindNode}, wantServerID: n1},
		{name: "node to node dialed by IP", server: peerServer(p.NodeMaterial, nil), client: byIP,
			wantClientID: tlsauth.Identity{Name: "n2", Kind: tlsauth.KindNode}, wantServerID: n1},
		{name: "client certificate on the peer port", server: peerServer(p.NodeMaterial, allowed), client: root.ClientConfig(tlsconf.Options{}),
			wantSrvErr: `tlsauth: peer port: certificate identity "client/root" is not a node; only node certificates (spiffe://cairn.internal/node/<name>, or a CN listed in --peer-cert-allowed-cn) may speak raft`,
			wantIs:     tlsconf.ErrNotNode},
		{name: "client certificate with the peer ALPN", server: peerServer(p.NodeMaterial, nil), client: peerClient(root, nil),
			wantSrvErr: `certificate identity "client/root" is not a node`, wantIs: tlsconf.ErrNotNode},
		{name: "CN in allowedCNs", server: peerServer(p.NodeMaterial, allowed), client: peerClient(cnAllowed, nil),
			wantClientID: tlsauth.Identity{Name: "peer9.example", Kind: tlsauth.KindCN}, wantServerID: n1},
		{name: "CN not in allowedCNs", server: peerServer(p.NodeMaterial, allowed), client: peerClient(cnOther, nil),
			wantSrvErr: `certificate identity "peer8.example" is not a node`, wantIs: tlsconf.ErrNotNode},
		{name: "CN without allowedCNs", server: peerServer(p.NodeMaterial, nil), client: peerClient(cnAllowed, nil),
			wantSrvErr: `certificate identity "peer9.example" is not a node`, wantIs: tlsconf.ErrNotNode},
		{name: "node of another trust domain", server: peerServer(p.NodeMaterial, nil), client: peerClient(foreignTD, nil),
			wantSrvErr: "tlsauth: peer port: certificate: certificate belongs to another trust domain", wantIs: tlsauth.ErrForeignTrustDomain},
		{name: "client offering only h2", server: peerServer(p.NodeMaterial, nil), client: h2Client,
			wantSrvErr: "unsupported application protocols"},

		{name: "server with a client-only certificate", server: peerServer(clientOnly, nil), client: peerClient(n2, nil),
			wantCliErr: "incompatible key usage"},
		{name: "server with a client identity", server: peerServer(clientServing, nil), client: peerClient(n2, nil),
			wantCliErr: `tlsauth: peer dial: server certificate identity "client/mallory" is not a node`, wantIs: tlsconf.ErrNotNode},
		{name: "server with a CN not in allowedCNs", server: peerServer(cnOther, nil), client: peerClient(n2, allowed),
			wantCliErr: `tlsauth: peer dial: server certificate identity "peer8.example" is not a node`, wantIs: tlsconf.ErrNotNode},
		{name: "server with a CN in allowedCNs", server: peerServer(cnAllowed, nil), client: peerClient(n2, allowed),
			wantClientID: tlsauth.Identity{Name: "n2", Kind: tlsauth.KindNode}, wantServerID: tlsauth.Identity{Name: "peer9.example", Kind: tlsauth.KindCN}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tlstest.Handshake(t, tt.server, tt.client)
			if tt.wantClientID == (tlsauth.Identity{}) {
				if r.ServerErr == nil || r.ClientErr == nil {
					t.Fatalf("handshake succeeded (server err %v, client err %v)", r.ServerErr, r.ClientErr)
				}
				failed := r.ServerErr
				if tt.wantCliErr != "" {
					failed = r.ClientErr
					if !strings.Contains(r.ClientErr.Error(), tt.wantCliErr) {
						t.Errorf("client error %q does not contain %q", r.ClientErr, tt.wantCliErr)
					}
				}
				if tt.wantSrvErr != "" && !strings.Contains(r.ServerErr.Error(), tt.wantSrvErr) {
					t.Errorf("server error %q does not contain %q", r.ServerErr, tt.wantSrvErr)
				}
				if tt.wantIs != nil && !errors.Is(failed, tt.wantIs) {
					t.Errorf("error %v does not wrap %v", failed, tt.wantIs)
				}
				return
			}
			if r.ServerErr != nil || r.ClientErr != nil {
				t.Fatalf("server err %v, client err %v", r.ServerErr, r.ClientErr)
			}
			if r.Client.NegotiatedProtocol != tlsconf.PeerALPN || r.Server.NegotiatedProtocol != tlsconf.PeerALPN {
				t.Errorf("negotiated %q (client), %q (server), want %q", r.Client.NegotiatedProtocol, r.Server.NegotiatedProtocol, tlsconf.PeerALPN)
			}
			if id, err := tlsauth.PeerIdentity(r.Server, tlstest.TrustDomain); err != nil || id != tt.wantClientID {
				t.Errorf("server sees %v (%v), want %v", id, err, tt.wantClientID)
			}
			if id, err := tlsauth.PeerIdentity(r.Client, tlstest.TrustDomain); err != nil || id != tt.wantServerID {
				t.Errorf("client sees %v (%v), want %v", id, err, tt.wantServerID)
			}
		})
	}
}

// TestPeerConfigCopiesAllowedCNs: the caller's slice may be reused after
// the configuration is built.
func TestPeerConfigCopiesAllowedCNs(t *testing.T) {
	p := tlstest.NewPKI(t)
	cn := loadSigned(t, p, "peer9", tlstest.Sign(t, p.CA, tlstest.PeerTemplate("peer9.example", "")))
	allowed := []string{"peer9.example"}
	srv := p.NodeMaterial.PeerServerConfig(tlsconf.Options{}, tlstest.TrustDomain, allowed)
	allowed[0] = "changed.example"
	r := tlstest.Handshake(t, srv, cn.PeerClientConfig(tlsconf.Options{}, tlstest.TrustDomain, nil))
	if r.ServerErr != nil || r.ClientErr != nil {
		t.Fatalf("server err %v, client err %v", r.ServerErr, r.ClientErr)
	}
}

// TestPeerReload rotates the CA and both nodes' certificates on disk: after
// Reload, the same PeerServerConfig presents the new certificate and
// trusts only the new CA, and a PeerClientConfig built after the Reload
// dials with the new material.
func TestPeerReload(t *testing.T) {
	p := tlstest.NewPKI(t)
	n2Files := tlstest.WritePair(t, p.Dir, "n2", p.CAFile, tlstest.IssueNode(t, p.CA, tlstest.TrustDomain, "n2"))
	n2, err := tlsconf.LoadMaterial(n2Files)
	if err != nil {
		t.Fatal(err)
	}
	oldN2Cert := *n2.Certificate()
	srv := p.NodeMaterial.PeerServerConfig(tlsconf.Options{}, tlstest.TrustDomain, nil)
	oldClient := n2.PeerClientConfig(tlsconf.Options{}, tlstest.TrustDomain, nil)
	if r := tlstest.Handshake(t, srv, oldClient); r.ServerErr != nil || r.ClientErr != nil {
		t.Fatalf("before rotation: server err %v, client err %v", r.ServerErr, r.ClientErr)
	}

	newCA := tlstest.NewCA(t)
	if err := newCA.WriteFiles(p.CAFile, filepath.Join(p.Dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	tlstest.WritePair(t, p.Dir, "node", p.CAFile, tlstest.IssueNode(t, newCA, tlstest.TrustDomain, "n1"))
	tlstest.WritePair(t, p.Dir, "n2", p.CAFile, tlstest.IssueNode(t, newCA, tlstest.TrustDomain, "n2"))
	for _, m := range []*tlsconf.Material{p.NodeMaterial, n2} {
		if err := m.Reload(); err != nil {
			t.Fatalf("Reload: %v", err)
		}
	}

	tests := []struct {
		name   string
		client *tls.Config
		ok     bool
		srvErr string
	}{
		{name: "new client configuration", client: n2.PeerClientConfig(tlsconf.Options{}, tlstest.TrustDomain, nil), ok: true},
		// The pool of a client configuration is fixed when it is built.
		{name: "client configuration built before Reload", client: oldClient},
		{name: "old node certificate", client: tlstest.ClientConfig(tlstest.Pool(p.CA.Cert, newCA.Cert), oldN2Cert), srvErr: "unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tlstest.Handshake(t, srv, tt.client)
			if !tt.ok {
				if r.ServerErr == nil || r.ClientErr == nil {
					t.Fatal("handshake succeeded")
				}
				if !strings.Contains(r.ServerErr.Error(), tt.srvErr) {
					t.Errorf("server error %q does not contain %q", r.ServerErr, tt.srvErr)
				}
				return
			}
			if r.ServerErr != nil || r.ClientErr != nil {
				t.Fatalf("server err %v, client err %v", r.ServerErr, r.ClientErr)
			}
			for side, cs := range map[string]tls.ConnectionState{"server": r.Server, "client": r.Client} {
				chain := cs.VerifiedChains[0]
				if !chain[len(chain)-1].Equal(newCA.Cert) {
					t.Errorf("%s verified the peer against %q, want the new CA", side, chain[len(chain)-1].Subject)
				}
				if chain[0].Equal(oldN2Cert.Leaf) {
					t.Errorf("%s saw the old n2 certificate", side)
				}
			}
		})
	}
}
