package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/tlsauth"
	"github.com/cairnkv/cairn/tlsauth/pki"
)

// Defaults of the PKI commands.
const (
	defaultPKIDir    = "pki"
	defaultCAValid   = "10y"
	defaultLeafValid = "90d"
	defaultCRLValid  = "30d"
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
	r, err := pki.InitCA(dir, td, validity)
	if err != nil {
		return err
	}
	return r.Write(stdout)
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
	hosts, err := pki.NodeHosts(kind, o.ips, o.dns)
	if err != nil {
		return err
	}
	validity, err := pki.ParseValidity(o.valid)
	if err != nil {
		return fmt.Errorf("--valid: %w", err)
	}
	req := pki.IssueRequest{CADir: o.caDir, Kind: kind, Name: name, Hosts: hosts, Validity: validity,
		OutDir: o.out, P12: o.p12 || o.p12PasswordFile != "", Force: o.force, Warn: warnTo(stderr)}
	if o.trustDomainGiven {
		if err := tlsauth.ValidateTrustDomain(o.trustDomain); err != nil {
			return err
		}
		req.TrustDomain = o.trustDomain
	}
	if o.p12PasswordFile != "" {
		if req.P12Password, err = pki.ReadPasswordFile(o.p12PasswordFile); err != nil {
			return err
		}
	}
	r, err := pki.Issue(req)
	if err != nil {
		return err
	}
	return r.Write(stdout)
}

// warnTo returns a function printing warnings to w.
func warnTo(w io.Writer) func(string) {
	return func(msg string) { fmt.Fprintf(w, "warning: %s\n", msg) }
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
				if password, err = pki.ReadPasswordFile(passwordFile); err != nil {
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
