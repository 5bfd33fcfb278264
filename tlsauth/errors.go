package tlsauth

import "errors"

// Sentinel errors of identities. Functions wrap them with the value
// concerned, so test with errors.Is.
var (
	ErrInvalidTrustDomain = errors.New("tlsauth: invalid trust domain")
	ErrInvalidName        = errors.New("tlsauth: invalid name")
	ErrNoIdentity         = errors.New("tlsauth: certificate has no identity (no SPIFFE URI SAN and empty CN)")
	ErrForeignTrustDomain = errors.New("tlsauth: certificate belongs to another trust domain")
	ErrInvalidIdentity    = errors.New("tlsauth: malformed SPIFFE identity")
	ErrNoVerifiedPeer     = errors.New("tlsauth: connection has no verified peer certificate")
	ErrNoClientAuth       = errors.New("tlsauth: certificate lacks the clientAuth extended key usage (a client certificate must carry extendedKeyUsage = clientAuth)")
)
