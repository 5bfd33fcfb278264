package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/cairnkv/cairn/tlsauth"
)

// backdate is subtracted from NotBefore so that a certificate is valid at
// once on machines whose clocks lag the issuer's a little.
const backdate = 5 * time.Minute

// CA is a certificate authority able to issue node and client certificates.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte // Cert, PEM-encoded
}

// Issued is a certificate and its private key, PEM-encoded (the key as
// PKCS#8).
type Issued struct {
	CertPEM, KeyPEM []byte
}

// NewCA makes a self-signed ECDSA P-256 CA for trustDomain, valid from now
// for validity. It may sign end-entity certificates only (path length 0).
func NewCA(trustDomain string, validity time.Duration) (*CA, error) {
	if err := tlsauth.ValidateTrustDomain(trustDomain); err != nil {
		return nil, err
	}
	if validity <= 0 {
		return nil, fmt.Errorf("%w: CA validity %v", ErrValidity, validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsauth: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Cairn CA (" + trustDomain + ")"},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("tlsauth: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tlsauth: parse CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: EncodeCertPEM(der)}, nil
}

// LoadCA loads a CA from a PEM certificate file (its first certificate is
// the CA) and a PEM private key file (PKCS#1, PKCS#8 or SEC1, mode 0600 or
// stricter). A CA made with openssl works if it is marked CA:TRUE.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certs, err := readCertFile("load CA file", certFile)
	if err != nil {
		return nil, err
	}
	cert := certs[0]
	if !cert.IsCA || (cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0) {
		return nil, &FileError{Op: "load CA file", Path: certFile, Err: fmt.Errorf("%w; its first certificate (CN %q) lacks basicConstraints CA:TRUE or keyCertSign", ErrNotCA, cert.Subject.CommonName)}
	}
	key, err := readKeyFile(keyFile)
	if err != nil {
		return nil, err
	}
	if !KeyMatches(cert.PublicKey, key) {
		return nil, &FileError{Op: "load CA key file", Path: keyFile, Err: fmt.Errorf("%w %s; check that the CA certificate and key files belong together", ErrKeyMismatch, certFile)}
	}
	return &CA{Cert: cert, Key: key, CertPEM: EncodeCertPEM(cert.Raw)}, nil
}

// WriteFiles writes the CA certificate (mode 0644) and key (mode 0600),
// each atomically. The key is written first so that a certificate on disk
// always has its key next to it.
func (ca *CA) WriteFiles(certFile, keyFile string) error {
	keyPEM, err := EncodeKeyPEM(ca.Key)
	if err != nil {
		return err
	}
	return WritePair(Issued{CertPEM: ca.CertPEM, KeyPEM: keyPEM}, certFile, keyFile)
}

// WritePair writes an issued certificate (mode 0644) and its key (mode
// 0600), each atomically, key first.
func WritePair(iss Issued, certFile, keyFile string) error {
	if err := WriteFileAtomic(keyFile, iss.KeyPEM, keyFileMode); err != nil {
		return err
	}
	return WriteFileAtomic(certFile, iss.CertPEM, certFileMode)
}

// IssueNode issues a certificate for cluster node name: usable as a server
// and as a client (raft and forwarding dial other nodes), with the URI SAN
// spiffe://<trustDomain>/node/<name>, CN name, and hosts as IP or DNS SANs.
// The certificate expires after validity or with the CA, whichever is first.
func (ca *CA) IssueNode(trustDomain, name string, hosts []string, validity time.Duration) (Issued, error) {
	ips, dns, err := SplitHosts(hosts)
	if err != nil {
		return Issued{}, err
	}
	return ca.issue(trustDomain, tlsauth.KindNode, name, validity, func(t *x509.Certificate) {
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		t.IPAddresses = ips
		t.DNSNames = dns
	})
}

// IssueClient issues a client-only certificate with the URI SAN
// spiffe://<trustDomain>/client/<name> and CN name. The certificate expires
// after validity or with the CA, whichever is first.
func (ca *CA) IssueClient(trustDomain, name string, validity time.Duration) (Issued, error) {
	return ca.issue(trustDomain, tlsauth.KindClient, name, validity, func(t *x509.Certificate) {
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	})
}

func (ca *CA) issue(trustDomain string, kind tlsauth.Kind, name string, validity time.Duration, custom func(*x509.Certificate)) (Issued, error) {
	if err := tlsauth.ValidateTrustDomain(trustDomain); err != nil {
		return Issued{}, err
	}
	if err := tlsauth.ValidateName(name); err != nil {
		return Issued{}, err
	}
	if validity <= 0 {
		return Issued{}, fmt.Errorf("%w: %s certificate validity %v", ErrValidity, kind, validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Issued{}, fmt.Errorf("tlsauth: generate %s key: %w", kind, err)
	}
	serial, err := newSerial()
	if err != nil {
		return Issued{}, err
	}
	now := time.Now()
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		URIs:                  []*url.URL{tlsauth.SPIFFEID(trustDomain, kind, name)},
	}
	custom(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return Issued{}, fmt.Errorf("tlsauth: issue %s certificate %q: %w", kind, name, err)
	}
	keyPEM, err := EncodeKeyPEM(key)
	if err != nil {
		return Issued{}, err
	}
	return Issued{CertPEM: EncodeCertPEM(der), KeyPEM: keyPEM}, nil
}

// newSerial returns a random positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("tlsauth: generate serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// SplitHosts sorts hosts into IP and DNS SANs, dropping empty entries and
// duplicates. "[::1]" is read as an IP; "host:port" is refused with a hint.
func SplitHosts(hosts []string) ([]net.IP, []string, error) {
	var ips []net.IP
	var dns []string
	seen := make(map[string]bool)
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
			h = h[1 : len(h)-1]
		}
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if v4 := ip.To4(); v4 != nil {
				ip = v4
			}
			if !seen[ip.String()] {
				seen[ip.String()] = true
				ips = append(ips, ip)
			}
			continue
		}
		if err := validateDNSName(h); err != nil {
			return nil, nil, err
		}
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if !seen[h] {
			seen[h] = true
			dns = append(dns, h)
		}
	}
	return ips, dns, nil
}

func validateDNSName(h string) error {
	if strings.Contains(h, ":") {
		return fmt.Errorf("%w %q: looks like host:port; pass the host only", ErrInvalidHost, h)
	}
	if len(h) > 253 {
		return fmt.Errorf("%w %q: longer than 253 characters", ErrInvalidHost, h)
	}
	for i, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%w %q: empty or over-long label", ErrInvalidHost, h)
		}
		if label == "*" && i == 0 {
			continue
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("%w %q: character %q is not allowed in a DNS name", ErrInvalidHost, h, r)
			}
		}
	}
	return nil
}
