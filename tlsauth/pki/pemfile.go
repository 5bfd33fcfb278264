package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// MaxFileSize bounds every certificate, bundle or key file read here; a large
// public CA bundle is a few hundred kilobytes.
const MaxFileSize = 1 << 20

const (
	keyFileMode  os.FileMode = 0o600
	certFileMode os.FileMode = 0o644
)

// readLimited reads at most MaxFileSize bytes from an open file.
func readLimited(f *os.File) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrFileTooLarge, MaxFileSize)
	}
	return data, nil
}

// ReadFile reads at most MaxFileSize bytes of path and, if mode is not
// nil, stores the mode of the file opened (so the mode checked is that of
// the content read, even if the path is swapped meanwhile).
func ReadFile(op, path string, mode *os.FileMode) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &FileError{Op: op, Path: path, Err: err}
	}
	defer f.Close()
	if mode != nil {
		fi, err := f.Stat()
		if err != nil {
			return nil, &FileError{Op: op, Path: path, Err: err}
		}
		*mode = fi.Mode()
	}
	data, err := readLimited(f)
	if err != nil {
		return nil, &FileError{Op: op, Path: path, Err: err}
	}
	return data, nil
}

// CheckKeyMode refuses a private key file whose mode grants any access to
// group or others (ErrKeyFileMode, with the chmod that fixes it).
func CheckKeyMode(path string, mode os.FileMode) error {
	if runtime.GOOS != "windows" && mode.Perm()&0o077 != 0 {
		return &keyModeError{path: path, mode: mode}
	}
	return nil
}

// readCertFile returns every certificate in a PEM file, in file order.
// Blocks of other types (a key bundled with its certificate) are skipped.
func readCertFile(op, path string) ([]*x509.Certificate, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &FileError{Op: op, Path: path, Err: err}
	}
	defer f.Close()
	data, err := readLimited(f)
	if err != nil {
		return nil, &FileError{Op: op, Path: path, Err: err}
	}
	certs, err := ParseCertsPEM(data)
	if err != nil {
		return nil, &FileError{Op: op, Path: path, Err: err}
	}
	return certs, nil
}

// ParseCertsPEM returns the certificates of PEM data in order, skipping
// blocks of other types (a key bundled with its certificate). Without any,
// it is ErrNoCertificate.
func ParseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w; the file must hold PEM certificates (-----BEGIN CERTIFICATE-----)", ErrNoCertificate)
	}
	return certs, nil
}

// readKeyFile loads a private key, refusing a file whose mode grants any
// access to group or others. The mode is taken from the opened file, so the
// check and the read concern the same file even if the path is swapped.
func readKeyFile(path string) (crypto.Signer, error) {
	const op = "load key file"
	f, err := os.Open(path)
	if err != nil {
		return nil, &FileError{Op: op, Path: path, Err: err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &FileError{Op: op, Path: path, Err: err}
	}
	if err := CheckKeyMode(path, fi.Mode()); err != nil {
		return nil, err
	}
	data, err := readLimited(f)
	if err != nil {
		return nil, &FileError{Op: op, Path: path, Err: err}
	}
	key, err := ParseKeyPEM(data)
	if err != nil {
		return nil, &FileError{Op: op, Path: path, Err: err}
	}
	return key, nil
}

// ParseKeyPEM accepts the key encodings openssl and Go produce: PKCS#1 (RSA
// PRIVATE KEY), SEC1 (EC PRIVATE KEY, possibly after an EC PARAMETERS block)
// and PKCS#8 (PRIVATE KEY).
func ParseKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("%w; the file must hold an unencrypted PEM key (-----BEGIN PRIVATE KEY-----)", ErrNoPrivateKey)
		}
		if !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			continue
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, fmt.Errorf("%w; decrypt it with \"openssl pkey -in KEY -out KEY.plain\"", ErrEncryptedKey)
		}
		return parseKeyDER(b.Type, b.Bytes)
	}
}

func parseKeyDER(typ string, der []byte) (crypto.Signer, error) {
	// Try the encoding the label names first, then the others: files with
	// a generic or wrong label exist in the wild.
	parsers := []func([]byte) (any, error){
		func(d []byte) (any, error) { return x509.ParsePKCS8PrivateKey(d) },
		func(d []byte) (any, error) { return x509.ParsePKCS1PrivateKey(d) },
		func(d []byte) (any, error) { return x509.ParseECPrivateKey(d) },
	}
	switch typ {
	case "RSA PRIVATE KEY":
		parsers[0], parsers[1] = parsers[1], parsers[0]
	case "EC PRIVATE KEY":
		parsers[0], parsers[2] = parsers[2], parsers[0]
	}
	var firstErr error
	for _, p := range parsers {
		k, err := p(der)
		if err == nil {
			return asSigner(k)
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("parse %s: %w", typ, firstErr)
}

func asSigner(k any) (crypto.Signer, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	default:
		return nil, fmt.Errorf("%w %T; use RSA, ECDSA or Ed25519", ErrUnsupportedKey, k)
	}
}

// KeyMatches reports whether key is the private half of pub.
func KeyMatches(pub crypto.PublicKey, key crypto.Signer) bool {
	p, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && p.Equal(pub)
}

// EncodeCertPEM encodes a DER certificate as PEM.
func EncodeCertPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// EncodeKeyPEM encodes a key as PKCS#8, which openssl and Go both read.
func EncodeKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("tlsauth: encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// WriteFileAtomic writes data to a temporary file in path's directory, sets
// its mode, syncs it and renames it over path: readers see the old file or
// the new one, never a mix, and a key is never briefly world-readable.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return &FileError{Op: "write", Path: path, Err: err}
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return &FileError{Op: "write", Path: path, Err: err}
	}
	if _, err = f.Write(data); err != nil {
		return &FileError{Op: "write", Path: path, Err: err}
	}
	if err = f.Sync(); err != nil {
		return &FileError{Op: "write", Path: path, Err: err}
	}
	if err = f.Close(); err != nil {
		return &FileError{Op: "write", Path: path, Err: err}
	}
	if err = os.Rename(tmp, path); err != nil {
		return &FileError{Op: "write", Path: path, Err: err}
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename durable. Failure is ignored: some platforms and
// file systems cannot sync a directory, and the data itself is synced.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
