package dnsserver

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/cairnkv/cairn/discovery"
)

type rec = discovery.Record

// fixture is the registrations most answer tests run against.
func fixture() []discovery.Instance {
	return []discovery.Instance{
		inst("web-1.web", rec{Host: "10.0.0.1", Port: 8080, Priority: 10}, 20*time.Second),
		inst("web-2.web", rec{Host: "10.0.0.2", Port: 8080, Priority: 10, Weight: 300, TTL: 5}, 0),
		inst("web-3.web", rec{Host: "2001:db8::3", Port: 8081, Priority: 20, Text: "v=3"}, 300*time.Millisecond),
		inst("api-1.api", rec{Host: "lb.example.com", Port: 443}, 0),
		inst("alias-1.alias", rec{Host: "web-1.web.cairn.internal", Port: 80}, 0),
		inst("in-1.inzone", rec{Host: "web.cairn.internal.", Port: 80}, 0),
		inst("txt-1.txt", rec{Text: strings.Repeat("a", 300)}, 0),
		inst("self-1.self", rec{Host: "self-1.self.cairn.internal"}, 0),
		inst("a.loop", rec{Host: "b.loop.cairn.internal"}, 0),
		inst("b.loop", rec{Host: "a.loop.cairn.internal"}, 0),
		inst("dead-1.dead", rec{Host: "10.0.0.99", Port: 1}, -time.Second),
		inst("long-1.long", rec{Host: "10.0.0.7", TTL: 100}, 19200*time.Millisecond),
		inst("ts-1.ts", rec{Host: "10.0.0.9", Port: 9, TargetStrip: 1}, 0),
		inst("x.deep.ts2", rec{Host: "10.0.0.10", Port: 9, TargetStrip: 5}, 0),
		inst("g.grp", rec{Host: "10.0.2.1", Group: "blue"}, 0),
		inst("b1.sub.grp", rec{Host: "10.0.2.2", Group: "blue"}, 0),
		inst("r1.sub.grp", rec{Host: "10.0.2.3", Group: "red"}, 0),
		inst("n1.sub.grp", rec{Host: "10.0.2.4"}, 0),
		inst("other-1.other", rec{Host: "10.0.0.1", Port: 1}, 0),
		inst("i1._sip._udp", rec{Host: "10.0.3.1", Port: 5060}, 0),
		inst("noport-1.noport", rec{Host: "10.0.0.11", Port: -1}, 0),
	}
}

// soaLine is the zone's SOA as rendered in negative answers at t0.
const soaLine = "cairn.internal. 5 IN SOA ns.dns.cairn.internal. hostmaster.cairn.internal. 1748779200 7200 1800 86400 5"

func TestAnswer(t *testing.T) {
	r := newResponder(t, Config{}, fixture()...)
	webSRV := func(owner string) []string {
		return []string{
			owner + " 1 IN SRV 20 100 8081 web-3.web.cairn.internal.",
			owner + " 20 IN SRV 10 25 8080 web-1.web.cairn.internal.",
			owner + " 5 IN SRV 10 75 8080 web-2.web.cairn.internal.",
		}
	}
	webGlue := []string{
		"web-1.web.cairn.internal. 20 IN A 10.0.0.1",
		"web-2.web.cairn.internal. 5 IN A 10.0.0.2",
		"web-3.web.cairn.internal. 1 IN AAAA 2001:db8::3",
	}
	neg := []string{soaLine}

	for _, tc := range []struct {
		name   string
		qname  string
		qtype  uint16
		qclass uint16 // default IN
		rcode  int
		notAA  bool
		answer []string
		ns     []string
		extra  []string
	}{
		// Instances and services, A/AAAA; TTL = min(record, key, max).
		{name: "instance A", qname: "web-1.web.cairn.internal.", qtype: dns.TypeA,
			answer: []string{"web-1.web.cairn.internal. 20 IN A 10.0.0.1"}},
		{name: "service A is every instance below", qname: "web.cairn.internal.", qtype: dns.TypeA,
			answer: []string{"web.cairn.internal. 20 IN A 10.0.0.1", "web.cairn.internal. 5 IN A 10.0.0.2"}},
		{name: "service AAAA, key TTL 300ms rounds up to 1", qname: "web.cairn.internal.", qtype: dns.TypeAAAA,
			answer: []string{"web.cairn.internal. 1 IN AAAA 2001:db8::3"}},
		{name: "record ttl 100 capped by key 19.2s rounded up", qname: "long-1.long.cairn.internal.", qtype: dns.TypeA,
			answer: []string{"long-1.long.cairn.internal. 20 IN A 10.0.0.7"}},
		{name: "no ttl anywhere gives MaxTTL", qname: "noport-1.noport.cairn.internal.", qtype: dns.TypeA,
			answer: []string{"noport-1.noport.cairn.internal. 30 IN A 10.0.0.11"}},
		{name: "query case is echoed", qname: "WEB-1.Web.Cairn.Internal.", qtype: dns.TypeA,
			answer: []string{"WEB-1.Web.Cairn.Internal. 20 IN A 10.0.0.1"}},
		{name: "class ANY is answered", qname: "web-1.web.cairn.internal.", qtype: dns.TypeA, qclass: dns.ClassANY,
			answer: []string{"web-1.web.cairn.internal. 20 IN A 10.0.0.1"}},
		{name: "wildcard instance label", qname: "*.web.cairn.internal.", qtype: dns.TypeA,
			answer: []string{"*.web.cairn.internal. 20 IN A 10.0.0.1", "*.web.cairn.internal. 5 IN A 10.0.0.2"}},
		{name: "wildcard service label", qname: "web-2.*.cairn.internal.", qtype: dns.TypeA,
			answer: []string{"web-2.*.cairn.internal. 5 IN A 10.0.0.2"}},
		{name: "groups: shallowest group wins", qname: "grp.cairn.internal.", qtype: dns.TypeA,
			answer: []string{"grp.cairn.internal. 30 IN A 10.0.2.1", "grp.cairn.internal. 30 IN A 10.0.2.2", "grp.cairn.internal. 30 IN A 10.0.2.4"}},
		{name: "groups: disagreement answers nothing", qname: "sub.grp.cairn.internal.", qtype: dns.TypeA, ns: neg},

		// CNAME for hostname hosts.
		{name: "out-of-zone host is a CNAME, not chased", qname: "api-1.api.cairn.internal.", qtype: dns.TypeA,
			answer: []string{"api-1.api.cairn.internal. 30 IN CNAME lb.example.com."}},
		{name: "in-zone host is chased", qname: "alias-1.alias.cairn.internal.", qtype: dns.TypeA,
			answer: []string{"alias-1.alias.cairn.internal. 30 IN CNAME web-1.web.cairn.internal.", "web-1.web.cairn.internal. 20 IN A 10.0.0.1"}},
		{name: "in-zone chase finding nothing drops the CNAME", qname: "alias-1.alias.cairn.internal.", qtype: dns.TypeAAAA, ns: neg},
		{name: "CNAME question is not chased", qname: "alias-1.alias.cairn.internal.", qtype: dns.TypeCNAME,
			answer: []string{"alias-1.alias.cairn.internal. 30 IN CNAME web-1.web.cairn.internal."}},
		{name: "CNAME question on an IP host", qname: "web-1.web.cairn.internal.", qtype: dns.TypeCNAME, ns: neg},
		{name: "x CNAME x is dropped", qname: "self-1.self.cairn.internal.", qtype: dns.TypeA, ns: neg},
		{name: "CNAME loop is bounded", qname: "a.loop.cairn.internal.", qtype: dns.TypeA, ns: neg},

		// SRV.
		{name: "service SRV with glue and weights", qname: "web.cairn.internal.", qtype: dns.TypeSRV,
			answer: webSRV("web.cairn.internal."), extra: webGlue},
		{name: "instance SRV", qname: "web-2.web.cairn.internal.", qtype: dns.TypeSRV,
			answer: []string{"web-2.web.cairn.internal. 5 IN SRV 10 100 8080 web-2.web.cairn.internal."},
			extra:  []string{"web-2.web.cairn.internal. 5 IN A 10.0.0.2"}},
		{name: "SRV to an out-of-zone host has no glue", qname: "api.cairn.internal.", qtype: dns.TypeSRV,
			answer: []string{"api.cairn.internal. 30 IN SRV 0 100 443 lb.example.com."}},
		{name: "SRV to an in-zone host has its addresses as glue", qname: "inzone.cairn.internal.", qtype: dns.TypeSRV,
			answer: []string{"inzone.cairn.internal. 30 IN SRV 0 100 80 web.cairn.internal."},
			extra:  []string{"web.cairn.internal. 1 IN AAAA 2001:db8::3", "web.cairn.internal. 20 IN A 10.0.0.1", "web.cairn.internal. 5 IN A 10.0.0.2"}},
		{name: "targetstrip", qname: "ts.cairn.internal.", qtype: dns.TypeSRV,
			answer: []string{"ts.cairn.internal. 30 IN SRV 0 100 9 ts.cairn.internal."},
			extra:  []string{"ts.cairn.internal. 30 IN A 10.0.0.9"}},
		{name: "targetstrip never leaves the zone", qname: "ts2.cairn.internal.", qtype: dns.TypeSRV,
			answer: []string{"ts2.cairn.internal. 30 IN SRV 0 100 9 ts2.cairn.internal."},
			extra:  []string{"ts2.cairn.internal. 30 IN A 10.0.0.10"}},
		{name: "port -1 gives no SRV", qname: "noport.cairn.internal.", qtype: dns.TypeSRV, ns: neg},
		{name: "TXT-only instance gives no SRV", qname: "txt.cairn.internal.", qtype: dns.TypeSRV, ns: neg},

		// RFC 2782.
		{name: "_svc._tcp", qname: "_web._tcp.cairn.internal.", qtype: dns.TypeSRV,
			answer: webSRV("_web._tcp.cairn.internal."), extra: webGlue},
		{name: "_svc._udp", qname: "_web._udp.cairn.internal.", qtype: dns.TypeSRV,
			answer: webSRV("_web._udp.cairn.internal."), extra: webGlue},
		{name: "_svc._tcp has only SRV", qname: "_web._tcp.cairn.internal.", qtype: dns.TypeA, ns: neg},
		{name: "_svc._tcp of nothing", qname: "_nope._tcp.cairn.internal.", qtype: dns.TypeSRV, rcode: dns.RcodeNameError, ns: neg},
		{name: "literal _svc._udp registration wins", qname: "_sip._udp.cairn.internal.", qtype: dns.TypeSRV,
			answer: []string{"_sip._udp.cairn.internal. 30 IN SRV 0 100 5060 i1._sip._udp.cairn.internal."},
			extra:  []string{"i1._sip._udp.cairn.internal. 30 IN A 10.0.3.1"}},

		// TXT and ANY.
		{name: "TXT", qname: "web.cairn.internal.", qtype: dns.TypeTXT,
			answer: []string{`web.cairn.internal. 1 IN TXT "v=3"`}},
		{name: "long TXT is split into 255-byte strings", qname: "txt-1.txt.cairn.internal.", qtype: dns.TypeTXT,
			answer: []string{`txt-1.txt.cairn.internal. 30 IN TXT "` + strings.Repeat("a", 255) + `" "` + strings.Repeat("a", 45) + `"`}},
		{name: "TXT-only instance has no address", qname: "txt-1.txt.cairn.internal.", qtype: dns.TypeA, ns: neg},
		{name: "ANY", qname: "web-3.web.cairn.internal.", qtype: dns.TypeANY,
			answer: []string{"web-3.web.cairn.internal. 1 IN AAAA 2001:db8::3", `web-3.web.cairn.internal. 1 IN TXT "v=3"`}},

		// PTR.
		{name: "PTR lists every instance at the address", qname: "1.0.0.10.in-addr.arpa.", qtype: dns.TypePTR, notAA: true,
			answer: []string{"1.0.0.10.in-addr.arpa. 20 IN PTR web-1.web.cairn.internal.", "1.0.0.10.in-addr.arpa. 30 IN PTR other-1.other.cairn.internal."}},
		{name: "PTR IPv6", qname: "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", qtype: dns.TypePTR, notAA: true,
			answer: []string{"3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. 1 IN PTR web-3.web.cairn.internal."}},
		{name: "PTR of an unregistered address is REFUSED", qname: "5.4.3.2.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeRefused, notAA: true},
		{name: "PTR of an expired registration is REFUSED", qname: "99.0.0.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeRefused, notAA: true},
		{name: "partial reverse name is REFUSED", qname: "0.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeRefused, notAA: true},
		{name: "other types at a registered reverse name are REFUSED", qname: "1.0.0.10.in-addr.arpa.", qtype: dns.TypeA, rcode: dns.RcodeRefused, notAA: true},

		// Apex.
		{name: "apex SOA", qname: "cairn.internal.", qtype: dns.TypeSOA, answer: []string{soaLine}},
		{name: "apex NS", qname: "Cairn.Internal.", qtype: dns.TypeNS,
			answer: []string{"Cairn.Internal. 30 IN NS ns.dns.cairn.internal."}},
		{name: "apex ANY", qname: "cairn.internal.", qtype: dns.TypeANY,
			answer: []string{soaLine, "cairn.internal. 30 IN NS ns.dns.cairn.internal."}},
		{name: "apex A is NODATA, not every instance", qname: "cairn.internal.", qtype: dns.TypeA, ns: neg},

		// Negative answers.
		{name: "NXDOMAIN", qname: "nope.cairn.internal.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: neg},
		{name: "NXDOMAIN below an instance", qname: "x.web-1.web.cairn.internal.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: neg},
		{name: "expired key is NXDOMAIN", qname: "dead-1.dead.cairn.internal.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: neg},
		{name: "service with only expired keys is NXDOMAIN", qname: "dead.cairn.internal.", qtype: dns.TypeSRV, rcode: dns.RcodeNameError, ns: neg},
		{name: "NODATA for a type the name lacks", qname: "web.cairn.internal.", qtype: dns.TypeMX, ns: neg},
		{name: "NODATA for AAAA of an IPv4 instance", qname: "web-1.web.cairn.internal.", qtype: dns.TypeAAAA, ns: neg},

		// Not ours.
		{name: "out of zone is REFUSED", qname: "example.com.", qtype: dns.TypeA, rcode: dns.RcodeRefused, notAA: true},
		{name: "parent of the zone is REFUSED", qname: "internal.", qtype: dns.TypeSOA, rcode: dns.RcodeRefused, notAA: true},
		{name: "zone-suffix lookalike is REFUSED", qname: "xcairn.internal.", qtype: dns.TypeA, rcode: dns.RcodeRefused, notAA: true},
		{name: "class CH is REFUSED", qname: "version.bind.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS, rcode: dns.RcodeRefused, notAA: true},
		{name: "class CH in zone is REFUSED", qname: "web.cairn.internal.", qtype: dns.TypeA, qclass: dns.ClassCHAOS, rcode: dns.RcodeRefused, notAA: true},
		{name: "AXFR is REFUSED", qname: "cairn.internal.", qtype: dns.TypeAXFR, rcode: dns.RcodeRefused, notAA: true},
		{name: "OPT as a question is FORMERR", qname: "cairn.internal.", qtype: dns.TypeOPT, rcode: dns.RcodeFormatError, notAA: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := query(tc.qname, tc.qtype)
			if tc.qclass != 0 {
				req.Question[0].Qclass = tc.qclass
			}
			resp := r.Answer(req, t0, UDP)
			checkMsg(t, req, resp, tc.rcode)
			if resp.Authoritative == tc.notAA {
				t.Errorf("AA = %v", resp.Authoritative)
			}
			if resp.Truncated {
				t.Errorf("TC set")
			}
			compare(t, "answer", sorted(resp.Answer), sortedStrings(tc.answer))
			compare(t, "authority", sorted(resp.Ns), sortedStrings(tc.ns))
			compare(t, "additional", sorted(resp.Extra), sortedStrings(tc.extra))
		})
	}
}

// checkMsg checks what every response must have: the request's id and
// question, QR, no RA, the rcode, and that it packs.
func checkMsg(t *testing.T, req, resp *dns.Msg, rcode int) {
	t.Helper()
	if resp == nil {
		t.Fatal("no response")
	}
	if resp.Rcode != rcode {
		t.Errorf("rcode = %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[rcode])
	}
	if resp.Id != req.Id || !resp.Response || resp.RecursionAvailable || resp.RecursionDesired != req.RecursionDesired {
		t.Errorf("header = %+v", resp.MsgHdr)
	}
	if len(req.Question) == 1 && (len(resp.Question) != 1 || resp.Question[0] != req.Question[0]) {
		t.Errorf("question = %v, want %v", resp.Question, req.Question)
	}
	if _, err := resp.Pack(); err != nil {
		t.Errorf("pack: %v", err)
	}
}

func compare(t *testing.T, section string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", section, got, want)
	}
}

func sortedStrings(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestAnswerNameServers(t *testing.T) {
	r := newResponder(t, Config{NS: []string{"192.0.2.53", "2001:db8::53", "NS.Example.NET"}}, fixture()...)
	for _, tc := range []struct {
		qname         string
		qtype         uint16
		answer, extra []string
		rcode         int
	}{
		{qname: "cairn.internal.", qtype: dns.TypeNS,
			answer: []string{"cairn.internal. 30 IN NS ns.example.net.", "cairn.internal. 30 IN NS ns1.dns.cairn.internal.", "cairn.internal. 30 IN NS ns2.dns.cairn.internal."},
			extra:  []string{"ns1.dns.cairn.internal. 30 IN A 192.0.2.53", "ns2.dns.cairn.internal. 30 IN AAAA 2001:db8::53"}},
		{qname: "ns1.dns.cairn.internal.", qtype: dns.TypeA, answer: []string{"ns1.dns.cairn.internal. 30 IN A 192.0.2.53"}},
		{qname: "ns2.dns.cairn.internal.", qtype: dns.TypeAAAA, answer: []string{"ns2.dns.cairn.internal. 30 IN AAAA 2001:db8::53"}},
		{qname: "ns2.dns.cairn.internal.", qtype: dns.TypeA},
		{qname: "dns.cairn.internal.", qtype: dns.TypeA},
		{qname: "ns3.dns.cairn.internal.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
	} {
		t.Run(tc.qname+"/"+dns.TypeToString[tc.qtype], func(t *testing.T) {
			req := query(tc.qname, tc.qtype)
			resp := r.Answer(req, t0, UDP)
			checkMsg(t, req, resp, tc.rcode)
			compare(t, "answer", sorted(resp.Answer), sortedStrings(tc.answer))
			compare(t, "additional", sorted(resp.Extra), sortedStrings(tc.extra))
			if len(resp.Answer) == 0 && (len(resp.Ns) != 1 || !strings.Contains(resp.Ns[0].String(), "SOA\tns1.dns.cairn.internal.")) {
				t.Errorf("authority = %v, want the SOA naming ns1", resp.Ns)
			}
		})
	}
}

func TestAnswerMalformed(t *testing.T) {
	r := newResponder(t, Config{}, fixture()...)
	q := func(mod func(m *dns.Msg)) *dns.Msg {
		m := query("web.cairn.internal.", dns.TypeA)
		mod(m)
		return m
	}
	for _, tc := range []struct {
		name  string
		req   *dns.Msg
		rcode int
		none  bool // no response at all
	}{
		{name: "no question", req: q(func(m *dns.Msg) { m.Question = nil }), rcode: dns.RcodeFormatError},
		{name: "two questions", req: q(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }), rcode: dns.RcodeFormatError},
		{name: "two OPTs", req: q(func(m *dns.Msg) { m.SetEdns0(1232, false); m.SetEdns0(1232, false) }), rcode: dns.RcodeFormatError},
		{name: "opcode UPDATE", req: q(func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate }), rcode: dns.RcodeNotImplemented},
		{name: "opcode NOTIFY", req: q(func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }), rcode: dns.RcodeNotImplemented},
		{name: "opcode STATUS", req: q(func(m *dns.Msg) { m.Opcode = dns.OpcodeStatus }), rcode: dns.RcodeNotImplemented},
		{name: "EDNS version 1", req: q(func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }), rcode: dns.RcodeBadVers},
		{name: "QR set: a response is never answered", req: q(func(m *dns.Msg) { m.Response = true }), none: true},
		{name: "nil", req: nil, none: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := r.Answer(tc.req, t0, UDP)
			if tc.none {
				if resp != nil {
					t.Fatalf("answered %v", resp)
				}
				return
			}
			if resp == nil {
				t.Fatal("no response")
			}
			if resp.Rcode != tc.rcode || !resp.Response || resp.Id != tc.req.Id || len(resp.Answer) != 0 {
				t.Fatalf("got %v, want rcode %s", resp, dns.RcodeToString[tc.rcode])
			}
			if resp.Opcode != tc.req.Opcode {
				t.Errorf("opcode = %d, want %d echoed", resp.Opcode, tc.req.Opcode)
			}
			wire, err := resp.Pack()
			if err != nil {
				t.Fatalf("pack: %v", err)
			}
			var back dns.Msg
			if err := back.Unpack(wire); err != nil || back.Rcode != tc.rcode {
				t.Fatalf("wire rcode = %d (%v), want %d", back.Rcode, err, tc.rcode)
			}
		})
	}
}

func TestAnswerEDNS(t *testing.T) {
	r := newResponder(t, Config{}, fixture()...)

	resp := r.Answer(query("web.cairn.internal.", dns.TypeA), t0, UDP)
	if resp.IsEdns0() != nil {
		t.Errorf("OPT without EDNS in the query")
	}

	req := withEDNS(query("web.cairn.internal.", dns.TypeA), 4096)
	req.IsEdns0().SetDo()
	resp = r.Answer(req, t0, UDP)
	opt := resp.IsEdns0()
	if opt == nil || opt.UDPSize() != DefaultUDPSize || !opt.Do() || opt.Version() != 0 {
		t.Errorf("OPT = %v, want size %d with DO echoed", opt, DefaultUDPSize)
	}
	if len(resp.Answer) != 2 {
		t.Errorf("answer = %v", resp.Answer)
	}

	resp = r.Answer(withEDNS(query("nope.cairn.internal.", dns.TypeA), 1232), t0, UDP)
	if resp.Rcode != dns.RcodeNameError || resp.IsEdns0() == nil || len(resp.Ns) != 1 {
		t.Errorf("NXDOMAIN with EDNS = %v", resp)
	}
}

func TestAnswerTruncation(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       Config
		qtype     uint16
		n         int
		proto     string
		edns      uint16 // 0: no OPT
		limit     int    // the size the response must fit
		tc        bool
		answers   int // -1: some but not all
		extraMin  int // at least this many additional records (OPT excluded)
		extraMax  int
		wantAllRR bool
	}{
		{name: "60 SRV over UDP 512", qtype: dns.TypeSRV, n: 60, proto: UDP, limit: 512, tc: true, answers: -1},
		{name: "60 SRV over TCP", qtype: dns.TypeSRV, n: 60, proto: TCP, limit: dns.MaxMsgSize, answers: 60, extraMin: 60, extraMax: 60},
		{name: "60 A over UDP 512", qtype: dns.TypeA, n: 60, proto: UDP, limit: 512, tc: true, answers: -1},
		{name: "60 A over UDP EDNS 1232", qtype: dns.TypeA, n: 60, proto: UDP, edns: 1232, limit: 1232, answers: 60},
		{name: "60 A over TCP", qtype: dns.TypeA, n: 60, proto: TCP, limit: dns.MaxMsgSize, answers: 60},
		{name: "EDNS 4096 capped by UDPSize 1232", qtype: dns.TypeSRV, n: 60, proto: UDP, edns: 4096, limit: 1232, tc: true, answers: -1},
		{name: "EDNS 4096 with UDPSize 4096", cfg: Config{UDPSize: 4096}, qtype: dns.TypeSRV, n: 60, proto: UDP, edns: 4096, limit: 4096, answers: 60, extraMin: 60, extraMax: 60},
		{name: "EDNS below 512 means 512", qtype: dns.TypeA, n: 60, proto: UDP, edns: 100, limit: 512, tc: true, answers: -1},
		{name: "unknown proto is UDP", qtype: dns.TypeA, n: 60, proto: "sctp", limit: 512, tc: true, answers: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newResponder(t, tc.cfg, bigService(tc.n)...)
			req := query("big.cairn.internal.", tc.qtype)
			if tc.edns != 0 {
				withEDNS(req, tc.edns)
			}
			resp := r.Answer(req, t0, tc.proto)
			checkMsg(t, req, resp, dns.RcodeSuccess)
			wire, err := resp.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if len(wire) > tc.limit {
				t.Errorf("%d bytes, limit %d", len(wire), tc.limit)
			}
			if resp.Truncated != tc.tc {
				t.Errorf("TC = %v, want %v", resp.Truncated, tc.tc)
			}
			var back dns.Msg
			if err := back.Unpack(wire); err != nil {
				t.Fatalf("unpack: %v", err) // a cut record would fail here
			}
			n := len(back.Answer)
			if tc.answers < 0 && (n == 0 || n >= tc.n) || tc.answers >= 0 && n != tc.answers {
				t.Errorf("%d answers, want %d (-1: some, not all)", n, tc.answers)
			}
			extra := len(rrs(back.Extra))
			if extra < tc.extraMin || extra > tc.extraMax {
				t.Errorf("%d additional records, want %d..%d", extra, tc.extraMin, tc.extraMax)
			}
			if (tc.edns != 0) != (back.IsEdns0() != nil) {
				t.Errorf("OPT = %v with EDNS %d", back.IsEdns0(), tc.edns)
			}
			if resp.Truncated && len(back.Ns) != 0 {
				t.Errorf("truncated response has authority %v", back.Ns)
			}
		})
	}
}

// TestAnswerTruncationGlueOnly: when the answers fit and only some glue does
// not, the glue is dropped without TC (RFC 2181 §9).
func TestAnswerTruncationGlueOnly(t *testing.T) {
	for n := 2; n < 60; n++ {
		r := newResponder(t, Config{}, bigService(n)...)
		full := r.Answer(query("big.cairn.internal.", dns.TypeSRV), t0, TCP)
		full.Compress = true
		bare := full.Copy()
		bare.Extra = nil
		if full.Len() <= dns.MinMsgSize || bare.Len() > dns.MinMsgSize {
			continue
		}
		resp := r.Answer(query("big.cairn.internal.", dns.TypeSRV), t0, UDP)
		wire, err := resp.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if resp.Truncated || len(resp.Answer) != n || len(resp.Extra) == 0 || len(resp.Extra) >= n || len(wire) > dns.MinMsgSize {
			t.Errorf("%d instances: TC %v, %d answers, %d glue, %d bytes; want no TC, all answers, some glue, <= 512",
				n, resp.Truncated, len(resp.Answer), len(resp.Extra), len(wire))
		}
		return
	}
	t.Fatal("no service size where only the glue overflows 512 bytes")
}

func TestAnswerTTL(t *testing.T) {
	for _, tc := range []struct {
		name    string
		max     uint32
		ttl     uint32
		expires time.Duration // 0: no key TTL
		want    uint32
	}{
		{name: "nothing set", want: DefaultMaxTTL},
		{name: "record below max", ttl: 7, want: 7},
		{name: "record above max", ttl: 3600, want: DefaultMaxTTL},
		{name: "key below record", ttl: 25, expires: 10 * time.Second, want: 10},
		{name: "key rounds up", expires: 9*time.Second + time.Nanosecond, want: 10},
		{name: "key nearly gone is still 1", expires: time.Nanosecond, want: 1},
		{name: "key beyond max", expires: time.Hour, want: DefaultMaxTTL},
		{name: "configured max", max: 3, ttl: 7, expires: 10 * time.Second, want: 3},
		{name: "huge key TTL does not overflow", max: 1 << 31, expires: 1 << 62, want: 1 << 31},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newResponder(t, Config{MaxTTL: tc.max}, inst("i.s", rec{Host: "10.9.9.9", Port: 1, TTL: tc.ttl}, tc.expires))
			for _, qt := range []uint16{dns.TypeA, dns.TypeSRV, dns.TypePTR} {
				qname := "s.cairn.internal."
				if qt == dns.TypePTR {
					qname = "9.9.9.10.in-addr.arpa."
				}
				resp := r.Answer(query(qname, qt), t0, UDP)
				if len(resp.Answer) != 1 || resp.Answer[0].Header().Ttl != tc.want {
					t.Errorf("%s: answer %v, want TTL %d", dns.TypeToString[qt], resp.Answer, tc.want)
				}
			}
		})
	}
}

func TestAnswerNegativeTTL(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want uint32
	}{
		{Config{}, DefaultNegativeTTL},
		{Config{NegativeTTL: 60}, 30}, // capped at MaxTTL
		{Config{NegativeTTL: 60, MaxTTL: 300}, 60},
	} {
		r := newResponder(t, tc.cfg)
		resp := r.Answer(query("nope.cairn.internal.", dns.TypeA), t0, UDP)
		soa, ok := resp.Ns[0].(*dns.SOA)
		if !ok || soa.Minttl != tc.want || soa.Hdr.Ttl != tc.want {
			t.Errorf("%+v: SOA %v, want minimum and TTL %d", tc.cfg, resp.Ns[0], tc.want)
		}
	}
}

func TestAnswerShuffle(t *testing.T) {
	insts := bigService(20)
	reverse := func(n int, swap func(i, j int)) {
		for i := 0; i < n/2; i++ {
			swap(i, n-1-i)
		}
	}
	fixed := newResponder(t, Config{}, insts...)
	rev := newResponder(t, Config{Shuffle: reverse}, insts...)
	for _, qt := range []uint16{dns.TypeA, dns.TypeSRV} {
		a := rrs(fixed.Answer(query("big.cairn.internal.", qt), t0, TCP).Answer)
		b := rrs(rev.Answer(query("big.cairn.internal.", qt), t0, TCP).Answer)
		slices.Reverse(b)
		if !slices.Equal(a, b) {
			t.Errorf("%s: injected shuffle not applied:\n%q\n%q", dns.TypeToString[qt], a, b)
		}
	}

	// The default shuffle gives different orders to different queries.
	r, err := NewResponder(Config{}, &fakeSource{insts: insts})
	if err != nil {
		t.Fatal(err)
	}
	orders := map[string]bool{}
	for range 20 {
		orders[strings.Join(rrs(r.Answer(query("big.cairn.internal.", dns.TypeA), t0, TCP).Answer), ",")] = true
	}
	if len(orders) < 2 {
		t.Errorf("20 queries, %d distinct orders", len(orders))
	}
}

func TestAnswerTXTEscaping(t *testing.T) {
	text := `a\b"c;d` + "\x00é"
	r := newResponder(t, Config{}, inst("e.esc", rec{Text: text}, 0))
	resp := r.Answer(query("e.esc.cairn.internal.", dns.TypeTXT), t0, UDP)
	wire, err := resp.Pack()
	if err != nil {
		t.Fatal(err)
	}
	// On the wire: a length byte, then the text as is.
	if want := append([]byte{byte(len(text))}, text...); !strings.Contains(string(wire), string(want)) {
		t.Errorf("wire %q does not hold %q", wire, want)
	}
}

func TestNewResponderConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Domain: "bad..domain"},
		{Domain: "*.cairn.internal."},
		{Domain: "."},
		{NS: []string{"not a host"}},
		{UDPSize: 100},
		{UDPSize: 70000},
		{Hostmaster: "a..b"},
	} {
		if _, err := NewResponder(cfg, &fakeSource{}); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: err = %v, want ErrConfig", cfg, err)
		}
	}
	r, err := NewResponder(Config{Domain: "Example.ORG"}, &fakeSource{insts: []discovery.Instance{{
		Name: "w.example.org.", Record: rec{Host: "10.0.0.1"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Config(); got.Domain != "example.org." || got.MaxTTL != DefaultMaxTTL || got.UDPSize != DefaultUDPSize {
		t.Errorf("defaults: %+v", got)
	}
	if resp := r.Answer(query("w.example.org.", dns.TypeA), t0, UDP); len(resp.Answer) != 1 {
		t.Errorf("custom domain: %v", resp)
	}
	if resp := r.Answer(query("w.cairn.internal.", dns.TypeA), t0, UDP); resp.Rcode != dns.RcodeRefused {
		t.Errorf("default domain still served: %v", resp)
	}
}

func TestParseReverse(t *testing.T) {
	for name, want := range map[string]string{
		"1.0.0.10.in-addr.arpa.":        "10.0.0.1",
		"255.255.255.255.in-addr.arpa.": "255.255.255.255",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.": "::1",
		"b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa.": "4321:0:1:2:3:4:567:89ab",
		"01.0.0.10.in-addr.arpa.":  "",
		"256.0.0.10.in-addr.arpa.": "",
		"0.0.10.in-addr.arpa.":     "",
		"1.1.0.0.10.in-addr.arpa.": "",
		"x.0.0.10.in-addr.arpa.":   "",
		".0.0.10.in-addr.arpa.":    "",
		"1.0.0.0.ip6.arpa.":        "",
		"g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.": "",
		"10.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.":  "",
		"example.com.": "",
	} {
		ip, ok := parseReverse(name)
		if got := ""; ok {
			got = ip.String()
			if got != want {
				t.Errorf("%s = %s, want %q", name, got, want)
			}
		} else if want != "" {
			t.Errorf("%s not parsed, want %s", name, want)
		}
	}
}
