package pki

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Sentinel errors. Functions wrap them with the file or value concerned, so
// test with errors.Is. Their messages keep the "tlsauth: " prefix of the
// certificate layer.
var (
	ErrInvalidHost       = errors.New("tlsauth: invalid host")
	ErrValidity          = errors.New("tlsauth: validity must be positive")
	ErrNotCA             = errors.New("tlsauth: certificate is not a CA")
	ErrNoCertificate     = errors.New("tlsauth: no PEM CERTIFICATE block")
	ErrNoPrivateKey      = errors.New("tlsauth: no PEM private key block")
	ErrEncryptedKey      = errors.New("tlsauth: encrypted private keys are not supported")
	ErrUnsupportedKey    = errors.New("tlsauth: unsupported private key type")
	ErrKeyMismatch       = errors.New("tlsauth: private key does not match certificate")
	ErrKeyFileMode       = errors.New("tlsauth: key file is accessible by group or others")
	ErrFileTooLarge      = errors.New("tlsauth: file too large")
	ErrIncompleteDevPKI  = errors.New("tlsauth: incomplete development PKI")
	ErrP12Password       = errors.New("tlsauth: wrong PKCS#12 password")
	ErrUnknownCertFormat = errors.New("tlsauth: not a PEM, DER or PKCS#12 certificate file")
	ErrNoCRL             = errors.New("tlsauth: no X.509 CRL")
	ErrNotIssuedHere     = errors.New("tlsauth: certificate is not issued by this CA")
	ErrNoSPIFFEIdentity  = errors.New("tlsauth: certificate has no SPIFFE node or client identity")
)

// FileError names the operation and the file that failed. Its message
// carries a single "tlsauth: " prefix even when the wrapped error is a
// sentinel.
type FileError struct {
	Op   string // e.g. "load CA file"
	Path string
	Err  error
}

func (e *FileError) Error() string {
	return "tlsauth: " + e.Op + " " + e.Path + ": " + strings.TrimPrefix(e.Err.Error(), "tlsauth: ")
}

func (e *FileError) Unwrap() error { return e.Err }

// keyModeError reports a private key file readable by group or others. Its
// message is the operator's fix.
type keyModeError struct {
	path string
	mode os.FileMode
}

func (e *keyModeError) Error() string {
	return fmt.Sprintf("tlsauth: key file %s has mode %04o; run \"chmod 600 %s\"", e.path, uint32(e.mode.Perm()), e.path)
}

func (e *keyModeError) Unwrap() error { return ErrKeyFileMode }
