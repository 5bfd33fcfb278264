package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/url"
	"time"

	"github.com/cairnkv/cairn/tlsauth"
)

// IssueServing signs pub into a serving certificate of node nodeName for
// hosts (DNS names and IP addresses; at least one), as a certificate
// manager asks for one: the URI SAN spiffe://<trustDomain>/node/<nodeName>,
// the serverAuth and clientAuth extended key usages (like IssueNode), and
// the first DNS name (else the first IP address) as CN, since certmagic
// takes a certificate's first subject as the name it renews it under. The
// certificate expires after validity or with the CA, whichever is first.
// It returns the certificate, PEM-encoded.
func (ca *CA) IssueServing(trustDomain, nodeName string, pub crypto.PublicKey, hosts []string, validity time.Duration) ([]byte, error) {
	ips, dns, err := SplitHosts(hosts)
	if err != nil {
		return nil, err
	}
	if len(ips)+len(dns) == 0 {
		return nil, fmt.Errorf("%w: no DNS name or IP address to serve", ErrInvalidHost)
	}
	if err := tlsauth.ValidateTrustDomain(trustDomain); err != nil {
		return nil, err
	}
	if err := tlsauth.ValidateName(nodeName); err != nil {
		return nil, err
	}
	if validity <= 0 {
		return nil, fmt.Errorf("%w: serving certificate validity %v", ErrValidity, validity)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	var cn string
	if len(dns) > 0 {
		cn = dns[0]
	} else {
		cn = ips[0].String()
	}
	if len(cn) > 64 { // the X.509 upper bound; the SANs carry the name anyway
		cn = ""
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:                  []*url.URL{tlsauth.SPIFFEID(trustDomain, tlsauth.KindNode, nodeName)},
		DNSNames:              dns,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("tlsauth: issue serving certificate for %v: %w", hosts, err)
	}
	return EncodeCertPEM(der), nil
}
