package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn/tlsauth/pki"
)

// Files names the PEM files of a node's TLS material.
type Files struct {
	CAFile   string // CA bundle: every certificate in it is trusted
	CertFile string // certificate, optionally followed by intermediates
	KeyFile  string // its private key; mode 0600 or stricter
	// CRLFile, if not empty, holds X.509 CRLs (PEM, or one in DER), each
	// signed by a CA of CAFile. A certificate they list is refused at every
	// handshake. Optional.
	CRLFile string
}

// Material is a CA pool and a key pair loaded from Files. It is replaced
// as a whole: readers get the previous or the new material, never a mix.
// Configurations built by ServerConfig read it at every handshake, so a
// Reload takes effect for the next connection without a restart.
type Material struct {
	files Files
	mu    sync.Mutex // serializes Reload
	cur   atomic.Pointer[snapshot]
}

// snapshot is one immutable generation of material.
type snapshot struct {
	pool *x509.CertPool
	cert *tls.Certificate // Leaf is set
	crl  *crlSet          // nil without a CRL file
	sum  [32]byte         // fingerprint of the files it was parsed from
	// notIssued says why cert is not issued by a CA of pool; nil if it is.
	// (A serving certificate from another CA is allowed, but a reload may
	// not replace one issued by the pool with one that is not.)
	notIssued error
}

// LoadMaterial reads f. Certificates and keys made with openssl work: RSA,
// ECDSA or Ed25519 keys in PKCS#1, PKCS#8 or SEC1 encoding.
func LoadMaterial(f Files) (*Material, error) {
	s, err := loadSnapshot(f)
	if err != nil {
		return nil, err
	}
	m := &Material{files: f}
	m.cur.Store(s)
	return m, nil
}

// Reload re-reads the files. If anything fails the current material stays
// in use and the error says what to fix.
func (m *Material) Reload() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := loadSnapshot(m.files)
	if err == nil {
		err = checkReplacement(m.files, m.cur.Load(), s, time.Now())
	}
	if err != nil {
		return err
	}
	m.cur.Store(s)
	return nil
}

// Files returns the files the material is loaded from.
func (m *Material) Files() Files {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.files
}

// Pool returns the current CA pool. The caller must not modify it.
func (m *Material) Pool() *x509.CertPool { return m.cur.Load().pool }

// Certificate returns the current key pair, with Leaf set. The caller must
// not modify it.
func (m *Material) Certificate() *tls.Certificate { return m.cur.Load().cert }

func loadSnapshot(f Files) (*snapshot, error) { return readFiles(f).parse() }

// parse checks and assembles what readFiles read. Errors name the file
// and what is wrong with it.
func (r *rawFiles) parse() (*snapshot, error) {
	f := r.files
	switch {
	case f.CAFile == "":
		return nil, errors.New("tlsauth: no CA file given; the cluster CA certificate is required")
	case f.CertFile == "":
		return nil, errors.New("tlsauth: no certificate file given")
	case f.KeyFile == "":
		return nil, errors.New("tlsauth: no key file given")
	}
	if r.caErr != nil {
		return nil, r.caErr
	}
	cas, err := pki.ParseCertsPEM(r.ca)
	if err != nil {
		return nil, &pki.FileError{Op: "load CA file", Path: f.CAFile, Err: err}
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	if r.certErr != nil {
		return nil, r.certErr
	}
	chain, err := pki.ParseCertsPEM(r.cert)
	if err != nil {
		return nil, &pki.FileError{Op: "load certificate file", Path: f.CertFile, Err: err}
	}
	if r.keyErr != nil {
		return nil, r.keyErr
	}
	if err := pki.CheckKeyMode(f.KeyFile, r.keyMode); err != nil {
		return nil, err
	}
	key, err := pki.ParseKeyPEM(r.key)
	if err != nil {
		return nil, &pki.FileError{Op: "load key file", Path: f.KeyFile, Err: err}
	}
	if !pki.KeyMatches(chain[0].PublicKey, key) {
		return nil, &pki.FileError{Op: "load key file", Path: f.KeyFile, Err: fmt.Errorf("%w %s; check that cert_file and key_file belong together", pki.ErrKeyMismatch, f.CertFile)}
	}
	cert := &tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	s := &snapshot{pool: pool, cert: cert, sum: r.sum()}
	if err := issuedByBundle(chain, cas); err != nil {
		s.notIssued = &pki.FileError{Op: "load certificate file", Path: f.CertFile, Err: fmt.Errorf("%w %s: %w", ErrNotIssuedByCA, f.CAFile, err)}
	}
	if f.CRLFile != "" {
		if r.crlErr != nil {
			return nil, r.crlErr
		}
		if s.crl, err = newCRLSet(f.CRLFile, r.crl, cas); err != nil {
			return nil, &pki.FileError{Op: "load CRL file", Path: f.CRLFile, Err: err}
		}
	}
	return s, nil
}
