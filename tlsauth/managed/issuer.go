package managed

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/cairnkv/cairn/tlsauth"
	"github.com/cairnkv/cairn/tlsauth/pki"
)

// DefaultServingValidity is the lifetime of a serving certificate issued by
// CAIssuer: a week. certmagic renews a certificate once a third of its
// lifetime remains (pki.RenewalWindowRatio, which the Manager gives it),
// so after about 4⅔ days, which leaves the cluster more than two days to
// renew before a certificate expires (renewal needs a quorum: it takes a
// store lock and writes the new certificate).
const DefaultServingValidity = 7 * pki.Day

// ErrBadCSR is returned by CAIssuer.Issue for a request it will not sign.
var ErrBadCSR = errors.New("tlsauth: unacceptable certificate request")

// CAIssuer is a certmagic.Issuer that signs serving certificates with the
// cluster CA. A certificate has the node identity URI SAN
// spiffe://<TrustDomain>/node/<NodeName>, the DNS names and IP addresses
// of the request, and both the serverAuth and clientAuth extended key
// usages, like a certificate from pki.CA.IssueNode. Its CN is the first requested
// name, not the node name: certmagic takes a certificate's first subject
// (the CN when there is one) as the name to renew it under.
type CAIssuer struct {
	CA          *pki.CA
	TrustDomain string
	NodeName    string
	// Validity is the lifetime of a certificate (default
	// DefaultServingValidity); it ends with the CA's at the latest.
	Validity time.Duration
}

var _ certmagic.Issuer = (*CAIssuer)(nil)

// IssuerKey implements certmagic.Issuer. It names the CA (a digest of its
// certificate) and the node: certificates carry the node's identity, so
// members sharing the storage never serve each other's, and a new CA
// starts from fresh certificates rather than renewing into the old ones.
func (i *CAIssuer) IssuerKey() string {
	sum := sha256.Sum256(i.CA.Cert.Raw)
	return "cairn-ca-" + hex.EncodeToString(sum[:8]) + "-" + i.NodeName
}

// Issue implements certmagic.Issuer: it signs the public key of csr for
// the DNS names and IP addresses in csr. A request with a bad signature,
// other kinds of names (e-mail, URI), no name at all or an invalid DNS
// name is refused with ErrBadCSR.
func (i *CAIssuer) Issue(ctx context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if len(csr.EmailAddresses) > 0 || len(csr.URIs) > 0 {
		return nil, fmt.Errorf("%w: only DNS names and IP addresses can be requested", ErrBadCSR)
	}
	hosts := make([]string, 0, len(csr.DNSNames)+len(csr.IPAddresses)+1)
	hosts = append(hosts, csr.DNSNames...)
	for _, ip := range csr.IPAddresses {
		hosts = append(hosts, ip.String())
	}
	if len(hosts) == 0 && csr.Subject.CommonName != "" {
		hosts = append(hosts, csr.Subject.CommonName) // certmagic's CN-only requests
	}
	ips, dns, err := pki.SplitHosts(hosts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCSR, err)
	}
	if len(ips)+len(dns) == 0 {
		return nil, fmt.Errorf("%w: no DNS name or IP address", ErrBadCSR)
	}
	validity := i.Validity
	if validity <= 0 {
		validity = DefaultServingValidity
	}
	certPEM, err := i.CA.IssueServing(i.TrustDomain, i.NodeName, csr.PublicKey, hosts, validity)
	if err != nil {
		return nil, err
	}
	return &certmagic.IssuedCertificate{
		Certificate: certPEM,
		Metadata:    map[string]string{"issuer": i.CA.Cert.Subject.CommonName, "identity": tlsauth.SPIFFEID(i.TrustDomain, tlsauth.KindNode, i.NodeName).String()},
	}, nil
}
