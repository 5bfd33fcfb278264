package main

import (
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
	cmd := &cobra.Command{Use: "cert", Short: "Issue, inspect, renew and revoke node and client certificates"}
	cmd.AddCommand(newCertIssueCmd(stdout, stderr), newCertInspectCmd(stdout), newCertRenewCmd(stdout), newCertRevokeCmd(stdout))
	return cmd
}

func newCertRenewCmd(stdout io.Writer) *cobra.Command {
	var req pki.RenewRequest
	var valid string
	cmd := &cobra.Command{
		Use:   "renew --cert FILE --key FILE [--ca-dir DIR] [--valid 90d]",
		Short: "Issue a certificate again: same identity and addresses, new key",
		Long: `Issue the certificate in --cert again from the CA in --ca-dir (ca.crt, ca.key;
see "cairn ca init"): the same identity (spiffe://<trust-domain>/node/NAME or
.../client/NAME), the same IP and DNS names, a new key, a new serial number and
a new validity period. The new key (mode 0600) and then the new certificate
replace --key and --cert, each atomically: a server using them loads them by
itself (it watches its files; SIGHUP also works).

A certificate the CA did not issue is refused, as is one without a SPIFFE node
or client identity (issue a new one with "cairn cert issue"), and a --key that
is not the certificate's key. The old certificate stays valid until it expires;
"cairn cert revoke --serial OLD" refuses it at once. The certificate never
outlives the CA. --valid takes days (90d), years (1y) or a Go duration (720h).`,
		Example: `  cairn cert renew --cert pki/n1.crt --key pki/n1.key
  cairn cert renew --cert /etc/cairn/alice.crt --key /etc/cairn/alice.key --ca-dir /etc/cairn/pki --valid 30d`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			validity, err := pki.ParseValidity(valid)
			if err != nil {
				return fmt.Errorf("--valid: %w", err)
			}
			req.Validity = validity
			r, err := pki.Renew(req)
			if err != nil {
				return err
			}
			return r.Write(stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.CertFile, "cert", "", "certificate to renew (replaced)")
	f.StringVar(&req.KeyFile, "key", "", "its private key (replaced by a new one)")
	f.StringVar(&req.CADir, "ca-dir", defaultPKIDir, "directory of the CA's ca.crt and ca.key")
	f.StringVar(&valid, "valid", defaultLeafValid, "validity of the new certificate: 90d, 1y or a Go duration")
	cmd.MarkFlagRequired("cert")
	cmd.MarkFlagRequired("key")
	return cmd
}

func newCertRevokeCmd(stdout io.Writer) *cobra.Command {
	var req pki.RevokeRequest
	var serial, reason, valid string
	cmd := &cobra.Command{
		Use:   "revoke --cert FILE | --serial HEX [--ca-dir DIR] [--crl FILE] [--reason R]",
		Short: "Add a certificate to the CA's revocation list (CRL)",
		Long: `Add a certificate, given as --cert FILE or by --serial HEX (as "cairn cert
inspect" and openssl print it), to the certificate revocation list of the CA in
--ca-dir, and write the list, signed by the CA, to --crl (default: DIR/ca.crl).
The first revocation creates the list; each one after keeps every earlier
entry and increases the CRL number. The file is replaced atomically.

Point crl_file (--crl-file, and --peer-crl-file if it differs) of every member
at that file, or at a copy of it: servers reload it when it changes (SIGHUP
also works) and from then on refuse the certificate on the client and the peer
port. --cert must be a certificate the CA issued.

The list is fresh for --crl-valid (30 days); after that Cairn still applies it
and warns. Revoking a serial that is listed already signs the list again with a
fresh next update: that is how to refresh it. --reason is one of unspecified
(the default), keyCompromise, CACompromise, affiliationChanged, superseded,
cessationOfOperation, certificateHold, privilegeWithdrawn, AACompromise.`,
		Example: `  cairn cert revoke --cert pki/alice.crt --reason keyCompromise
  cairn cert revoke --serial 5A:0F:13 --ca-dir /etc/cairn/pki --crl /etc/cairn/ca.crl`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if (req.CertFile == "") == (serial == "") {
				return errors.New("pass either --cert FILE or --serial HEX (the certificate to revoke)")
			}
			var err error
			if serial != "" {
				if req.Serial, err = pki.ParseSerial(serial); err != nil {
					return fmt.Errorf("--serial: %w", err)
				}
			}
			if req.Reason, err = pki.ParseReason(reason); err != nil {
				return fmt.Errorf("--reason: %w", err)
			}
			if req.Validity, err = pki.ParseValidity(valid); err != nil {
				return fmt.Errorf("--crl-valid: %w", err)
			}
			r, err := pki.Revoke(req)
			if err != nil {
				return err
			}
			return r.Write(stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.CertFile, "cert", "", "certificate to revoke (PEM or DER)")
	f.StringVar(&serial, "serial", "", "serial number of the certificate to revoke, in hexadecimal")
	f.StringVar(&req.CADir, "ca-dir", defaultPKIDir, "directory of the CA's ca.crt and ca.key")
	f.StringVar(&req.CRLFile, "crl", "", "CRL file to update or create (default: "+pki.CRLName+" in --ca-dir)")
	f.StringVar(&reason, "reason", "", "revocation reason, e.g. keyCompromise, superseded, cessationOfOperation")
	f.StringVar(&valid, "crl-valid", defaultCRLValid, "time until the list's next update: 30d, 1y or a Go duration")
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
			r, err := pki.InspectFile(args[0], passwordFile, caFile, pki.InspectOptions{TrustDomain: td})
			if errors.Is(err, pki.ErrP12Password) {
				if passwordFile == "" {
					return fmt.Errorf("%w; the file has a password: pass --password-file", err)
				}
				return fmt.Errorf("%w; check --password-file %s", err, passwordFile)
			}
			if err != nil {
				return err
			}
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
