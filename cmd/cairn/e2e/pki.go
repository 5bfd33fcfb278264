package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

// TrustDomain is the trust domain of the test PKI: tlstest's, Cairn's
// default.
const TrustDomain = tlstest.TrustDomain

// pkiValidity is long enough for any test run and short enough to be
// obviously a test certificate.
const pkiValidity = 24 * time.Hour

// PKI is a test certificate authority on disk with one node certificate
// (server and client auth, valid for 127.0.0.1 and localhost) shared by
// every server a test starts, and a client certificate for the identity
// "root". Both cairn and etcd use the same files.
type PKI struct {
	Dir                   string
	CAFile, CAKeyFile     string
	NodeCert, NodeKey     string
	ClientCert, ClientKey string

	ca *pki.CA
}

// NewPKI makes a CA for trustDomain in dir and issues the node and root
// client certificates.
func NewPKI(dir, trustDomain string) (*PKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca, err := pki.NewCA(trustDomain, pkiValidity)
	if err != nil {
		return nil, err
	}
	p := &PKI{
		Dir:        dir,
		CAFile:     filepath.Join(dir, "ca.crt"),
		CAKeyFile:  filepath.Join(dir, "ca.key"),
		NodeCert:   filepath.Join(dir, "node.crt"),
		NodeKey:    filepath.Join(dir, "node.key"),
		ClientCert: filepath.Join(dir, "client.crt"),
		ClientKey:  filepath.Join(dir, "client.key"),
		ca:         ca,
	}
	if err := ca.WriteFiles(p.CAFile, p.CAKeyFile); err != nil {
		return nil, err
	}
	node, err := ca.IssueNode(trustDomain, "node", []string{"127.0.0.1", "localhost"}, pkiValidity)
	if err != nil {
		return nil, fmt.Errorf("issue node certificate: %w", err)
	}
	if err := pki.WritePair(node, p.NodeCert, p.NodeKey); err != nil {
		return nil, err
	}
	if _, _, err := p.IssueClient(trustDomain, "root", p.ClientCert, p.ClientKey); err != nil {
		return nil, err
	}
	return p, nil
}

// IssueClient issues a client certificate for name and writes it to
// certFile and keyFile, which it returns.
func (p *PKI) IssueClient(trustDomain, name, certFile, keyFile string) (string, string, error) {
	iss, err := p.ca.IssueClient(trustDomain, name, pkiValidity)
	if err != nil {
		return "", "", fmt.Errorf("issue client certificate %q: %w", name, err)
	}
	if err := pki.WritePair(iss, certFile, keyFile); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// IssueTemplate signs tmpl with the test CA (tlstest.Sign: a new P-256
// key, a fresh serial number if tmpl has none) and writes the pair to
// certFile and keyFile, for certificates the CA's own methods refuse to
// make (expired, not yet valid, without clientAuth).
func (p *PKI) IssueTemplate(t testing.TB, tmpl *x509.Certificate, certFile, keyFile string) tls.Certificate {
	t.Helper()
	c := tlstest.Sign(t, p.ca, tmpl)
	if err := pki.WritePair(tlstest.Issued(t, c), certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	return c
}

// WriteCRL writes to path a PEM CRL of the test CA, numbered number,
// revoking serials.
func (p *PKI) WriteCRL(path string, number int64, serials ...*big.Int) error {
	crl, err := p.ca.RevocationList(number, serials, pkiValidity)
	if err != nil {
		return err
	}
	return os.WriteFile(path, crl, 0o644)
}

// ClientFiles are the root client's files.
func (p *PKI) ClientFiles() tlsconf.Files {
	return tlsconf.Files{CAFile: p.CAFile, CertFile: p.ClientCert, KeyFile: p.ClientKey}
}

// NewHTTPClient returns an HTTP/1.1 client for the TLS material in f that
// does not follow redirects (the differential suite compares 301s) and has
// no overall timeout (watches are long polls; callers use contexts).
func NewHTTPClient(f tlsconf.Files) (*http.Client, error) {
	cfg, err := tlsconf.ClientConfigFromFiles(f)
	if err != nil {
		return nil, err
	}
	return NewHTTPClientTLS(cfg), nil
}

// NewHTTPClientTLS is NewHTTPClient for a ready tls.Config.
func NewHTTPClientTLS(cfg *tls.Config) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:     cfg,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
