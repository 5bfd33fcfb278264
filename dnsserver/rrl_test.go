package dnsserver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
)

func TestRateLimiter(t *testing.T) {
	r := newRateLimiter(Config{RateLimit: 4, RateSlip: 2})
	a := netip.MustParseAddr("192.0.2.1")
	same := netip.MustParseAddr("192.0.2.200") // same /24
	other := netip.MustParseAddr("192.0.3.1")
	var got []rrlVerdict
	for i := range 8 {
		src := a
		if i%2 == 1 {
			src = same
		}
		got = append(got, r.check(src, t0))
	}
	want := []rrlVerdict{rrlSend, rrlSend, rrlSend, rrlSend, rrlDrop, rrlSlip, rrlDrop, rrlSlip}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("verdicts %v, want %v", got, want)
		}
	}
	if v := r.check(other, t0); v != rrlSend {
		t.Errorf("another network: %v, want send", v)
	}
	if v := r.check(a, t0.Add(500*time.Millisecond)); v != rrlSend { // 2 tokens back
		t.Errorf("after 0.5 s: %v, want send", v)
	}

	v6 := newRateLimiter(Config{RateLimit: 1, RateSlip: 1})
	v6.check(netip.MustParseAddr("2001:db8:0:1f::1"), t0)
	if v := v6.check(netip.MustParseAddr("2001:db8:0:ff::2"), t0); v != rrlSlip { // same /56
		t.Errorf("same /56: %v, want slip", v)
	}
	if v := v6.check(netip.MustParseAddr("2001:db8:0:100::2"), t0); v != rrlSend {
		t.Errorf("another /56: %v, want send", v)
	}

	lo := newRateLimiter(Config{RateLimit: 1, RateSlip: -1})
	for range 3 {
		if v := lo.check(netip.MustParseAddr("127.0.0.1"), t0); v != rrlSend {
			t.Fatalf("loopback limited by default: %v", v)
		}
	}
	lo.loopback = true
	lo.check(netip.MustParseAddr("127.0.0.1"), t0)
	if v := lo.check(netip.MustParseAddr("127.0.0.1"), t0); v != rrlDrop {
		t.Errorf("slip -1: %v, want drop", v)
	}
}

// dialFrom is a UDP socket bound to src (a loopback address), connected to
// addr; it skips the test where src cannot be bound (not Linux).
func dialFrom(t *testing.T, src, addr string) *dns.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("udp", addr)
	if err != nil {
		t.Skipf("cannot send from %s here: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return &dns.Conn{Conn: c}
}

// TestServerRateLimitSlips: a flood from one network is slipped (TC, no
// records) and dropped, while another network keeps full answers.
func TestServerRateLimitSlips(t *testing.T) {
	s := startServerConfig(t, Config{RateLimit: 20, RateLimitLoopback: true}, live(serverFixture()))
	flood := dialFrom(t, "127.0.0.2", s.Addr())
	calm := dialFrom(t, "127.0.1.2", s.Addr())

	const n = 200
	for i := range n {
		req := query("web.cairn.internal.", dns.TypeA)
		req.Id = uint16(i)
		if err := flood.WriteMsg(req); err != nil {
			t.Fatal(err)
		}
	}
	full, slipped := 0, 0
	flood.SetReadDeadline(time.Now().Add(waitTimeout))
	for full+slipped < n {
		m, err := flood.ReadMsg()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
			break // the rest were dropped
		}
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case m.Truncated && len(m.Answer) == 0 && len(m.Question) == 1:
			slipped++
		case len(m.Answer) > 0:
			full++
		default:
			t.Fatalf("neither answered nor slipped: %v", m)
		}
		if slipped > 0 && full > 0 && full+slipped >= n/2 {
			break
		}
	}
	if slipped == 0 || full == 0 || full > n/2 {
		t.Fatalf("flood of %d: %d answered, %d slipped", n, full, slipped)
	}

	// The other network is not affected.
	for i := range 5 {
		req := query("web.cairn.internal.", dns.TypeA)
		req.Id = uint16(1000 + i)
		if err := calm.WriteMsg(req); err != nil {
			t.Fatal(err)
		}
		calm.SetReadDeadline(time.Now().Add(waitTimeout))
		m, err := calm.ReadMsg()
		if err != nil || m.Truncated || len(m.Answer) == 0 {
			t.Fatalf("other network: %v %v", m, err)
		}
	}
	poll.Until(t, waitTimeout, "slips and drops counted", func() bool {
		return metric(t, s.reg, "cairn_dns_slipped_total") >= float64(slipped) &&
			metric(t, s.reg, "cairn_dns_dropped_total", "reason", "rate") > 0
	})
}

// TestServerAllow: a source outside Allow gets nothing over UDP and REFUSED
// over TCP; one inside is answered.
func TestServerAllow(t *testing.T) {
	s := startServerConfig(t, Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.1.0/24")}}, live(serverFixture()))
	in := dialFrom(t, "127.0.1.2", s.Addr())
	out := dialFrom(t, "127.0.0.2", s.Addr())
	if err := out.WriteMsg(query("web.cairn.internal.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, waitTimeout, "the outside query dropped", func() bool {
		return metric(t, s.reg, "cairn_dns_dropped_total", "reason", "allow") == 1
	})
	if err := in.WriteMsg(query("web.cairn.internal.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	in.SetReadDeadline(time.Now().Add(waitTimeout))
	if m, err := in.ReadMsg(); err != nil || len(m.Answer) == 0 {
		t.Fatalf("inside: %v %v", m, err)
	}
	if m := exchange(t, s.Addr(), "tcp", query("web.cairn.internal.", dns.TypeA)); m.Rcode != dns.RcodeRefused {
		t.Errorf("TCP from outside: %v, want REFUSED", m)
	}
}

// TestServerWildcardAddress: a server bound to every address answers from
// the address it was asked on (IP_PKTINFO), over UDP and TCP.
func TestServerWildcardAddress(t *testing.T) {
	s, err := New(Config{}, live(serverFixture()), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("0.0.0.0:0"); err != nil {
		t.Skipf("cannot bind 0.0.0.0 here: %v", err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	_, port, _ := net.SplitHostPort(s.Addr())
	for _, proto := range []string{"udp", "tcp"} {
		m := exchange(t, net.JoinHostPort("127.0.0.1", port), proto, query("web.cairn.internal.", dns.TypeA))
		if len(m.Answer) == 0 {
			t.Errorf("%s: %v", proto, m)
		}
	}
}
