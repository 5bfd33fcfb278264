package dnsserver

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/cairnkv/cairn/discovery"
	"github.com/cairnkv/cairn/store"
)

// fuzzRegistrations are the keys and values of the store the DNS fuzz
// targets answer from: IPv4 and IPv6 instances, a hostname (CNAME) and an
// in-zone one, a chain, TXT of the maximal size, an RFC 2782 name, groups,
// a targetstrip, a key TTL and a service too big for one UDP answer.
func fuzzRegistrations() map[string]string {
	m := map[string]string{
		"web/web-1":        `{"host":"10.0.0.1","port":8080,"priority":10}`,
		"web/web-2":        `{"host":"10.0.0.2","port":8080,"weight":300,"ttl":5}`,
		"web/web-3":        `{"host":"2001:db8::3","port":8081,"text":"v=3"}`,
		"api/api-1":        `{"host":"lb.example.com","port":443}`,
		"alias/a-1":        `{"host":"web-1.web.cairn.internal","port":80}`,
		"loop/a":           `{"host":"b.loop.cairn.internal"}`,
		"loop/b":           `{"host":"a.loop.cairn.internal"}`,
		"txt/t-1":          `{"text":"` + strings.Repeat("t", discovery.MaxTextBytes) + `"}`,
		"_udp/_sip/i1":     `{"host":"10.0.3.1","port":5060}`,
		"grp/g":            `{"host":"10.0.2.1","group":"blue"}`,
		"grp/sub/r1":       `{"host":"10.0.2.3","group":"red"}`,
		"ts/deep/x":        `{"host":"10.0.0.10","port":9,"targetstrip":2}`,
		"bad/b-1":          `{"host":"10.0.0.300"}`,
		"Case/MiXed":       `{"host":"::ffff:10.0.0.9"}`,
		"esc/a\\.b/c d":    `{"host":"10.0.0.11"}`,
		"x/" + longLabel(): `{"host":"10.0.0.12"}`,
	}
	for i := range 60 {
		m[fmt.Sprintf("big/big-%d", i)] = fmt.Sprintf(`{"host":"10.1.%d.%d","port":%d,"text":"instance %d"}`, i/200, i%200+1, 8000+i, i)
	}
	return m
}

func longLabel() string { return strings.Repeat("l", 63) }

// fuzzNow is the queries' time; the store's keys live an hour after it.
var fuzzNow = time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)

// fuzzIndex writes regs (keys relative to the zone's directory) into a
// fresh store and returns the index over it.
func fuzzIndex(t testing.TB, regs map[string]string) *discovery.Index {
	t.Helper()
	st := store.New(store.Config{HistorySize: 16})
	dir := discovery.Config{}.Dir()
	for k, v := range regs {
		r := &store.Request{Method: store.MethodPut, Path: dir + "/" + k, Value: v}
		if strings.HasPrefix(k, "web/") {
			r.HasTTL, r.TTL = true, 3600
		}
		_, _ = st.Apply(r, fuzzNow) // a key below a file is refused: fine
	}
	return discovery.NewIndex(st, discovery.Config{}, func() time.Time { return fuzzNow })
}

func fuzzServer(t testing.TB, src Source) *Server {
	t.Helper()
	s, err := New(Config{NS: []string{"10.0.0.53", "ns2.example.net"}, Shuffle: noShuffle}, src, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// FuzzAnswer feeds raw query packets through the server's path (header
// screen, unpack, answer) against an index of a few services, over UDP and
// TCP. A packet is dropped, refused by the header screen, or answered; an
// answer is a reply to the query (same ID, opcode and question), packs, fits
// the size rules (512 bytes over UDP without EDNS0, the advertised size
// between 512 and Config.UDPSize with it, 65535 over TCP), and is never
// truncated over TCP (no service here is that big); a reply truncated over
// UDP is complete over TCP.
func FuzzAnswer(f *testing.F) {
	q := func(name string, qtype uint16, edns uint16, mod func(m *dns.Msg)) []byte {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		if edns != 0 {
			m.SetEdns0(edns, true)
		}
		if mod != nil {
			mod(m)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	for _, s := range [][]byte{
		q("web-1.web.cairn.internal.", dns.TypeA, 0, nil),
		q("web.cairn.internal.", dns.TypeSRV, 0, nil),
		q("web.cairn.internal.", dns.TypeAAAA, 1232, nil),
		q("big.cairn.internal.", dns.TypeSRV, 0, nil),
		q("big.cairn.internal.", dns.TypeTXT, 4096, nil),
		q("big.cairn.internal.", dns.TypeANY, 65535, nil),
		q("txt.cairn.internal.", dns.TypeTXT, 0, nil),
		q("_sip._udp.cairn.internal.", dns.TypeSRV, 0, nil),
		q("_web._tcp.cairn.internal.", dns.TypeSRV, 0, nil),
		q("alias.cairn.internal.", dns.TypeA, 0, nil),
		q("a.loop.cairn.internal.", dns.TypeA, 0, nil),
		q("api.cairn.internal.", dns.TypeCNAME, 0, nil),
		q("*.web.cairn.internal.", dns.TypeA, 0, nil),
		q("ts.cairn.internal.", dns.TypeSRV, 0, nil),
		q("MiXed.case.cairn.internal.", dns.TypeAAAA, 0, nil),
		q(`c\032d.a\.b.esc.cairn.internal.`, dns.TypeA, 0, nil),
		q(longLabel()+".x.cairn.internal.", dns.TypeA, 0, nil),
		q("cairn.internal.", dns.TypeSOA, 0, nil),
		q("cairn.internal.", dns.TypeNS, 0, nil),
		q("cairn.internal.", dns.TypeANY, 0, nil),
		q("ns1.dns.cairn.internal.", dns.TypeA, 0, nil),
		q("cairn.internal.", dns.TypeAXFR, 0, nil),
		q("nope.cairn.internal.", dns.TypeA, 0, nil),
		q("1.0.0.10.in-addr.arpa.", dns.TypePTR, 0, nil),
		q("3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", dns.TypePTR, 0, nil),
		q("example.com.", dns.TypeA, 0, nil),
		q("web.cairn.internal.", dns.TypeA, 0, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }),
		q("web.cairn.internal.", dns.TypeA, 0, func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }),
		q("web.cairn.internal.", dns.TypeA, 0, func(m *dns.Msg) { m.Response = true }),
		q("web.cairn.internal.", dns.TypeA, 0, func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }),
		q("web.cairn.internal.", dns.TypeA, 512, func(m *dns.Msg) { m.IsEdns0().SetVersion(1) }),
		q("web.cairn.internal.", dns.TypeA, 512, func(m *dns.Msg) { m.SetEdns0(4096, false) }), // two OPTs
		q("web.cairn.internal.", dns.TypeOPT, 0, nil),
		{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}, // a name pointing at itself
		{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0},                       // a question missing
		{0, 1},
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	src := fuzzIndex(f, fuzzRegistrations())
	f.Fuzz(func(t *testing.T, packet []byte, tcp bool) {
		s := fuzzServer(t, src)
		proto := UDP
		if tcp {
			proto = TCP
		}
		resp, req := serveFuzz(t, s, packet, proto)
		if resp == nil {
			return
		}
		checkReply(t, req, resp, proto)
		if proto == UDP && resp.Truncated {
			full, _ := serveFuzz(t, s, packet, TCP)
			if full == nil || full.Truncated || len(full.Answer) < len(resp.Answer) || full.Rcode != resp.Rcode {
				t.Fatalf("truncated over UDP (%d answers), over TCP: %v", len(resp.Answer), full)
			}
		}
	})
}

// serveFuzz is what the server does with a packet: the header screen of
// acceptFunc, unpacking, then the Responder (without the server's recover,
// so that a panic fails the target).
func serveFuzz(t *testing.T, s *Server, packet []byte, proto string) (resp, req *dns.Msg) {
	t.Helper()
	if len(packet) < dnsHeaderLen {
		return nil, nil
	}
	dh := dns.Header{
		Id: binary.BigEndian.Uint16(packet), Bits: binary.BigEndian.Uint16(packet[2:]),
		Qdcount: binary.BigEndian.Uint16(packet[4:]), Ancount: binary.BigEndian.Uint16(packet[6:]),
		Nscount: binary.BigEndian.Uint16(packet[8:]), Arcount: binary.BigEndian.Uint16(packet[10:]),
	}
	if s.acceptFunc(proto)(dh) != dns.MsgAccept {
		return nil, nil // dropped, or NOTIMP/FORMERR made by miekg/dns from the header
	}
	req = new(dns.Msg)
	if err := req.Unpack(packet); err != nil {
		return nil, nil // FORMERR from the header, by miekg/dns
	}
	resp = s.Responder().Answer(req, fuzzNow, proto)
	if resp == nil && !req.Response {
		t.Fatalf("no answer to a query: %v", req)
	}
	return resp, req
}

// checkReply checks resp as the answer to req over proto.
func checkReply(t *testing.T, req, resp *dns.Msg, proto string) {
	t.Helper()
	if resp.Id != req.Id || !resp.Response || resp.Opcode != req.Opcode {
		t.Fatalf("reply header %+v to %+v", resp.MsgHdr, req.MsgHdr)
	}
	if len(req.Question) == 1 && resp.Rcode != dns.RcodeFormatError &&
		(len(resp.Question) != 1 || resp.Question[0] != req.Question[0]) {
		t.Fatalf("reply question %v to %v", resp.Question, req.Question)
	}
	b, err := resp.Pack()
	if err != nil {
		t.Fatalf("reply does not pack: %v\n%v", err, resp)
	}
	limit := dns.MaxMsgSize
	if proto == UDP {
		limit = dns.MinMsgSize
		if o := req.IsEdns0(); o != nil {
			limit = max(dns.MinMsgSize, min(int(o.UDPSize()), DefaultUDPSize))
		}
	}
	if len(b) > limit {
		t.Fatalf("reply of %d bytes over %s, limit %d", len(b), proto, limit)
	}
	if proto == TCP && resp.Truncated {
		t.Fatalf("reply truncated over TCP: %v", resp)
	}
	back := new(dns.Msg)
	if err := back.Unpack(b); err != nil {
		t.Fatalf("packed reply does not unpack: %v", err)
	}
	if len(back.Answer) != len(resp.Answer) || len(back.Ns) != len(resp.Ns) || len(back.Extra) != len(resp.Extra) {
		t.Fatalf("packed reply lost records: %d/%d/%d of %d/%d/%d", len(back.Answer), len(back.Ns), len(back.Extra),
			len(resp.Answer), len(resp.Ns), len(resp.Extra))
	}
}

// FuzzRecordAnswers stores any value at any key below the zone, next to a
// few other registrations, straight into the store (as a value written
// before validation existed, or by a SkyDNS tool, would be): whatever the
// index takes in must be answered with valid DNS for every record type,
// over UDP and TCP, and its TXT answer over TCP must hold its text.
func FuzzRecordAnswers(f *testing.F) {
	for k, v := range fuzzRegistrations() {
		if !strings.HasPrefix(k, "big/") {
			f.Add("new/"+k, v)
		}
	}
	f.Add("web/web-9", `{"host":"10.0.0.9","text":"`+strings.Repeat("x", 900_000)+`"}`) // over the limit: cut to it
	f.Add("big/big-61", `{"host":"10.1.0.61","port":1,"text":"`+strings.Repeat("y", discovery.MaxTextBytes)+`"}`)
	f.Add("wild/*", `{"host":"10.0.9.9"}`)
	f.Add("self/s", `{"host":"s.self.cairn.internal"}`)
	f.Add("t/"+strings.Repeat("a/", 100)+"z", `{"text":"deep"}`)
	f.Add("_tcp/_http/h", `{"host":"h.example.com","port":80,"targetstrip":127}`)
	base := fuzzRegistrations()
	cfg := discovery.Config{}
	f.Fuzz(func(t *testing.T, key, value string) {
		regs := map[string]string{"web/web-1": base["web/web-1"], "txt/t-1": base["txt/t-1"], "api/api-1": base["api/api-1"]}
		for i := range 12 {
			k := fmt.Sprintf("big/big-%d", i)
			regs[k] = base[k]
		}
		regs[key] = value
		src := fuzzIndex(t, regs)
		name, ok := cfg.Name(cfg.Dir() + "/" + key)
		if !ok || len(src.Lookup(name)) == 0 {
			return
		}
		s := fuzzServer(t, src)
		var text string
		for _, in := range src.Lookup(name) {
			if in.Key == cfg.Dir()+"/"+key {
				text = in.Record.Text
			}
		}
		names := []string{name, "web.cairn.internal.", "big.cairn.internal."}
		if _, parent, ok := strings.Cut(name, "."); ok && dns.IsSubDomain(cfg.Zone(), parent) {
			names = append(names, parent, "_x._tcp."+parent)
		}
		for _, in := range src.Lookup(name) {
			if a, err := netip.ParseAddr(in.Record.Host); err == nil {
				if rev, err := dns.ReverseAddr(a.Unmap().String()); err == nil {
					names = append(names, rev)
				}
			}
		}
		for _, n := range names {
			for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeTXT, dns.TypeCNAME, dns.TypePTR, dns.TypeANY} {
				for _, edns := range []uint16{0, 4096} {
					m := new(dns.Msg)
					m.SetQuestion(n, qt)
					if edns != 0 {
						m.SetEdns0(edns, false)
					}
					b, err := m.Pack()
					if err != nil {
						continue // a name dns cannot pack: no client can ask it
					}
					for _, proto := range []string{UDP, TCP} {
						resp, req := serveFuzz(t, s, b, proto)
						if resp == nil {
							t.Fatalf("no answer to %s %s", n, dns.TypeToString[qt])
						}
						checkReply(t, req, resp, proto)
						if proto == TCP && qt == dns.TypeTXT && n == name && text != "" && !hasText(resp, text) {
							t.Fatalf("TXT over TCP for %s lacks the record's %d bytes of text", n, len(text))
						}
					}
				}
			}
		}
	})
}

// hasText reports whether a TXT record of resp holds text.
func hasText(resp *dns.Msg, text string) bool {
	for _, rr := range resp.Answer {
		if txt, ok := rr.(*dns.TXT); ok && strings.Join(txt.Txt, "") == text {
			return true
		}
	}
	return false
}
