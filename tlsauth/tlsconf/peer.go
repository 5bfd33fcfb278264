package tlsconf

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/cairnkv/cairn/tlsauth"
)

// PeerALPN is the only application protocol offered on the peer port (raft
// and leader forwarding), so that neither side can mistake it for the
// client API's HTTP.
const PeerALPN = "cairn-peer"

// PeerServerConfig returns a configuration for the peer port. It is
// ServerConfig (a client certificate chaining to the CA pool is required,
// and each handshake uses the material current when it starts) with ALPN
// "cairn-peer" only, and it refuses the handshake unless the client's
// verified leaf is a node identity within trustDomain: a
// spiffe://<trustDomain>/node/<name> URI SAN, or a CN-only certificate
// whose CN is one of allowedCNs (see tlsauth.IsNode). The refusal is an error
// wrapping ErrNotNode, returned by the server's Handshake; the client sees
// a bad_certificate alert. allowedCNs is copied.
func (m *Material) PeerServerConfig(o Options, trustDomain string, allowedCNs []string) *tls.Config {
	return m.serverConfig(o, "peer server", []string{PeerALPN}, requireNode("peer port", "", trustDomain, allowedCNs))
}

// PeerClientConfig returns a configuration for dialing another node's peer
// port: ClientConfig with ALPN "cairn-peer" only, refusing a server whose
// verified leaf is not a node identity (as PeerServerConfig decides). As
// with ClientConfig, the CA pool is the one current at the call, so call
// it again after a Reload, and the caller sets ServerName to the host of
// the address dialed (node certificates carry their IP addresses as SANs).
// allowedCNs is copied.
func (m *Material) PeerClientConfig(o Options, trustDomain string, allowedCNs []string) *tls.Config {
	cfg := m.ClientConfig(o)
	cfg.NextProtos = []string{PeerALPN}
	revoked, node := cfg.VerifyConnection, requireNode("peer dial", "server ", trustDomain, allowedCNs)
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := revoked(cs); err != nil {
			return err
		}
		return node(cs)
	}
	return cfg
}

// PeerDialConfig returns a function for a peer network to call at every
// dial (peer.Config.DialTLS). Each call returns
// PeerClientConfig as made from the material current at that call: its CA
// pool, key pair and CRLs. So, unlike a PeerClientConfig kept from start,
// it trusts a peer CA rotated by Reload at the next dial, with the normal
// verification of crypto/tls (chain and server name) untouched. The
// configuration is shared between calls until the material changes: the
// caller must Clone it before setting ServerName. The error is always
// nil.
func (m *Material) PeerDialConfig(o Options, trustDomain string, allowedCNs []string) func() (*tls.Config, error) {
	d := &dialConfigs{m: m, o: o, node: requireNode("peer dial", "server ", trustDomain, allowedCNs),
		watch: &expiryWatch{log: o.logger(), role: "peer client"}}
	return d.get
}

type dialConfigs struct {
	m      *Material
	o      Options
	node   func(tls.ConnectionState) error
	watch  *expiryWatch
	cached atomic.Pointer[serverConfig]
}

func (d *dialConfigs) get() (*tls.Config, error) {
	s := d.m.cur.Load()
	if c := d.cached.Load(); c != nil && c.snap == s {
		return c.cfg, nil
	}
	cfg := d.o.base()
	cfg.RootCAs = s.pool
	cfg.NextProtos = []string{PeerALPN}
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		d.watch.check(s)
		return s.cert, nil
	}
	cfg.VerifyConnection = s.withRevocation(d.watch.log, d.node)
	// Concurrent dials may each build one; any of them is correct.
	d.cached.Store(&serverConfig{snap: s, cfg: cfg})
	return cfg, nil
}

// requireNode returns a VerifyConnection hook refusing a peer whose
// verified leaf is not a node. where ("peer port") and whose ("" or
// "server ") only shape the message.
func requireNode(where, whose, trustDomain string, allowedCNs []string) func(tls.ConnectionState) error {
	allowed := slices.Clone(allowedCNs)
	return func(cs tls.ConnectionState) error {
		id, err := tlsauth.PeerIdentity(cs, trustDomain)
		if whose != "" && len(cs.VerifiedChains) > 0 && len(cs.VerifiedChains[0]) > 0 {
			// A server's certificate needs serverAuth (crypto/tls checked it), not clientAuth.
			id, err = tlsauth.IdentityFromCert(cs.VerifiedChains[0][0], trustDomain)
		}
		if err != nil {
			return &peerError{where: where, whose: whose, err: err}
		}
		if !tlsauth.IsNode(id, allowed) {
			return &peerError{where: where, whose: whose, err: ErrNotNode, id: id, trustDomain: trustDomain}
		}
		return nil
	}
}

// peerError is a peer refused on the peer port. Its message says what the
// operator must change and carries a single "tlsauth: " prefix.
type peerError struct {
	where, whose string
	err          error
	id           tlsauth.Identity // set when err is ErrNotNode
	trustDomain  string
}

func (e *peerError) Error() string {
	if e.err == ErrNotNode {
		return fmt.Sprintf("tlsauth: %s: %scertificate identity %q is not a node; only node certificates (spiffe://%s/node/<name>, or a CN listed in --peer-cert-allowed-cn) may speak raft",
			e.where, e.whose, e.id.String(), e.trustDomain)
	}
	return "tlsauth: " + e.where + ": " + e.whose + "certificate: " + strings.TrimPrefix(e.err.Error(), "tlsauth: ")
}

func (e *peerError) Unwrap() error { return e.err }
