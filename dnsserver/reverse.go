package dnsserver

import (
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/cairnkv/cairn/discovery"
)

// reverse answers a question outside the zone: PTR for a registered
// address, REFUSED for everything else. The responder is not authoritative
// for any reverse zone (it has no SOA for one, so it cannot say NXDOMAIN or
// NODATA truthfully), so an address nobody registered, a partial reverse
// name, or another type at a registered address is REFUSED, as CoreDNS
// answers for a zone no plugin serves. A PTR answer is not marked
// authoritative, as SkyDNS's.
func (r *Responder) reverse(m *dns.Msg, q dns.Question, name string, c *clock) {
	m.Rcode = dns.RcodeRefused
	if q.Qtype != dns.TypePTR && q.Qtype != dns.TypeANY {
		return
	}
	ip, ok := parseReverse(name)
	if !ok {
		return
	}
	all := c.source(r).ByIP(ip)
	live := make([]*discovery.Instance, 0, len(all))
	for i := range all {
		if in := &all[i]; in.Expires.IsZero() || c.now.Before(in.Expires) {
			live = append(live, in)
			if !in.Expires.IsZero() {
				c.bound(in.Expires)
			}
		}
	}
	if len(live) > 1 {
		c.shuffled = true
		r.cfg.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
	}
	for _, in := range live {
		target := strings.ToLower(dns.Fqdn(in.Name))
		dup := false
		for _, rr := range m.Answer {
			dup = dup || rr.(*dns.PTR).Ptr == target
		}
		if !dup {
			m.Answer = append(m.Answer, &dns.PTR{Hdr: hdr(q.Name, dns.TypePTR, r.ttl(in, c)), Ptr: target})
		}
	}
	if len(m.Answer) > 0 {
		m.Rcode = dns.RcodeSuccess
	}
}

// parseReverse returns the address a full in-addr.arpa. (4 decimal labels)
// or ip6.arpa. (32 nibble labels) name stands for.
func parseReverse(name string) (netip.Addr, bool) {
	if s, ok := strings.CutSuffix(name, ".in-addr.arpa."); ok {
		var b [4]byte
		for i := 3; i >= 0; i-- {
			var label string
			if i > 0 {
				var found bool
				if label, s, found = strings.Cut(s, "."); !found {
					return netip.Addr{}, false
				}
			} else {
				label = s
			}
			v, ok := octet(label)
			if !ok {
				return netip.Addr{}, false
			}
			b[i] = v
		}
		return netip.AddrFrom4(b), true
	}
	if s, ok := strings.CutSuffix(name, ".ip6.arpa."); ok {
		if len(s) != 63 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i := 0; i < 32; i++ {
			if i < 31 && s[2*i+1] != '.' {
				return netip.Addr{}, false
			}
			v, ok := nibble(s[2*i])
			if !ok {
				return netip.Addr{}, false
			}
			// Label i is nibble 31-i of the address, low nibble first.
			if i%2 == 0 {
				b[15-i/2] |= v
			} else {
				b[15-i/2] |= v << 4
			}
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

// octet parses a decimal label 0..255 without leading zeros.
func octet(s string) (byte, bool) {
	if len(s) == 0 || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		v = v*10 + int(s[i]-'0')
	}
	if v > 255 {
		return 0, false
	}
	return byte(v), true
}

func nibble(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
