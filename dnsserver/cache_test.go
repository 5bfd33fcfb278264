package dnsserver

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/cairnkv/cairn/discovery"
)

// genSource is a fakeSource whose instances can be replaced, with a
// Generation that moves when they are, as discovery.Index's.
type genSource struct {
	mu  sync.Mutex
	src *fakeSource
	gen atomic.Uint64
}

func newGenSource(insts ...discovery.Instance) *genSource {
	return &genSource{src: &fakeSource{insts: insts}}
}

func (g *genSource) set(insts ...discovery.Instance) {
	g.mu.Lock()
	g.src = &fakeSource{insts: insts}
	g.mu.Unlock()
	g.gen.Add(1)
}

func (g *genSource) cur() *fakeSource {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.src
}

func (g *genSource) Lookup(name string) []discovery.Instance { return g.cur().Lookup(name) }
func (g *genSource) Exists(name string) bool                 { return g.cur().Exists(name) }
func (g *genSource) ByIP(ip netip.Addr) []discovery.Instance { return g.cur().ByIP(ip) }
func (g *genSource) Generation() uint64                      { return g.gen.Load() }

// captureWriter records what a udpLoop sends.
type captureWriter struct {
	udpWriter
	sent [][]byte
}

func (w *captureWriter) writePacket(b []byte) error {
	w.sent = append(w.sent, bytes.Clone(b))
	return nil
}
func (w *captureWriter) Write(b []byte) (int, error) { return len(b), w.writePacket(b) }
func (w *captureWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	return w.writePacket(b)
}
func (w *captureWriter) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}
func (w *captureWriter) RemoteAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
}

// discardWriter sends nowhere, without allocating.
type discardWriter struct{ captureWriter }

func (w *discardWriter) writePacket([]byte) error { return nil }

// testLoop is a udpLoop of a server over src, without a socket.
func testLoop(t testing.TB, cfg Config, src Source) *udpLoop {
	t.Helper()
	s, err := New(cfg, src, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := &udpLoop{s: s, local: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}}
	if g, ok := src.(Generationer); ok {
		l.gen, l.cache = g, newAnswerCache()
	}
	return l
}

var client = netip.MustParseAddrPort("127.0.0.1:5353")

// ask sends req through l at now and returns the one response, unpacked.
func ask(t *testing.T, l *udpLoop, req *dns.Msg, now time.Time) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(askRaw(t, l, req, now)); err != nil {
		t.Fatal(err)
	}
	return m
}

// askRaw is ask without unpacking.
func askRaw(t *testing.T, l *udpLoop, req *dns.Msg, now time.Time) []byte {
	t.Helper()
	p, err := req.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var w captureWriter
	l.handle(p, client, now, &w)
	if len(w.sent) != 1 {
		t.Fatalf("%s: %d responses, want 1", question(req), len(w.sent))
	}
	return w.sent[0]
}

func TestParsePlain(t *testing.T) {
	pack := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cookie := withEDNS(query("a.cairn.internal.", dns.TypeA), 1232)
	cookie.IsEdns0().Option = append(cookie.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	subnet := withEDNS(query("a.cairn.internal.", dns.TypeA), 1232)
	subnet.IsEdns0().Option = append(subnet.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(10, 0, 0, 0)})
	do := withEDNS(query("a.cairn.internal.", dns.TypeA), 4096)
	do.IsEdns0().SetDo()
	v1 := withEDNS(query("a.cairn.internal.", dns.TypeA), 1232)
	v1.IsEdns0().SetVersion(1)
	two := query("a.cairn.internal.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	resp := query("a.cairn.internal.", dns.TypeA)
	resp.Response = true
	notify := query("a.cairn.internal.", dns.TypeA)
	notify.Opcode = dns.OpcodeNotify
	cd := query("a.cairn.internal.", dns.TypeA)
	cd.CheckingDisabled = true
	trailing := append(pack(query("a.cairn.internal.", dns.TypeA)), 0)

	for _, tc := range []struct {
		name string
		b    []byte
		ok   bool
		bits byte
		size uint16
	}{
		{"plain", pack(query("a.cairn.internal.", dns.TypeA)), true, keyRD, 0},
		{"edns", pack(withEDNS(query("a.cairn.internal.", dns.TypeA), 1232)), true, keyRD | keyOPT, 1232},
		{"do", pack(do), true, keyRD | keyOPT | keyDO, 4096},
		{"cd", pack(cd), true, keyRD | keyCD, 0},
		{"cookie", pack(cookie), true, keyRD | keyOPT, 1232},
		{"subnet option", pack(subnet), false, 0, 0},
		{"edns version 1", pack(v1), false, 0, 0},
		{"two questions", pack(two), false, 0, 0},
		{"response", pack(resp), false, 0, 0},
		{"notify", pack(notify), false, 0, 0},
		{"trailing byte", trailing, false, 0, 0},
		{"short", []byte{1, 2, 3}, false, 0, 0},
		{"cut question", pack(query("a.cairn.internal.", dns.TypeA))[:20], false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, ok := parsePlain(tc.b)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok && (q.bits != tc.bits || q.udpSize != tc.size || q.qtype != dns.TypeA) {
				t.Errorf("bits %b size %d type %d, want %b %d A", q.bits, q.udpSize, q.qtype, tc.bits, tc.size)
			}
		})
	}
}

// TestCacheMatchesAnswer: every query answered from the cache is byte for
// byte what the Responder answers, but for the ID.
func TestCacheMatchesAnswer(t *testing.T) {
	src := newGenSource(serverFixture().insts...)
	src.set(append(bigService(60), serverFixture().insts...)...)
	cfg := Config{Shuffle: noShuffle}
	l := testLoop(t, cfg, src)
	r := l.s.Responder()
	reqs := []*dns.Msg{
		query("big.cairn.internal.", dns.TypeSRV),
		withEDNS(query("big.cairn.internal.", dns.TypeSRV), 1232),
		withEDNS(query("big.cairn.internal.", dns.TypeSRV), 4096),
		query("big-7.big.cairn.internal.", dns.TypeA),
		query("BiG-7.big.Cairn.Internal.", dns.TypeA), // 0x20: echoed as sent
		query("nope.cairn.internal.", dns.TypeA),
		query("cairn.internal.", dns.TypeSOA),
		query("example.com.", dns.TypeA),
		query("1.1.1.10.in-addr.arpa.", dns.TypePTR),
	}
	for i, req := range reqs {
		for round := range 3 {
			req.Id = uint16(1000*i + round)
			now := t0.Add(time.Duration(round) * 100 * time.Millisecond)
			gb := askRaw(t, l, req, now)
			want := r.Answer(req, now, UDP)
			wb, _ := want.Pack()
			if !bytes.Equal(gb, wb) {
				got := new(dns.Msg)
				got.Unpack(gb)
				t.Errorf("%s round %d:\n got %v\nwant %v", question(req), round, got, want)
			}
		}
	}
}

// TestCacheNeverStale: a change of the source is answered by the next
// query, and a TTL counting down is never served from before.
func TestCacheNeverStale(t *testing.T) {
	a := inst("web-1.web", discovery.Record{Host: "10.0.0.1", Port: 80}, 0)
	src := newGenSource(a)
	l := testLoop(t, Config{Shuffle: noShuffle}, src)
	req := query("web.cairn.internal.", dns.TypeA)
	if got := ask(t, l, req, t0); len(got.Answer) != 1 {
		t.Fatalf("first answer %v", got)
	}
	if got := ask(t, l, req, t0); len(got.Answer) != 1 { // a hit
		t.Fatalf("cached answer %v", got)
	}
	b := inst("web-2.web", discovery.Record{Host: "10.0.0.2", Port: 80}, 0)
	src.set(a, b)
	if got := ask(t, l, req, t0); len(got.Answer) != 2 {
		t.Fatalf("after a registration: %v, want 2 records", got.Answer)
	}
	src.set()
	if got := ask(t, l, req, t0); got.Rcode != dns.RcodeNameError {
		t.Fatalf("after deregistration: %v, want NXDOMAIN", got)
	}

	// A key with 10.5 s left: TTL 11, then 10 from 0.5 s on, and gone at 10.5 s.
	src.set(inst("web-1.web", discovery.Record{Host: "10.0.0.1"}, 10500*time.Millisecond))
	for _, tc := range []struct {
		at  time.Duration
		ttl uint32 // 0: NXDOMAIN
	}{
		{0, 11}, {100 * time.Millisecond, 11}, {499 * time.Millisecond, 11},
		{500 * time.Millisecond, 10}, {900 * time.Millisecond, 10},
		{10 * time.Second, 1}, {10499 * time.Millisecond, 1}, {10500 * time.Millisecond, 0},
	} {
		got := ask(t, l, req, t0.Add(tc.at))
		switch {
		case tc.ttl == 0 && got.Rcode != dns.RcodeNameError:
			t.Errorf("at %v: %v, want NXDOMAIN", tc.at, got)
		case tc.ttl != 0 && (len(got.Answer) != 1 || got.Answer[0].Header().Ttl != tc.ttl):
			t.Errorf("at %v: %v, want TTL %d", tc.at, got.Answer, tc.ttl)
		}
	}

	// The SOA serial of a negative answer moves with the second.
	neg := query("nope.cairn.internal.", dns.TypeA)
	s1 := ask(t, l, neg, t0.Add(900*time.Millisecond)).Ns[0].(*dns.SOA).Serial
	s2 := ask(t, l, neg, t0.Add(1000*time.Millisecond)).Ns[0].(*dns.SOA).Serial
	if s2 != s1+1 {
		t.Errorf("serials %d then %d", s1, s2)
	}
}

// TestCacheRotations: a shuffled answer is cached in several orders.
func TestCacheRotations(t *testing.T) {
	src := newGenSource(bigService(8)...)
	l := testLoop(t, Config{}, src) // the default, random shuffle
	req := query("big.cairn.internal.", dns.TypeA)
	orders := map[string]bool{}
	for range 2 * cacheRotations {
		got := ask(t, l, req, t0)
		var key string
		for _, rr := range got.Answer {
			key += rr.(*dns.A).A.String() + " "
		}
		orders[key] = true
	}
	if len(orders) < 2 {
		t.Errorf("one order in %d answers: %v", 2*cacheRotations, orders)
	}
	if n := len(l.cache.entries[string(l.cache.key)].variants); n != cacheRotations {
		t.Errorf("%d rotations cached, want %d", n, cacheRotations)
	}
}

// BenchmarkUDPCacheHit: a cached A query through the UDP loop's handler,
// parse to write: it must not allocate.
func BenchmarkUDPCacheHit(b *testing.B) {
	for _, tc := range []struct {
		name string
		req  *dns.Msg
	}{
		{"A", query("big-7.big.cairn.internal.", dns.TypeA)},
		{"SRV", withEDNS(query("big.cairn.internal.", dns.TypeSRV), 1232)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			l := testLoop(b, Config{}, newGenSource(bigService(3)...))
			p, _ := tc.req.Pack()
			var w discardWriter
			now := time.Now()
			l.handle(p, client, now, &w)
			b.ReportAllocs()
			for b.Loop() {
				l.handle(p, client, now, &w)
			}
		})
	}
}

func TestCacheHitAllocs(t *testing.T) {
	l := testLoop(t, Config{}, newGenSource(bigService(3)...))
	p, _ := withEDNS(query("big.cairn.internal.", dns.TypeSRV), 1232).Pack()
	var w discardWriter
	now := time.Now()
	l.handle(p, client, now, &w)
	if n := testing.AllocsPerRun(100, func() { l.handle(p, client, now, &w) }); n != 0 {
		t.Errorf("a cache hit allocates %v times", n)
	}
}
