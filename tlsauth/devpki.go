package tlsauth

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
)

// Development PKI lifetimes and names.
const (
	devCAValidity   = 10 * 365 * 24 * time.Hour
	devLeafValidity = 365 * 24 * time.Hour
	// devRenewBefore: a leaf this close to expiry is reissued on start.
	devRenewBefore = 30 * 24 * time.Hour
	// DevClientName is the client identity of the development PKI's
	// client certificate (client/root), the administrator.
	DevClientName = "root"
)

// devHosts are always in the development node certificate, so that the
// printed curl line works on the machine itself.
var devHosts = []string{"127.0.0.1", "::1", "localhost"}

// DevPKI names the files of a development PKI.
type DevPKI struct {
	Dir                           string
	CAFile, CAKeyFile             string
	CertFile, KeyFile             string // the node's certificate
	ClientCertFile, ClientKeyFile string // client identity "root"
}

// Files returns the node's material files.
func (p DevPKI) Files() Files {
	return Files{CAFile: p.CAFile, CertFile: p.CertFile, KeyFile: p.KeyFile}
}

// ClientFiles returns the root client's material files.
func (p DevPKI) ClientFiles() Files {
	return Files{CAFile: p.CAFile, CertFile: p.ClientCertFile, KeyFile: p.ClientKeyFile}
}

func devPKIPaths(dir string) DevPKI {
	return DevPKI{
		Dir:            dir,
		CAFile:         filepath.Join(dir, "ca.crt"),
		CAKeyFile:      filepath.Join(dir, "ca.key"),
		CertFile:       filepath.Join(dir, "node.crt"),
		KeyFile:        filepath.Join(dir, "node.key"),
		ClientCertFile: filepath.Join(dir, "client.crt"),
		ClientKeyFile:  filepath.Join(dir, "client.key"),
	}
}

// EnsureDevPKI makes sure dir holds a usable development PKI: a CA (ca.crt,
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
func EnsureDevPKI(dir, nodeName, trustDomain string, hosts []string) (p DevPKI, created bool, err error) {
	p = devPKIPaths(dir)
	if err := validateTrustDomain(trustDomain); err != nil {
		return p, false, err
	}
	if err := validateName(nodeName); err != nil {
		return p, false, err
	}
	nodeHosts := append(append([]string(nil), devHosts...), hosts...)
	if _, _, err := splitHosts(nodeHosts); err != nil {
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
	default:
		return p, false, fmt.Errorf("%w in %s: only one of ca.crt and ca.key exists; restore the missing file, or remove the directory to make a new PKI (existing certificates will stop working)", ErrIncompleteDevPKI, dir)
	}

	now := time.Now()
	nodeOK := !created && leafUsable(ca, p.CertFile, p.KeyFile, trustDomain, Identity{Name: nodeName, Kind: KindNode}, x509.ExtKeyUsageServerAuth, nodeHosts, now)
	clientOK := !created && leafUsable(ca, p.ClientCertFile, p.ClientKeyFile, trustDomain, Identity{Name: DevClientName, Kind: KindClient}, x509.ExtKeyUsageClientAuth, nil, now)
	if created {
		// The CA key is written first: a crash leaves a CA that the next
		// start loads rather than an orphaned certificate.
		if err := ca.WriteFiles(p.CAFile, p.CAKeyFile); err != nil {
			return p, false, err
		}
	}
	if !nodeOK {
		iss, err := ca.IssueNode(trustDomain, nodeName, nodeHosts, devLeafValidity)
		if err != nil {
			return p, created, err
		}
		if err := WritePair(iss, p.CertFile, p.KeyFile); err != nil {
			return p, created, err
		}
	}
	if !clientOK {
		iss, err := ca.IssueClient(trustDomain, DevClientName, devLeafValidity)
		if err != nil {
			return p, created, err
		}
		if err := WritePair(iss, p.ClientCertFile, p.ClientKeyFile); err != nil {
			return p, created, err
		}
	}
	return p, created, nil
}

// leafUsable reports whether certFile and keyFile hold a pair issued by ca
// for want, valid for at least devRenewBefore, for usage, covering hosts.
// Any read or parse failure means "reissue": these are generated files.
func leafUsable(ca *CA, certFile, keyFile, trustDomain string, want Identity, usage x509.ExtKeyUsage, hosts []string, now time.Time) bool {
	certs, err := readCertFile("load certificate file", certFile)
	if err != nil {
		return false
	}
	key, err := readKeyFile(keyFile)
	if err != nil || !keyMatches(certs[0].PublicKey, key) {
		return false
	}
	leaf := certs[0]
	if id, err := IdentityFromCert(leaf, trustDomain); err != nil || id != want {
		return false
	}
	if now.Add(devRenewBefore).After(leaf.NotAfter) {
		return false
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return false
	}
	return coversHosts(leaf, hosts)
}

// coversHosts reports whether every one of hosts is literally one of
// leaf's IP or DNS SANs (a wildcard SAN does not cover a name here: the
// development certificate names each host).
func coversHosts(leaf *x509.Certificate, hosts []string) bool {
	ips, names, err := splitHosts(hosts)
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
