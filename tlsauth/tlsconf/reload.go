package tlsconf

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cairnkv/cairn/tlsauth/pki"
)

// rawFiles is what the files of a Files set held when they were read.
// Parsing what was read, rather than opening the files again, makes the
// fingerprint (sum) describe exactly the material parsed from it, so a
// reload can tell whether anything changed since the last attempt.
type rawFiles struct {
	files                          Files
	ca, cert, key, crl             []byte
	caErr, certErr, keyErr, crlErr error
	keyMode                        os.FileMode
}

// readFiles reads every file of f, recording rather than returning read
// errors (parse reports them in file order).
func readFiles(f Files) *rawFiles {
	r := &rawFiles{files: f}
	if f.CAFile != "" {
		r.ca, r.caErr = pki.ReadFile("load CA file", f.CAFile, nil)
	}
	if f.CertFile != "" {
		r.cert, r.certErr = pki.ReadFile("load certificate file", f.CertFile, nil)
	}
	if f.KeyFile != "" {
		r.key, r.keyErr = pki.ReadFile("load key file", f.KeyFile, &r.keyMode)
	}
	if f.CRLFile != "" {
		r.crl, r.crlErr = pki.ReadFile("load CRL file", f.CRLFile, nil)
	}
	return r
}

// sum fingerprints the names, contents (or read errors) and key mode.
func (r *rawFiles) sum() [32]byte {
	h := sha256.New()
	part := func(name string, data []byte, err error) {
		var n [8]byte
		for _, b := range [][]byte{[]byte(name), data} {
			binary.BigEndian.PutUint64(n[:], uint64(len(b)))
			h.Write(n[:])
			h.Write(b)
		}
		if err != nil {
			h.Write([]byte(err.Error()))
		}
		h.Write([]byte{0})
	}
	part(r.files.CAFile, r.ca, r.caErr)
	part(r.files.CertFile, r.cert, r.certErr)
	part(r.files.KeyFile, r.key, r.keyErr)
	part(r.files.CRLFile, r.crl, r.crlErr)
	var m [4]byte
	binary.BigEndian.PutUint32(m[:], uint32(r.keyMode.Perm()))
	h.Write(m[:])
	var s [32]byte
	h.Sum(s[:0])
	return s
}

// Reloader reloads the Materials added to it as one set, on request
// (Reload, for SIGHUP) or when their files change (Watch):
//
//   - All or nothing: every material's files are read and checked first;
//     if any is bad (unreadable, unparsable, a key that does not match its
//     certificate or is readable by others, a certificate not issued by a
//     CA of its CA file, an expired new certificate, a CRL not signed by
//     such a CA), nothing is replaced, one log line says which file is
//     wrong and how, and the material in use stays in use.
//   - Each Material is replaced atomically (see Material), so a handshake
//     uses either the old or the new CA pool, key pair and CRLs, never a
//     mix. Established connections are not touched.
//   - Watch reacts to content only: an event that leaves every file as it
//     was loaded does nothing, and a bad set of files is reported once, not
//     at every event, until the files change again.
type Reloader struct {
	log      *slog.Logger
	reloaded chan struct{} // a material was replaced: Watch refreshes its directories

	mu       sync.Mutex // serializes reloads; guards what follows
	mats     []namedMaterial
	rejected [32]byte // fingerprint of the last set refused, if any
	refused  bool
}

type namedMaterial struct {
	name string
	m    *Material
}

// NewReloader returns a Reloader with no material, logging to logger (nil
// discards).
func NewReloader(logger *slog.Logger) *Reloader {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Reloader{log: logger, reloaded: make(chan struct{}, 1)}
}

// Add makes r reload m, naming it name ("client port", "peer port") in
// logs. Adding a material already added only extends its name. Add logs a
// warning if m's CRLs are already past their next update.
func (r *Reloader) Add(name string, m *Material) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.mats {
		if r.mats[i].m == m {
			r.mats[i].name += ", " + name
			return
		}
	}
	r.mats = append(r.mats, namedMaterial{name, m})
	r.warnStale(name, m.cur.Load())
}

// Reload reads every material's files again and installs them if all are
// good, even if nothing changed (an operator's explicit request, as
// SIGHUP). trigger names the request in logs. The error is the one
// logged.
func (r *Reloader) Reload(trigger string) error {
	return r.reload(trigger, true)
}

// Check is Reload for a change notification: it does nothing, silently,
// when no file changed since the material in use was loaded, or since the
// last refused attempt.
func (r *Reloader) Check(trigger string) error {
	return r.reload(trigger, false)
}

func (r *Reloader) reload(trigger string, force bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Hold every material's lock so that Material.Reload and SetCRLFile
	// cannot interleave with this set.
	for _, nm := range r.mats {
		nm.m.mu.Lock()
		defer nm.m.mu.Unlock()
	}
	type candidate struct {
		nm      namedMaterial
		raw     *rawFiles
		sum     [32]byte
		changed bool
		next    *snapshot
	}
	cands := make([]candidate, len(r.mats))
	all := sha256.New() // of the whole set, to recognize a refused set
	changed := false
	for i, nm := range r.mats {
		raw := readFiles(nm.m.files)
		sum := raw.sum()
		all.Write(sum[:])
		c := candidate{nm: nm, raw: raw, sum: sum, changed: sum != nm.m.cur.Load().sum}
		changed = changed || c.changed
		cands[i] = c
	}
	var setSum [32]byte
	all.Sum(setSum[:0])
	if !force && (!changed || (r.refused && setSum == r.rejected)) {
		return nil
	}
	var errs []string
	var firstErr error
	now := time.Now()
	for i := range cands {
		c := &cands[i]
		s, err := c.raw.parse()
		if err == nil && c.changed {
			err = checkReplacement(c.raw.files, c.nm.m.cur.Load(), s, now)
		}
		if err != nil {
			errs = append(errs, c.nm.name+": "+err.Error())
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		c.next = s
	}
	if firstErr != nil {
		r.rejected, r.refused = setSum, true
		msg := strings.Join(errs, "; ")
		r.log.LogAttrs(context.Background(), slog.LevelError, "tlsauth: TLS reload refused; the certificates, keys and CRLs in use stay in use",
			slog.String("trigger", trigger), slog.String("err", msg))
		if len(errs) > 1 {
			return fmt.Errorf("%w (and %d more: %s)", firstErr, len(errs)-1, msg)
		}
		return firstErr
	}
	r.refused = false
	for _, c := range cands {
		if !c.changed {
			continue
		}
		c.nm.m.cur.Store(c.next)
		leaf := c.next.cert.Leaf
		attrs := []slog.Attr{
			slog.String("material", c.nm.name), slog.String("trigger", trigger),
			slog.String("cert_file", c.raw.files.CertFile), slog.String("serial", pki.SerialHex(leaf.SerialNumber)),
			slog.Time("not_after", leaf.NotAfter),
		}
		if crl := c.next.crl; crl != nil {
			attrs = append(attrs, slog.String("crl_file", crl.file), slog.Int("revoked", crl.entries))
		}
		r.log.LogAttrs(context.Background(), slog.LevelInfo, "tlsauth: TLS material reloaded", attrs...)
		r.warnStale(c.nm.name, c.next)
	}
	if !changed {
		r.log.LogAttrs(context.Background(), slog.LevelInfo, "tlsauth: TLS material unchanged", slog.String("trigger", trigger))
		return nil
	}
	select {
	case r.reloaded <- struct{}{}:
	default:
	}
	return nil
}

// checkReplacement refuses to replace the material in use (old) with next
// when next would break what works: a certificate that has expired (an old
// file put back by mistake), or a certificate not issued by a CA of the
// new bundle where the one in use was issued by a CA of its bundle (a
// half-done rotation: new CA, old certificate, or the reverse). A
// certificate not valid yet is accepted: the issuer's clock may be a little
// ahead, and the expiry watch warns about it.
func checkReplacement(f Files, old, next *snapshot, now time.Time) error {
	if leaf := next.cert.Leaf; now.After(leaf.NotAfter) {
		return &pki.FileError{Op: "load certificate file", Path: f.CertFile, Err: fmt.Errorf("%w at %s; not replacing the certificate in use with it", ErrExpired, leaf.NotAfter.UTC().Format(time.RFC3339))}
	}
	if next.notIssued != nil && old.notIssued == nil {
		return next.notIssued
	}
	return nil
}

func (r *Reloader) warnStale(name string, s *snapshot) {
	if s.crl != nil && s.crl.stale(time.Now()) {
		r.log.LogAttrs(context.Background(), slog.LevelWarn, "tlsauth: CRL is past its next update; still applied, publish a fresh one and reload",
			slog.String("material", name), slog.String("file", s.crl.file), slog.Time("next_update", s.crl.nextUpdate))
	}
}

// files returns every file of every material, for Watch.
func (r *Reloader) files() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, nm := range r.mats {
		f := nm.m.Files()
		for _, p := range []string{f.CAFile, f.CertFile, f.KeyFile, f.CRLFile} {
			if p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// errNoMaterial is returned by Watch when nothing was added.
var errNoMaterial = errors.New("tlsauth: nothing to watch: no material added to the reloader")
