package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"

	"github.com/cairnkv/cairn/cluster/clustertest"
	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/tlsauth"
	"github.com/cairnkv/cairn/tlsauth/managed"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

const certTD = "cairn.internal"

// certClock is the members' clock in these tests: it moves only when told,
// so lock TTLs expire without waiting.
type certClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *certClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *certClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newCertCluster starts three in-process members on a fake clock.
func newCertCluster(t *testing.T) (*clustertest.Cluster, *certClock) {
	t.Helper()
	clock := &certClock{now: time.Now()}
	return clustertest.New(t, 3, clustertest.Options{Now: clock.Now}), clock
}

// certStorage is a CertStorage on member i, closed when the test ends.
func certStorage(t *testing.T, c *clustertest.Cluster, i int, cfg managed.StorageConfig) *managed.Storage {
	t.Helper()
	s := managed.NewStorage(certKV{c.Node(i)}, cfg)
	t.Cleanup(func() { s.Close() })
	return s
}

func certCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestCertStorageOnCluster checks certmagic's storage contract on the
// replicated store, writing through one member and reading through the
// others.
func TestCertStorageOnCluster(t *testing.T) {
	c, _ := newCertCluster(t)
	ctx := certCtx(t)
	s := []*managed.Storage{
		certStorage(t, c, 0, managed.StorageConfig{}),
		certStorage(t, c, 1, managed.StorageConfig{}),
		certStorage(t, c, 2, managed.StorageConfig{}),
	}
	files := map[string]string{
		"certificates/ca/example.com/example.com.crt":  "crt",
		"certificates/ca/example.com/example.com.key":  "key",
		"certificates/ca/example.com/example.com.json": "{}",
		"acme/ca/users/_default/default.key":           "acct",
		"top":                                          "",
	}
	before := time.Now()
	i := 0
	for k, v := range files {
		if err := s[i%3].Store(ctx, k, []byte(v)); err != nil {
			t.Fatalf("Store %s: %v", k, err)
		}
		i++
	}
	for k, v := range files {
		for j := range s {
			got, err := s[j].Load(ctx, k)
			if err != nil || string(got) != v {
				t.Errorf("member %d: Load %s = %q, %v; want %q", j, k, got, err, v)
			}
		}
	}
	if err := s[1].Store(ctx, "top", []byte("replaced")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s[2].Load(ctx, "top"); string(got) != "replaced" {
		t.Errorf("Load after overwrite = %q", got)
	}

	lists := []struct {
		path      string
		recursive bool
		want      []string
	}{
		{"", false, []string{"acme", "certificates", "top"}},
		{"certificates/ca/example.com", false, []string{
			"certificates/ca/example.com/example.com.crt",
			"certificates/ca/example.com/example.com.json",
			"certificates/ca/example.com/example.com.key"}},
		{"certificates", false, []string{"certificates/ca"}},
		{"certificates", true, []string{
			"certificates/ca", "certificates/ca/example.com",
			"certificates/ca/example.com/example.com.crt",
			"certificates/ca/example.com/example.com.json",
			"certificates/ca/example.com/example.com.key"}},
		{"acme", true, []string{"acme/ca", "acme/ca/users", "acme/ca/users/_default", "acme/ca/users/_default/default.key"}},
		{"top", true, nil},
	}
	for _, l := range lists {
		got, err := s[2].List(ctx, l.path, l.recursive)
		slices.Sort(got)
		if err != nil || !slices.Equal(got, l.want) {
			t.Errorf("List(%q, %v) = %q, %v; want %q", l.path, l.recursive, got, err, l.want)
		}
	}
	if _, err := s[0].List(ctx, "nope", false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List of a missing path: %v, want fs.ErrNotExist", err)
	}

	info, err := s[1].Stat(ctx, "certificates/ca/example.com/example.com.key")
	if err != nil || !info.IsTerminal || info.Size != 3 || info.Modified.Before(before.Add(-time.Second)) || time.Since(info.Modified) > time.Minute {
		t.Errorf("Stat file = %+v, %v", info, err)
	}
	if info, err := s[1].Stat(ctx, "certificates/ca"); err != nil || info.IsTerminal {
		t.Errorf("Stat directory = %+v, %v", info, err)
	}
	if _, err := s[1].Stat(ctx, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat missing: %v", err)
	}
	for _, k := range []string{"certificates", "certificates/ca/example.com/example.com.crt", "acme/ca/users/_default"} {
		if !s[0].Exists(ctx, k) {
			t.Errorf("Exists(%s) = false", k)
		}
	}
	if s[0].Exists(ctx, "certificates/other") {
		t.Error("Exists of a missing key")
	}

	if err := s[0].Delete(ctx, "certificates/ca/example.com"); err != nil {
		t.Fatal(err)
	}
	if err := s[1].Delete(ctx, "acme/ca/users/_default/default.key"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"certificates/ca/example.com/example.com.crt", "acme/ca/users/_default/default.key"} {
		if _, err := s[2].Load(ctx, k); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load %s after Delete: %v, want fs.ErrNotExist", k, err)
		}
		if s[2].Exists(ctx, k) {
			t.Errorf("%s exists after Delete", k)
		}
	}
	if err := s[2].Delete(ctx, "certificates/ca/example.com"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	// Nothing shows in the visible key space.
	ev, err := c.Node(0).Store().Get("/", true, true, time.Now())
	if err != nil || len(ev.Node.Nodes) != 0 {
		t.Errorf("visible keys: %+v, %v", ev, err)
	}
}

// TestCertLocksOnCluster checks the locks: exclusion between members,
// Lock waiting for Unlock, expiry of a dead holder's lock after its TTL,
// and fencing tokens that grow.
func TestCertLocksOnCluster(t *testing.T) {
	c, clock := newCertCluster(t)
	ctx := certCtx(t)
	cfg := managed.StorageConfig{LockTTL: 10 * time.Second, LockRefresh: 20 * time.Millisecond, LockPoll: 5 * time.Millisecond}
	a := certStorage(t, c, 0, cfg)
	b := certStorage(t, c, 1, cfg)
	d := certStorage(t, c, 2, cfg)
	const name = "issue_cert_*.example.com"

	if err := a.Lock(ctx, name); err != nil {
		t.Fatal(err)
	}
	t1, _ := a.LockToken(name)
	if ok, err := b.TryLock(ctx, name); ok || err != nil {
		t.Fatalf("TryLock on another member while held = %v, %v", ok, err)
	}
	// a refreshes across several TTLs' worth of clock: the lock stays.
	for range 3 {
		k, err := certKV{c.Node(2)}.Get(ctx, "/_cairn/certmagic/locks/issue_cert_%2A.example.com", false)
		if err != nil {
			t.Fatalf("lock key: %v", err)
		}
		clock.Advance(5 * time.Second)
		poll.Until(t, 20*time.Second, "a refresh", func() bool {
			n, err := certKV{c.Node(2)}.Get(ctx, k.Key, false)
			return err == nil && n.ModifiedIndex > k.ModifiedIndex && n.CreatedIndex == k.CreatedIndex
		})
	}
	if ok, _ := b.TryLock(ctx, name); ok {
		t.Fatal("lock taken from a live holder")
	}

	// b waits in Lock until a unlocks.
	var released sync.WaitGroup
	var aDone bool
	var mu sync.Mutex
	released.Add(1)
	go func() {
		defer released.Done()
		if err := b.Lock(ctx, name); err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		if !aDone {
			t.Error("b got the lock while a held it")
		}
		mu.Unlock()
	}()
	mu.Lock()
	aDone = true
	mu.Unlock()
	if err := a.Unlock(ctx, name); err != nil {
		t.Fatal(err)
	}
	released.Wait()
	t2, ok := b.LockToken(name)
	if !ok || t2 <= t1 {
		t.Fatalf("b's token %d (held %v) after a's %d", t2, ok, t1)
	}

	// b dies: it stops refreshing. Its lock outlives it until the TTL has
	// passed on the cluster's clock, then d gets it.
	b.Close()
	if ok, _ := d.TryLock(ctx, name); ok {
		t.Fatal("a dead holder's lock was free before its TTL")
	}
	got := make(chan error, 1)
	go func() { got <- d.Lock(ctx, name) }()
	clock.Advance(11 * time.Second)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	t3, _ := d.LockToken(name)
	if t3 <= t2 {
		t.Errorf("d's token %d after b's %d", t3, t2)
	}
	if err := d.Unlock(ctx, name); err != nil {
		t.Fatal(err)
	}
}

// TestCAIssuerObtainsAndRenewsOnCluster has a member obtain serving
// certificates from the cluster CA through certmagic on the replicated
// storage, and renew them: a one-minute validity is inside the renewal
// window (the last third of the lifetime) from the start.
func TestCAIssuerObtainsAndRenewsOnCluster(t *testing.T) {
	c, _ := newCertCluster(t)
	ctx := certCtx(t)
	clusterCA := tlstest.NewCA(t)
	m, err := managed.NewManager(managed.ManagerConfig{
		Storage:            certStorage(t, c, 1, managed.StorageConfig{Owner: "n1"}),
		Issuer:             &managed.CAIssuer{CA: clusterCA, TrustDomain: certTD, NodeName: "n1", Validity: time.Minute},
		Hosts:              []string{"node1.cairn.test", "127.0.0.1"},
		RenewCheckInterval: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	if err := m.Obtain(ctx); err != nil {
		t.Fatal(err)
	}
	hello := certHello(t, "node1.cairn.test")
	get := func() *x509.Certificate {
		crt, err := m.GetCertificate(hello)
		if err != nil {
			t.Fatal(err)
		}
		return crt.Leaf
	}
	first := get()
	if _, err := first.Verify(x509.VerifyOptions{Roots: tlstest.Pool(clusterCA.Cert), DNSName: "node1.cairn.test"}); err != nil {
		t.Fatal(err)
	}
	if id, err := tlsauth.IdentityFromCert(first, certTD); err != nil || id != (tlsauth.Identity{Kind: tlsauth.KindNode, Name: "n1"}) {
		t.Errorf("identity %v, %v", id, err)
	}
	stored, err := certStorage(t, c, 2, managed.StorageConfig{}).List(ctx, "certificates", true)
	if err != nil || len(stored) == 0 {
		t.Fatalf("nothing stored: %v", err)
	}
	poll.Until(t, 20*time.Second, "a renewed certificate", func() bool { return get().SerialNumber.Cmp(first.SerialNumber) != 0 })
}

// startPebble runs Pebble's ACME server in-process, validating every
// challenge without looking, and returns its directory URL, the pool that
// trusts its HTTPS certificate and its issuing CA.
func startPebble(t *testing.T) (dir string, https *x509.CertPool, issuer *ca.CAImpl) {
	t.Helper()
	t.Setenv("PEBBLE_VA_ALWAYS_VALID", "1")
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	logger := log.New(io.Discard, "", 0)
	store := db.NewMemoryStore()
	issuer = ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	// The VA's task goroutine has no way to stop; it idles when the test ends.
	v := va.New(logger, 0, 0, false, "", store)
	w := wfe.New(logger, store, v, issuer, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	srv := httptest.NewTLSServer(w.Handler())
	t.Cleanup(srv.Close)
	return srv.URL + wfe.DirectoryPath, tlstest.Pool(srv.Certificate()), issuer
}

// certHello is a ClientHelloInfo for name on a connection, as certmagic
// expects in a handshake.
func certHello(t *testing.T, name string) *tls.ClientHelloInfo {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return &tls.ClientHelloInfo{ServerName: name, Conn: a}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestACMEWithPebbleOnCluster obtains a certificate from an ACME CA
// (Pebble) with the account and certificate kept in the replicated
// storage; a second member then serves the same certificate without a
// second issuance.
func TestACMEWithPebbleOnCluster(t *testing.T) {
	dirURL, roots, pebbleCA := startPebble(t)
	c, _ := newCertCluster(t)
	ctx := certCtx(t)
	acme := managed.ACMEConfig{
		CA: dirURL, Email: "ops@cairn.test", Domains: []string{"cairn.example.com"},
		TrustedRoots: roots, ListenHost: "127.0.0.1", TLSALPNPort: freePort(t),
	}
	manager := func(i int) *managed.Manager {
		m, err := managed.NewManager(managed.ManagerConfig{Storage: certStorage(t, c, i, managed.StorageConfig{}), ACME: acme})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Stop)
		if err := m.Obtain(ctx); err != nil {
			t.Fatal(err)
		}
		return m
	}
	leaf := func(m *managed.Manager) (*x509.Certificate, *x509.CertPool) {
		crt, err := m.GetCertificate(certHello(t, "cairn.example.com"))
		if err != nil {
			t.Fatal(err)
		}
		inter := x509.NewCertPool()
		for _, der := range crt.Certificate[1:] {
			ic, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			inter.AddCert(ic)
		}
		return crt.Leaf, inter
	}
	first, inter := leaf(manager(0))
	if _, err := first.Verify(x509.VerifyOptions{Roots: tlstest.Pool(pebbleCA.GetRootCert(0).Cert), Intermediates: inter, DNSName: "cairn.example.com"}); err != nil {
		t.Fatalf("the certificate does not chain to Pebble's root: %v", err)
	}
	accounts, err := certStorage(t, c, 2, managed.StorageConfig{}).List(ctx, "acme", true)
	if err != nil || len(accounts) == 0 {
		t.Fatalf("no ACME account in the replicated storage: %q, %v", accounts, err)
	}
	second, _ := leaf(manager(1))
	if second.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Errorf("member 1 obtained its own certificate (serial %x) instead of loading member 0's (%x)", second.SerialNumber, first.SerialNumber)
	}
}

// TestManagedServerTLS runs the wiring of `cairn serve`: with the CA key,
// the client listener soon serves a short-lived certificate issued for
// this member; before that, and without the CA key, the node certificate;
// a client certificate is required throughout.
func TestManagedServerTLS(t *testing.T) {
	c, _ := newCertCluster(t)
	p := tlstest.NewPKI(t)
	// The node certificate outlives the managed one (an hour) for the
	// test to tell which one is served.
	iss, err := p.CA.IssueNode(certTD, "n0", []string{"localhost", "127.0.0.1"}, 20*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	material, err := tlsconf.LoadMaterial(tlstest.WritePair(t, p.Dir, "n0", p.CAFile, iss))
	if err != nil {
		t.Fatal(err)
	}
	clusterCA, client := p.CA, p.ClientMaterial.ClientConfig(tlsconf.Options{})
	client.ServerName = "localhost"
	noCert := tlstest.ClientConfig(tlstest.Pool(clusterCA.Cert))

	sc := servingConfig{Name: "n0", TrustDomain: certTD, Managed: true, Validity: time.Hour, Hosts: []string{"localhost", "127.0.0.1"}}
	logger := slog.New(slog.DiscardHandler)
	// served is the lifetime of the certificate conf serves to client.
	served := func(t *testing.T, conf *tls.Config) time.Duration {
		t.Helper()
		r := tlstest.Handshake(t, conf, client)
		if r.ClientErr != nil {
			t.Fatalf("handshake: %v", r.ClientErr)
		}
		leaf := r.Client.PeerCertificates[0]
		return leaf.NotAfter.Sub(leaf.NotBefore)
	}
	t.Run("with the CA key", func(t *testing.T) {
		conf, stop, err := managedServerTLS(context.Background(), sc, c.Node(0), clusterCA, material, tlsconf.Options{}, logger)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		poll.Until(t, 20*time.Second, "the managed certificate", func() bool { return served(t, conf) < 2*time.Hour })
		if r := tlstest.Handshake(t, conf, noCert); r.ClientErr == nil {
			t.Error("a client without a certificate was served")
		}
	})
	t.Run("without the CA key", func(t *testing.T) {
		conf, stop, err := managedServerTLS(context.Background(), sc, c.Node(1), nil, material, tlsconf.Options{}, logger)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		if lt := served(t, conf); lt < 20*time.Hour {
			t.Errorf("served a certificate valid %v, want the node certificate's 20 h", lt)
		}
		if r := tlstest.Handshake(t, conf, noCert); r.ClientErr == nil {
			t.Error("a client without a certificate was served")
		}
	})
}

func TestServingCA(t *testing.T) {
	dev, _, err := pki.EnsureDev(filepath.Join(t.TempDir(), "pki"), "node1", "cairn.internal", nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		dev  *pki.Dev
		want bool
	}{
		{"development PKI", Config{}, &dev, true},
		{"ca_file with ca.key beside it", Config{CAFile: dev.CAFile}, nil, true},
		{"operator's cert_file", Config{CAFile: dev.CAFile, CertFile: dev.CertFile, KeyFile: dev.KeyFile}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := servingCA(tc.cfg, tc.dev)
			if err != nil || (got != nil) != tc.want {
				t.Errorf("servingCA = %v, %v; want a CA: %v", got, err, tc.want)
			}
		})
	}
	if _, err := servingCA(Config{CAFile: filepath.Join(t.TempDir(), "ca.crt")}, nil); err == nil {
		t.Error("a missing CA file was not an error")
	}
}

// certKV's error mapping is what CertStorage's contract rests on.
func TestCertKVOutcomes(t *testing.T) {
	c, clock := newCertCluster(t)
	ctx := certCtx(t)
	kv := certKV{c.Node(1)}
	if _, err := kv.Get(ctx, "/_t/x", false); !errors.Is(err, managed.ErrKVNotFound) {
		t.Errorf("Get missing: %v", err)
	}
	idx, err := kv.Create(ctx, "/_t/x", "v", 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "/_t/x", "w", 0); !errors.Is(err, managed.ErrKVExists) {
		t.Errorf("Create existing: %v", err)
	}
	if err := kv.Refresh(ctx, "/_t/x", "w", time.Second); !errors.Is(err, managed.ErrKVCompareFailed) {
		t.Errorf("Refresh of another value: %v", err)
	}
	if err := kv.Refresh(ctx, "/_t/x", "v", time.Second); err != nil {
		t.Errorf("Refresh: %v", err)
	}
	e, err := c.Node(2).Store().Get("/_t/x", false, false, clock.Now())
	if err != nil || *e.Node.Value != "v" || e.Node.CreatedIndex != idx || e.Node.TTL < 1 || e.Node.TTL > 2 {
		t.Errorf("after refresh: %+v, %v", e, err)
	}
	if err := kv.Swap(ctx, "/_t/x", "w", "z"); !errors.Is(err, managed.ErrKVCompareFailed) {
		t.Errorf("Swap of another value: %v", err)
	}
	if err := kv.Swap(ctx, "/_t/x", "v", "w"); err != nil {
		t.Errorf("Swap: %v", err)
	}
	if err := kv.Swap(ctx, "/_t/missing", "v", "w"); !errors.Is(err, managed.ErrKVNotFound) {
		t.Errorf("Swap missing: %v", err)
	}
	if err := kv.Delete(ctx, "/_t/x", "v"); !errors.Is(err, managed.ErrKVCompareFailed) {
		t.Errorf("Delete of another value: %v", err)
	}
	if err := kv.Delete(ctx, "/_t", ""); err != nil {
		t.Errorf("Delete directory: %v", err)
	}
	if err := kv.Delete(ctx, "/_t", ""); !errors.Is(err, managed.ErrKVNotFound) {
		t.Errorf("Delete missing: %v", err)
	}
	if err := kv.Refresh(ctx, "/_t/x", "v", time.Second); !errors.Is(err, managed.ErrKVNotFound) {
		t.Errorf("Refresh missing: %v", err)
	}
}
