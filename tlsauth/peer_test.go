package tlsauth

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// loadIssued writes iss as <name>.crt/.key in p.dir trusting p.caFile and
// loads it.
func loadIssued(t *testing.T, p *testPKI, name string, iss Issued) *Material {
	t.Helper()
	m, err := LoadMaterial(writeTestPair(t, p.dir, name, p.caFile, iss))
	if err != nil {
		t.Fatalf("LoadMaterial %s: %v", name, err)
	}
	return m
}

// loadSigned is loadIssued for a certificate made by signLeaf.
func loadSigned(t *testing.T, p *testPKI, name string, c tls.Certificate) *Material {
	t.Helper()
	keyPEM, err := encodeKeyPEM(c.PrivateKey.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	return loadIssued(t, p, name, Issued{CertPEM: encodeCertPEM(c.Certificate[0]), KeyPEM: keyPEM})
}

func mustIssueNode(t *testing.T, ca *CA, td, name string) Issued {
	t.Helper()
	iss, err := ca.IssueNode(td, name, []string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// peerLeaf is a template for a certificate usable on both sides of the peer
// port (serverAuth and clientAuth, localhost SANs), as an operator's PKI
// would make one; uri, if not empty, is its only URI SAN.
func peerLeaf(cn, uri string) *x509.Certificate {
	now := time.Now()
	c := &x509.Certificate{
		Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if uri != "" {
		u, err := url.Parse(uri)
		if err != nil {
			panic(err)
		}
		c.URIs = []*url.URL{u}
	}
	return c
}

func TestPeerHandshake(t *testing.T) {
	p := newTestPKI(t) // p.nodeMat is node/n1, p.clientMat client/alice
	allowed := []string{"peer9.example"}
	n2 := loadIssued(t, p, "n2", mustIssueNode(t, p.ca, testTD, "n2"))
	root := loadIssued(t, p, "root", mustIssueClient(t, p.ca, "root"))
	foreignTD := loadIssued(t, p, "foreign-td", mustIssueNode(t, p.ca, "other.internal", "n3"))
	cnAllowed := loadSigned(t, p, "peer9", signLeaf(t, p.ca, peerLeaf("peer9.example", "")))
	cnOther := loadSigned(t, p, "peer8", signLeaf(t, p.ca, peerLeaf("peer8.example", "")))
	// A client identity in a certificate that may also serve: only the
	// identity check stands between it and the peer port.
	clientServing := loadSigned(t, p, "client-serving", signLeaf(t, p.ca, peerLeaf("mallory", "spiffe://"+testTD+"/client/mallory")))
	// A client-only certificate (clientAuth usage) that names the host, so
	// that the usage, not the name, is what refuses it as a server.
	clientOnlyTmpl := peerLeaf("root", "spiffe://"+testTD+"/client/root")
	clientOnlyTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	clientOnly := loadSigned(t, p, "client-only", signLeaf(t, p.ca, clientOnlyTmpl))

	peerServer := func(m *Material, allowedCNs []string) *tls.Config {
		return m.PeerServerConfig(Options{}, testTD, allowedCNs)
	}
	peerClient := func(m *Material, allowedCNs []string) *tls.Config {
		return m.PeerClientConfig(Options{}, testTD, allowedCNs)
	}
	h2Client := p.nodeMat.ClientConfig(Options{})
	h2Client.NextProtos = []string{"h2"}
	byIP := peerClient(n2, nil)
	byIP.ServerName = "127.0.0.1"

	n1 := Identity{"n1", KindNode}
	tests := []struct {
		name   string
		server *tls.Config
		client *tls.Config
		// On success, the identities each side sees.
		wantClientID, wantServerID Identity
		// On failure (wantClientID zero), what the server's or the
		// client's error must contain, and the sentinel it wraps.
		wantSrvErr, wantCliErr string
		wantIs                 error
	}{
		{name: "node to node", server: peerServer(p.nodeMat, nil), client: peerClient(n2, nil),
			wantClientID: Identity{"n2", KindNode}, wantServerID: n1},
		{name: "node to node dialed by IP", server: peerServer(p.nodeMat, nil), client: byIP,
			wantClientID: Identity{"n2", KindNode}, wantServerID: n1},
		{name: "client certificate on the peer port", server: peerServer(p.nodeMat, allowed), client: root.ClientConfig(Options{}),
			wantSrvErr: `tlsauth: peer port: certificate identity "client/root" is not a node; only node certificates (spiffe://cairn.internal/node/<name>, or a CN listed in --peer-cert-allowed-cn) may speak raft`,
			wantIs:     ErrNotNode},
		{name: "client certificate with the peer ALPN", server: peerServer(p.nodeMat, nil), client: peerClient(root, nil),
			wantSrvErr: `certificate identity "client/root" is not a node`, wantIs: ErrNotNode},
		{name: "CN in allowedCNs", server: peerServer(p.nodeMat, allowed), client: peerClient(cnAllowed, nil),
			wantClientID: Identity{"peer9.example", KindCN}, wantServerID: n1},
		{name: "CN not in allowedCNs", server: peerServer(p.nodeMat, allowed), client: peerClient(cnOther, nil),
			wantSrvErr: `certificate identity "peer8.example" is not a node`, wantIs: ErrNotNode},
		{name: "CN without allowedCNs", server: peerServer(p.nodeMat, nil), client: peerClient(cnAllowed, nil),
			wantSrvErr: `certificate identity "peer9.example" is not a node`, wantIs: ErrNotNode},
		{name: "node of another trust domain", server: peerServer(p.nodeMat, nil), client: peerClient(foreignTD, nil),
			wantSrvErr: "tlsauth: peer port: certificate: certificate belongs to another trust domain", wantIs: ErrForeignTrustDomain},
		{name: "client offering only h2", server: peerServer(p.nodeMat, nil), client: h2Client,
			wantSrvErr: "unsupported application protocols"},

		{name: "server with a client-only certificate", server: peerServer(clientOnly, nil), client: peerClient(n2, nil),
			wantCliErr: "incompatible key usage"},
		{name: "server with a client identity", server: peerServer(clientServing, nil), client: peerClient(n2, nil),
			wantCliErr: `tlsauth: peer dial: server certificate identity "client/mallory" is not a node`, wantIs: ErrNotNode},
		{name: "server with a CN not in allowedCNs", server: peerServer(cnOther, nil), client: peerClient(n2, allowed),
			wantCliErr: `tlsauth: peer dial: server certificate identity "peer8.example" is not a node`, wantIs: ErrNotNode},
		{name: "server with a CN in allowedCNs", server: peerServer(cnAllowed, nil), client: peerClient(n2, allowed),
			wantClientID: Identity{"n2", KindNode}, wantServerID: Identity{"peer9.example", KindCN}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := handshake(t, tt.server, tt.client)
			if tt.wantClientID == (Identity{}) {
				if r.serverErr == nil || r.clientErr == nil {
					t.Fatalf("handshake succeeded (server err %v, client err %v)", r.serverErr, r.clientErr)
				}
				failed := r.serverErr
				if tt.wantCliErr != "" {
					failed = r.clientErr
					if !strings.Contains(r.clientErr.Error(), tt.wantCliErr) {
						t.Errorf("client error %q does not contain %q", r.clientErr, tt.wantCliErr)
					}
				}
				if tt.wantSrvErr != "" && !strings.Contains(r.serverErr.Error(), tt.wantSrvErr) {
					t.Errorf("server error %q does not contain %q", r.serverErr, tt.wantSrvErr)
				}
				if tt.wantIs != nil && !errors.Is(failed, tt.wantIs) {
					t.Errorf("error %v does not wrap %v", failed, tt.wantIs)
				}
				return
			}
			if r.serverErr != nil || r.clientErr != nil {
				t.Fatalf("server err %v, client err %v", r.serverErr, r.clientErr)
			}
			if r.client.NegotiatedProtocol != PeerALPN || r.server.NegotiatedProtocol != PeerALPN {
				t.Errorf("negotiated %q (client), %q (server), want %q", r.client.NegotiatedProtocol, r.server.NegotiatedProtocol, PeerALPN)
			}
			if id, err := PeerIdentity(r.server, testTD); err != nil || id != tt.wantClientID {
				t.Errorf("server sees %v (%v), want %v", id, err, tt.wantClientID)
			}
			if id, err := PeerIdentity(r.client, testTD); err != nil || id != tt.wantServerID {
				t.Errorf("client sees %v (%v), want %v", id, err, tt.wantServerID)
			}
		})
	}
}

// TestPeerConfigCopiesAllowedCNs: the caller's slice may be reused after
// the configuration is built.
func TestPeerConfigCopiesAllowedCNs(t *testing.T) {
	p := newTestPKI(t)
	cn := loadSigned(t, p, "peer9", signLeaf(t, p.ca, peerLeaf("peer9.example", "")))
	allowed := []string{"peer9.example"}
	srv := p.nodeMat.PeerServerConfig(Options{}, testTD, allowed)
	allowed[0] = "changed.example"
	r := handshake(t, srv, cn.PeerClientConfig(Options{}, testTD, nil))
	if r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("server err %v, client err %v", r.serverErr, r.clientErr)
	}
}

// TestPeerReload rotates the CA and both nodes' certificates on disk: after
// Reload, the same PeerServerConfig presents the new certificate and
// trusts only the new CA, and a PeerClientConfig built after the Reload
// dials with the new material.
func TestPeerReload(t *testing.T) {
	p := newTestPKI(t)
	n2Files := writeTestPair(t, p.dir, "n2", p.caFile, mustIssueNode(t, p.ca, testTD, "n2"))
	n2, err := LoadMaterial(n2Files)
	if err != nil {
		t.Fatal(err)
	}
	oldN2Cert := *n2.Certificate()
	srv := p.nodeMat.PeerServerConfig(Options{}, testTD, nil)
	oldClient := n2.PeerClientConfig(Options{}, testTD, nil)
	if r := handshake(t, srv, oldClient); r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("before rotation: server err %v, client err %v", r.serverErr, r.clientErr)
	}

	newCA := newTestCA(t)
	if err := newCA.WriteFiles(p.caFile, filepath.Join(p.dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	writeTestPair(t, p.dir, "node", p.caFile, mustIssueNode(t, newCA, testTD, "n1"))
	writeTestPair(t, p.dir, "n2", p.caFile, mustIssueNode(t, newCA, testTD, "n2"))
	for _, m := range []*Material{p.nodeMat, n2} {
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
		{name: "new client configuration", client: n2.PeerClientConfig(Options{}, testTD, nil), ok: true},
		// The pool of a client configuration is fixed when it is built.
		{name: "client configuration built before Reload", client: oldClient},
		{name: "old node certificate", client: clientWith(poolOf(p.ca.Cert, newCA.Cert), oldN2Cert), srvErr: "unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := handshake(t, srv, tt.client)
			if !tt.ok {
				if r.serverErr == nil || r.clientErr == nil {
					t.Fatal("handshake succeeded")
				}
				if !strings.Contains(r.serverErr.Error(), tt.srvErr) {
					t.Errorf("server error %q does not contain %q", r.serverErr, tt.srvErr)
				}
				return
			}
			if r.serverErr != nil || r.clientErr != nil {
				t.Fatalf("server err %v, client err %v", r.serverErr, r.clientErr)
			}
			for side, cs := range map[string]tls.ConnectionState{"server": r.server, "client": r.client} {
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
