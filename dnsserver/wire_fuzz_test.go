package dnsserver

import (
	"testing"

	"github.com/miekg/dns"
)

// FuzzParsePlain: the cache's own reading of a query never panics, and
// whatever it takes as a plain query is one that miekg/dns unpacks to the
// same ID, question type, flags and EDNS0 fields, so the cached answer is
// the one the slow path would give.
func FuzzParsePlain(f *testing.F) {
	for _, m := range []*dns.Msg{
		query("web-1.web.cairn.internal.", dns.TypeA),
		query("_web._tcp.cairn.internal.", dns.TypeSRV),
		query("Big.Cairn.Internal.", dns.TypeSRV).SetEdns0(4096, true),
	} {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, ok := parsePlain(b)
		if !ok {
			return
		}
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatalf("parsePlain took %x as a plain query; miekg/dns: %v", b, err)
		}
		if m.Id != q.id || len(m.Question) != 1 || m.Question[0].Qtype != q.qtype || m.Response || m.Opcode != dns.OpcodeQuery {
			t.Fatalf("parsePlain %+v, miekg/dns %v", q, m)
		}
		if m.RecursionDesired != (q.bits&keyRD != 0) || m.CheckingDisabled != (q.bits&keyCD != 0) {
			t.Fatalf("flags: parsePlain %b, miekg/dns RD %v CD %v", q.bits, m.RecursionDesired, m.CheckingDisabled)
		}
		opt := m.IsEdns0()
		if (opt != nil) != (q.bits&keyOPT != 0) {
			t.Fatalf("OPT: parsePlain %b, miekg/dns %v", q.bits, opt)
		}
		if opt != nil && (opt.UDPSize() != q.udpSize || opt.Do() != (q.bits&keyDO != 0) || opt.Version() != 0) {
			t.Fatalf("OPT fields: parsePlain %+v, miekg/dns %v", q, opt)
		}
	})
}
