package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

// TestRotation replaces the CA bundle and the serving certificate of a
// running cairn while a streaming watch is open, once through SIGHUP and
// once through the files changing: the watch survives and keeps receiving
// events, new connections get the new certificate, and a bad file is
// refused with a log line while the certificate in use keeps serving.
func TestRotation(t *testing.T) {
	t.Parallel()
	t.Run("SIGHUP, new CA appended to the bundle", func(t *testing.T) {
		t.Parallel()
		r := startRotation(t)
		newCA := tlstest.NewCA(t)
		// The whole directory is replaced (renamed away, a new one renamed
		// into place). The file watch does not follow that: only SIGHUP
		// reloads it, so this subtest shows that SIGHUP works.
		next := r.pki.Dir + ".new"
		if err := os.MkdirAll(next, 0o700); err != nil {
			t.Fatal(err)
		}
		bundle := append(r.caPEM(t), newCA.CertPEM...)
		writeAtomic(t, filepath.Join(next, "ca.crt"), bundle)
		node := r.issueNode(t, newCA, filepath.Join(next, "node.crt"), filepath.Join(next, "node.key"))
		for _, f := range []string{"client.crt", "client.key"} {
			copyFile(t, filepath.Join(r.pki.Dir, f), filepath.Join(next, f))
		}
		if err := os.Rename(r.pki.Dir, r.pki.Dir+".old"); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(next, r.pki.Dir); err != nil {
			t.Fatal(err)
		}
		r.sighup(t)
		pool := poolOfPEM(t, bundle)
		r.waitServing(t, r.client(t, pool, r.pki.ClientCert, r.pki.ClientKey), node.SerialNumber)
		r.waitLog(t, "TLS material reloaded", "trigger=SIGHUP", "serial="+pki.SerialHex(node.SerialNumber))

		// A bad certificate: refused, named, and the new certificate stays.
		mustWriteFile(t, r.pki.NodeCert, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
		r.sighup(t)
		r.waitLog(t, "TLS reload refused", "trigger=SIGHUP", r.pki.NodeCert)
		c := r.client(t, pool, r.pki.ClientCert, r.pki.ClientKey)
		r.expectServing(t, c, node.SerialNumber)

		r.watchSurvives(t, c)
	})

	t.Run("file change, CA replaced", func(t *testing.T) {
		t.Parallel()
		r := startRotation(t)
		newCA := tlstest.NewCA(t)
		// Written in place, one atomic rename per file, no signal.
		newClientCert, newClientKey := filepath.Join(r.dir, "new-client.crt"), filepath.Join(r.dir, "new-client.key")
		iss, err := newCA.IssueClient(TrustDomain, "root", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := pki.WritePair(iss, newClientCert, newClientKey); err != nil {
			t.Fatal(err)
		}
		node := r.issueNode(t, newCA, r.pki.NodeCert, r.pki.NodeKey)
		writeAtomic(t, r.pki.CAFile, newCA.CertPEM)
		pool := poolOfPEM(t, newCA.CertPEM)
		r.waitServing(t, r.client(t, pool, newClientCert, newClientKey), node.SerialNumber)
		r.waitLog(t, "TLS material reloaded", `trigger="file change"`, "serial="+pki.SerialHex(node.SerialNumber))
		// The old CA is no longer trusted for new connections...
		old := r.client(t, poolOfPEM(t, append(append([]byte{}, r.oldCA.CertPEM...), newCA.CertPEM...)), r.pki.ClientCert, r.pki.ClientKey)
		if resp, err := old.Get(r.s.URL + "/health"); err == nil {
			resp.Body.Close()
			t.Fatalf("a client certificate of the replaced CA was served: %d", resp.StatusCode)
		}

		// A key that does not match: refused once, named, the new
		// certificate stays.
		other, err := newCA.IssueClient(TrustDomain, "other", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		writeAtomicMode(t, r.pki.NodeKey, other.KeyPEM, 0o600)
		r.waitLog(t, "TLS reload refused", `trigger="file change"`, r.pki.NodeKey, "does not match")
		c := r.client(t, pool, newClientCert, newClientKey)
		r.expectServing(t, c, node.SerialNumber)
		if n := strings.Count(r.s.Proc.Output(), "TLS reload refused"); n != 1 {
			t.Errorf("%d refusals logged, want 1", n)
		}

		// ...but the watch opened with it before the rotation still works.
		r.watchSurvives(t, c)
	})
}

// rotation is a cairn started with operator files of its own PKI, and a
// streaming watch opened on it.
type rotation struct {
	dir    string
	pki    *PKI
	oldCA  *pki.CA
	s      *Server
	events <-chan streamEvent
	n      int // keys written through the watch
}

func startRotation(t *testing.T) *rotation {
	t.Helper()
	dir := t.TempDir()
	pki, err := NewPKI(filepath.Join(dir, "pki"), TrustDomain)
	if err != nil {
		t.Fatal(err)
	}
	r := &rotation{dir: dir, pki: pki, oldCA: pki.ca}
	r.s = StartCairn(t, &CairnConfig{Bin: needCairn(t), PKI: pki})
	r.events = openStream(t, r.s, "/v2/keys/rot", "recursive=true")
	r.watchSurvives(t, r.s.HTTP) // the watch works before the rotation
	return r
}

// issueNode issues the node certificate (node, for 127.0.0.1 and
// localhost) from ca to certFile and keyFile.
func (r *rotation) issueNode(t *testing.T, ca *pki.CA, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	iss := tlstest.IssueNode(t, ca, TrustDomain, "node")
	if err := pki.WritePair(iss, certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(iss.CertPEM, iss.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf
}

func (r *rotation) caPEM(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(r.pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// client returns an HTTP client that opens a new connection per request.
func (r *rotation) client(t *testing.T, pool *x509.CertPool, certFile, keyFile string) *http.Client {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}},
		DisableKeepAlives: true,
	}}
}

// serving returns the serial of the certificate a new connection of c
// gets, after a successful GET /health.
func (r *rotation) serving(c *http.Client) (*big.Int, error) {
	resp, err := c.Get(r.s.URL + "/health")
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /health: %d", resp.StatusCode)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber, nil
}

func (r *rotation) waitServing(t *testing.T, c *http.Client, serial *big.Int) {
	t.Helper()
	Poll(t, 10*time.Second, "new connections to get certificate "+pki.SerialHex(serial), func() error {
		got, err := r.serving(c)
		if err != nil {
			return err
		}
		if got.Cmp(serial) != 0 {
			return fmt.Errorf("serving %s", pki.SerialHex(got))
		}
		return nil
	})
}

func (r *rotation) expectServing(t *testing.T, c *http.Client, serial *big.Int) {
	t.Helper()
	got, err := r.serving(c)
	if err != nil {
		t.Fatal(err)
	}
	if got.Cmp(serial) != 0 {
		t.Fatalf("serving %s, want %s", pki.SerialHex(got), pki.SerialHex(serial))
	}
}

// waitLog waits for a line of the server's log holding every part.
func (r *rotation) waitLog(t *testing.T, parts ...string) {
	t.Helper()
	Poll(t, 10*time.Second, fmt.Sprintf("a log line with %q", parts), func() error {
	lines:
		for _, l := range strings.Split(r.s.Proc.Output(), "\n") {
			for _, p := range parts {
				if !strings.Contains(l, p) {
					continue lines
				}
			}
			t.Logf("server: %s", l)
			return nil
		}
		return errNotYet
	})
}

func (r *rotation) sighup(t *testing.T) {
	t.Helper()
	if err := r.s.Proc.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// watchSurvives writes a key through c and expects its event on the watch
// opened at the start, over the connection opened then.
func (r *rotation) watchSurvives(t *testing.T, c *http.Client) {
	t.Helper()
	r.n++
	key := fmt.Sprintf("/rot/k%d", r.n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, r.s.URL+"/v2/keys"+key, strings.NewReader("value=v"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", key, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT %s: %d", key, resp.StatusCode)
	}
	ev := nextEvent(t, r.events, "the event of "+key)
	if ev.Node.Key != key {
		t.Fatalf("watch event for %s, want %s", ev.Node.Key, key)
	}
}

func poolOfPEM(t *testing.T, pemData []byte) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pemData) {
		t.Fatal("no certificate in the bundle")
	}
	return p
}

func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	writeAtomicMode(t, path, data, 0o644)
}

// writeAtomicMode writes data next to path and renames it over path, as
// careful tools do.
func writeAtomicMode(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func mustWriteFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(from)
	if err != nil {
		t.Fatal(err)
	}
	writeAtomicMode(t, to, b, fi.Mode().Perm())
}
