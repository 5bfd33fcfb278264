package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Revocation lists kept by Revoke.
const (
	// CRLName is the CRL file of a CA directory unless told otherwise.
	CRLName = "ca.crl"
	// DefaultCRLValidity is how long a CRL that Revoke signs stays fresh:
	// past its next update, Cairn still applies it and warns. Re-run
	// Revoke (any serial already listed will do) to publish a fresh one.
	DefaultCRLValidity = 30 * Day
)

// reasons are RFC 5280's CRL reason codes by the names openssl uses
// (openssl ca -crl_reason). 7 is unused and removeFromCRL (8) is for delta
// CRLs, which Cairn does not make.
var reasons = []string{0: "unspecified", 1: "keyCompromise", 2: "CACompromise", 3: "affiliationChanged",
	4: "superseded", 5: "cessationOfOperation", 6: "certificateHold", 9: "privilegeWithdrawn", 10: "AACompromise"}

// ParseReason maps a revocation reason name (case-insensitive, as openssl
// spells them; empty means unspecified) to its RFC 5280 code.
func ParseReason(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	for code, name := range reasons {
		if name != "" && strings.EqualFold(name, s) {
			return code, nil
		}
	}
	return 0, fmt.Errorf("tlsauth: unknown revocation reason %q; use one of %s", s, strings.Join(ReasonNames(), ", "))
}

// ReasonNames lists the reasons ParseReason knows, by code.
func ReasonNames() []string {
	return slices.DeleteFunc(slices.Clone(reasons), func(s string) bool { return s == "" })
}

// reasonName is the name of a reason code.
func reasonName(code int) string {
	if code >= 0 && code < len(reasons) && reasons[code] != "" {
		return reasons[code]
	}
	return fmt.Sprintf("reason %d", code)
}

// ParseSerial reads a certificate serial number in hexadecimal, as
// openssl and `cairn cert inspect` print it ("5A:0F:..", "5a0f..",
// "0x5A0F").
func ParseSerial(s string) (*big.Int, error) {
	h := strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	h = strings.TrimPrefix(strings.TrimPrefix(h, "0x"), "0X")
	n, ok := new(big.Int).SetString(h, 16)
	if !ok || n.Sign() <= 0 {
		return nil, fmt.Errorf("tlsauth: serial number %q: want a positive hexadecimal number such as 5A:0F:13 or 5a0f13", s)
	}
	return n, nil
}

// RevokeRequest is a certificate to add to its CA's CRL.
type RevokeRequest struct {
	CADir string // holds ca.crt and ca.key
	// CertFile is the certificate to revoke (PEM or DER); or give its
	// Serial. The certificate must be issued by the CA.
	CertFile string
	Serial   *big.Int
	// CRLFile is the CRL to update (the file crl_file names); empty means
	// CADir/ca.crl. It is created on first use.
	CRLFile  string
	Reason   int           // an RFC 5280 reason code (ParseReason)
	Validity time.Duration // until the next update; 0 means DefaultCRLValidity
}

// RevokeResult is what Revoke wrote.
type RevokeResult struct {
	CRLFile    string
	Serial     *big.Int
	Subject    string // of the certificate revoked; empty when given by serial
	RevokedAt  time.Time
	Reason     int
	Already    bool // the serial was listed already: its entry is kept as it was
	Created    bool // the CRL file is new
	Number     *big.Int
	Entries    int
	NextUpdate time.Time
}

// Revoke adds a certificate to the CRL of the CA of req.CADir and writes
// the list, signed again with the next CRL number, atomically (mode 0644)
// to req.CRLFile. Every entry of the CA's earlier list is kept with its
// time and reason; a serial listed already keeps its entry (the list is
// signed again, with a fresh next update: that is how to refresh a list).
// Lists of other CAs in the file are kept as they are. Servers whose
// crl_file is that file refuse the certificate once they reload it,
// which they do when the file changes.
func Revoke(req RevokeRequest) (*RevokeResult, error) {
	if (req.CertFile == "") == (req.Serial == nil) {
		return nil, errors.New("tlsauth: revoke: give the certificate or its serial number (one of them)")
	}
	ca, err := loadCADir(req.CADir)
	if err != nil {
		return nil, err
	}
	r := &RevokeResult{CRLFile: req.CRLFile, Serial: req.Serial, Reason: req.Reason}
	if r.CRLFile == "" {
		r.CRLFile = filepath.Join(req.CADir, CRLName)
	}
	if req.CertFile != "" {
		cf, err := ReadCertificates(req.CertFile, "")
		if err != nil {
			return nil, err
		}
		c := cf.Certs[0]
		if err := issuedBy(c, ca); err != nil {
			return nil, &FileError{Op: "revoke", Path: req.CertFile, Err: fmt.Errorf("%w in %s (%v): only the CA that issued a certificate can revoke it", ErrNotIssuedHere, req.CADir, err)}
		}
		r.Serial, r.Subject = c.SerialNumber, c.Subject.String()
	}
	valid := req.Validity
	if valid == 0 {
		valid = DefaultCRLValidity
	}

	ours, others, err := readCRLFile(r.CRLFile, ca)
	if err != nil {
		return nil, err
	}
	r.Created = ours == nil && others == nil
	number := big.NewInt(1)
	var entries []x509.RevocationListEntry
	seen := make(map[string]bool)
	for _, rl := range ours {
		if rl.Number != nil && rl.Number.Cmp(number) >= 0 {
			number = new(big.Int).Add(rl.Number, big.NewInt(1))
		}
		for _, e := range rl.RevokedCertificateEntries {
			k := e.SerialNumber.String()
			if seen[k] {
				continue
			}
			seen[k] = true
			entries = append(entries, x509.RevocationListEntry{SerialNumber: e.SerialNumber, RevocationTime: e.RevocationTime, ReasonCode: e.ReasonCode})
			if e.SerialNumber.Cmp(r.Serial) == 0 {
				r.Already, r.RevokedAt, r.Reason = true, e.RevocationTime, e.ReasonCode
			}
		}
	}
	if !r.Already {
		r.RevokedAt = time.Now().UTC().Truncate(time.Second)
		entries = append(entries, x509.RevocationListEntry{SerialNumber: r.Serial, RevocationTime: r.RevokedAt, ReasonCode: req.Reason})
	}
	data, err := ca.SignCRL(number, entries, valid)
	if err != nil {
		return nil, err
	}
	for _, rl := range others {
		data = append(data, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: rl.Raw})...)
	}
	if err := WriteFileAtomic(r.CRLFile, data, certFileMode); err != nil {
		return nil, err
	}
	r.Number, r.Entries = number, len(entries)
	lists, err := ParseCRLs(data)
	if err != nil {
		return nil, err
	}
	r.NextUpdate = lists[0].NextUpdate
	return r, nil
}

// readCRLFile returns the lists of path signed by ca and the others. A
// missing file has none.
func readCRLFile(path string, ca *CA) (ours, others []*x509.RevocationList, err error) {
	data, err := ReadFile("read CRL file", path, nil)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	lists, err := ParseCRLs(data)
	if err != nil {
		return nil, nil, &FileError{Op: "read CRL file", Path: path, Err: err}
	}
	for _, rl := range lists {
		if bytes.Equal(rl.RawIssuer, ca.Cert.RawSubject) && rl.CheckSignatureFrom(ca.Cert) == nil {
			ours = append(ours, rl)
		} else {
			others = append(others, rl)
		}
	}
	return ours, others, nil
}

// Write tells the operator what Revoke did.
func (r *RevokeResult) Write(w io.Writer) error {
	var b strings.Builder
	what := "serial " + SerialHex(r.Serial)
	if r.Subject != "" {
		what += " (" + r.Subject + ")"
	}
	if r.Already {
		fmt.Fprintf(&b, "Already revoked: %s, since %s (%s); the CRL is signed again.\n", what, r.RevokedAt.UTC().Format(time.RFC3339), reasonName(r.Reason))
	} else {
		fmt.Fprintf(&b, "Revoked %s as of %s (%s).\n", what, r.RevokedAt.UTC().Format(time.RFC3339), reasonName(r.Reason))
	}
	verb := "updated"
	if r.Created {
		verb = "created"
	}
	fmt.Fprintf(&b, "  %s  CRL %s: number %s, %d revoked, next update %s\n", r.CRLFile, verb, r.Number, r.Entries, r.NextUpdate.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Servers whose crl_file is %s refuse it once they load the new list\n", shellQuote(r.CRLFile))
	fmt.Fprintf(&b, "(they watch the file; SIGHUP also works); copy it to servers that read a copy of their own.\n")
	fmt.Fprintf(&b, "Sign the list again before %s (revoke any listed serial again): past that, it is still applied, with a warning.\n", r.NextUpdate.UTC().Format(time.DateOnly))
	_, err := io.WriteString(w, b.String())
	return err
}
