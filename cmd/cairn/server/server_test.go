package server_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/cmd/cairn/server"
	"github.com/cairnkv/cairn/cmd/cairn/server/servertest"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

// A member on port 0 everywhere advertises the ports it got and serves
// the API there.
func TestPortZero(t *testing.T) {
	s := servertest.Start(t, nil)
	for _, a := range []struct{ what, addr string }{
		{"client", s.ClientAddr()}, {"peer", s.PeerAddr()}, {"DNS", s.DNSAddr()}, {"metrics", s.MetricsAddr()},
	} {
		if _, port, err := net.SplitHostPort(a.addr); err != nil || port == "0" {
			t.Errorf("%s address %q, want a port", a.what, a.addr)
		}
	}
	if want := "https://" + s.ClientAddr(); s.URL != want {
		t.Errorf("client URL %s, want %s", s.URL, want)
	}
	ms := s.Node().Members()
	if len(ms) != 1 || ms[0].ClientURLs[0] != s.URL || ms[0].PeerURLs[0] != "https://"+s.PeerAddr() {
		t.Errorf("members %+v, want the advertised URLs %s and https://%s", ms, s.URL, s.PeerAddr())
	}
	req, _ := http.NewRequest(http.MethodPut, s.URL+"/v2/keys/x", strings.NewReader("value=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %s", resp.Status)
	}
}

// A member advertising a loopback address, with no bind address, is not
// reachable from the network: it listens on loopback only.
func TestLoopbackAddrBindsLoopback(t *testing.T) {
	s := servertest.Start(t, func(c *server.Config) { c.BindAddr, c.PeerBindAddr = "", "" })
	for _, a := range []struct{ what, addr string }{{"client", s.ClientAddr()}, {"peer", s.Config().PeerBindAddr}} {
		host, _, err := net.SplitHostPort(a.addr)
		if err != nil || host != "127.0.0.1" {
			t.Errorf("%s listens on %q, want 127.0.0.1 (the advertised loopback host)", a.what, a.addr)
		}
	}
}

// A second member joins the first through its advertised peer address.
func TestTwoMembers(t *testing.T) {
	a := servertest.Start(t, func(c *server.Config) { c.Name = "a" })
	b := servertest.Start(t, func(c *server.Config) {
		c.Name, c.Peers, c.CAFile = "b", []string{a.PeerAddr()}, a.DevPKI().CAFile
	})
	poll.Until(t, 20*time.Second, "two members", func() bool {
		return len(b.Node().Members()) == 2 && b.Node().Status().LeaderID != 0
	})
}

// The metrics port serves /metrics and /health without a client
// certificate, and nothing else.
func TestMetricsPort(t *testing.T) {
	s := servertest.Start(t, nil)
	base := "http://" + s.MetricsAddr()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := plain.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	poll.Until(t, 20*time.Second, "healthy on the metrics port", func() bool {
		code, _ := get("/health")
		return code == http.StatusOK
	})
	for _, path := range []string{"/v2/keys", "/v2/keys/x", "/v2/members", "/version", "/v2/stats/self", "/cairn/v1/snapshot", "/"} {
		if code, _ := get(path); code != http.StatusNotFound {
			t.Errorf("GET %s on the metrics port: %d, want 404", path, code)
		}
	}
	code, body := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	expiry := certExpiry(t, body)
	for _, use := range []string{"serving", "peer", "client-ca", "peer-ca"} {
		if _, ok := expiry[use]; !ok {
			t.Errorf("no cairn_tls_certificate_expiry_seconds{use=%q} in /metrics", use)
		}
	}
	// The client port serves the managed certificate (7 days by default),
	// shorter-lived than the development node certificate; the metric
	// follows it once it is issued.
	poll.Until(t, 20*time.Second, "the managed serving certificate in the metric", func() bool {
		_, body := get("/metrics")
		e := certExpiry(t, body)
		return e["serving"] <= (7*24*time.Hour).Seconds() && e["serving"] > 0
	})
	// Every cairn_ metric exported is in the operations guide's table.
	doc, err := os.ReadFile("../../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(body) {
		if rest, ok := strings.CutPrefix(line, "# HELP cairn_"); ok {
			name, _, _ := strings.Cut(rest, " ")
			if !strings.Contains(string(doc), "`cairn_"+name) {
				t.Errorf("metric cairn_%s is not in docs/operations.md's table of metrics", name)
			}
		}
	}
	served := servedCert(t, s)
	e := certExpiry(t, mustGet(t, base+"/metrics"))
	if d := time.Until(served.NotAfter).Seconds() - e["serving"]; d < -5 || d > 5 {
		t.Errorf("serving expiry %v s, but the certificate served expires in %v s", e["serving"], time.Until(served.NotAfter).Seconds())
	}
}

func mustGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := plain.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// servedCert is the certificate the client port presents.
func servedCert(t *testing.T, s *servertest.Server) *x509.Certificate {
	t.Helper()
	resp, err := s.Client.Get(s.URL + "/version")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.TLS.PeerCertificates[0]
}

// certExpiry reads cairn_tls_certificate_expiry_seconds by use.
func certExpiry(t *testing.T, metrics string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(metrics))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), `cairn_tls_certificate_expiry_seconds{use="`)
		if !ok {
			continue
		}
		use, val, _ := strings.Cut(rest, `"} `)
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", sc.Text(), err)
		}
		out[use] = f
	}
	return out
}

// Close stops a member Run never served, and again does nothing; Run
// after Close fails.
func TestCloseWithoutRun(t *testing.T) {
	cfg := servertest.Config(t)
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr := s.ClientAddr()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); err == nil {
		t.Error("Run after Close succeeded")
	}
	// The port is free again.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("client port still taken after Close: %v", err)
	}
	ln.Close()
}

// New fails on a bad configuration, naming the key, and on a taken port.
func TestNewErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct {
		name string
		edit func(*server.Config)
		want string
	}{
		{"bad key", func(c *server.Config) { c.LogLevel = "loud" }, "log.level"},
		{"client port taken", func(c *server.Config) { c.BindAddr = taken.Addr().String() }, "listen on client address"},
		{"metrics port taken", func(c *server.Config) { c.MetricsAddr = taken.Addr().String() }, "listen on metrics address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := servertest.Config(t)
			tc.edit(&cfg)
			s, err := server.New(cfg)
			if err == nil {
				s.Close()
				t.Fatalf("New succeeded, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// Run returns nil when its context ends, and Close during Run ends it.
func TestRunAndClose(t *testing.T) {
	s, err := server.New(servertest.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	poll.Until(t, 20*time.Second, "a leader", func() bool { return s.Node().Status().LeaderID != 0 })
	s.Close()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
}

// The expiry metric follows a reload of the certificate files.
func TestCertExpiryFollowsReload(t *testing.T) {
	p := tlstest.NewPKI(t)
	files := p.Node
	issue := func(validity time.Duration) {
		t.Helper()
		iss, err := p.CA.IssueNode(tlstest.TrustDomain, "test", []string{"127.0.0.1"}, validity)
		if err != nil {
			t.Fatal(err)
		}
		tlstest.WritePair(t, p.Dir, "node", p.CAFile, iss)
	}
	issue(2 * time.Hour)
	s := servertest.Start(t, func(c *server.Config) {
		c.CAFile, c.CertFile, c.KeyFile = files.CAFile, files.CertFile, files.KeyFile
	})
	url := "http://" + s.MetricsAddr() + "/metrics"
	e := certExpiry(t, mustGet(t, url))
	for _, use := range []string{"serving", "peer"} {
		if e[use] > (2*time.Hour).Seconds() || e[use] < (2*time.Hour-time.Minute).Seconds() {
			t.Errorf("%s expires in %v s, want the 2 h certificate", use, e[use])
		}
	}
	if e["client-ca"] < (23*time.Hour).Seconds() || math.Abs(e["peer-ca"]-e["client-ca"]) > 1 {
		t.Errorf("CA expiry %v and %v, want the CA's day", e["client-ca"], e["peer-ca"])
	}
	issue(10 * time.Hour)
	if err := s.Reload("test"); err != nil {
		t.Fatal(err)
	}
	e = certExpiry(t, mustGet(t, url))
	for _, use := range []string{"serving", "peer"} {
		if e[use] < (9 * time.Hour).Seconds() {
			t.Errorf("after the reload, %s expires in %v s, want the 10 h certificate", use, e[use])
		}
	}
}

// WithClock's time stamps writes: a TTL becomes an exact expiration.
func TestWithClock(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s := servertest.Start(t, nil, server.WithClock(func() time.Time { return now }))
	req, _ := http.NewRequest(http.MethodPut, s.URL+"/v2/keys/x", strings.NewReader("value=1&ttl=60"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `"expiration":"2030-01-02T03:05:05Z","ttl":60`; !strings.Contains(string(b), want) {
		t.Errorf("PUT with ttl=60 answered %s, want %s", b, want)
	}
}

// plain is the client of the metrics port; it keeps no connection open
// after a test.
var plain = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// A member whose DNS or metrics port is taken, or whose DNS or ACME
// settings are wrong, fails before its node starts,
// so it never joins: the cluster it named keeps its one member (before,
// it joined as a voter, then died binding DNS, and a one-member cluster
// lost its quorum).
func TestPortTakenFailsBeforeJoining(t *testing.T) {
	a := servertest.Start(t, func(c *server.Config) { c.Name = "a" })
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tt := range []struct {
		name string
		edit func(*server.Config)
	}{
		{"dns", func(c *server.Config) { c.DNSAddr = taken.LocalAddr().String() }},
		{"metrics", func(c *server.Config) { c.MetricsAddr = busy.Addr().String() }},
		// Settings read or checked after the node had started, before.
		{"dns ns", func(c *server.Config) { c.DNSNS = []string{"not a name!"} }},
		{"acme ca_root", func(c *server.Config) { c.ACMECARoot = filepath.Join(t.TempDir(), "missing.pem") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := servertest.Config(t)
			cfg.Name, cfg.Peers, cfg.CAFile = "b-"+tt.name, []string{a.PeerAddr()}, a.DevPKI().CAFile
			tt.edit(&cfg)
			s, err := server.New(cfg)
			if err == nil {
				s.Close()
				t.Fatal("New succeeded on a taken port")
			}
			if n := len(a.Node().Members()); n != 1 {
				t.Errorf("after the failed start the cluster has %d members, want 1: %v", n, a.Node().Members())
			}
		})
	}
}

// A client certificate as the serving certificate fails the start with
// what to do, rather than a server on which every handshake fails.
func TestClientCertificateRefusedForServing(t *testing.T) {
	p := tlstest.NewPKI(t)
	f := tlstest.WritePair(t, t.TempDir(), "client", p.CAFile, tlstest.IssueClient(t, p.CA, "app"))
	cfg := servertest.Config(t)
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = f.CAFile, f.CertFile, f.KeyFile
	s, err := server.New(cfg)
	if err == nil {
		s.Close()
		t.Fatal("New served a client-only certificate")
	}
	if !strings.Contains(err.Error(), "for clients only") || !strings.Contains(err.Error(), f.CertFile) {
		t.Errorf("error %q does not name the file and the problem", err)
	}
}

// With tls.storage_key_file, the managed serving certificate's private key
// is in the replicated store (and so in raft's log, snapshots and backups)
// only sealed; a member without the key file cannot use it.
func TestStorageKeySealsManagedKeys(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "storage.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := servertest.Start(t, func(c *server.Config) { c.TLSStorageKeyFile = keyFile })
	var files []string
	poll.Until(t, 20*time.Second, "the managed serving certificate's key in the store", func() bool {
		files = files[:0]
		nodes, _ := s.Node().Store().GetAll("/_cairn/certmagic/data", time.Now())
		var walk func([]*store.NodeExtern)
		walk = func(ns []*store.NodeExtern) {
			for _, n := range ns {
				if n.Dir {
					walk(n.Nodes)
				} else if n.Value != nil {
					files = append(files, n.Key+"\t"+*n.Value)
				}
			}
		}
		walk(nodes)
		return slices.ContainsFunc(files, func(f string) bool { return strings.Contains(f, ".key\t") })
	})
	for _, f := range files {
		key, value, _ := strings.Cut(f, "\t")
		if !strings.Contains(value, `"sealed"`) || strings.Contains(value, `"data"`) {
			t.Errorf("%s is stored %.60s...; want it sealed", key, value)
		}
	}
}

// TestCloseDrainsRequestsInFlight: Close lets a request in flight finish
// instead of cancelling it at once: here a PUT through a follower whose
// body is still being sent when the follower's Close begins, and which it
// forwards to the leader after, gets its answer, not an ambiguous "context
// canceled". Watches still end at once.
func TestCloseDrainsRequestsInFlight(t *testing.T) {
	members := servertest.StartCluster(t, 3, nil)
	s := members[0]
	for _, m := range members {
		if m.Node().Status().State != "StateLeader" {
			s = m
			break
		}
	}
	body, send := io.Pipe()
	got := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPut, s.URL+"/v2/keys/drained", body)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := s.Client.Do(req)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- resp.Status + " " + string(b)
	}()
	if _, err := send.Write([]byte("value=")); err != nil { // the request is in flight
		t.Fatal(err)
	}
	// Once the member has accepted the connection (the request's headers
	// are sent), it serves the request even if Close begins before it has
	// read them; a connection still in the listen queue would be reset.
	poll.Until(t, 10*time.Second, "the connection accepted", func() bool {
		resp, err := plain.Get("http://" + s.MetricsAddr() + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), "\ncairn_client_connections 1\n")
	})
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	poll.Until(t, 10*time.Second, "the client port closed", func() bool {
		c, err := net.Dial("tcp", s.ClientAddr())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	send.Write([]byte("v"))
	send.Close()
	if r := <-got; !strings.HasPrefix(r, "201") || !strings.Contains(r, `"value":"v"`) {
		t.Errorf("PUT in flight when Close began: %s, want 201 Created", r)
	}
	<-closed
}
