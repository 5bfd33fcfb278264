package main

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/tlsauth"
	"github.com/cairnkv/cairn/tlsauth/pki"
)

// Names, defaults and limits of the PKI commands.
const (
	defaultPKIDir    = "pki"
	defaultCAValid   = "10y"
	defaultLeafValid = "90d"
	maxPasswordFile  = 4 << 10
	caCertName       = "ca.crt"
	caKeyName        = "ca.key"
)

// newCACmd is `cairn ca`: the cluster CA.
func newCACmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "ca", Short: "Make the cluster CA (cairn ca init)"}
	var dir, td, valid string
	initCmd := &cobra.Command{
		Use:   "init [--dir DIR] [--trust-domain TD] [--valid 10y]",
		Short: "Make a new cluster CA: ca.crt and ca.key (ECDSA P-256)",
		Long: `Make a new certificate authority for a Cairn cluster: an ECDSA P-256 key
(DIR/ca.key, mode 0600) and a self-signed certificate (DIR/ca.crt). Every node
and client trusts ca.crt; ca.key signs node and client certificates with
"cairn cert issue". Keep ca.key secret, offline if you can.

An existing CA is never replaced: every certificate it issued would stop being
trusted. The trust domain names the identities of the certificates it issues
(spiffe://<trust-domain>/node/<name>); it must match [tls] trust_domain of the
cluster. --valid takes days (3650d), years (10y) or a Go duration.`,
		Example: `  cairn ca init
  cairn ca init --dir /etc/cairn/pki --trust-domain prod.example --valid 5y`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return runCAInit(stdout, dir, td, valid)
		},
	}
	f := initCmd.Flags()
	f.StringVar(&dir, "dir", defaultPKIDir, "directory of ca.crt and ca.key (made with mode 0700 if missing)")
	f.StringVar(&td, "trust-domain", tlsauth.DefaultTrustDomain, "SPIFFE trust domain of the identities this CA issues")
	f.StringVar(&valid, "valid", defaultCAValid, "validity of the CA certificate: 3650d, 10y or a Go duration")
	cmd.AddCommand(initCmd)
	return cmd
}

func runCAInit(stdout io.Writer, dir, td, valid string) error {
	validity, err := pki.ParseValidity(valid)
	if err != nil {
		return fmt.Errorf("--valid: %w", err)
	}
	if err := tlsauth.ValidateTrustDomain(td); err != nil {
		return err
	}
	certFile, keyFile := filepath.Join(dir, caCertName), filepath.Join(dir, caKeyName)
	found, err := existingFiles(certFile, keyFile)
	if err != nil {
		return err
	}
	if len(found) > 0 {
		return fmt.Errorf("%s: cairn ca init never replaces a CA, since every certificate it issued would stop being trusted; to issue certificates from it, run \"cairn cert issue --ca-dir %s ...\"; to make a new PKI, pass another --dir (or move %s away first)",
			alreadyExistMsg(found), shellQuote(dir), shellQuote(dir))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create CA directory: %w", err)
	}
	ca, err := pki.NewCA(td, validity)
	if err != nil {
		return err
	}
	if err := ca.WriteFiles(certFile, keyFile); err != nil {
		return err
	}
	w := labelWidth(certFile, keyFile)
	fmt.Fprintf(stdout, "Created CA %q for trust domain %s, valid until %s (%s):\n",
		ca.Cert.Subject.CommonName, td, ca.Cert.NotAfter.UTC().Format(time.DateOnly), pki.FormatValidity(validity))
	fmt.Fprintf(stdout, "  %-*s  CA certificate: every node and client trusts it (--ca-file, --cacert)\n", w, certFile)
	fmt.Fprintf(stdout, "  %-*s  CA private key, mode 0600: keep it secret, offline if you can\n", w, keyFile)
	fmt.Fprintf(stdout, "Next, issue a certificate for each node, naming the addresses clients and peers dial:\n")
	fmt.Fprintf(stdout, "  cairn cert issue --ca-dir %s --node n1 --ip 10.0.0.1 --dns n1.example.net\n", shellQuote(dir))
	return nil
}

// newCertCmd is `cairn cert`: issuing and inspecting certificates.
func newCertCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "cert", Short: "Issue and inspect node and client certificates"}
	cmd.AddCommand(newCertIssueCmd(stdout, stderr), newCertInspectCmd(stdout))
	return cmd
}

// issueOptions are the flags of `cairn cert issue`.
type issueOptions struct {
	node, client     string
	ips, dns         []string
	valid            string
	caDir, out       string
	p12              bool
	p12PasswordFile  string
	trustDomain      string
	trustDomainGiven bool
	force            bool
}

func newCertIssueCmd(stdout, stderr io.Writer) *cobra.Command {
	o := &issueOptions{}
	cmd := &cobra.Command{
		Use:   "issue --node NAME | --client NAME [flags]",
		Short: "Issue a node or client certificate from the cluster CA",
		Long: `Issue a certificate from the CA in --ca-dir (ca.crt, ca.key; see "cairn ca
init") and write OUT/<name>.crt and OUT/<name>.key (mode 0600).

--node NAME: a certificate for cluster member NAME, for serving (the client
API and the peer port) and for dialing other members: extended key usages
serverAuth and clientAuth, the identity spiffe://<trust-domain>/node/NAME, and
the IP addresses (--ip) and DNS names (--dns) that clients and peers dial. At
least one is required; loopback (127.0.0.1, localhost) is only included when
listed. A node certificate may speak raft: guard its key like the CA key.

--client NAME: a certificate for client NAME: extended key usage clientAuth and
the identity spiffe://<trust-domain>/client/NAME. Authorization rules name it
client/NAME.

--p12 also writes OUT/<name>.p12 (mode 0600): the key, the certificate and the
CA certificate in one PKCS#12 file (AES-256, PBKDF2-SHA-256; OpenSSL 1.1.1+,
Java 12+, Windows Server 2019+ read it) for browsers and tools that import one
file. Its password is the first line of --p12-password-file (which implies
--p12); without one the password is empty and the file must be guarded like
the key.

Existing files are not replaced unless --force is given (to renew a
certificate; the old one stays valid until it expires). The certificate never
outlives the CA. --valid takes days (90d), years (1y) or a Go duration (720h).`,
		Example: `  cairn cert issue --node n1 --ip 10.0.0.1 --dns n1.example.net
  cairn cert issue --node n1 --ip 10.0.0.1 --ip 127.0.0.1 --dns localhost --force
  cairn cert issue --client ops --valid 30d --ca-dir /etc/cairn/pki --out ./certs
  cairn cert issue --client alice --p12 --p12-password-file alice.pass`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.trustDomainGiven = cmd.Flags().Changed("trust-domain")
			return runCertIssue(stdout, stderr, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.node, "node", "", "issue a node certificate for member `NAME`")
	f.StringVar(&o.client, "client", "", "issue a client certificate for `NAME`")
	f.StringSliceVar(&o.ips, "ip", nil, "IP address SAN of a node certificate (repeatable, or comma-separated)")
	f.StringSliceVar(&o.dns, "dns", nil, "DNS name SAN of a node certificate (repeatable, or comma-separated)")
	f.StringVar(&o.valid, "valid", defaultLeafValid, "validity: 90d, 1y or a Go duration")
	f.StringVar(&o.caDir, "ca-dir", defaultPKIDir, "directory of the CA's ca.crt and ca.key")
	f.StringVar(&o.out, "out", "", "directory to write the certificate to (default: --ca-dir)")
	f.BoolVar(&o.p12, "p12", false, "also write <name>.p12, a PKCS#12 bundle of key, certificate and CA certificate")
	f.StringVar(&o.p12PasswordFile, "p12-password-file", "", "file whose first line is the .p12 password (implies --p12)")
	f.StringVar(&o.trustDomain, "trust-domain", "", "SPIFFE trust domain of the identity (default: the CA's, if cairn ca init made it; else "+tlsauth.DefaultTrustDomain+")")
	f.BoolVar(&o.force, "force", false, "replace existing certificate files (renewal)")
	return cmd
}

func runCertIssue(stdout, stderr io.Writer, o *issueOptions) error {
	kind, name := tlsauth.KindNode, o.node
	switch {
	case o.node != "" && o.client != "":
		return errors.New("pass either --node NAME or --client NAME, not both")
	case o.client != "":
		kind, name = tlsauth.KindClient, o.client
	case o.node == "":
		return errors.New("pass --node NAME (a cluster member) or --client NAME")
	}
	hosts, err := issueHosts(kind, o.ips, o.dns)
	if err != nil {
		return err
	}
	validity, err := pki.ParseValidity(o.valid)
	if err != nil {
		return fmt.Errorf("--valid: %w", err)
	}
	if o.trustDomainGiven {
		if err := tlsauth.ValidateTrustDomain(o.trustDomain); err != nil {
			return err
		}
	}
	p12 := o.p12 || o.p12PasswordFile != ""
	var password string
	if o.p12PasswordFile != "" {
		if password, err = readPasswordFile(o.p12PasswordFile); err != nil {
			return err
		}
	}

	caCert, caKey := filepath.Join(o.caDir, caCertName), filepath.Join(o.caDir, caKeyName)
	ca, err := pki.LoadCA(caCert, caKey)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w; make a CA first with \"cairn ca init --dir %s\", or point --ca-dir at the directory of ca.crt and ca.key", err, shellQuote(o.caDir))
	}
	if err != nil {
		return err
	}
	td := o.trustDomain
	caTD, caIsOurs := pki.CATrustDomain(ca.Cert)
	switch {
	case !o.trustDomainGiven && caIsOurs:
		td = caTD
	case !o.trustDomainGiven:
		td = tlsauth.DefaultTrustDomain
	case caIsOurs && td != caTD:
		fmt.Fprintf(stderr, "warning: the CA was made for trust domain %s, the certificate is for %s: members trust it only with [tls] trust_domain = %q\n", caTD, td, td)
	}

	out := o.out
	if out == "" {
		out = o.caDir
	}
	certFile, keyFile, p12File := filepath.Join(out, name+".crt"), filepath.Join(out, name+".key"), filepath.Join(out, name+".p12")
	targets := []string{certFile, keyFile}
	if p12 {
		targets = append(targets, p12File)
	}
	for _, t := range targets {
		if sameFile(t, caCert) || sameFile(t, caKey) {
			return fmt.Errorf("the name %q would overwrite the CA's own %s: choose another name or another --out", name, t)
		}
	}
	if !o.force {
		found, err := existingFiles(targets...)
		if err != nil {
			return err
		}
		if len(found) > 0 {
			return fmt.Errorf("%s: pass --force to replace the files (a renewal: the old certificate stays valid until it expires), or choose another --out", alreadyExistMsg(found))
		}
	}

	var iss pki.Issued
	if kind == tlsauth.KindNode {
		iss, err = ca.IssueNode(td, name, hosts, validity)
	} else {
		iss, err = ca.IssueClient(td, name, validity)
	}
	if err != nil {
		return err
	}
	var p12Data []byte
	if p12 {
		if p12Data, err = iss.PKCS12([]*x509.Certificate{ca.Cert}, password); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(out, 0o700); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	if err := pki.WritePair(iss, certFile, keyFile); err != nil {
		return err
	}
	if p12 {
		if err := pki.WritePKCS12(p12File, p12Data); err != nil {
			return err
		}
		if password == "" {
			fmt.Fprintf(stderr, "warning: %s has an empty password: anyone who can read it has the private key; pass --p12-password-file to set one\n", p12File)
		}
	} else if o.force {
		if ok, _ := existingFiles(p12File); len(ok) > 0 {
			fmt.Fprintf(stderr, "warning: %s still holds the previous certificate; remove it, or pass --p12 to replace it too\n", p12File)
		}
	}

	leaf, err := pki.ReadCertificates(certFile, "")
	if err != nil {
		return err
	}
	c := leaf.Certs[0]
	if c.NotAfter.Equal(ca.Cert.NotAfter) {
		fmt.Fprintf(stderr, "warning: the CA expires on %s, and the certificate with it (%s asked for)\n", ca.Cert.NotAfter.UTC().Format(time.RFC3339), pki.FormatValidity(validity))
	}
	printIssued(stdout, caCert, kind, name, td, c, certFile, keyFile, p12File, p12)
	return nil
}

// issueHosts checks --ip and --dns for a certificate of kind and returns
// the SANs of a node certificate.
func issueHosts(kind tlsauth.Kind, ips, dns []string) ([]string, error) {
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

func printIssued(w io.Writer, caCert string, kind tlsauth.Kind, name, td string, c *x509.Certificate, certFile, keyFile, p12File string, p12 bool) {
	id := tlsauth.Identity{Name: name, Kind: kind}
	fmt.Fprintf(w, "Issued %s certificate %s (spiffe://%s/%s), valid until %s (%s):\n",
		kind, id, td, id, c.NotAfter.UTC().Format(time.RFC3339), pki.FormatValidity(c.NotAfter.Sub(c.NotBefore)))
	files := []string{certFile, keyFile}
	if p12 {
		files = append(files, p12File)
	}
	fw := labelWidth(append(files, "ip addresses:")...)
	if kind == tlsauth.KindNode {
		ips := make([]string, len(c.IPAddresses))
		for i, ip := range c.IPAddresses {
			ips[i] = ip.String()
		}
		fmt.Fprintf(w, "  %-*s  %s\n", fw, "ip addresses:", joinOrNone(ips))
		fmt.Fprintf(w, "  %-*s  %s\n", fw, "dns names:", joinOrNone(c.DNSNames))
		fmt.Fprintf(w, "  %-*s  %s\n", fw, "usage:", "serverAuth, clientAuth")
	} else {
		fmt.Fprintf(w, "  %-*s  %s\n", fw, "usage:", "clientAuth")
	}
	fmt.Fprintf(w, "  %-*s  certificate\n", fw, certFile)
	fmt.Fprintf(w, "  %-*s  private key, mode 0600\n", fw, keyFile)
	if p12 {
		fmt.Fprintf(w, "  %-*s  PKCS#12: key, certificate and CA certificate, mode 0600\n", fw, p12File)
	}
	if kind == tlsauth.KindNode {
		fmt.Fprintf(w, "Copy %s, %s and %s to the member and start it with:\n", caCert, certFile, keyFile)
		fmt.Fprintf(w, "  cairn serve --name %s --ca-file %s --cert-file %s --key-file %s ...\n",
			shellQuote(name), shellQuote(filepath.Base(caCert)), shellQuote(filepath.Base(certFile)), shellQuote(filepath.Base(keyFile)))
		fmt.Fprintf(w, "A node certificate may speak raft: guard %s like the CA key.\n", keyFile)
		return
	}
	fmt.Fprintf(w, "Use it with:\n")
	fmt.Fprintf(w, "  curl --cacert %s --cert %s --key %s https://HOST:4001/v2/keys/\n", shellQuote(caCert), shellQuote(certFile), shellQuote(keyFile))
	fmt.Fprintf(w, "  export CAIRN_CACERT=%s CAIRN_CERT=%s CAIRN_KEY=%s\n", shellQuote(caCert), shellQuote(certFile), shellQuote(keyFile))
}

func newCertInspectCmd(stdout io.Writer) *cobra.Command {
	var caFile, td, passwordFile string
	cmd := &cobra.Command{
		Use:   "inspect FILE [--ca CAFILE] [--trust-domain TD] [--password-file F]",
		Short: "Show a certificate's identity, role, names, validity and chain",
		Long: `Show what Cairn sees in a certificate: its identity (node/<name>,
client/<name>, or the CN of a certificate without a SPIFFE URI SAN) and role,
subject, issuer, serial, DNS, IP and URI SANs, key usages, validity and, with
--ca, whether it chains to that CA bundle.

FILE is PEM (one or more certificates, leaf first, as a certificate with its
intermediates), DER, or PKCS#12 (.p12; its password is the first line of
--password-file, empty without).

The exit status is non-zero when the certificate is expired or not yet valid,
does not chain to --ca, or has no usable identity in the trust domain: the
reasons Cairn would refuse it. Warnings (a missing extended key usage, a node
certificate without addresses, an expiry within 30 days) do not change it.`,
		Example: `  cairn cert inspect pki/n1.crt --ca pki/ca.crt
  cairn cert inspect alice.p12 --password-file alice.pass --ca pki/ca.crt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("trust-domain") {
				if err := tlsauth.ValidateTrustDomain(td); err != nil {
					return err
				}
			}
			var password string
			if passwordFile != "" {
				var err error
				if password, err = readPasswordFile(passwordFile); err != nil {
					return err
				}
			}
			cf, err := pki.ReadCertificates(args[0], password)
			if errors.Is(err, pki.ErrP12Password) {
				if passwordFile == "" {
					return fmt.Errorf("%w; the file has a password: pass --password-file", err)
				}
				return fmt.Errorf("%w; check --password-file %s", err, passwordFile)
			}
			if err != nil {
				return err
			}
			var roots []*x509.Certificate
			if caFile != "" {
				ca, err := pki.ReadCertificates(caFile, "")
				if err != nil {
					return err
				}
				roots = ca.Certs
			}
			r := pki.Inspect(cf, pki.InspectOptions{TrustDomain: td, Roots: roots})
			if err := r.Write(stdout); err != nil {
				return err
			}
			if p := r.Problems(); len(p) > 0 {
				return fmt.Errorf("%s: %s", args[0], strings.Join(p, "; "))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&caFile, "ca", "", "CA bundle (PEM) to check the chain against")
	f.StringVar(&td, "trust-domain", "", "SPIFFE trust domain of identities (default: that of the --ca CA, if cairn ca init made it; else "+tlsauth.DefaultTrustDomain+")")
	f.StringVar(&passwordFile, "password-file", "", "file whose first line is the password of a .p12 FILE")
	return cmd
}

// readPasswordFile returns the first line of path (without its line end).
func readPasswordFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPasswordFile+1))
	if err != nil {
		return "", fmt.Errorf("password file %s: %w", path, err)
	}
	if len(data) > maxPasswordFile {
		return "", fmt.Errorf("password file %s: more than %d bytes", path, maxPasswordFile)
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	return string(bytes.TrimSuffix(line, []byte("\r"))), nil
}

// existingFiles returns those of paths that exist (as anything, a dangling
// symbolic link included).
func existingFiles(paths ...string) ([]string, error) {
	var found []string
	for _, p := range paths {
		_, err := os.Lstat(p)
		switch {
		case err == nil:
			found = append(found, p)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	return found, nil
}

// alreadyExistMsg says that the files found exist.
func alreadyExistMsg(found []string) string {
	if len(found) == 1 {
		return found[0] + " already exists"
	}
	return strings.Join(found[:len(found)-1], ", ") + " and " + found[len(found)-1] + " already exist"
}

// sameFile reports whether a and b name the same file: the same absolute
// path, or the same existing file.
func sameFile(a, b string) bool {
	aa, errA := filepath.Abs(a)
	bb, errB := filepath.Abs(b)
	if errA == nil && errB == nil && aa == bb {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

func labelWidth(s ...string) int {
	n := 0
	for _, x := range s {
		n = max(n, len(x))
	}
	return n
}

func joinOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// shellQuote quotes s for a POSIX shell when it needs it, so that printed
// commands can be pasted.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,+@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
