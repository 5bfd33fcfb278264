package tlsauth

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// DefaultTrustDomain is the trust domain of identities when none is
// configured ([tls] trust_domain).
const DefaultTrustDomain = "cairn.internal"

// Kind is the namespace of an identity.
type Kind string

const (
	KindNode   Kind = "node"   // spiffe://<td>/node/<name>: may speak raft and forward proposals
	KindClient Kind = "client" // spiffe://<td>/client/<name>
	KindCN     Kind = "cn"     // no SPIFFE URI SAN: the certificate's CN (a PKI made elsewhere)
)

// Identity is who a certificate speaks for.
type Identity struct {
	Name string
	Kind Kind
}

// String returns "node/<name>", "client/<name>", or the bare name for a
// CN-only identity. Authorization rules name users by this string.
func (id Identity) String() string {
	if id.Kind == KindCN {
		return id.Name
	}
	return string(id.Kind) + "/" + id.Name
}

// IdentityFromCert returns the identity of c within trustDomain. The first
// SPIFFE URI SAN decides: spiffe://<trustDomain>/node/<name> or
// .../client/<name> is the identity; a SPIFFE URI of another trust domain
// (ErrForeignTrustDomain) or of another shape (ErrInvalidIdentity) is an
// error. URI SANs of other schemes are ignored. Without a SPIFFE URI SAN,
// the identity is the CN (Kind "cn"); with an empty CN too, ErrNoIdentity.
//
// IdentityFromCert does not verify c: pass only a certificate from a
// verified chain (see PeerIdentity).
func IdentityFromCert(c *x509.Certificate, trustDomain string) (Identity, error) {
	if err := ValidateTrustDomain(trustDomain); err != nil {
		return Identity{}, err
	}
	if c == nil {
		return Identity{}, ErrNoIdentity
	}
	for _, u := range c.URIs {
		if strings.EqualFold(u.Scheme, "spiffe") {
			return identityFromSPIFFE(u, trustDomain)
		}
	}
	if c.Subject.CommonName == "" {
		return Identity{}, ErrNoIdentity
	}
	return Identity{Name: c.Subject.CommonName, Kind: KindCN}, nil
}

func identityFromSPIFFE(u *url.URL, trustDomain string) (Identity, error) {
	if !strings.EqualFold(u.Hostname(), trustDomain) {
		return Identity{}, fmt.Errorf("%w: %s is not in trust domain %q", ErrForeignTrustDomain, u, trustDomain)
	}
	if u.Opaque != "" || u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" || u.RawPath != "" {
		return Identity{}, fmt.Errorf("%w: %s", ErrInvalidIdentity, u)
	}
	kind, name, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if !ok || (Kind(kind) != KindNode && Kind(kind) != KindClient) || ValidateName(name) != nil {
		return Identity{}, fmt.Errorf("%w: %s; want spiffe://%s/node/<name> or spiffe://%s/client/<name>", ErrInvalidIdentity, u, trustDomain, trustDomain)
	}
	return Identity{Name: name, Kind: Kind(kind)}, nil
}

// IsNode reports whether id may act as a cluster node: a node identity, or
// a CN-only identity whose name is one of allowedCNs (etcd's
// --peer-cert-allowed-cn, for operator PKIs without URI SANs).
func IsNode(id Identity, allowedCNs []string) bool {
	switch id.Kind {
	case KindNode:
		return true
	case KindCN:
		return slices.Contains(allowedCNs, id.Name)
	}
	return false
}

// ClientIdentity is the identity rule for a client certificate, applied
// at every handshake of the client and peer ports and wherever a request's
// identity is read: the certificate carries the clientAuth extended key
// usage (a certificate without the extension is refused, although
// crypto/x509 reads it as "any usage": ErrNoClientAuth), and has an
// identity as IdentityFromCert reads it (a SPIFFE URI SAN in trustDomain,
// else a non-empty CN). Chaining to the CA is crypto/tls's part: pass only
// a verified leaf.
func ClientIdentity(c *x509.Certificate, trustDomain string) (Identity, error) {
	if c != nil && !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return Identity{}, ErrNoClientAuth
	}
	return IdentityFromCert(c, trustDomain)
}

// PeerIdentity returns the identity of the verified leaf certificate of a
// connection's client, by ClientIdentity. A connection whose peer
// certificate was not verified (no verified chains) yields
// ErrNoVerifiedPeer.
func PeerIdentity(cs tls.ConnectionState, trustDomain string) (Identity, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return Identity{}, ErrNoVerifiedPeer
	}
	return ClientIdentity(cs.VerifiedChains[0][0], trustDomain)
}

// SPIFFEID is the URI SAN of a node or client identity in trustDomain:
// spiffe://<trustDomain>/<kind>/<name>.
func SPIFFEID(trustDomain string, kind Kind, name string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: trustDomain, Path: "/" + string(kind) + "/" + name}
}

// ValidateTrustDomain accepts SPIFFE trust domain names: lowercase letters,
// digits, dots, dashes and underscores.
func ValidateTrustDomain(td string) error {
	if td == "" || len(td) > 255 {
		return fmt.Errorf("%w %q: must be 1 to 255 characters", ErrInvalidTrustDomain, td)
	}
	for _, r := range td {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return fmt.Errorf("%w %q: character %q is not allowed (use lowercase letters, digits, '.', '-', '_')", ErrInvalidTrustDomain, td, r)
		}
	}
	return nil
}

// ValidateName accepts a single SPIFFE path segment: letters, digits, dots,
// dashes and underscores, not "." or "..".
func ValidateName(name string) error {
	if name == "" || len(name) > 128 || name == "." || name == ".." {
		return fmt.Errorf("%w %q: must be 1 to 128 characters and not \".\" or \"..\"", ErrInvalidName, name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return fmt.Errorf("%w %q: character %q is not allowed (use letters, digits, '.', '-', '_')", ErrInvalidName, name, r)
		}
	}
	return nil
}
