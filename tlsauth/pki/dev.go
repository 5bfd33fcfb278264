package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cairnkv/cairn/tlsauth"
)

// Development PKI lifetimes and names.
const (
	devCAValidity   = 10 * 365 * 24 * time.Hour
	devLeafValidity = 365 * 24 * time.Hour
	// devRenewBefore: a leaf this close to expiry is reissued on start
	// (the renewal point of a 1-year leaf, whatever the leaf's lifetime).
	devRenewBefore = LongLivedWarning
	// DevClientName is the client identity of the development PKI's
	// client certificate (client/root), the administrator.
	DevClientName = "root"
)

// devHosts are always in the development node certificate, so that the
// printed curl line works on the machine itself.
var devHosts = []string{"127.0.0.1", "::1", "localhost"}

// Dev names the files of a development PKI.
type Dev struct {
	Dir                           string
	CAFile, CAKeyFile             string
	CertFile, KeyFile             string // the node's certificate
	ClientCertFile, ClientKeyFile string // client identity "root"
}

// DevPaths names the files of a development PKI in dir (a member keeps
// its own in <data-dir>/pki).
func DevPaths(dir string) Dev {
	return Dev{
		Dir:            dir,
		CAFile:         filepath.Join(dir, "ca.crt"),
		CAKeyFile:      filepath.Join(dir, "ca.key"),
		CertFile:       filepath.Join(dir, "node.crt"),
		KeyFile:        filepath.Join(dir, "node.key"),
		ClientCertFile: filepath.Join(dir, "client.crt"),
		ClientKeyFile:  filepath.Join(dir, "client.key"),
	}
}

// EnsureDev makes sure dir holds a usable development PKI: a CA (ca.crt,
// ca.key, 10 years), a node certificate for nodeName (node.crt, node.key)
// and a client certificate for "root" (client.crt, client.key), leaves for
// 1 year. dir is created with mode 0700 if missing.
//
// It is idempotent: existing files are kept. A leaf that is missing, not
// issued by the CA, for another name, close to expiry, or (node.crt) not
// covering 127.0.0.1, ::1, localhost and every one of hosts is reissued
// from the existing CA. created reports whether a new CA was made (the
// caller then prints how to connect). A CA certificate without its key, or
// the reverse, is ErrIncompleteDevPKI: it is never silently replaced.
func EnsureDev(dir, nodeName, trustDomain string, hosts []string) (p Dev, created bool, err error) {
	p = DevPaths(dir)
	nodeHosts, err := devNodeHosts(nodeName, trustDomain, hosts)
	if err != nil {
		return p, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return p, false, fmt.Errorf("tlsauth: create development PKI directory %s: %w", dir, err)
	}

	certExists, err := exists(p.CAFile)
	if err != nil {
		return p, false, err
	}
	keyExists, err := exists(p.CAKeyFile)
	if err != nil {
		return p, false, err
	}
	var ca *CA
	switch {
	case certExists && keyExists:
		if ca, err = LoadCA(p.CAFile, p.CAKeyFile); err != nil {
			return p, false, err
		}
	case !certExists && !keyExists:
		if ca, err = NewCA(trustDomain, devCAValidity); err != nil {
			return p, false, err
		}
		created = true
		// The CA key is written first: a crash leaves a CA that the next
		// start loads rather than an orphaned certificate.
		if err := ca.WriteFiles(p.CAFile, p.CAKeyFile); err != nil {
			return p, false, err
		}
	default:
		return p, false, fmt.Errorf("%w in %s: only one of ca.crt and ca.key exists; restore the missing file, or remove the directory to make a new PKI (existing certificates will stop working)", ErrIncompleteDevPKI, dir)
	}

	now := time.Now()
	// Leaves of a new CA are issued without looking at the files: whatever
	// is there was issued by a CA that no longer exists.
	if err := ensureLeaf(ca, p.CertFile, p.KeyFile, trustDomain, tlsauth.Identity{Name: nodeName, Kind: tlsauth.KindNode}, nodeHosts, created, now); err != nil {
		return p, created, err
	}
	if err := ensureLeaf(ca, p.ClientCertFile, p.ClientKeyFile, trustDomain, tlsauth.Identity{Name: DevClientName, Kind: tlsauth.KindClient}, nil, created, now); err != nil {
		return p, created, err
	}
	return p, created, nil
}

// EnsureNodeCert makes sure dir holds a node certificate for nodeName
// (node.crt, node.key, 1 year) issued by the CA in caCertFile and
// caKeyFile, so that several local nodes can form a cluster sharing one
// development CA (typically the one EnsureDev made for the first node).
// dir is created with mode 0700 if missing. The CA key must be mode 0600
// or stricter (ErrKeyFileMode otherwise); the CA files are never written.
//
// It is idempotent under the rules of EnsureDev: the existing pair is
// kept unless it is missing, not issued by the CA, for another name, close
// to expiry, or not covering 127.0.0.1, ::1, localhost and every one of
// hosts; then it is reissued. The Dev returned names caCertFile and
// caKeyFile as its CA and no client files.
func EnsureNodeCert(dir, caCertFile, caKeyFile, nodeName, trustDomain string, hosts []string) (Dev, error) {
	nodeHosts, err := devNodeHosts(nodeName, trustDomain, hosts)
	if err != nil {
		return Dev{}, err
	}
	// The CA is loaded before dir is made, so a refused CA leaves nothing
	// behind.
	ca, err := LoadCA(caCertFile, caKeyFile)
	if err != nil {
		return Dev{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Dev{}, fmt.Errorf("tlsauth: create node certificate directory %s: %w", dir, err)
	}
	p := DevPaths(dir)
	if err := ensureLeaf(ca, p.CertFile, p.KeyFile, trustDomain, tlsauth.Identity{Name: nodeName, Kind: tlsauth.KindNode}, nodeHosts, false, time.Now()); err != nil {
		return Dev{}, err
	}
	p.CAFile, p.CAKeyFile = caCertFile, caKeyFile
	p.ClientCertFile, p.ClientKeyFile = "", ""
	return p, nil
}

// devNodeHosts validates the arguments shared by EnsureDev and
// EnsureNodeCert and returns the hosts a development node certificate must
// cover: devHosts and hosts.
func devNodeHosts(nodeName, trustDomain string, hosts []string) ([]string, error) {
	if err := tlsauth.ValidateTrustDomain(trustDomain); err != nil {
		return nil, err
	}
	if err := tlsauth.ValidateName(nodeName); err != nil {
		return nil, err
	}
	nodeHosts := append(append([]string(nil), devHosts...), hosts...)
	if _, _, err := SplitHosts(nodeHosts); err != nil {
		return nil, err
	}
	return nodeHosts, nil
}

// ensureLeaf issues a development leaf for want (a node covering hosts, or
// a client) from ca into certFile and keyFile, unless force is false and
// the files already hold a usable one.
func ensureLeaf(ca *CA, certFile, keyFile, trustDomain string, want tlsauth.Identity, hosts []string, force bool, now time.Time) error {
	if !force && leafUsable(ca, certFile, keyFile, trustDomain, want, hosts, now) {
		return nil
	}
	var iss Issued
	var err error
	if want.Kind == tlsauth.KindNode {
		iss, err = ca.IssueNode(trustDomain, want.Name, hosts, devLeafValidity)
	} else {
		iss, err = ca.IssueClient(trustDomain, want.Name, devLeafValidity)
	}
	if err != nil {
		return err
	}
	return WritePair(iss, certFile, keyFile)
}

// leafUsable reports whether certFile and keyFile hold a pair issued by ca
// for want, valid for at least devRenewBefore, with the extended key
// usages IssueNode or IssueClient give (a node dials as well as serves),
// covering hosts. Any read or parse failure means "reissue": these are
// generated files.
func leafUsable(ca *CA, certFile, keyFile, trustDomain string, want tlsauth.Identity, hosts []string, now time.Time) bool {
	certs, err := readCertFile("load certificate file", certFile)
	if err != nil {
		return false
	}
	key, err := readKeyFile(keyFile)
	if err != nil || !KeyMatches(certs[0].PublicKey, key) {
		return false
	}
	leaf := certs[0]
	if id, err := tlsauth.IdentityFromCert(leaf, trustDomain); err != nil || id != want {
		return false
	}
	if now.Add(devRenewBefore).After(leaf.NotAfter) {
		return false
	}
	usages := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if want.Kind == tlsauth.KindNode {
		usages = append(usages, x509.ExtKeyUsageServerAuth)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	// VerifyOptions.KeyUsages accepts any one of its usages; each is needed.
	for _, u := range usages {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
			return false
		}
	}
	return coversHosts(leaf, hosts)
}

// coversHosts reports whether every one of hosts is literally one of
// leaf's IP or DNS SANs (a wildcard SAN does not cover a name here: the
// development certificate names each host).
func coversHosts(leaf *x509.Certificate, hosts []string) bool {
	ips, names, err := SplitHosts(hosts)
	if err != nil {
		return false
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			return false
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(leaf.DNSNames, func(d string) bool { return strings.EqualFold(d, n) }) {
			return false
		}
	}
	return true
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("tlsauth: development PKI: %w", err)
}
