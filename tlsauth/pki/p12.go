package pki

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// PKCS12 returns iss as a PKCS#12 (.p12) bundle: its private key, its
// certificate and then chain (typically the CA certificate), for tools
// that import one file (browsers, Java, Windows, curl with --cert-type
// P12). It is encrypted with password using go-pkcs12's Modern encoder
// (PBES2 with PBKDF2-HMAC-SHA-256 and AES-256-CBC, an HMAC-SHA-256 MAC),
// which OpenSSL 1.1.1+, Java 12+ and Windows Server 2019+ read. An empty
// password protects nothing: the file must then be guarded like the key.
func (iss Issued) PKCS12(chain []*x509.Certificate, password string) ([]byte, error) {
	certs, err := ParseCertsPEM(iss.CertPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsauth: PKCS#12: %w", err)
	}
	key, err := ParseKeyPEM(iss.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsauth: PKCS#12: %w", err)
	}
	if !KeyMatches(certs[0].PublicKey, key) {
		return nil, fmt.Errorf("tlsauth: PKCS#12: %w", ErrKeyMismatch)
	}
	// Certificates after the leaf in CertPEM (intermediates) come first.
	rest := append(certs[1:len(certs):len(certs)], chain...)
	data, err := pkcs12.Modern.Encode(key, certs[0], rest, password)
	if err != nil {
		return nil, fmt.Errorf("tlsauth: encode PKCS#12: %w", err)
	}
	return data, nil
}

// WritePKCS12 writes a PKCS#12 bundle to path atomically with mode 0600:
// it holds a private key.
func WritePKCS12(path string, data []byte) error {
	return WriteFileAtomic(path, data, keyFileMode)
}

// DecodePKCS12 reads a PKCS#12 bundle holding one private key and its
// certificate, and returns them with the other certificates of the
// bundle. A wrong password is ErrP12Password.
func DecodePKCS12(data []byte, password string) (crypto.Signer, *x509.Certificate, []*x509.Certificate, error) {
	if len(data) > MaxFileSize {
		return nil, nil, nil, fmt.Errorf("%w: more than %d bytes", ErrFileTooLarge, MaxFileSize)
	}
	k, leaf, chain, err := pkcs12.DecodeChain(data, password)
	if errors.Is(err, pkcs12.ErrIncorrectPassword) {
		return nil, nil, nil, ErrP12Password
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("tlsauth: decode PKCS#12: %w", err)
	}
	key, err := asSigner(k)
	if err != nil {
		return nil, nil, nil, err
	}
	if !KeyMatches(leaf.PublicKey, key) {
		return nil, nil, nil, fmt.Errorf("tlsauth: decode PKCS#12: %w", ErrKeyMismatch)
	}
	return key, leaf, chain, nil
}
