package pki

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// ParseCRLs reads PEM "X509 CRL" blocks (any number) or, without a PEM
// block, one DER-encoded CRL.
func ParseCRLs(data []byte) ([]*x509.RevocationList, error) {
	var lists []*x509.RevocationList
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "X509 CRL" {
			continue
		}
		rl, err := x509.ParseRevocationList(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CRL %d: %w", len(lists)+1, err)
		}
		lists = append(lists, rl)
	}
	if len(lists) > 0 {
		return lists, nil
	}
	if bytes.Contains(data, []byte("-----BEGIN")) {
		return nil, fmt.Errorf("%w; the file must hold PEM CRLs (-----BEGIN X509 CRL-----) or one DER CRL", ErrNoCRL)
	}
	rl, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, fmt.Errorf("%w (%v); the file must hold PEM CRLs (-----BEGIN X509 CRL-----) or one DER CRL", ErrNoCRL, err)
	}
	return []*x509.RevocationList{rl}, nil
}

// SerialHex formats a certificate serial number as openssl prints it:
// upper-case hexadecimal, an even number of digits.
func SerialHex(n *big.Int) string {
	s := fmt.Sprintf("%X", n)
	if len(s)%2 == 1 {
		s = "0" + s
	}
	return s
}

// RevocationList issues a PEM-encoded CRL signed by ca that revokes the
// certificates with the given serial numbers as of now. number is the
// CRL's sequence number and must grow with each list the CA issues;
// NextUpdate is now + validity, after which Cairn warns that the list is
// stale (and still applies it).
func (ca *CA) RevocationList(number int64, serials []*big.Int, validity time.Duration) ([]byte, error) {
	now := time.Now()
	entries := make([]x509.RevocationListEntry, len(serials))
	for i, n := range serials {
		entries[i] = x509.RevocationListEntry{SerialNumber: n, RevocationTime: now}
	}
	return ca.SignCRL(big.NewInt(number), entries, validity)
}

// SignCRL issues a PEM-encoded CRL signed by ca listing entries (serial
// number, revocation time and reason of each). number must grow with each
// list the CA issues; NextUpdate is now + validity.
func (ca *CA) SignCRL(number *big.Int, entries []x509.RevocationListEntry, validity time.Duration) ([]byte, error) {
	if validity <= 0 {
		return nil, fmt.Errorf("%w: CRL validity %v", ErrValidity, validity)
	}
	now := time.Now()
	tmpl := &x509.RevocationList{
		Number:                    number,
		ThisUpdate:                now.Add(-backdate),
		NextUpdate:                now.Add(validity),
		RevokedCertificateEntries: entries,
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("tlsauth: create CRL: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), nil
}
