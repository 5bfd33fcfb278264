package tlsconf

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math/big"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn/tlsauth/pki"
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

// newCRLSet parses the CRLs of file and checks that each is signed by one
// of cas. An expired list (NextUpdate passed) is accepted: a stale list
// still names certificates that must not be trusted, and refusing it would
// leave them trusted until a fresh one arrives.
func newCRLSet(file string, data []byte, cas []*x509.Certificate) (*crlSet, error) {
	lists, err := pki.ParseCRLs(data)
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
		pki.SerialHex(e.serial), e.subject, e.file, e.at.UTC().Format(time.RFC3339))
}

func (e *revokedError) Unwrap() error { return ErrRevoked }

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
