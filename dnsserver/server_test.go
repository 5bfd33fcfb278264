package dnsserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/discovery"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	*Server
	reg *prometheus.Registry
	log *syncBuffer
}

// startServer serves src on a loopback port until the test ends, and checks
// that Shutdown leaves no goroutine behind.
func startServer(t *testing.T, src Source) *testServer {
	t.Helper()
	return startServerConfig(t, Config{}, src)
}

// startServerConfig is startServer with cfg.
func startServerConfig(t *testing.T, cfg Config, src Source) *testServer {
	t.Helper()
	before := goleak.IgnoreCurrent()
	ts := &testServer{reg: prometheus.NewRegistry(), log: &syncBuffer{}}
	s, err := New(cfg, src, ts.reg, slog.New(slog.NewTextHandler(ts.log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ts.Server = s
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", ts.log)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		goleak.VerifyNone(t, before) // the server's goroutines end with Shutdown
	})
	return ts
}

// waitTimeout bounds every poll of these tests: generous, as a loaded CI
// machine running -race is slow, and never reached when all is well.
const waitTimeout = 10 * time.Second

func exchange(t *testing.T, addr, proto string, req *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: proto, Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(req, addr)
	if err != nil {
		t.Fatalf("%s exchange %v: %v", proto, req.Question, err)
	}
	return resp
}

func serverFixture() *fakeSource {
	insts := append(fixture(), bigService(60)...)
	return &fakeSource{insts: insts, panicOn: "boom.cairn.internal."}
}

// now-relative copies: the server answers at the wall clock, so keys must
// not expire relative to t0.
func live(src *fakeSource) *fakeSource {
	out := &fakeSource{panicOn: src.panicOn}
	for _, in := range src.insts {
		if in.Expires.IsZero() || in.Expires.After(t0) {
			in.Expires = time.Time{}
		}
		out.insts = append(out.insts, in)
	}
	return out
}

func TestServer(t *testing.T) {
	s := startServer(t, live(serverFixture()))
	addr := s.Addr()
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("Addr() = %q", addr)
	}

	for _, proto := range []string{"udp", "tcp"} {
		resp := exchange(t, addr, proto, query("web-1.web.cairn.internal.", dns.TypeA))
		if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 || !resp.Authoritative {
			t.Errorf("%s A: %v", proto, resp)
		}
		resp = exchange(t, addr, proto, query("example.com.", dns.TypeA))
		if resp.Rcode != dns.RcodeRefused {
			t.Errorf("%s out of zone: %v", proto, resp)
		}
	}

	// 60 instances: TC over UDP, all of them over TCP.
	resp := exchange(t, addr, "udp", query("big.cairn.internal.", dns.TypeSRV))
	if !resp.Truncated || len(resp.Answer) >= 60 {
		t.Errorf("UDP SRV of 60: TC %v with %d answers", resp.Truncated, len(resp.Answer))
	}
	resp = exchange(t, addr, "tcp", query("big.cairn.internal.", dns.TypeSRV))
	if resp.Truncated || len(resp.Answer) != 60 || len(resp.Extra) != 60 {
		t.Errorf("TCP SRV of 60: TC %v with %d answers, %d glue", resp.Truncated, len(resp.Answer), len(resp.Extra))
	}
	resp = exchange(t, addr, "udp", withEDNS(query("big.cairn.internal.", dns.TypeA), 4096))
	if resp.Truncated || len(resp.Answer) != 60 || resp.IsEdns0() == nil {
		t.Errorf("UDP EDNS A of 60: TC %v with %d answers, OPT %v", resp.Truncated, len(resp.Answer), resp.IsEdns0())
	}

	// Metrics: by type, rcode and transport, and the latency histogram.
	for _, m := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"cairn_dns_responses_total", []string{"type", "A", "rcode", "NOERROR", "proto", "udp"}, 2},
		{"cairn_dns_responses_total", []string{"type", "A", "rcode", "REFUSED", "proto", "tcp"}, 1},
		{"cairn_dns_responses_total", []string{"type", "SRV", "rcode", "NOERROR", "proto", "tcp"}, 1},
		{"cairn_dns_truncated_responses_total", []string{"proto", "udp"}, 1},
		{"cairn_dns_request_duration_seconds", []string{"proto", "udp"}, 4},
		{"cairn_dns_request_duration_seconds", []string{"proto", "tcp"}, 3},
		{"cairn_dns_malformed_requests_total", nil, 0},
	} {
		// The server counts a query after writing its response.
		poll.Until(t, waitTimeout, fmt.Sprintf("%s%v = %v", m.name, m.labels, m.want), func() bool {
			return metric(t, s.reg, m.name, m.labels...) == m.want
		})
	}
}

// metric is the value of a counter (or the count of a histogram) with
// the given label pairs, 0 when absent.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestServerPanicIsServfail(t *testing.T) {
	s := startServer(t, live(serverFixture()))
	for _, proto := range []string{"udp", "tcp"} {
		resp := exchange(t, s.Addr(), proto, query("boom.cairn.internal.", dns.TypeA))
		if resp.Rcode != dns.RcodeServerFailure {
			t.Errorf("%s: rcode %s, want SERVFAIL", proto, dns.RcodeToString[resp.Rcode])
		}
		resp = exchange(t, s.Addr(), proto, query("web-1.web.cairn.internal.", dns.TypeA))
		if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
			t.Errorf("%s after a panic: %v", proto, resp)
		}
	}
	poll.Until(t, waitTimeout, "responses{A,SERVFAIL,udp} = 1", func() bool {
		return metric(t, s.reg, "cairn_dns_responses_total", "type", "A", "rcode", "SERVFAIL", "proto", "udp") == 1
	})
	if l := s.log.String(); !strings.Contains(l, "panic") || !strings.Contains(l, "fake source: boom") {
		t.Errorf("log lacks the panic:\n%s", l)
	}
}

func TestServerHostileInput(t *testing.T) {
	s := startServer(t, live(serverFixture()))
	addr := s.Addr()
	rnd := rand.New(rand.NewPCG(1, 2))

	// Random datagrams, some shorter than a header, some with a header
	// claiming many records, in bursts small enough for socket buffers;
	// after each burst a valid query is still answered.
	uc, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	for range 10 {
		for i := range 20 {
			b := make([]byte, rnd.IntN(600))
			for j := range b {
				b[j] = byte(rnd.Uint32())
			}
			if i%2 == 0 && len(b) >= 12 {
				b[2] &^= 0x80 // a query, so it is not dropped unread
			}
			if _, err := uc.Write(b); err != nil {
				t.Fatal(err)
			}
		}
		if r := exchange(t, addr, "udp", query("web-1.web.cairn.internal.", dns.TypeA)); len(r.Answer) != 1 {
			t.Fatalf("UDP between garbage bursts: %v", r)
		}
	}

	// A response sent to the server gets no reply: the first reply on a
	// socket that sends one and then a query is the query's.
	qc, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer qc.Close()
	resp := query("web-1.web.cairn.internal.", dns.TypeA)
	resp.Response = true
	wire, _ := resp.Pack()
	qc.Write(wire)
	valid := query("web-1.web.cairn.internal.", dns.TypeA)
	wire, _ = valid.Pack()
	qc.Write(wire)
	qc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	n, err := qc.Read(buf)
	var first dns.Msg
	if err != nil || first.Unpack(buf[:n]) != nil || first.Id != valid.Id {
		t.Fatalf("first reply %v (%v), want the answer to id %d", &first, err, valid.Id)
	}

	// TCP: a frame cut short, a frame of garbage, an empty frame, then a
	// valid query on the same connection.
	cut, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cut.Write([]byte{0, 100, 1, 2, 3, 4, 5})
	cut.Close()

	tc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	garbage := make([]byte, 40)
	for j := range garbage {
		garbage[j] = byte(rnd.Uint32())
	}
	garbage[2] &^= 0x80
	tc.Write(frame(garbage))
	tc.Write(frame(nil))
	valid = query("big.cairn.internal.", dns.TypeSRV)
	wire, _ = valid.Pack()
	tc.Write(frame(wire))
	got := readUntil(t, tc, valid.Id)
	if len(got.Answer) != 60 {
		t.Errorf("TCP after garbage: %d answers", len(got.Answer))
	}

	// And a fresh client still works on both transports.
	for _, proto := range []string{"udp", "tcp"} {
		if r := exchange(t, addr, proto, query("web.cairn.internal.", dns.TypeA)); len(r.Answer) != 2 {
			t.Errorf("%s after hostile input: %v", proto, r)
		}
	}
	poll.Until(t, waitTimeout, "malformed messages counted", func() bool { return metric(t, s.reg, "cairn_dns_malformed_requests_total") > 100 })
}

// Messages rejected before the responder still get an answer from
// miekg/dns, and cairn_dns_responses_total counts it by its rcode.
func TestServerCountsRejectedResponses(t *testing.T) {
	s := startServer(t, live(serverFixture()))
	valid, _ := query("web-1.web.cairn.internal.", dns.TypeA).Pack()
	notify := bytes.Clone(valid)
	notify[2] = dns.OpcodeNotify << 3 // a NOTIFY: NOTIMP, not parsed
	withAnswer := bytes.Clone(valid)
	withAnswer[7] = 1 // ANCOUNT 1 in a query: FORMERR, not parsed
	cutBody := valid[:len(valid)-3]
	tests := []struct {
		name, proto string
		msg         []byte
		rcode       int
	}{
		{"NOTIFY over UDP", "udp", notify, dns.RcodeNotImplemented},
		{"an answer section in a query over UDP", "udp", withAnswer, dns.RcodeFormatError},
		{"a question cut short over TCP", "tcp", cutBody, dns.RcodeFormatError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial(tt.proto, s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			out := tt.msg
			if tt.proto == "tcp" {
				out = frame(out)
			}
			if _, err := c.Write(out); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 512)
			n, err := c.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if tt.proto == "tcp" {
				buf, n = buf[2:], n-2
			}
			var m dns.Msg
			if err := m.Unpack(buf[:n]); err != nil || m.Rcode != tt.rcode {
				t.Fatalf("reply %v (%v); want rcode %s", &m, err, dns.RcodeToString[tt.rcode])
			}
			labels := []string{"type", "unparsed", "rcode", dns.RcodeToString[tt.rcode], "proto", tt.proto}
			poll.Until(t, waitTimeout, fmt.Sprintf("cairn_dns_responses_total%v = 1", labels), func() bool {
				return metric(t, s.reg, "cairn_dns_responses_total", labels...) == 1
			})
		})
	}
	// A message too short for a header gets no answer, and no count: the
	// first reply on a socket that sends one and then a query is the
	// query's.
	c, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(valid[:5])
	c.Write(valid)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	var first dns.Msg
	if err != nil || first.Unpack(buf[:n]) != nil || first.Rcode != dns.RcodeSuccess {
		t.Fatalf("first reply %v (%v), want the answer to the query", &first, err)
	}
	poll.Until(t, waitTimeout, "4 malformed requests", func() bool { return metric(t, s.reg, "cairn_dns_malformed_requests_total") == 4 })
	for _, proto := range []string{"udp", "tcp"} {
		if got := metric(t, s.reg, "cairn_dns_responses_total", "type", "unparsed", "rcode", "FORMERR", "proto", proto); got != 1 {
			t.Errorf("FORMERR over %s: %v, want 1", proto, got)
		}
	}
}

func frame(b []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
}

// readUntil reads framed responses from the TCP connection c until the
// one with id.
func readUntil(t *testing.T, c net.Conn, id uint16) *dns.Msg {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 65536)
	for {
		if _, err := readFull(c, buf[:2]); err != nil {
			t.Fatalf("read: %v", err)
		}
		n := binary.BigEndian.Uint16(buf[:2])
		if _, err := readFull(c, buf[:n]); err != nil {
			t.Fatalf("read: %v", err)
		}
		b := buf[:n]
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatalf("server sent an unparseable message: %v", err)
		}
		if m.Id == id && len(m.Question) == 1 {
			return m
		}
		if m.Rcode != dns.RcodeFormatError && m.Rcode != dns.RcodeNotImplemented {
			t.Fatalf("unexpected reply to garbage: %v", m)
		}
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestServerLifecycle(t *testing.T) {
	src := &fakeSource{insts: []discovery.Instance{inst("a.s", rec{Host: "10.0.0.1"}, 0)}}
	s, err := New(Config{}, src, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr() != "" {
		t.Errorf("Addr before Start = %q", s.Addr())
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown before Start: %v", err)
	}

	s, _ = New(Config{}, src, nil, nil)
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if err := s.Start("127.0.0.1:0"); !errors.Is(err, ErrStarted) {
		t.Errorf("second Start: %v", err)
	}
	// The address is taken, for both transports.
	other, _ := New(Config{}, src, nil, nil)
	if err := other.Start(addr); err == nil {
		t.Errorf("Start on a busy address succeeded")
		other.Shutdown(context.Background())
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if err := s.Start("127.0.0.1:0"); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Shutdown: %v", err)
	}
	if s.Addr() != "" {
		t.Errorf("Addr after Shutdown = %q", s.Addr())
	}
	// Nothing listens any more.
	c := &dns.Client{Net: "tcp", Timeout: time.Second}
	if _, _, err := c.Exchange(query("a.s.cairn.internal.", dns.TypeA), addr); err == nil {
		t.Errorf("TCP still answered after Shutdown")
	}

	if _, err := New(Config{}, src, prometheus.NewRegistry(), nil); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	New(Config{}, src, reg, nil)
	if _, err := New(Config{}, src, reg, nil); err == nil {
		t.Errorf("two servers registered the same metrics on one registry")
	}
	if _, err := New(Config{Domain: "a..b"}, src, nil, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("bad config: %v", err)
	}
}

// TestLimitListener: connections beyond the limit wait in Accept until one
// closes.
func TestLimitListener(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fl := &chanListener{c: make(chan net.Conn, 2), closed: make(chan struct{})}
		for range 2 {
			a, b := net.Pipe()
			defer b.Close()
			fl.c <- a
		}
		ll := newLimitListener(fl, 1)
		got := make(chan net.Conn)
		go func() {
			defer close(got)
			for {
				c, err := ll.Accept()
				if err != nil {
					return
				}
				got <- c
			}
		}()
		first := <-got
		synctest.Wait()
		select {
		case <-got:
			t.Fatal("second connection accepted while the first is open")
		default:
		}
		first.Close()
		first.Close() // releases its slot once
		second := <-got
		second.Close()
		ll.Close()
		if c, ok := <-got; ok {
			t.Fatalf("accepted %v after Close", c)
		}
	})
}

type chanListener struct {
	c      chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.c:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{} }

// TestServerNotReady: while the source is not ready (a member that
// restarted and is catching up), every transport answers SERVFAIL, never
// NXDOMAIN or a cached answer; once ready, real answers.
func TestServerNotReady(t *testing.T) {
	var ready atomic.Bool
	reg := prometheus.NewRegistry()
	s, err := New(Config{}, live(serverFixture()), reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s.SetReady(ready.Load)
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	for _, proto := range []string{"udp", "udp", "tcp"} { // twice over UDP: the cache keeps no SERVFAIL
		for _, name := range []string{"web-1.web.cairn.internal.", "nosuch.cairn.internal."} {
			if resp := exchange(t, s.Addr(), proto, query(name, dns.TypeA)); resp.Rcode != dns.RcodeServerFailure {
				t.Errorf("not ready, %s %s: %s, want SERVFAIL", proto, name, dns.RcodeToString[resp.Rcode])
			}
		}
	}
	ready.Store(true)
	for _, proto := range []string{"udp", "tcp"} {
		if resp := exchange(t, s.Addr(), proto, query("web-1.web.cairn.internal.", dns.TypeA)); resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
			t.Errorf("ready, %s: %v", proto, resp)
		}
		if resp := exchange(t, s.Addr(), proto, query("nosuch.cairn.internal.", dns.TypeA)); resp.Rcode != dns.RcodeNameError {
			t.Errorf("ready, %s nosuch: %s, want NXDOMAIN", proto, dns.RcodeToString[resp.Rcode])
		}
	}
}
