package tlstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// TrustDomain is the trust domain of every identity the helpers make:
// Cairn's default.
const TrustDomain = tlsauth.DefaultTrustDomain

// NewCA returns a new CA for TrustDomain, valid for a day.
func NewCA(t testing.TB) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(TrustDomain, 24*time.Hour)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

// PKI is a CA with a node certificate (node/n1, for localhost and
// 127.0.0.1) and a client certificate (client/alice), written to Dir and
// loaded.
type PKI struct {
	Dir            string
	CA             *pki.CA
	CAFile         string        // Dir/ca.crt (and Dir/ca.key)
	Node           tlsconf.Files // node/n1: Dir/node.crt, Dir/node.key
	Client         tlsconf.Files // client/alice: Dir/client.crt, Dir/client.key
	NodeMaterial   *tlsconf.Material
	ClientMaterial *tlsconf.Material
	NodeServer     *tls.Config // NodeMaterial.ServerConfig with default Options
}

// NewPKI makes a PKI in a new temporary directory of t.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	p := &PKI{Dir: t.TempDir(), CA: NewCA(t)}
	p.CAFile = filepath.Join(p.Dir, "ca.crt")
	if err := p.CA.WriteFiles(p.CAFile, filepath.Join(p.Dir, "ca.key")); err != nil {
		t.Fatalf("WriteFiles: %v", err)
	}
	p.Node = WritePair(t, p.Dir, "node", p.CAFile, IssueNode(t, p.CA, TrustDomain, "n1"))
	p.Client = WritePair(t, p.Dir, "client", p.CAFile, IssueClient(t, p.CA, "alice"))
	var err error
	if p.NodeMaterial, err = tlsconf.LoadMaterial(p.Node); err != nil {
		t.Fatalf("LoadMaterial node: %v", err)
	}
	if p.ClientMaterial, err = tlsconf.LoadMaterial(p.Client); err != nil {
		t.Fatalf("LoadMaterial client: %v", err)
	}
	p.NodeServer = p.NodeMaterial.ServerConfig(tlsconf.Options{})
	return p
}

// IssueNode issues a node certificate for name in td from ca, for
// localhost, 127.0.0.1 and more hosts (IPs or DNS names; a node of a
// multi-process cluster has its own loopback IP), valid for an hour.
func IssueNode(t testing.TB, ca *pki.CA, td, name string, more ...string) pki.Issued {
	t.Helper()
	iss, err := ca.IssueNode(td, name, append([]string{"localhost", "127.0.0.1"}, more...), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// IssueClient issues a client certificate for name in TrustDomain from ca,
// valid for an hour.
func IssueClient(t testing.TB, ca *pki.CA, name string) pki.Issued {
	t.Helper()
	iss, err := ca.IssueClient(TrustDomain, name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// WritePair writes iss as dir/name.crt and dir/name.key and returns Files
// trusting caFile.
func WritePair(t testing.TB, dir, name, caFile string, iss pki.Issued) tlsconf.Files {
	t.Helper()
	f := tlsconf.Files{CAFile: caFile, CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	if err := pki.WritePair(iss, f.CertFile, f.KeyFile); err != nil {
		t.Fatalf("WritePair %s: %v", name, err)
	}
	return f
}

// Sign signs tmpl with ca for a fresh P-256 key, for certificates the CA
// would not issue (expired, another trust domain, odd usages). A nil
// SerialNumber is replaced with a random one.
func Sign(t testing.TB, ca *pki.CA, tmpl *x509.Certificate) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return SignKey(t, ca, tmpl, key)
}

// SignKey is Sign for a given key.
func SignKey(t testing.TB, ca *pki.CA, tmpl *x509.Certificate, key crypto.Signer) tls.Certificate {
	t.Helper()
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = Serial()
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatalf("CreateCertificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// Issued returns c (as Sign makes it) PEM-encoded, to write with
// WritePair.
func Issued(t testing.TB, c tls.Certificate) pki.Issued {
	t.Helper()
	keyPEM, err := pki.EncodeKeyPEM(c.PrivateKey.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	var certPEM []byte
	for _, der := range c.Certificate {
		certPEM = append(certPEM, pki.EncodeCertPEM(der)...)
	}
	return pki.Issued{CertPEM: certPEM, KeyPEM: keyPEM}
}

// PeerTemplate is a template for a certificate usable on both sides of the
// peer port (serverAuth and clientAuth, localhost SANs), as an operator's
// PKI would make one; uri, if not empty, is its only URI SAN.
func PeerTemplate(cn, uri string) *x509.Certificate {
	now := time.Now()
	c := &x509.Certificate{
		Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if uri != "" {
		u, err := url.Parse(uri)
		if err != nil {
			panic(err)
		}
		c.URIs = []*url.URL{u}
	}
	return c
}

// Serial returns a random positive 128-bit serial number.
func Serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

// Pool returns a pool of certs.
func Pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// WritePEM writes der as one PEM block of type typ to path with exactly
// mode (whatever the umask).
func WritePEM(t testing.TB, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	WriteFile(t, path, string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})), mode)
}

// WriteFile writes data to path with exactly mode (whatever the umask).
func WriteFile(t testing.TB, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is filtered by umask
		t.Fatal(err)
	}
}
