package server

import (
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// serverFiles returns the certificate files of this node: the operator's;
// or, with ca_file alone, a node certificate issued from the CA key beside
// it (nodes sharing another node's development CA); or the development PKI
// of the data dir, created on first start (then dev is set).
func serverFiles(cfg Config, logger *slog.Logger) (tlsconf.Files, *pki.Dev, error) {
	hosts := advertisedHosts(cfg.Addr, cfg.PeerAddr)
	pkiDir := filepath.Join(cfg.DataDir, "pki")
	switch {
	case cfg.CertFile != "":
		return tlsconf.Files{CAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile}, nil, nil
	case cfg.CAFile != "":
		caKey := filepath.Join(filepath.Dir(cfg.CAFile), "ca.key")
		d, err := pki.EnsureNodeCert(pkiDir, cfg.CAFile, caKey, cfg.Name, cfg.TLSTrustDomain, hosts)
		if err != nil {
			return tlsconf.Files{}, nil, fmt.Errorf("ca_file without cert_file and key_file: issuing this node's certificate from %s: %w (pass --cert-file and --key-file, or point --ca-file at a development PKI's ca.crt)", caKey, err)
		}
		return tlsconf.DevFiles(d), nil, nil
	}
	p, created, err := pki.EnsureDev(pkiDir, cfg.Name, cfg.TLSTrustDomain, hosts)
	if err != nil {
		return tlsconf.Files{}, nil, fmt.Errorf("development PKI: %w", err)
	}
	if created {
		logger.Info("created a development PKI", "dir", p.Dir)
	}
	return tlsconf.DevFiles(p), &p, nil
}

// peerFiles are the files of the peer port: each peer.* file, or the
// client-side one.
func peerFiles(cfg Config, client tlsconf.Files) tlsconf.Files {
	f := client
	if cfg.PeerCAFile != "" {
		f.CAFile = cfg.PeerCAFile
	}
	if cfg.PeerCertFile != "" {
		f.CertFile, f.KeyFile = cfg.PeerCertFile, cfg.PeerKeyFile
	}
	return f
}

// advertisedHosts are the hosts of the advertised addresses, for the
// development node certificate.
func advertisedHosts(addrs ...string) []string {
	var hosts []string
	for _, a := range addrs {
		if h, _, err := net.SplitHostPort(a); err == nil && h != "" {
			hosts = append(hosts, h)
		}
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	return hosts
}

// printWelcome tells a person who started a member where it serves and,
// with a development PKI, how to reach it.
func printWelcome(w io.Writer, version, url, dnsAddr string, dev *pki.Dev) {
	fmt.Fprintf(w, "Cairn %s is serving %s\n", version, url)
	if dev == nil {
		return
	}
	curl := fmt.Sprintf("curl --cacert %s --cert %s --key %s", dev.CAFile, dev.ClientCertFile, dev.ClientKeyFile)
	fmt.Fprintf(w, "Development PKI in %s (client identity %q). Try:\n", dev.Dir, pki.DevClientName)
	fmt.Fprintf(w, "  %s %s/v2/keys/message -XPUT -d value=\"Hello world\"\n", curl, url)
	fmt.Fprintf(w, "  %s %s/v2/keys/message\n", curl, url)
	if host, port, err := net.SplitHostPort(dnsAddr); err == nil {
		fmt.Fprintf(w, "Register a service for 60 s and find it by DNS:\n")
		fmt.Fprintf(w, "  %s %s/v2/keys/skydns/internal/cairn/web/web-1 -XPUT -d ttl=60 -d value='{\"host\":\"127.0.0.1\",\"port\":8080}'\n", curl, url)
		fmt.Fprintf(w, "  dig @%s -p %s web.cairn.internal SRV\n", host, port)
	}
}

// checkServing refuses a client-only certificate as the client port's
// serving certificate and warns when it does not name the advertised host.
func checkServing(m *tlsconf.Material, addr string, logger *slog.Logger) error {
	c := m.Certificate()
	leaf := c.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return fmt.Errorf("serving certificate %s: %w", m.Files().CertFile, err)
		}
	}
	warn, err := tlsconf.CheckServing(leaf, addr)
	if err != nil {
		return fmt.Errorf("cert_file %s: %w", m.Files().CertFile, err)
	}
	if warn != "" {
		logger.Warn("cert_file "+m.Files().CertFile+": "+warn, "addr", addr)
	}
	return nil
}
