package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairnkv/cairn/tlsauth"
)

// A CA directory, as `cairn ca init` makes it and `cairn cert` uses it,
// holds the CA certificate and its key under these names.
const (
	CACertName = "ca.crt"
	CAKeyName  = "ca.key"
)

// CAFiles returns the CA certificate and key files of CA directory dir.
func CAFiles(dir string) (certFile, keyFile string) {
	return filepath.Join(dir, CACertName), filepath.Join(dir, CAKeyName)
}

// InitResult is a CA made by InitCA.
type InitResult struct {
	Dir, CertFile, KeyFile string
	CA                     *CA
	TrustDomain            string
	Validity               time.Duration
}

// InitCA makes a new CA for trustDomain, valid for validity, in CA
// directory dir (made with mode 0700 if missing). It never replaces a CA:
// if ca.crt or ca.key exists, it refuses and says how to go on.
func InitCA(dir, trustDomain string, validity time.Duration) (*InitResult, error) {
	if err := tlsauth.ValidateTrustDomain(trustDomain); err != nil {
		return nil, err
	}
	certFile, keyFile := CAFiles(dir)
	found, err := existingFiles(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	if len(found) > 0 {
		return nil, fmt.Errorf("%s: cairn ca init never replaces a CA, since every certificate it issued would stop being trusted; to issue certificates from it, run \"cairn cert issue --ca-dir %s ...\"; to make a new PKI, pass another --dir (or move %s away first)",
			alreadyExistMsg(found), shellQuote(dir), shellQuote(dir))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create CA directory: %w", err)
	}
	ca, err := NewCA(trustDomain, validity)
	if err != nil {
		return nil, err
	}
	if err := ca.WriteFiles(certFile, keyFile); err != nil {
		return nil, err
	}
	return &InitResult{Dir: dir, CertFile: certFile, KeyFile: keyFile, CA: ca, TrustDomain: trustDomain, Validity: validity}, nil
}

// Write tells the operator what InitCA made and what to do next.
func (r *InitResult) Write(w io.Writer) error {
	var b strings.Builder
	fw := labelWidth(r.CertFile, r.KeyFile)
	fmt.Fprintf(&b, "Created CA %q for trust domain %s, valid until %s (%s):\n",
		r.CA.Cert.Subject.CommonName, r.TrustDomain, r.CA.Cert.NotAfter.UTC().Format(time.DateOnly), FormatValidity(r.Validity))
	fmt.Fprintf(&b, "  %-*s  CA certificate: every node and client trusts it (--ca-file, --cacert)\n", fw, r.CertFile)
	fmt.Fprintf(&b, "  %-*s  CA private key, mode 0600: keep it secret, offline if you can\n", fw, r.KeyFile)
	fmt.Fprintf(&b, "Next, issue a certificate for each node, naming the addresses clients and peers dial:\n")
	fmt.Fprintf(&b, "  cairn cert issue --ca-dir %s --node n1 --ip 10.0.0.1 --dns n1.example.net\n", shellQuote(r.Dir))
	_, err := io.WriteString(w, b.String())
	return err
}

// NodeHosts checks the IP addresses and DNS names asked for a certificate
// of kind (`cairn cert issue --ip/--dns`) and returns the SANs of a node
// certificate: a node needs at least one, a client none.
func NodeHosts(kind tlsauth.Kind, ips, dns []string) ([]string, error) {
	if kind == tlsauth.KindClient {
		if len(ips)+len(dns) > 0 {
			return nil, errors.New("--ip and --dns apply to node certificates only: a client certificate names no address")
		}
		return nil, nil
	}
	var hosts []string
	for _, s := range ips {
		if net.ParseIP(strings.Trim(strings.TrimSpace(s), "[]")) == nil {
			return nil, fmt.Errorf("--ip %q is not an IP address (use --dns for a name)", s)
		}
		hosts = append(hosts, s)
	}
	for _, s := range dns {
		if net.ParseIP(strings.Trim(strings.TrimSpace(s), "[]")) != nil {
			return nil, fmt.Errorf("--dns %q is an IP address: use --ip", s)
		}
		hosts = append(hosts, s)
	}
	if len(hosts) == 0 {
		return nil, errors.New("a node certificate needs the addresses clients and peers dial it at: pass --ip and/or --dns (loopback is not added unless listed: --ip 127.0.0.1 --dns localhost)")
	}
	return hosts, nil
}

// IssueRequest is a certificate to issue from a CA directory.
type IssueRequest struct {
	CADir string       // holds ca.crt and ca.key
	Kind  tlsauth.Kind // KindNode or KindClient
	Name  string
	Hosts []string // a node's SANs, as NodeHosts returns them
	// Validity is the lifetime asked for; the certificate never outlives
	// the CA.
	Validity time.Duration
	// TrustDomain of the identity; empty means the CA's (if NewCA made
	// it), else tlsauth.DefaultTrustDomain.
	TrustDomain string
	OutDir      string // where <Name>.crt, .key (and .p12) go; empty: CADir
	// P12 also writes <Name>.p12 with the key, the certificate and the CA
	// certificate, encrypted with P12Password.
	P12         bool
	P12Password string
	// Force replaces existing files (a renewal by hand).
	Force bool
	// Warn, if not nil, is told of what does not stop the issue but will
	// bite, as it is found.
	Warn func(msg string)
}

// IssueResult is a certificate Issue wrote.
type IssueResult struct {
	CAFile                     string
	Kind                       tlsauth.Kind
	Name, TrustDomain          string
	Cert                       *x509.Certificate
	CertFile, KeyFile, P12File string // P12File is empty without a .p12
}

// Issue issues the certificate req asks for and writes it: the key with
// mode 0600 (the .p12 too), each file atomically. It refuses to replace
// existing files unless req.Force, and never writes over the CA's own
// files.
func Issue(req IssueRequest) (*IssueResult, error) {
	warn := req.Warn
	if warn == nil {
		warn = func(string) {}
	}
	caCert, caKey := CAFiles(req.CADir)
	ca, err := loadCADir(req.CADir)
	if err != nil {
		return nil, err
	}
	td := req.TrustDomain
	caTD, caIsOurs := CATrustDomain(ca.Cert)
	switch {
	case td == "" && caIsOurs:
		td = caTD
	case td == "":
		td = tlsauth.DefaultTrustDomain
	case caIsOurs && td != caTD:
		warn(fmt.Sprintf("the CA was made for trust domain %s, the certificate is for %s: members trust it only with [tls] trust_domain = %q", caTD, td, td))
	}

	out := req.OutDir
	if out == "" {
		out = req.CADir
	}
	r := &IssueResult{CAFile: caCert, Kind: req.Kind, Name: req.Name, TrustDomain: td,
		CertFile: filepath.Join(out, req.Name+".crt"), KeyFile: filepath.Join(out, req.Name+".key")}
	p12File := filepath.Join(out, req.Name+".p12")
	targets := []string{r.CertFile, r.KeyFile}
	if req.P12 {
		targets = append(targets, p12File)
	}
	for _, t := range targets {
		if sameFile(t, caCert) || sameFile(t, caKey) {
			return nil, fmt.Errorf("the name %q would overwrite the CA's own %s: choose another name or another --out", req.Name, t)
		}
	}
	if !req.Force {
		found, err := existingFiles(targets...)
		if err != nil {
			return nil, err
		}
		if len(found) > 0 {
			return nil, fmt.Errorf("%s: pass --force to replace the files (a renewal: the old certificate stays valid until it expires), or choose another --out", alreadyExistMsg(found))
		}
	}

	var iss Issued
	if req.Kind == tlsauth.KindNode {
		iss, err = ca.IssueNode(td, req.Name, req.Hosts, req.Validity)
	} else {
		iss, err = ca.IssueClient(td, req.Name, req.Validity)
	}
	if err != nil {
		return nil, err
	}
	var p12Data []byte
	if req.P12 {
		if p12Data, err = iss.PKCS12([]*x509.Certificate{ca.Cert}, req.P12Password); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(out, 0o700); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	if err := WritePair(iss, r.CertFile, r.KeyFile); err != nil {
		return nil, err
	}
	if req.P12 {
		if err := WritePKCS12(p12File, p12Data); err != nil {
			return nil, err
		}
		r.P12File = p12File
		if req.P12Password == "" {
			warn(fmt.Sprintf("%s has an empty password: anyone who can read it has the private key; pass --p12-password-file to set one", p12File))
		}
	} else if req.Force {
		if ok, _ := existingFiles(p12File); len(ok) > 0 {
			warn(fmt.Sprintf("%s still holds the previous certificate; remove it, or pass --p12 to replace it too", p12File))
		}
	}

	leaf, err := ReadCertificates(r.CertFile, "")
	if err != nil {
		return nil, err
	}
	r.Cert = leaf.Certs[0]
	if r.Cert.NotAfter.Equal(ca.Cert.NotAfter) {
		warn(fmt.Sprintf("the CA expires on %s, and the certificate with it (%s asked for)", ca.Cert.NotAfter.UTC().Format(time.RFC3339), FormatValidity(req.Validity)))
	}
	return r, nil
}

// Write tells the operator what Issue made and how to use it.
func (r *IssueResult) Write(w io.Writer) error {
	var b strings.Builder
	c := r.Cert
	id := tlsauth.Identity{Name: r.Name, Kind: r.Kind}
	fmt.Fprintf(&b, "Issued %s certificate %s (spiffe://%s/%s), valid until %s (%s):\n",
		r.Kind, id, r.TrustDomain, id, c.NotAfter.UTC().Format(time.RFC3339), FormatValidity(c.NotAfter.Sub(c.NotBefore)))
	files := []string{r.CertFile, r.KeyFile}
	if r.P12File != "" {
		files = append(files, r.P12File)
	}
	fw := labelWidth(append(files, "ip addresses:")...)
	writeSANs(&b, fw, r.Kind, c)
	fmt.Fprintf(&b, "  %-*s  certificate\n", fw, r.CertFile)
	fmt.Fprintf(&b, "  %-*s  private key, mode 0600\n", fw, r.KeyFile)
	if r.P12File != "" {
		fmt.Fprintf(&b, "  %-*s  PKCS#12: key, certificate and CA certificate, mode 0600\n", fw, r.P12File)
	}
	writeUsage(&b, r.Kind, r.Name, r.CAFile, r.CertFile, r.KeyFile)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeSANs writes the addresses and usages of a node or client
// certificate as "label: value" lines indented by two, labels fw wide.
func writeSANs(b *strings.Builder, fw int, kind tlsauth.Kind, c *x509.Certificate) {
	if kind != tlsauth.KindNode {
		fmt.Fprintf(b, "  %-*s  %s\n", fw, "usage:", "clientAuth")
		return
	}
	ips := make([]string, len(c.IPAddresses))
	for i, ip := range c.IPAddresses {
		ips[i] = ip.String()
	}
	fmt.Fprintf(b, "  %-*s  %s\n", fw, "ip addresses:", listOrNone(ips))
	fmt.Fprintf(b, "  %-*s  %s\n", fw, "dns names:", listOrNone(c.DNSNames))
	fmt.Fprintf(b, "  %-*s  %s\n", fw, "usage:", "serverAuth, clientAuth")
}

// writeUsage says how to use a node's or a client's files.
func writeUsage(b *strings.Builder, kind tlsauth.Kind, name, caFile, certFile, keyFile string) {
	if kind == tlsauth.KindNode {
		fmt.Fprintf(b, "Copy %s, %s and %s to the member and start it with:\n", caFile, certFile, keyFile)
		fmt.Fprintf(b, "  cairn serve --name %s --ca-file %s --cert-file %s --key-file %s ...\n",
			shellQuote(name), shellQuote(filepath.Base(caFile)), shellQuote(filepath.Base(certFile)), shellQuote(filepath.Base(keyFile)))
		fmt.Fprintf(b, "A node certificate may speak raft: guard %s like the CA key.\n", keyFile)
		return
	}
	fmt.Fprintf(b, "Use it with:\n")
	fmt.Fprintf(b, "  curl --cacert %s --cert %s --key %s https://HOST:4001/v2/keys/\n", shellQuote(caFile), shellQuote(certFile), shellQuote(keyFile))
	fmt.Fprintf(b, "  export CAIRN_CACERT=%s CAIRN_CERT=%s CAIRN_KEY=%s\n", shellQuote(caFile), shellQuote(certFile), shellQuote(keyFile))
}
