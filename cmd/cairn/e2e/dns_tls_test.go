package e2e

// DNS over TLS and over HTTPS, their client-certificate and authorization
// rules, and response-rate limiting on plain UDP, against the real binary.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// startDoTCairn starts a member with DNS over UDP/TCP and over TLS; it
// returns the member, its DoT address, and its DNS address.
func startDoTCairn(t *testing.T, extra ...string) (*Server, string, string) {
	t.Helper()
	dnsAddr := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	dotAddr := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	s := startCairn(t, append([]string{"--dns-addr", dnsAddr, "--dns-tls-addr", dotAddr}, extra...)...)
	return s, dotAddr, dnsAddr
}

// dotClient is a DoT client trusting the test CA, with f's certificate
// when f has one.
func dotClient(t *testing.T, f tlsconf.Files) *dns.Client {
	t.Helper()
	ca, err := os.ReadFile(testPKI.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	cfg.RootCAs = poolOfPEM(t, ca)
	if f.CertFile != "" {
		c, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return &dns.Client{Net: "tcp-tls", TLSConfig: cfg, Timeout: 10 * time.Second}
}

func dnsQuery(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

func TestDNSOverTLSClientCert(t *testing.T) {
	t.Parallel()
	s, dot, dnsAddr := startDoTCairn(t, "--dns-tls-require-client-cert")
	register(t, s, "web", "web-1", `{"host":"10.0.0.5","port":8080}`, 0)
	waitDNS(t, dnsAddr, "web-1.web.cairn.internal", "10.0.0.5")

	t.Run("dig with the client certificate", func(t *testing.T) {
		out := dig(t, dot, "+tls", "+tls-ca="+testPKI.CAFile, "+tls-certfile="+s.Files.CertFile, "+tls-keyfile="+s.Files.KeyFile,
			"web-1.web.cairn.internal", "A", "+short")
		if strings.TrimSpace(out) != "10.0.0.5" {
			t.Fatalf("dig +tls: %q", out)
		}
	})
	t.Run("dig without one is refused", func(t *testing.T) {
		host, port, _ := net.SplitHostPort(dot)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, NeedBinary(t, "dig"), "@"+host, "-p", port, "+time=2", "+tries=1",
			"+tls", "+tls-ca="+testPKI.CAFile, "web-1.web.cairn.internal", "A", "+short").CombinedOutput()
		if err == nil || strings.Contains(string(out), "10.0.0.5") {
			t.Fatalf("dig +tls without a certificate answered: %v\n%s", err, out)
		}
	})
	t.Run("Go", func(t *testing.T) {
		m, _, err := dotClient(t, s.Files).Exchange(dnsQuery("web.cairn.internal.", dns.TypeSRV), dot)
		if err != nil || len(m.Answer) != 1 {
			t.Fatalf("DoT SRV: %v %v", m, err)
		}
		if _, _, err := dotClient(t, tlsconf.Files{}).Exchange(dnsQuery("web.cairn.internal.", dns.TypeSRV), dot); err == nil {
			t.Fatal("DoT without a client certificate answered")
		}
	})
	t.Run("kdig", func(t *testing.T) {
		kdig := NeedBinary(t, "kdig") // Debian: knot-dnsutils
		host, port, _ := net.SplitHostPort(dot)
		out, err := exec.Command(kdig, "@"+host, "-p", port, "+tls-ca="+testPKI.CAFile, "+tls-hostname=127.0.0.1",
			"+tls-certfile="+s.Files.CertFile, "+tls-keyfile="+s.Files.KeyFile, "web-1.web.cairn.internal", "A", "+short").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "10.0.0.5" {
			t.Fatalf("kdig: %v %q", err, out)
		}
	})
}

// doh sends req over DNS over HTTPS with c, by GET or POST.
func doh(t *testing.T, c *http.Client, url, method string, req *dns.Msg) *dns.Msg {
	t.Helper()
	b, err := req.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var hr *http.Request
	if method == http.MethodGet {
		hr, err = http.NewRequest(method, url+"/dns-query?dns="+base64.RawURLEncoding.EncodeToString(b), nil)
	} else {
		hr, err = http.NewRequest(method, url+"/dns-query", bytes.NewReader(b))
		hr.Header.Set("Content-Type", "application/dns-message")
	}
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Accept", "application/dns-message")
	resp, err := c.Do(hr)
	if err != nil {
		t.Fatalf("DoH %s: %v", method, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/dns-message" {
		t.Fatalf("DoH %s: %s %q", method, resp.Status, body)
	}
	m := new(dns.Msg)
	if err := m.Unpack(body); err != nil {
		t.Fatalf("DoH %s: %v", method, err)
	}
	return m
}

// waitDNS waits until the plain DNS at dnsAddr answers name with want: the
// DNS index follows the store asynchronously (within a second), and every
// transport answers from it.
func waitDNS(t *testing.T, dnsAddr, name, want string) {
	t.Helper()
	Poll(t, 10*time.Second, dnsAddr+" answering "+name, func() error {
		if out := strings.TrimSpace(dig(t, dnsAddr, name, "A", "+short")); out != want {
			return fmt.Errorf("answer %q", out)
		}
		return nil
	})
}

func TestDNSOverHTTPS(t *testing.T) {
	t.Parallel()
	s, dnsAddr := startDNSCairn(t)
	register(t, s, "web", "web-1", `{"host":"10.0.0.5","port":8080}`, 0)
	waitDNS(t, dnsAddr, "web-1.web.cairn.internal", "10.0.0.5")
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		m := doh(t, s.HTTP, s.URL, method, dnsQuery("web.cairn.internal.", dns.TypeSRV))
		if len(m.Answer) != 1 || len(m.Extra) != 1 {
			t.Errorf("DoH %s SRV: %v", method, m)
		}
	}

	curl := NeedBinary(t, "curl")
	q, _ := dnsQuery("web-1.web.cairn.internal.", dns.TypeA).Pack()
	qfile := filepath.Join(t.TempDir(), "q.bin")
	if err := os.WriteFile(qfile, q, 0o600); err != nil {
		t.Fatal(err)
	}
	tlsArgs := []string{"-sf", "--cacert", testPKI.CAFile, "--cert", s.Files.CertFile, "--key", s.Files.KeyFile}
	for name, args := range map[string][]string{
		"GET":  {s.URL + "/dns-query?dns=" + base64.RawURLEncoding.EncodeToString(q)},
		"POST": {"-H", "Content-Type: application/dns-message", "--data-binary", "@" + qfile, s.URL + "/dns-query"},
	} {
		out, err := exec.Command(curl, append(tlsArgs, args...)...).Output()
		m := new(dns.Msg)
		if err != nil || m.Unpack(out) != nil || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "10.0.0.5" {
			t.Errorf("curl DoH %s: %v %v", name, err, m)
		}
	}
	// The client port requires a certificate, /dns-query included.
	out, err := exec.Command(curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", testPKI.CAFile,
		s.URL+"/dns-query?dns="+base64.RawURLEncoding.EncodeToString(q)).Output()
	if err == nil && string(out) == "200" {
		t.Errorf("DoH without a client certificate answered")
	}
}

// TestDNSAuthorizationFilter: with authorization on, a DoT or DoH client
// limited to one service sees only that service; root sees all.
func TestDNSAuthorizationFilter(t *testing.T) {
	t.Parallel()
	s, dot, dnsAddr := startDoTCairn(t)
	register(t, s, "web", "web-1", webRecord[len("value="):], 0)
	register(t, s, "db", "db-1", dbRecord[len("value="):], 0)
	waitDNS(t, dnsAddr, "db-1.db.cairn.internal", "10.0.0.2")
	root := &authClient{id: "client/root", s: s, files: s.Files, http: s.HTTP}
	mon := newAuthClient(t, s, "webmon")
	root.must(t, "PUT", "/v2/auth/users/client/root", `{"user":"client/root","roles":["root"]}`, http.StatusCreated)
	root.must(t, "PUT", "/v2/auth/roles/web-reader", `{"role":"web-reader","permissions":{"kv":{"read":["/skydns/internal/cairn/web/*"]}}}`, http.StatusCreated)
	root.must(t, "PUT", "/v2/auth/users/client/webmon", `{"user":"client/webmon","roles":["web-reader"]}`, http.StatusCreated)
	root.must(t, "PUT", "/v2/auth/enable", "", http.StatusOK)

	sees := func(via string, ask func(*dns.Msg) *dns.Msg) (web, db bool) {
		w := ask(dnsQuery("web.cairn.internal.", dns.TypeSRV))
		d := ask(dnsQuery("db.cairn.internal.", dns.TypeSRV))
		if len(d.Answer) == 0 && d.Rcode != dns.RcodeNameError {
			t.Errorf("%s: a hidden service is %s, want NXDOMAIN", via, dns.RcodeToString[d.Rcode])
		}
		return len(w.Answer) == 1, len(d.Answer) == 1
	}
	viaDoT := func(f tlsconf.Files) func(*dns.Msg) *dns.Msg {
		return func(q *dns.Msg) *dns.Msg {
			m, _, err := dotClient(t, f).Exchange(q, dot)
			if err != nil {
				t.Fatalf("DoT: %v", err)
			}
			return m
		}
	}
	viaDoH := func(c *http.Client) func(*dns.Msg) *dns.Msg {
		return func(q *dns.Msg) *dns.Msg { return doh(t, c, s.URL, http.MethodPost, q) }
	}
	for _, tc := range []struct {
		via     string
		ask     func(*dns.Msg) *dns.Msg
		web, db bool
	}{
		{"webmon over DoT", viaDoT(mon.files), true, false},
		{"webmon over DoH", viaDoH(mon.http), true, false},
		{"root over DoT", viaDoT(s.Files), true, true},
		{"root over DoH", viaDoH(s.HTTP), true, true},
	} {
		if web, db := sees(tc.via, tc.ask); web != tc.web || db != tc.db {
			t.Errorf("%s sees web %v, db %v; want %v, %v", tc.via, web, db, tc.web, tc.db)
		}
	}
	// Plain DNS is not authenticated: it answers everything (use dns.allow).
	if out := dig(t, dnsAddr, "db-1.db.cairn.internal", "A", "+short"); strings.TrimSpace(out) != "10.0.0.2" {
		t.Errorf("plain DNS: %q", out)
	}
}

// TestDNSRateLimitSlips: a flood from one network gets slipped (TC, empty)
// answers while another network keeps full ones.
func TestDNSRateLimitSlips(t *testing.T) {
	t.Parallel()
	dnsAddr := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	startCairn(t, "--dns-addr", dnsAddr, "--dns-rate-limit", "20", "--dns-rate-limit-loopback")
	dial := func(src string) *dns.Conn {
		d := net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("udp", dnsAddr)
		if err != nil {
			t.Skipf("cannot send from %s here: %v", src, err)
		}
		t.Cleanup(func() { c.Close() })
		return &dns.Conn{Conn: c}
	}
	flood, calm := dial("127.0.0.2"), dial("127.0.1.2")
	const n = 300
	for i := range n {
		q := dnsQuery("nothing.cairn.internal.", dns.TypeA)
		q.Id = uint16(i)
		if err := flood.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
	}
	slipped, full := 0, 0
	flood.SetReadDeadline(time.Now().Add(10 * time.Second))
	for slipped == 0 {
		m, err := flood.ReadMsg()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.Truncated && len(m.Ns) == 0 && len(m.Answer) == 0 {
			slipped++
		} else {
			full++
		}
	}
	if slipped == 0 || full > n/2 {
		t.Fatalf("flood of %d: %d full answers, %d slipped", n, full, slipped)
	}
	q := dnsQuery("nothing.cairn.internal.", dns.TypeA)
	if err := calm.WriteMsg(q); err != nil {
		t.Fatal(err)
	}
	calm.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := calm.ReadMsg()
	if err != nil || m.Truncated || m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 {
		t.Fatalf("another network: %v %v", m, err)
	}
}
