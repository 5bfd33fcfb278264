package tlsauth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync/atomic"
	"time"
)

// Sentinel errors of revocation and of the checks made when material is
// loaded. Test with errors.Is.
var (
	ErrRevoked       = errors.New("tlsauth: certificate revoked")
	ErrNoCRL         = errors.New("tlsauth: no X.509 CRL")
	ErrCRLIssuer     = errors.New("tlsauth: CRL is not signed by a CA in the CA file")
	ErrNotIssuedByCA = errors.New("tlsauth: certificate is not issued by a CA in the CA file")
	ErrExpired       = errors.New("tlsauth: certificate expired")
)

// crlSet is the revocation state of one generation of material: the
// serials listed by every CRL of a CRL file, by the CA that signed it.
type crlSet struct {
	file    string
	revoked map[string]map[string]time.Time // issuer key → serial → revocation time
	entries int
	// nextUpdate is the earliest NextUpdate of the lists (zero if none has
	// one). Past it the set is stale: still applied, and warned about.
	nextUpdate time.Time
	warned     atomic.Bool // stale warning given for this generation
}

// issuerKey identifies a CA by subject and public key, so that a CRL
// matches every certificate of that CA (a re-issued or cross-signed CA
// certificate included).
func issuerKey(c *x509.Certificate) string {
	return string(c.RawSubject) + "\x00" + string(c.RawSubjectPublicKeyInfo)
}

// parseCRLs reads PEM "X509 CRL" blocks (any number) or, without a PEM
// block, one DER-encoded CRL.
func parseCRLs(data []byte) ([]*x509.RevocationList, error) {
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

// newCRLSet parses the CRLs of file and checks that each is signed by one
// of cas. An expired list (NextUpdate passed) is accepted: a stale list
// still names certificates that must not be trusted, and refusing it would
// leave them trusted until a fresh one arrives.
func newCRLSet(file string, data []byte, cas []*x509.Certificate) (*crlSet, error) {
	lists, err := parseCRLs(data)
	if err != nil {
		return nil, err
	}
	s := &crlSet{file: file, revoked: make(map[string]map[string]time.Time)}
	for i, rl := range lists {
		var issuer *x509.Certificate
		for _, ca := range cas {
			if bytes.Equal(rl.RawIssuer, ca.RawSubject) && rl.CheckSignatureFrom(ca) == nil {
				issuer = ca
				break
			}
		}
		if issuer == nil {
			return nil, fmt.Errorf("%w: CRL %d (issuer %q) is signed by none of its %d certificates", ErrCRLIssuer, i+1, crlIssuerName(rl), len(cas))
		}
		k := issuerKey(issuer)
		if s.revoked[k] == nil {
			s.revoked[k] = make(map[string]time.Time)
		}
		for _, e := range rl.RevokedCertificateEntries {
			s.revoked[k][e.SerialNumber.String()] = e.RevocationTime
			s.entries++
		}
		if !rl.NextUpdate.IsZero() && (s.nextUpdate.IsZero() || rl.NextUpdate.Before(s.nextUpdate)) {
			s.nextUpdate = rl.NextUpdate
		}
	}
	return s, nil
}

func crlIssuerName(rl *x509.RevocationList) string {
	return rl.Issuer.String()
}

// stale reports whether the set is past its next update at now.
func (s *crlSet) stale(now time.Time) bool {
	return !s.nextUpdate.IsZero() && now.After(s.nextUpdate)
}

// check returns a *revokedError if a certificate of any verified chain is
// listed by the CRL of the CA that issued it.
func (s *crlSet) check(chains [][]*x509.Certificate) error {
	for _, chain := range chains {
		for i := 0; i+1 < len(chain); i++ {
			c := chain[i]
			if at, ok := s.revoked[issuerKey(chain[i+1])][c.SerialNumber.String()]; ok {
				return &revokedError{serial: c.SerialNumber, subject: c.Subject.String(), file: s.file, at: at}
			}
		}
	}
	return nil
}

// revokedError is a certificate refused because a CRL lists it.
type revokedError struct {
	serial  *big.Int
	subject string
	file    string
	at      time.Time
}

func (e *revokedError) Error() string {
	return fmt.Sprintf("tlsauth: certificate revoked: serial %s (%s) is listed in the CRL %s (revoked %s)",
		SerialHex(e.serial), e.subject, e.file, e.at.UTC().Format(time.RFC3339))
}

func (e *revokedError) Unwrap() error { return ErrRevoked }

// SerialHex formats a certificate serial number as openssl prints it:
// upper-case hexadecimal, an even number of digits.
func SerialHex(n *big.Int) string {
	s := fmt.Sprintf("%X", n)
	if len(s)%2 == 1 {
		s = "0" + s
	}
	return s
}

// withRevocation returns a VerifyConnection hook refusing a connection
// whose verified chains hold a certificate revoked by s's CRLs, then
// running next (if not nil). Without CRLs it returns next. A stale CRL is
// warned about once per generation, on the first handshake that finds it
// stale, and applied anyway.
func (s *snapshot) withRevocation(log *slog.Logger, next func(tls.ConnectionState) error) func(tls.ConnectionState) error {
	crl := s.crl
	if crl == nil {
		return next
	}
	return func(cs tls.ConnectionState) error {
		if err := crl.check(cs.VerifiedChains); err != nil {
			return err
		}
		crl.warnIfStale(log, time.Now())
		if next != nil {
			return next(cs)
		}
		return nil
	}
}

func (s *crlSet) warnIfStale(log *slog.Logger, now time.Time) {
	if s.stale(now) && !s.warned.Swap(true) {
		log.LogAttrs(context.Background(), slog.LevelWarn, "tlsauth: CRL is past its next update; still applied, publish a fresh one and reload",
			slog.String("file", s.file), slog.Time("next_update", s.nextUpdate))
	}
}

// SetCRLFile makes path the material's CRL file (empty: none) and loads
// the material again with it, as Reload does; on error nothing changes.
// Later reloads read path too.
func (m *Material) SetCRLFile(path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.files
	f.CRLFile = path
	s, err := loadSnapshot(f)
	if err != nil {
		return err
	}
	m.files = f
	m.cur.Store(s)
	return nil
}

// RevocationList issues a PEM-encoded CRL signed by ca that revokes the
// certificates with the given serial numbers as of now. number is the
// CRL's sequence number and must grow with each list the CA issues;
// NextUpdate is now + validity, after which Cairn warns that the list is
// stale (and still applies it).
func (ca *CA) RevocationList(number int64, serials []*big.Int, validity time.Duration) ([]byte, error) {
	if validity <= 0 {
		return nil, fmt.Errorf("%w: CRL validity %v", ErrValidity, validity)
	}
	now := time.Now()
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(number),
		ThisUpdate: now.Add(-backdate),
		NextUpdate: now.Add(validity),
	}
	for _, n := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: now})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("tlsauth: create CRL: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), nil
}

// issuedByBundle reports whether chain's leaf is signed by a certificate
// of cas, directly or through the intermediates that follow it in chain.
// Only signatures and CA flags are checked, not validity periods: an
// expired certificate is warned about where it is used, not refused here.
func issuedByBundle(chain, cas []*x509.Certificate) error {
	for i, c := range chain {
		for _, ca := range cas {
			if c.Equal(ca) || c.CheckSignatureFrom(ca) == nil {
				return nil
			}
		}
		if i+1 == len(chain) {
			break
		}
		if err := c.CheckSignatureFrom(chain[i+1]); err != nil {
			return fmt.Errorf("certificate %d of the file is not signed by certificate %d: %w", i+1, i+2, err)
		}
	}
	last := chain[len(chain)-1]
	return fmt.Errorf("no certificate of the bundle signed %q (issuer %q)", last.Subject.String(), last.Issuer.String())
}
