package tlsauth

import (
	"errors"
	"strings"
)

// Sentinel errors. Functions wrap them with the file or value concerned, so
// test with errors.Is.
var (
	ErrInvalidTrustDomain = errors.New("tlsauth: invalid trust domain")
	ErrInvalidName        = errors.New("tlsauth: invalid name")
	ErrInvalidHost        = errors.New("tlsauth: invalid host")
	ErrValidity           = errors.New("tlsauth: validity must be positive")
	ErrNotCA              = errors.New("tlsauth: certificate is not a CA")
	ErrNoCertificate      = errors.New("tlsauth: no PEM CERTIFICATE block")
	ErrNoPrivateKey       = errors.New("tlsauth: no PEM private key block")
	ErrEncryptedKey       = errors.New("tlsauth: encrypted private keys are not supported")
	ErrUnsupportedKey     = errors.New("tlsauth: unsupported private key type")
	ErrKeyMismatch        = errors.New("tlsauth: private key does not match certificate")
	ErrKeyFileMode        = errors.New("tlsauth: key file is accessible by group or others")
	ErrFileTooLarge       = errors.New("tlsauth: file too large")
	ErrNoIdentity         = errors.New("tlsauth: certificate has no identity (no SPIFFE URI SAN and empty CN)")
	ErrForeignTrustDomain = errors.New("tlsauth: certificate belongs to another trust domain")
	ErrInvalidIdentity    = errors.New("tlsauth: malformed SPIFFE identity")
	ErrNoVerifiedPeer     = errors.New("tlsauth: connection has no verified peer certificate")
	ErrTLSVersion         = errors.New("tlsauth: minimum TLS version must be 1.2 or 1.3")
	ErrIncompleteDevPKI   = errors.New("tlsauth: incomplete development PKI")
	ErrNotNode            = errors.New("tlsauth: peer certificate identity is not a node")
	ErrP12Password        = errors.New("tlsauth: wrong PKCS#12 password")
	ErrUnknownCertFormat  = errors.New("tlsauth: not a PEM, DER or PKCS#12 certificate file")
)

// fileError names the operation and file that failed. Its message carries a
// single "tlsauth: " prefix even when the wrapped error is a sentinel.
type fileError struct {
	op   string // e.g. "load CA file"
	path string
	err  error
}

func (e *fileError) Error() string {
	return "tlsauth: " + e.op + " " + e.path + ": " + strings.TrimPrefix(e.err.Error(), "tlsauth: ")
}

func (e *fileError) Unwrap() error { return e.err }
