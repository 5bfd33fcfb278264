package pki

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/cairnkv/cairn/tlsauth"
)

// RenewRequest is a certificate to issue again, from a CA directory.
type RenewRequest struct {
	CADir    string // holds ca.crt and ca.key
	CertFile string // the certificate to renew; replaced
	KeyFile  string // its key; replaced by a new one
	// Validity is the lifetime of the new certificate; it never outlives
	// the CA.
	Validity time.Duration
}

// RenewResult is a certificate Renew wrote.
type RenewResult struct {
	CADir, CAFile     string
	Kind              tlsauth.Kind
	Name, TrustDomain string
	Old, Cert         *x509.Certificate
	CertFile, KeyFile string
}

// Renew issues req.CertFile again from the CA of req.CADir: the same
// identity (its SPIFFE URI SAN, so the same trust domain, kind and name),
// the same IP and DNS SANs, a new key, a new serial number and a new
// validity period. It writes the key (mode 0600) and then the certificate,
// each atomically, over the old files; a server using them loads them
// when it sees the change (or on SIGHUP). The old certificate stays valid
// until it expires or is revoked.
//
// It refuses a certificate that the CA did not issue (ErrNotIssuedHere),
// one without a SPIFFE node or client identity (ErrNoSPIFFEIdentity), and
// a key file that is not the certificate's key (ErrKeyMismatch), so that
// a mistyped path overwrites nothing.
func Renew(req RenewRequest) (*RenewResult, error) {
	caCert, caKey := CAFiles(req.CADir)
	ca, err := loadCADir(req.CADir)
	if err != nil {
		return nil, err
	}
	cf, err := ReadCertificates(req.CertFile, "")
	if err != nil {
		return nil, err
	}
	old := cf.Certs[0]
	if err := issuedBy(old, ca); err != nil {
		return nil, &FileError{Op: "renew", Path: req.CertFile, Err: fmt.Errorf("%w in %s (%v): renew it with the CA that issued it (%q), or issue a new one with \"cairn cert issue\"",
			ErrNotIssuedHere, req.CADir, err, old.Issuer.String())}
	}
	id, td, err := spiffeIdentity(old)
	if err != nil {
		return nil, &FileError{Op: "renew", Path: req.CertFile, Err: err}
	}
	if key, err := readKeyFile(req.KeyFile); err == nil {
		if !KeyMatches(old.PublicKey, key) {
			return nil, &FileError{Op: "renew", Path: req.KeyFile, Err: fmt.Errorf("%w %s; pass the key of the certificate as --key", ErrKeyMismatch, req.CertFile)}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if sameFile(req.CertFile, caCert) || sameFile(req.KeyFile, caKey) || sameFile(req.KeyFile, caCert) || sameFile(req.CertFile, caKey) {
		return nil, fmt.Errorf("tlsauth: renew: %s and %s would overwrite the CA's own files", req.CertFile, req.KeyFile)
	}

	var iss Issued
	if id.Kind == tlsauth.KindNode {
		hosts := make([]string, 0, len(old.IPAddresses)+len(old.DNSNames))
		for _, ip := range old.IPAddresses {
			hosts = append(hosts, ip.String())
		}
		hosts = append(hosts, old.DNSNames...)
		iss, err = ca.IssueNode(td, id.Name, hosts, req.Validity)
	} else {
		iss, err = ca.IssueClient(td, id.Name, req.Validity)
	}
	if err != nil {
		return nil, err
	}
	if err := WritePair(iss, req.CertFile, req.KeyFile); err != nil {
		return nil, err
	}
	certs, err := ParseCertsPEM(iss.CertPEM)
	if err != nil {
		return nil, err
	}
	return &RenewResult{CADir: req.CADir, CAFile: caCert, Kind: id.Kind, Name: id.Name, TrustDomain: td,
		Old: old, Cert: certs[0], CertFile: req.CertFile, KeyFile: req.KeyFile}, nil
}

// Write tells the operator what Renew did and what is left to do.
func (r *RenewResult) Write(w io.Writer) error {
	var b strings.Builder
	c := r.Cert
	id := tlsauth.Identity{Name: r.Name, Kind: r.Kind}
	fmt.Fprintf(&b, "Renewed %s certificate %s (%s), valid until %s (%s):\n",
		r.Kind, id, tlsauth.SPIFFEID(r.TrustDomain, r.Kind, r.Name), c.NotAfter.UTC().Format(time.RFC3339), FormatValidity(c.NotAfter.Sub(c.NotBefore)))
	fw := labelWidth(r.CertFile, r.KeyFile, "ip addresses:")
	writeSANs(&b, fw, r.Kind, c)
	fmt.Fprintf(&b, "  %-*s  certificate, serial %s (was %s)\n", fw, r.CertFile, SerialHex(c.SerialNumber), SerialHex(r.Old.SerialNumber))
	fmt.Fprintf(&b, "  %-*s  new private key, mode 0600\n", fw, r.KeyFile)
	fmt.Fprintf(&b, "A server using these files loads them by itself (it watches them; SIGHUP also works).\n")
	fmt.Fprintf(&b, "The old certificate stays valid until %s; to refuse it now:\n", r.Old.NotAfter.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "  cairn cert revoke --ca-dir %s --serial %s\n", shellQuote(r.CADir), SerialHex(r.Old.SerialNumber))
	_, err := io.WriteString(w, b.String())
	return err
}

// loadCADir loads the CA of a CA directory, saying how to make one when
// there is none.
func loadCADir(dir string) (*CA, error) {
	ca, err := LoadCA(CAFiles(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w; make a CA first with \"cairn ca init --dir %s\", or point --ca-dir at the directory of ca.crt and ca.key", err, shellQuote(dir))
	}
	return ca, err
}

// issuedBy reports why c is not signed by ca (nil if it is).
func issuedBy(c *x509.Certificate, ca *CA) error {
	if !bytes.Equal(c.RawIssuer, ca.Cert.RawSubject) {
		return fmt.Errorf("its issuer is %q, the CA is %q", c.Issuer.String(), ca.Cert.Subject.String())
	}
	return c.CheckSignatureFrom(ca.Cert)
}

// spiffeIdentity returns the node or client identity of c's first SPIFFE
// URI SAN and its trust domain.
func spiffeIdentity(c *x509.Certificate) (tlsauth.Identity, string, error) {
	for _, u := range c.URIs {
		if !strings.EqualFold(u.Scheme, "spiffe") {
			continue
		}
		td := strings.ToLower(u.Hostname())
		id, err := tlsauth.IdentityFromCert(c, td)
		if err != nil {
			return tlsauth.Identity{}, "", fmt.Errorf("%w: %w", ErrNoSPIFFEIdentity, err)
		}
		return id, td, nil
	}
	return tlsauth.Identity{}, "", fmt.Errorf("%w (spiffe://<trust-domain>/node/<name> or .../client/<name>); issue a new certificate with \"cairn cert issue\"", ErrNoSPIFFEIdentity)
}
