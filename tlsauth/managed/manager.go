package managed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/cairnkv/cairn/tlsauth/pki"
)

// ACMEConfig turns on certificates from an ACME CA for Domains.
type ACMEConfig struct {
	// CA is the ACME directory URL (default Let's Encrypt's production).
	CA string
	// Email is the ACME account's contact address (optional).
	Email string
	// Domains are the names to get certificates for; none turns ACME off.
	Domains []string
	// TrustedRoots verify the ACME server's HTTPS certificate (default:
	// the system roots), for a private ACME CA.
	TrustedRoots *x509.CertPool
	// ListenHost and TLSALPNPort are where the TLS-ALPN-01 challenge
	// listener binds while a challenge is solved (default all interfaces,
	// port 443). The HTTP-01 challenge is never used: Cairn opens no
	// plaintext port.
	ListenHost  string
	TLSALPNPort int
}

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	// Storage is where certificates, keys, ACME accounts and locks live;
	// required. Members sharing it share certificates and renewals.
	Storage *Storage
	// Issuer, if not nil, issues the certificates of Hosts from the
	// cluster CA.
	Issuer *CAIssuer
	// Hosts are the DNS names and IP addresses the Issuer covers, one
	// certificate each (certmagic manages certificates by name). A host
	// that is also an ACME domain is left to ACME.
	Hosts []string
	ACME  ACMEConfig
	// RenewCheckInterval is how often certificates are checked for
	// renewal (default certmagic.DefaultRenewCheckInterval, 10 minutes).
	RenewCheckInterval time.Duration
	Logger             *slog.Logger
}

// Manager keeps the serving certificates of the client listener with
// certmagic: it obtains them, renews them when a third of their lifetime
// remains, and picks one for each handshake by server name (or, without
// SNI, by the local IP address).
type Manager struct {
	cache   *certmagic.Cache
	caCfg   *certmagic.Config // nil without Issuer
	acmeCfg *certmagic.Config // nil without ACME domains
	hosts   []string
	domains []string
	ctx     context.Context
	cancel  context.CancelFunc
	stop    sync.Once
}

// NewManager prepares a Manager; Obtain or Start begins the work, Stop
// ends it.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.Storage == nil {
		return nil, errors.New("tlsauth: certificate manager: no storage")
	}
	domains, err := normalizeNames(cfg.ACME.Domains, false)
	if err != nil {
		return nil, fmt.Errorf("tlsauth: ACME domains: %w", err)
	}
	var hosts []string
	if cfg.Issuer != nil {
		all, err := normalizeNames(cfg.Hosts, true)
		if err != nil {
			return nil, fmt.Errorf("tlsauth: serving certificate hosts: %w", err)
		}
		for _, h := range all {
			if !containsName(domains, h) {
				hosts = append(hosts, h)
			}
		}
	}
	if len(hosts) == 0 && len(domains) == 0 {
		return nil, errors.New("tlsauth: certificate manager: no host for the CA issuer and no ACME domain")
	}
	logger := ZapLogger(cfg.Logger)
	m := &Manager{hosts: hosts, domains: domains}
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(c certmagic.Certificate) (*certmagic.Config, error) {
			return m.configFor(c.Names), nil
		},
		RenewCheckInterval: cfg.RenewCheckInterval,
		Logger:             logger,
	})
	if len(hosts) > 0 {
		m.caCfg = certmagic.New(m.cache, certmagic.Config{
			Storage: cfg.Storage, Issuers: []certmagic.Issuer{cfg.Issuer}, Logger: logger,
			RenewalWindowRatio: pki.RenewalWindowRatio,
		})
	}
	if len(domains) > 0 {
		m.acmeCfg = certmagic.New(m.cache, certmagic.Config{Storage: cfg.Storage, Logger: logger, RenewalWindowRatio: pki.RenewalWindowRatio})
		a := cfg.ACME
		ca := a.CA
		if ca == "" {
			ca = certmagic.LetsEncryptProductionCA
		}
		m.acmeCfg.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(m.acmeCfg, certmagic.ACMEIssuer{
			CA: ca, Email: a.Email,
			// Configuring an ACME CA is the operator's agreement to its terms.
			Agreed:               true,
			DisableHTTPChallenge: true,
			TrustedRoots:         a.TrustedRoots,
			ListenHost:           a.ListenHost,
			AltTLSALPNPort:       a.TLSALPNPort,
			Logger:               logger,
		})}
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// Hosts returns the names the CA issuer covers, normalized.
func (m *Manager) Hosts() []string { return append([]string(nil), m.hosts...) }

// Domains returns the names ACME covers, normalized.
func (m *Manager) Domains() []string { return append([]string(nil), m.domains...) }

// Obtain loads or obtains a certificate for every name now, renewing
// those due, and returns the first failure. Use it where someone waits
// for the answer (tests, tools); a server uses Start.
func (m *Manager) Obtain(ctx context.Context) error {
	if m.caCfg != nil {
		if err := m.caCfg.ManageSync(ctx, m.hosts); err != nil {
			return fmt.Errorf("tlsauth: serving certificate from the cluster CA: %w", err)
		}
	}
	if m.acmeCfg != nil {
		if err := m.acmeCfg.ManageSync(ctx, m.domains); err != nil {
			return fmt.Errorf("tlsauth: certificate from ACME: %w", err)
		}
	}
	return nil
}

// Start manages every name in the background: certificates are loaded or
// obtained, failures retried with backoff and logged, until Stop. The
// store must be readable when Start is called: certmagic gives up on a
// name whose first storage read fails.
func (m *Manager) Start() error {
	if m.caCfg != nil {
		if err := m.caCfg.ManageAsync(m.ctx, m.hosts); err != nil {
			return fmt.Errorf("tlsauth: serving certificate from the cluster CA: %w", err)
		}
	}
	if m.acmeCfg != nil {
		if err := m.acmeCfg.ManageAsync(m.ctx, m.domains); err != nil {
			return fmt.Errorf("tlsauth: certificate from ACME: %w", err)
		}
	}
	return nil
}

// GetCertificate returns the managed certificate for a handshake, or an
// error when none matches (ServerConfig then serves the node's own
// certificate).
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	cfg := m.caCfg
	if cfg == nil {
		cfg = m.acmeCfg
	}
	// The configurations share one cache, so either finds every certificate.
	return cfg.GetCertificate(hello)
}

// Stop ends renewals and background work; calling it again does nothing. Operations under way are
// cancelled and release their locks.
func (m *Manager) Stop() {
	m.stop.Do(func() {
		m.cancel()
		m.cache.Stop()
	})
}

// configFor is the configuration managing a certificate with names.
func (m *Manager) configFor(names []string) *certmagic.Config {
	if m.acmeCfg != nil {
		for _, n := range names {
			if containsName(m.domains, n) {
				return m.acmeCfg
			}
		}
	}
	if m.caCfg != nil {
		return m.caCfg
	}
	return m.acmeCfg
}

// normalizeNames validates names as certificate hosts, lowercases them and
// drops duplicates; IP addresses are allowed only with ips.
func normalizeNames(names []string, ips bool) ([]string, error) {
	ipList, dns, err := pki.SplitHosts(names)
	if err != nil {
		return nil, err
	}
	if len(ipList) > 0 && !ips {
		return nil, fmt.Errorf("%w %q: an IP address; give DNS names", pki.ErrInvalidHost, ipList[0].String())
	}
	out := make([]string, 0, len(ipList)+len(dns))
	out = append(out, dns...)
	for _, ip := range ipList {
		out = append(out, ip.String())
	}
	return out, nil
}

func containsName(names []string, n string) bool {
	for _, x := range names {
		if strings.EqualFold(x, n) {
			return true
		}
	}
	return false
}
