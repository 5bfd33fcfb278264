package tlsconf

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn/tlsauth"
)

// Options tunes the configurations built from Material. The zero value is
// the strict default: TLS 1.3 only, no logging.
type Options struct {
	// MinVersion is tls.VersionTLS13 (0 means that) or tls.VersionTLS12.
	// Any other value is refused by Validate and treated as TLS 1.3 by the
	// builders, which never weaken a configuration.
	MinVersion uint16
	// Logger receives warnings about the material in use (an expired
	// certificate, an unsupported MinVersion). Nil discards them.
	Logger *slog.Logger
	// TrustDomain is the SPIFFE trust domain of client identities checked
	// by ServerConfig at every handshake; empty means
	// tlsauth.DefaultTrustDomain.
	TrustDomain string
}

// Validate reports whether o is acceptable; configuration loading should
// call it so that a bad value is an error at startup.
func (o Options) Validate() error {
	switch o.MinVersion {
	case 0, tls.VersionTLS12, tls.VersionTLS13:
		return nil
	}
	return fmt.Errorf("%w, not %s", ErrTLSVersion, tls.VersionName(o.MinVersion))
}

// ParseMinVersion maps a configuration value ("1.2", "1.3", "TLS1.2",
// "tls 1.3"; empty means the default) to a MinVersion.
func ParseMinVersion(s string) (uint16, error) {
	v := strings.TrimSpace(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "tls"))
	switch v {
	case "":
		return 0, nil
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("%w, not %q", ErrTLSVersion, s)
}

// tls12Suites are the only suites offered when TLS 1.2 is allowed: forward
// secret (ECDHE) and authenticated encryption (AEAD). TLS 1.3 suites are
// not configurable and all qualify.
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// base returns the version and suite settings shared by server and client.
func (o Options) base() *tls.Config {
	if o.MinVersion == tls.VersionTLS12 {
		return &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: tls12Suites}
	}
	if err := o.Validate(); err != nil {
		o.logger().Warn("tlsauth: unsupported minimum TLS version; using TLS 1.3", "err", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13}
}

// ServerConfig returns a configuration for the client API port. It
// refuses the handshake unless the client's certificate passes the
// identity rule, whatever the authorization setting: it chains to the CA
// pool, carries the clientAuth extended key usage (a certificate without
// the extension is refused too), and has a SPIFFE URI SAN in
// o.TrustDomain or, without a SPIFFE URI SAN, a CN (tlsauth.ClientIdentity).
// It offers ALPN h2 and http/1.1. The
// material current at the start of each handshake is used: after Reload,
// new connections present the new certificate and trust the new CA pool;
// resumed sessions are re-checked against the new pool by crypto/tls.
//
// Settings made on the returned configuration by its user apart from
// session tickets do not affect handshakes: GetConfigForClient supplies
// the configuration that does.
func (m *Material) ServerConfig(o Options) *tls.Config {
	return m.serverConfig(o, "server", []string{"h2", "http/1.1"}, requireClient(o.trustDomain()))
}

func (o Options) trustDomain() string {
	if o.TrustDomain == "" {
		return tlsauth.DefaultTrustDomain
	}
	return o.TrustDomain
}

// requireClient returns a VerifyConnection hook refusing a client whose
// verified leaf fails tlsauth.ClientIdentity.
func requireClient(trustDomain string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if _, err := tlsauth.PeerIdentity(cs, trustDomain); err != nil {
			return &peerError{where: "client port", err: err}
		}
		return nil
	}
}

// serverConfig builds a reload-aware server configuration offering protos;
// verify, if not nil, runs after the client's chain has been verified.
func (m *Material) serverConfig(o Options, role string, protos []string, verify func(tls.ConnectionState) error) *tls.Config {
	b := o.base()
	b.ClientAuth = tls.RequireAndVerifyClientCert
	b.NextProtos = protos
	b.VerifyConnection = verify
	sc := &serverConfigs{m: m, tmpl: b.Clone(), watch: expiryWatch{log: o.logger(), role: role}}
	cfg := b
	// GetCertificate is unused while GetConfigForClient answers, but lets
	// users such as http.Server see that the configuration has a certificate.
	cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return m.cur.Load().cert, nil }
	cfg.GetConfigForClient = sc.forClient
	return cfg
}

// serverConfigs builds one handshake configuration per generation of
// material and reuses it until the material changes.
type serverConfigs struct {
	m      *Material
	tmpl   *tls.Config // never used for a handshake, only cloned
	cached atomic.Pointer[serverConfig]
	watch  expiryWatch
}

type serverConfig struct {
	snap *snapshot
	cfg  *tls.Config
}

func (sc *serverConfigs) forClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	s := sc.m.cur.Load()
	if c := sc.cached.Load(); c != nil && c.snap == s {
		return c.cfg, nil
	}
	cfg := sc.tmpl.Clone()
	cfg.Certificates = []tls.Certificate{*s.cert}
	cfg.ClientCAs = s.pool
	cfg.VerifyConnection = s.withRevocation(sc.watch.log, sc.tmpl.VerifyConnection)
	sc.watch.check(s)
	// Concurrent handshakes may each build one; any of them is correct.
	sc.cached.Store(&serverConfig{snap: s, cfg: cfg})
	return cfg, nil
}

// ClientConfig returns a configuration for dialing a Cairn node: it
// verifies the server against the CA pool, refuses a server certificate
// listed by the material's CRLs, and presents the key pair. The
// key pair is read at each handshake, so a Reload changes the certificate
// presented by later connections; the CA pool is the one current when
// ClientConfig is called (crypto/tls has no per-handshake hook for it
// short of disabling verification), so call ClientConfig again after a
// Reload to trust a rotated CA. The caller sets ServerName when the dial
// address is not a name in the server's certificate.
func (m *Material) ClientConfig(o Options) *tls.Config {
	cfg := o.base()
	cfg.RootCAs = m.cur.Load().pool
	w := &expiryWatch{log: o.logger(), role: "client"}
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		s := m.cur.Load()
		w.check(s)
		return s.cert, nil
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if check := m.cur.Load().withRevocation(w.log, nil); check != nil {
			return check(cs)
		}
		return nil
	}
	return cfg
}

// ClientConfigFromFiles loads f and returns its ClientConfig with default
// Options, for tools and tests.
func ClientConfigFromFiles(f Files) (*tls.Config, error) {
	m, err := LoadMaterial(f)
	if err != nil {
		return nil, err
	}
	return m.ClientConfig(Options{}), nil
}

// expiryWatch warns once per generation of material when its certificate
// is outside its validity period, which makes every handshake fail.
type expiryWatch struct {
	log  *slog.Logger
	role string
	last atomic.Pointer[snapshot]
}

func (w *expiryWatch) check(s *snapshot) {
	if w.last.Swap(s) == s {
		return
	}
	leaf, now := s.cert.Leaf, time.Now()
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		w.log.LogAttrs(context.Background(), slog.LevelWarn, "tlsauth: "+w.role+" certificate is not valid now; renew it and reload",
			slog.String("subject", leaf.Subject.String()),
			slog.Time("not_before", leaf.NotBefore),
			slog.Time("not_after", leaf.NotAfter))
	}
}
