package dnsserver

import (
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/cairnkv/cairn/discovery"
)

// maxChain bounds how many in-zone CNAMEs are followed for one answer, as
// SkyDNS does (8).
const maxChain = 8

// host is a record's host, classified as SkyDNS's HostType does.
type host struct {
	ip   netip.Addr // valid for an IP host
	name string     // lowercase FQDN for a hostname host
}

func parseHost(s string) host {
	if s == "" {
		return host{}
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return host{ip: ip.Unmap().WithZone("")}
	}
	return host{name: strings.ToLower(dns.Fqdn(s))}
}

// ttl is the answer TTL of in at now: min(record ttl, remaining key TTL
// rounded up to whole seconds, MaxTTL), and at least 1. A zero record ttl
// means unset. The caller has checked that the key has not expired.
//
// It bounds c.until by the instant this TTL changes: ceil(remaining) drops
// by one at Expires-(t-1)s.
func (r *Responder) ttl(in *discovery.Instance, c *clock) uint32 {
	t := r.cfg.MaxTTL
	if in.Record.TTL != 0 {
		t = min(t, in.Record.TTL)
	}
	if !in.Expires.IsZero() {
		if rem := in.Expires.Sub(c.now); rem < time.Duration(t)*time.Second {
			t = uint32((rem + time.Second - 1) / time.Second)
		}
		t = max(t, 1)
		c.bound(in.Expires.Add(-time.Duration(t-1) * time.Second))
	}
	return max(t, 1)
}

// records appends to ans the qtype records (A, AAAA, CNAME, TXT or ANY)
// that the instances give owner. For A and AAAA, a hostname host becomes
// owner CNAME host; an in-zone host is followed (at most maxChain deep) and
// its records appended after the CNAME, and the CNAME is dropped when the
// target has none, as SkyDNS and CoreDNS do. Out-of-zone targets are left
// to the client's resolver: this server does not recurse.
func (r *Responder) records(ans []dns.RR, owner string, qtype uint16, live []*discovery.Instance, c *clock, depth int) []dns.RR {
	for _, in := range live {
		ttl := r.ttl(in, c)
		h := parseHost(in.Record.Host)
		switch {
		case h.ip.Is4() && (qtype == dns.TypeA || qtype == dns.TypeANY),
			h.ip.Is6() && (qtype == dns.TypeAAAA || qtype == dns.TypeANY):
			ans = append(ans, addrRR(owner, h.ip, ttl))
		case h.name != "" && qtype != dns.TypeTXT:
			ans = r.cname(ans, owner, h.name, qtype, ttl, c, depth)
		}
		if in.Record.Text != "" && (qtype == dns.TypeTXT || qtype == dns.TypeANY) {
			ans = append(ans, &dns.TXT{Hdr: hdr(owner, dns.TypeTXT, ttl), Txt: splitTXT(in.Record.Text)})
		}
	}
	return ans
}

// cname appends owner CNAME target and, for an in-zone target of an A or
// AAAA question, the target's own records.
func (r *Responder) cname(ans []dns.RR, owner, target string, qtype uint16, ttl uint32, c *clock, depth int) []dns.RR {
	if strings.EqualFold(owner, target) {
		return ans // x CNAME x
	}
	for _, rr := range ans {
		if c, ok := rr.(*dns.CNAME); ok && c.Target == target && strings.EqualFold(c.Hdr.Name, owner) {
			return ans // two instances behind one name
		}
	}
	rr := &dns.CNAME{Hdr: hdr(owner, dns.TypeCNAME, ttl), Target: target}
	if (qtype != dns.TypeA && qtype != dns.TypeAAAA) || !dns.IsSubDomain(r.domain, target) {
		return append(ans, rr)
	}
	if depth >= maxChain || target == r.domain {
		return ans
	}
	for _, prev := range ans {
		if c, ok := prev.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, target) {
			return ans // a loop: the chain already left from target
		}
	}
	live, _ := r.find(target, c)
	next := r.records(append(ans, rr), target, qtype, live, c, depth+1)
	if len(next) == len(ans)+1 {
		return ans // the target has nothing: drop the dangling CNAME
	}
	return next
}

// splitTXT splits text into the 255-byte character-strings of one TXT
// record (RFC 1035 §3.3.14), escaped for miekg/dns, which reads \ as an
// escape when packing. Text past discovery.MaxTextBytes is cut: records
// written before that limit, or by a Source that does not validate, still
// make a record that fits in any TCP answer (a 900 KB text once made an RR
// too large to pack, and an empty answer).
func splitTXT(text string) []string {
	text = text[:min(len(text), discovery.MaxTextBytes)]
	parts := make([]string, 0, len(text)/255+1)
	for len(text) > 0 {
		n := min(len(text), 255)
		parts = append(parts, strings.ReplaceAll(text[:n], `\`, `\\`))
		text = text[n:]
	}
	return parts
}

// srv returns the SRV records owned by owner for the instances, and the
// addresses of their targets for the additional section. The target of a
// hostname host is the host; an IP host gets the instance's own name (the
// key turned back into a name, which answers A/AAAA with that IP), minus
// Record.TargetStrip leftmost labels but never above the zone, as SkyDNS.
// Weights are SkyDNS's: a percentage of the sum of weights (0 counting as
// 100) within the priority, at least 1. Instances without a host or with a
// port outside 0..65535 give no SRV.
func (r *Responder) srv(owner string, live []*discovery.Instance, c *clock) (ans, extra []dns.RR) {
	type sum struct{ prio, total int }
	var sums []sum // few distinct priorities: a slice beats a map
	usable := func(in *discovery.Instance) bool {
		return in.Record.Host != "" && in.Record.Port >= 0 && in.Record.Port <= math.MaxUint16
	}
	for _, in := range live {
		if !usable(in) {
			continue
		}
		w := weightOrDefault(in.Record.Weight)
		i := 0
		for i < len(sums) && sums[i].prio != in.Record.Priority {
			i++
		}
		if i == len(sums) {
			sums = append(sums, sum{prio: in.Record.Priority})
		}
		sums[i].total += w
	}

	type glue struct {
		name string
		ip   netip.Addr
	}
	var seen map[glue]struct{}
	if len(live) > 1 {
		seen = make(map[glue]struct{}, len(live))
	}
	ans = make([]dns.RR, 0, len(live))
	extra = make([]dns.RR, 0, len(live))
	for _, in := range live {
		if !usable(in) {
			continue
		}
		total := 0
		for _, s := range sums {
			if s.prio == in.Record.Priority {
				total = s.total
			}
		}
		ttl := r.ttl(in, c)
		h := parseHost(in.Record.Host)
		target := h.name
		if h.ip.IsValid() {
			target = r.stripTarget(in.Name, in.Record.TargetStrip)
		}
		ans = append(ans, &dns.SRV{
			Hdr:      hdr(owner, dns.TypeSRV, ttl),
			Priority: uint16(min(max(in.Record.Priority, 0), math.MaxUint16)),
			Weight:   uint16(max(100*weightOrDefault(in.Record.Weight)/max(total, 1), 1)),
			Port:     uint16(in.Record.Port),
			Target:   target,
		})

		switch {
		case h.ip.IsValid():
			if seen != nil {
				if _, dup := seen[glue{target, h.ip}]; dup {
					continue
				}
				seen[glue{target, h.ip}] = struct{}{}
			}
			extra = append(extra, addrRR(target, h.ip, ttl))
		case dns.IsSubDomain(r.domain, target):
			if seen != nil {
				if _, dup := seen[glue{name: target}]; dup {
					continue
				}
				seen[glue{name: target}] = struct{}{}
			}
			t, _ := r.find(target, c)
			extra = r.records(extra, target, dns.TypeA, t, c, 0)
			extra = r.records(extra, target, dns.TypeAAAA, t, c, 0)
		}
	}
	return ans, extra
}

func weightOrDefault(w int) int {
	if w <= 0 {
		return 100
	}
	return w
}

// addrRR is the A or AAAA record of ip.
func addrRR(owner string, ip netip.Addr, ttl uint32) dns.RR {
	if ip.Is4() {
		return &dns.A{Hdr: hdr(owner, dns.TypeA, ttl), A: ip.AsSlice()}
	}
	return &dns.AAAA{Hdr: hdr(owner, dns.TypeAAAA, ttl), AAAA: ip.AsSlice()}
}

// stripTarget removes n leftmost labels from name, keeping at least one
// label below the zone.
func (r *Responder) stripTarget(name string, n int) string {
	if n <= 0 || !dns.IsSubDomain(r.domain, name) {
		return name
	}
	n = min(n, dns.CountLabel(name)-r.domLabels-1)
	for ; n > 0; n-- {
		_, name, _ = strings.Cut(name, ".")
	}
	return name
}

// byGroup applies SkyDNS's group rule: the shallowest instances that have a
// group choose it, and then only instances of that group or of none are
// answered; shallowest instances that disagree give no answer at all.
func byGroup(live []*discovery.Instance) []*discovery.Instance {
	depth := -1
	for _, in := range live {
		if in.Record.Group != "" {
			if d := strings.Count(in.Name, "."); depth < 0 || d < depth {
				depth = d
			}
		}
	}
	if depth < 0 {
		return live
	}
	group := ""
	for _, in := range live {
		if in.Record.Group == "" || strings.Count(in.Name, ".") != depth {
			continue
		}
		if group != "" && in.Record.Group != group {
			return live[:0]
		}
		group = in.Record.Group
	}
	out := live[:0]
	for _, in := range live {
		if in.Record.Group == "" || in.Record.Group == group {
			out = append(out, in)
		}
	}
	return out
}
