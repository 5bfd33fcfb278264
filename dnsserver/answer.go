package dnsserver

import (
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/cairnkv/cairn/discovery"
)

// Source is the view of live registrations the responder answers from;
// discovery's Index implements it. Names are lowercase FQDNs. Returned
// slices are only read.
type Source interface {
	// Lookup returns the instance with that name, or, for a directory (a
	// service), every instance below it. A "*" label matches any one label.
	Lookup(name string) []discovery.Instance
	// Exists reports whether name is an instance or an ancestor of one.
	Exists(name string) bool
	// ByIP returns the instances whose host is ip.
	ByIP(ip netip.Addr) []discovery.Instance
}

var _ Source = (*discovery.Index)(nil)

// Transport names for Answer's proto argument.
const (
	UDP = "udp"
	TCP = "tcp"
)

// Responder answers DNS queries for one zone from a Source. It is safe for
// concurrent use.
type Responder struct {
	cfg       Config
	src       Source
	domain    string
	nsNames   []string                         // NS targets at the apex
	nsHosts   map[string][]*discovery.Instance // addresses of ns<N>.dns.<domain>
	nsParent  string                           // dns.<domain>
	domLabels int                              // labels in domain
}

// NewResponder returns a Responder for cfg (zero fields defaulted) over src.
func NewResponder(cfg Config, src Source) (*Responder, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	names, hosts, err := cfg.nameServers()
	if err != nil {
		return nil, err
	}
	return &Responder{
		cfg:       cfg,
		src:       src,
		domain:    cfg.Domain,
		nsNames:   names,
		nsHosts:   hosts,
		nsParent:  "dns." + cfg.Domain,
		domLabels: dns.CountLabel(cfg.Domain),
	}, nil
}

// Config returns the responder's configuration with defaults applied.
func (r *Responder) Config() Config { return r.cfg }

// Answer returns the response to req received at time now over proto (UDP
// or TCP; anything else is treated as UDP), or nil when req must not be
// answered at all (it is itself a response: answering those invites loops).
//
// The response is sized for proto: over UDP it fits the EDNS0 size the
// client advertised (512 without EDNS0), capped at Config.UDPSize, with TC
// set if answer records had to be dropped; over TCP it is complete up to
// 65535 bytes. Answer does not modify req.
func (r *Responder) Answer(req *dns.Msg, now time.Time, proto string) *dns.Msg {
	return r.respond(req, &clock{now: now}, proto)
}

// clock is the time of one answer, and what the answer learnt about how
// long it stays right: the answer cache keeps a packed answer until
// Index.Generation changes or until comes, whichever is first.
type clock struct {
	now time.Time
	// until is the first instant at which the same question could get
	// another answer from the same index: a TTL counting down, an instance
	// expiring, the SOA serial (Unix seconds) moving on. Zero: never.
	until time.Time
	// shuffled: the answer's order came from Config.Shuffle.
	shuffled bool
	// src, when set, replaces the Responder's Source for this answer (a
	// view filtered by the client's authorization).
	src Source
}

// source is the Source to answer from.
func (c *clock) source(r *Responder) Source {
	if c.src != nil {
		return c.src
	}
	return r.src
}

// bound lowers until to t.
func (c *clock) bound(t time.Time) {
	if c.until.IsZero() || t.Before(c.until) {
		c.until = t
	}
}

// respond is Answer with the clock kept by the caller.
func (r *Responder) respond(req *dns.Msg, c *clock, proto string) *dns.Msg {
	if req == nil || req.Response {
		return nil
	}
	m := new(dns.Msg)
	m.SetReply(req)

	var opt *dns.OPT
	nopt := 0
	for _, rr := range req.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			opt = o
			nopt++
		}
	}

	switch {
	case req.Opcode != dns.OpcodeQuery:
		m.Rcode = dns.RcodeNotImplemented
	case len(req.Question) != 1 || nopt > 1:
		m.Question = nil
		m.Rcode = dns.RcodeFormatError
	case opt != nil && opt.Version() != 0:
		m.Rcode = dns.RcodeBadVers // RFC 6891 §6.1.3; the OPT below carries it
	default:
		r.answer(m, req.Question[0], c)
	}

	size := dns.MaxMsgSize
	if proto != TCP {
		size = dns.MinMsgSize
		if opt != nil {
			size = max(dns.MinMsgSize, min(int(opt.UDPSize()), r.cfg.UDPSize))
		}
	}
	if opt != nil {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(uint16(r.cfg.UDPSize))
		if opt.Do() {
			o.SetDo() // RFC 3225: copy DO
		}
		m.Extra = append(m.Extra, o)
	}
	fit(m, size)
	return m
}

// answer fills m for the single question q.
func (r *Responder) answer(m *dns.Msg, q dns.Question, c *clock) {
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		m.Rcode = dns.RcodeRefused
		return
	}
	switch q.Qtype {
	case dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY:
		// Meta-types are not questions (RFC 6895 §3.1).
		m.Rcode = dns.RcodeFormatError
		return
	case dns.TypeAXFR, dns.TypeIXFR:
		m.Rcode = dns.RcodeRefused // no zone transfers
		return
	}
	name := strings.ToLower(q.Name)
	if !dns.IsSubDomain(r.domain, name) {
		r.reverse(m, q, name, c)
		return
	}
	m.Authoritative = true
	if name == r.domain {
		r.apex(m, q, c)
		return
	}

	live, exists := r.find(name, c)
	srvOnly := false
	if !exists {
		// RFC 2782 _service._proto names, unless registered literally.
		if svc, ok := r.rfc2782(name); ok {
			live, exists = r.find(svc, c)
			srvOnly = true
		}
	}
	if !exists {
		r.negative(m, dns.RcodeNameError, c)
		return
	}

	switch q.Qtype {
	case dns.TypeSRV:
		m.Answer, m.Extra = r.srv(q.Name, live, c)
	case dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeTXT, dns.TypeANY:
		if !srvOnly {
			m.Answer = r.records(nil, q.Name, q.Qtype, live, c, 0)
			if len(m.Answer) > 1 && hasCNAME(m.Answer) {
				// Chains through a shared target repeat its records.
				m.Answer = dns.Dedup(m.Answer, nil)
			}
		}
	}
	if len(m.Answer) == 0 {
		r.negative(m, dns.RcodeSuccess, c) // NODATA
	}
}

// apex answers the zone's own name: SOA and NS, nothing else.
func (r *Responder) apex(m *dns.Msg, q dns.Question, c *clock) {
	switch q.Qtype {
	case dns.TypeSOA:
		m.Answer = append(m.Answer, r.soa(q.Name, c))
	case dns.TypeNS:
		m.Answer, m.Extra = r.ns(q.Name)
	case dns.TypeANY:
		m.Answer, m.Extra = r.ns(q.Name)
		m.Answer = append([]dns.RR{r.soa(q.Name, c)}, m.Answer...)
	}
	if len(m.Answer) == 0 {
		r.negative(m, dns.RcodeSuccess, c)
	}
}

// ns returns the apex NS records owned by owner and their glue.
func (r *Responder) ns(owner string) (ans, extra []dns.RR) {
	for _, n := range r.nsNames {
		ans = append(ans, &dns.NS{Hdr: hdr(owner, dns.TypeNS, r.cfg.MaxTTL), Ns: n})
		if hosts := r.nsHosts[n]; hosts != nil {
			extra = r.records(extra, n, dns.TypeA, hosts, &clock{}, 0)
			extra = r.records(extra, n, dns.TypeAAAA, hosts, &clock{}, 0)
		}
	}
	return ans, extra
}

// soa returns the zone's SOA record with owner as its name. Its TTL and
// MINIMUM are the negative TTL, so that (RFC 2308 §5) negative answers are
// cached for exactly NegativeTTL. The serial is the query time in Unix
// seconds (as Consul and CoreDNS): no secondary transfers this zone, so it
// only has to be plausible and increasing.
func (r *Responder) soa(owner string, c *clock) dns.RR {
	c.bound(time.Unix(c.now.Unix()+1, 0))
	return &dns.SOA{
		Hdr:     hdr(owner, dns.TypeSOA, r.cfg.NegativeTTL),
		Ns:      r.nsNames[0],
		Mbox:    r.cfg.Hostmaster,
		Serial:  uint32(c.now.Unix()),
		Refresh: r.cfg.Refresh,
		Retry:   r.cfg.Retry,
		Expire:  r.cfg.Expire,
		Minttl:  r.cfg.NegativeTTL,
	}
}

// negative makes m an NXDOMAIN (rcode NameError) or NODATA (Success)
// answer, with the SOA in the authority section for negative caching.
func (r *Responder) negative(m *dns.Msg, rcode int, c *clock) {
	m.Rcode = rcode
	m.Answer = nil
	m.Extra = nil
	m.Ns = append(m.Ns, r.soa(r.domain, c))
}

// find returns the live instances at or below name, filtered by group and
// shuffled, and whether name exists at all.
func (r *Responder) find(name string, c *clock) (live []*discovery.Instance, exists bool) {
	if hosts, ok := r.nsHosts[name]; ok {
		return hosts, true
	}
	if name == r.nsParent && len(r.nsHosts) > 0 {
		return nil, true
	}
	src := c.source(r)
	all := src.Lookup(name)
	live = make([]*discovery.Instance, 0, len(all))
	for i := range all {
		if in := &all[i]; in.Expires.IsZero() || c.now.Before(in.Expires) {
			live = append(live, in)
			if !in.Expires.IsZero() {
				c.bound(in.Expires)
			}
		}
	}
	// An index that lists only expired instances below name is behind the
	// store by at most one expiry tick; the name is already gone.
	exists = len(live) > 0 || (len(all) == 0 && src.Exists(name))
	live = byGroup(live)
	if len(live) > 1 {
		c.shuffled = true
		r.cfg.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
	}
	return live, exists
}

// rfc2782 maps _svc._tcp.<rest> and _svc._udp.<rest> to svc.<rest>.
func (r *Responder) rfc2782(name string) (string, bool) {
	svc, rest, ok := strings.Cut(name, ".")
	if !ok || len(svc) < 2 || svc[0] != '_' {
		return "", false
	}
	proto, rest, ok := strings.Cut(rest, ".")
	if !ok || (proto != "_tcp" && proto != "_udp") || !dns.IsSubDomain(r.domain, rest) {
		return "", false
	}
	return svc[1:] + "." + rest, true
}

func hasCNAME(rrs []dns.RR) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeCNAME {
			return true
		}
	}
	return false
}

func hdr(name string, rrtype uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}
