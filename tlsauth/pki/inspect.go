package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cairnkv/cairn/tlsauth"
)

// NewCA names its certificate caCNPrefix + trust domain + caCNSuffix.
const caCNPrefix, caCNSuffix = "Cairn CA (", ")"

// Roles reported by Inspect.
const (
	RoleNode    = "node"
	RoleClient  = "client"
	RoleUnknown = "unknown"
)

// CATrustDomain returns the trust domain of a CA certificate made by NewCA
// (it is in the CN), and false for any other certificate.
func CATrustDomain(c *x509.Certificate) (string, bool) {
	if c == nil || !c.IsCA {
		return "", false
	}
	td, ok := strings.CutPrefix(c.Subject.CommonName, caCNPrefix)
	if !ok {
		return "", false
	}
	td, ok = strings.CutSuffix(td, caCNSuffix)
	if !ok || tlsauth.ValidateTrustDomain(td) != nil {
		return "", false
	}
	return td, true
}

// CertFile is what a certificate file holds.
type CertFile struct {
	Path   string
	Format string              // "PEM", "DER" or "PKCS#12"
	Certs  []*x509.Certificate // at least one; the first is the leaf
	HasKey bool                // the file holds the leaf's private key too
}

// ReadCertificates reads a certificate file: PEM with one or more
// certificates (leaf first; other blocks, such as a key, are skipped), one
// DER certificate, or a PKCS#12 bundle opened with password (a wrong one
// is ErrP12Password). Files over 1 MiB are refused.
func ReadCertificates(path, password string) (CertFile, error) {
	const op = "read certificate file"
	f, err := os.Open(path)
	if err != nil {
		return CertFile{}, &FileError{Op: op, Path: path, Err: err}
	}
	defer f.Close()
	data, err := readLimited(f)
	if err != nil {
		return CertFile{}, &FileError{Op: op, Path: path, Err: err}
	}
	cf := CertFile{Path: path}
	switch {
	case bytes.Contains(data, []byte("-----BEGIN ")):
		cf.Format = "PEM"
		if cf.Certs, err = ParseCertsPEM(data); err != nil {
			return CertFile{}, &FileError{Op: op, Path: path, Err: err}
		}
		_, keyErr := ParseKeyPEM(data)
		cf.HasKey = keyErr == nil
	default:
		if c, derr := x509.ParseCertificate(data); derr == nil {
			cf.Format, cf.Certs = "DER", []*x509.Certificate{c}
			break
		}
		_, leaf, chain, perr := DecodePKCS12(data, password)
		if errors.Is(perr, ErrP12Password) {
			return CertFile{}, &FileError{Op: op, Path: path, Err: perr}
		}
		if perr != nil {
			return CertFile{}, &FileError{Op: op, Path: path, Err: fmt.Errorf("%w (as PKCS#12: %v)", ErrUnknownCertFormat, strings.TrimPrefix(perr.Error(), "tlsauth: "))}
		}
		cf.Format, cf.HasKey = "PKCS#12", true
		cf.Certs = append([]*x509.Certificate{leaf}, chain...)
	}
	return cf, nil
}

// InspectOptions says what Inspect checks a certificate against.
type InspectOptions struct {
	// TrustDomain scopes SPIFFE identities. Empty means the trust domain
	// of the root the certificate chains to if NewCA made it, else of the
	// first root NewCA made, else DefaultTrustDomain.
	TrustDomain string
	// Roots are the CA certificates the chain is verified against; with
	// none, the chain is not checked.
	Roots []*x509.Certificate
	// Now is when validity is judged; zero means time.Now().
	Now time.Time
}

// Report is what Inspect found about a certificate.
type Report struct {
	File        CertFile
	Leaf        *x509.Certificate
	TrustDomain string
	Identity    tlsauth.Identity
	IdentityErr error  // no usable identity in TrustDomain
	Role        string // RoleNode, RoleClient or RoleUnknown
	Now         time.Time
	// ChainChecked is set when Roots were given; then either ChainErr is
	// the verification error or Chain is the verified chain, leaf first.
	ChainChecked bool
	Chain        []*x509.Certificate
	ChainErr     error
	// Warnings are things that do not make Cairn refuse the certificate
	// outright but will bite: a missing extended key usage for its role,
	// a node certificate without addresses, an expiry within
	// LongLivedWarning (30 days, whatever the lifetime: see RenewalWarning
	// for the rule of `cairn status`).
	Warnings []string
}

// Inspect describes f's leaf certificate: its identity and role as Cairn
// sees them in the trust domain, its validity at o.Now and, with o.Roots,
// whether it chains to them (certificates after the leaf in f serve as
// intermediates). Any extended key usage is accepted by the chain check;
// a usage the role needs and the certificate lacks is a warning. f holds
// at least one certificate, as ReadCertificates guarantees.
func Inspect(f CertFile, o InspectOptions) *Report {
	r := &Report{File: f, Leaf: f.Certs[0], TrustDomain: o.TrustDomain, Now: o.Now}
	if r.Now.IsZero() {
		r.Now = time.Now()
	}
	leaf := r.Leaf
	if len(o.Roots) > 0 {
		r.ChainChecked = true
		chains, err := leaf.Verify(x509.VerifyOptions{
			Roots:         poolOfCerts(o.Roots),
			Intermediates: poolOfCerts(f.Certs[1:]),
			CurrentTime:   r.Now,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		if err != nil {
			r.ChainErr = err
		} else {
			r.Chain = chains[0]
		}
	}
	if r.TrustDomain == "" {
		r.TrustDomain = defaultTrustDomain(r.Chain, o.Roots)
	}
	r.Identity, r.IdentityErr = tlsauth.IdentityFromCert(leaf, r.TrustDomain)
	r.Role = RoleUnknown
	if r.IdentityErr == nil && !leaf.IsCA {
		switch r.Identity.Kind {
		case tlsauth.KindNode:
			r.Role = RoleNode
		case tlsauth.KindClient:
			r.Role = RoleClient
		}
	}
	r.Warnings = warnings(r)
	return r
}

// InspectFile is Inspect of the certificate file path (ReadCertificates;
// a PKCS#12 bundle is opened with the first line of passwordFile, or an
// empty password without one), with the roots in the PEM bundle caFile
// when it is not empty.
func InspectFile(path, passwordFile, caFile string, o InspectOptions) (*Report, error) {
	var password string
	if passwordFile != "" {
		var err error
		if password, err = ReadPasswordFile(passwordFile); err != nil {
			return nil, err
		}
	}
	cf, err := ReadCertificates(path, password)
	if err != nil {
		return nil, err
	}
	if caFile != "" {
		ca, err := ReadCertificates(caFile, "")
		if err != nil {
			return nil, err
		}
		o.Roots = ca.Certs
	}
	return Inspect(cf, o), nil
}

// defaultTrustDomain is the trust domain of the Cairn CA that chain (a
// verified chain, or nil) ends in, else of the first Cairn CA among roots,
// else DefaultTrustDomain.
func defaultTrustDomain(chain, roots []*x509.Certificate) string {
	if len(chain) > 0 {
		if td, ok := CATrustDomain(chain[len(chain)-1]); ok {
			return td
		}
	}
	for _, c := range roots {
		if td, ok := CATrustDomain(c); ok {
			return td
		}
	}
	return tlsauth.DefaultTrustDomain
}

func warnings(r *Report) []string {
	leaf := r.Leaf
	var w []string
	if leaf.IsCA {
		w = append(w, "this is a CA certificate, not a node or client certificate")
	}
	switch r.Role {
	case RoleNode:
		if !hasEKU(leaf, x509.ExtKeyUsageServerAuth) {
			w = append(w, "no serverAuth extended key usage: it cannot serve the client API or the peer port")
		}
		if !hasEKU(leaf, x509.ExtKeyUsageClientAuth) {
			w = append(w, "no clientAuth extended key usage: the node cannot dial other nodes")
		}
		if len(leaf.IPAddresses) == 0 && len(leaf.DNSNames) == 0 {
			w = append(w, "no IP or DNS names: clients and peers cannot verify this node as a server")
		}
	default:
		if !leaf.IsCA && !hasEKU(leaf, x509.ExtKeyUsageClientAuth) {
			w = append(w, "no clientAuth extended key usage: Cairn refuses it as a client certificate")
		}
	}
	if left := leaf.NotAfter.Sub(r.Now); left > 0 && left < LongLivedWarning && !r.Now.Before(leaf.NotBefore) {
		w = append(w, "expires in "+FormatValidity(left)+": issue a new one (cairn cert issue --force)")
	}
	return w
}

// hasEKU reports whether c may be used for u. A certificate without the
// extension may be used for anything, as crypto/x509 decides.
func hasEKU(c *x509.Certificate, u x509.ExtKeyUsage) bool {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return true
	}
	return slices.Contains(c.ExtKeyUsage, u) || slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny)
}

// Problems lists why Cairn would refuse the certificate: it is outside its
// validity period, it does not chain to the roots given, or it has no
// usable identity in the trust domain. Empty means none was found.
func (r *Report) Problems() []string {
	var p []string
	if v, ok := r.validity(); !ok {
		p = append(p, v)
	}
	if r.ChainChecked && r.ChainErr != nil {
		p = append(p, "chain check failed: "+r.ChainErr.Error())
	}
	if r.IdentityErr != nil {
		p = append(p, "no usable identity: "+strings.TrimPrefix(r.IdentityErr.Error(), "tlsauth: "))
	}
	return p
}

// validity describes the leaf's validity at r.Now and whether it is valid.
func (r *Report) validity() (string, bool) {
	leaf := r.Leaf
	switch {
	case r.Now.Before(leaf.NotBefore):
		return "not yet valid: valid from " + leaf.NotBefore.UTC().Format(time.RFC3339) + ", in " + FormatValidity(leaf.NotBefore.Sub(r.Now)), false
	case r.Now.After(leaf.NotAfter):
		return "expired " + FormatValidity(r.Now.Sub(leaf.NotAfter)) + " ago, on " + leaf.NotAfter.UTC().Format(time.RFC3339), false
	}
	return "valid, " + FormatValidity(leaf.NotAfter.Sub(r.Now)) + " left", true
}

// Write prints the report as aligned "label: value" lines.
func (r *Report) Write(w io.Writer) error {
	leaf := r.Leaf
	var b strings.Builder
	line := func(label, value string) { fmt.Fprintf(&b, "%-15s %s\n", label+":", value) }

	desc := r.File.Format
	if n := len(r.File.Certs); n > 1 {
		desc += fmt.Sprintf(", %d certificates", n)
	}
	if r.File.HasKey {
		desc += ", with private key"
	}
	line("file", r.File.Path+" ("+desc+")")
	line("identity", r.identity())
	line("role", r.role())
	line("trust domain", r.TrustDomain)
	line("subject", leaf.Subject.String())
	line("issuer", leaf.Issuer.String())
	line("serial", colonHex(leaf.SerialNumber.Bytes()))
	line("dns names", listOrNone(leaf.DNSNames))
	ips := make([]string, len(leaf.IPAddresses))
	for i, ip := range leaf.IPAddresses {
		ips[i] = ip.String()
	}
	line("ip addresses", listOrNone(ips))
	uris := make([]string, len(leaf.URIs))
	for i, u := range leaf.URIs {
		uris[i] = u.String()
	}
	line("uris", listOrNone(uris))
	line("public key", describeKey(leaf.PublicKey))
	line("key usage", listOrNone(keyUsageNames(leaf.KeyUsage)))
	line("ext key usage", extKeyUsages(leaf))
	line("not before", leaf.NotBefore.UTC().Format(time.RFC3339))
	line("not after", leaf.NotAfter.UTC().Format(time.RFC3339))
	v, _ := r.validity()
	line("validity", v)
	line("chain", r.chain())
	for _, c := range r.File.Certs[1:] {
		line("also in file", c.Subject.String())
	}
	for _, s := range r.Warnings {
		line("warning", s)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) identity() string {
	switch {
	case r.IdentityErr != nil:
		return "none: " + strings.TrimPrefix(r.IdentityErr.Error(), "tlsauth: ")
	case r.Identity.Kind == tlsauth.KindCN:
		return r.Identity.String() + " (by CN: the certificate has no SPIFFE URI SAN)"
	}
	return r.Identity.String() + " (" + tlsauth.SPIFFEID(r.TrustDomain, r.Identity.Kind, r.Identity.Name).String() + ")"
}

func (r *Report) role() string {
	if r.Leaf.IsCA {
		return r.Role + " (a CA certificate)"
	}
	if r.Role == RoleUnknown && r.IdentityErr == nil && r.Identity.Kind == tlsauth.KindCN {
		return RoleUnknown + " (a node on the peer port only if --peer-cert-allowed-cn lists its CN; else a client)"
	}
	return r.Role
}

func (r *Report) chain() string {
	switch {
	case !r.ChainChecked:
		return "not checked (pass --ca CAFILE)"
	case r.ChainErr != nil:
		return "FAILED: " + r.ChainErr.Error()
	}
	names := make([]string, len(r.Chain))
	for i, c := range r.Chain {
		names[i] = c.Subject.String()
	}
	return "OK: " + strings.Join(names, " <- ")
}

func poolOfCerts(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func colonHex(b []byte) string {
	if len(b) == 0 {
		return "00"
	}
	var s strings.Builder
	for i, c := range b {
		if i > 0 {
			s.WriteByte(':')
		}
		fmt.Fprintf(&s, "%02x", c)
	}
	return s.String()
}

func describeKey(pub any) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d bits", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

var keyUsages = []struct {
	bit  x509.KeyUsage
	name string
}{
	{x509.KeyUsageDigitalSignature, "digitalSignature"},
	{x509.KeyUsageContentCommitment, "contentCommitment"},
	{x509.KeyUsageKeyEncipherment, "keyEncipherment"},
	{x509.KeyUsageDataEncipherment, "dataEncipherment"},
	{x509.KeyUsageKeyAgreement, "keyAgreement"},
	{x509.KeyUsageCertSign, "keyCertSign"},
	{x509.KeyUsageCRLSign, "cRLSign"},
	{x509.KeyUsageEncipherOnly, "encipherOnly"},
	{x509.KeyUsageDecipherOnly, "decipherOnly"},
}

func keyUsageNames(ku x509.KeyUsage) []string {
	var names []string
	for _, u := range keyUsages {
		if ku&u.bit != 0 {
			names = append(names, u.name)
		}
	}
	return names
}

var extKeyUsageNames = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:             "any",
	x509.ExtKeyUsageServerAuth:      "serverAuth",
	x509.ExtKeyUsageClientAuth:      "clientAuth",
	x509.ExtKeyUsageCodeSigning:     "codeSigning",
	x509.ExtKeyUsageEmailProtection: "emailProtection",
	x509.ExtKeyUsageTimeStamping:    "timeStamping",
	x509.ExtKeyUsageOCSPSigning:     "OCSPSigning",
}

func extKeyUsages(c *x509.Certificate) string {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return "none (any usage)"
	}
	var names []string
	for _, u := range c.ExtKeyUsage {
		if n, ok := extKeyUsageNames[u]; ok {
			names = append(names, n)
		} else {
			names = append(names, fmt.Sprintf("usage %d", u))
		}
	}
	for _, oid := range c.UnknownExtKeyUsage {
		names = append(names, oid.String())
	}
	return strings.Join(names, ", ")
}
