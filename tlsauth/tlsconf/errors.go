package tlsconf

import "errors"

// Sentinel errors of configurations, revocation and of the checks made
// when material is loaded. Test with errors.Is.
var (
	ErrTLSVersion    = errors.New("tlsauth: minimum TLS version must be 1.2 or 1.3")
	ErrNotNode       = errors.New("tlsauth: peer certificate identity is not a node")
	ErrRevoked       = errors.New("tlsauth: certificate revoked")
	ErrCRLIssuer     = errors.New("tlsauth: CRL is not signed by a CA in the CA file")
	ErrNotIssuedByCA = errors.New("tlsauth: certificate is not issued by a CA in the CA file")
	ErrExpired       = errors.New("tlsauth: certificate expired")
)
