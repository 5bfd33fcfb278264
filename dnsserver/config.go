package dnsserver

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/cairnkv/cairn/discovery"
)

// Defaults applied by Config for zero fields.
const (
	DefaultDomain      = "cairn.internal."
	DefaultMaxTTL      = 30   // seconds; see Config.MaxTTL
	DefaultNegativeTTL = 5    // seconds; see Config.NegativeTTL
	DefaultUDPSize     = 1232 // bytes; DNS flag day 2020
	DefaultMaxTCPConns = 512
	DefaultReadTimeout = 2 * time.Second
	DefaultIdleTimeout = 8 * time.Second // RFC 7766 suggests seconds, miekg's default
	DefaultRateSlip    = 2

	// SOA timers, as CoreDNS's etcd plugin. Nobody transfers this zone, so
	// they are informational.
	DefaultRefresh = 7200
	DefaultRetry   = 1800
	DefaultExpire  = 86400
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("dnsserver: bad config")

// Config configures a Responder and a Server. The zero value is usable: it
// serves cairn.internal. with the defaults above.
type Config struct {
	// Domain is the zone the responder is authoritative for. Default
	// "cairn.internal.". A missing trailing dot is added; case is ignored.
	Domain string

	// MaxTTL caps every positive TTL, and is the TTL of records whose key
	// and JSON carry none. Default 30 s: discovery data changes at heartbeat
	// speed, so a resolver should not keep an answer much longer than a
	// typical registration TTL; SkyDNS's 3600 and CoreDNS's 300 keep dead
	// instances in caches for minutes.
	MaxTTL uint32

	// NegativeTTL is the SOA MINIMUM and the SOA's own TTL, so resolvers
	// cache NXDOMAIN/NODATA for at most this long (RFC 2308). Default 5 s:
	// a service that registers should be found within seconds by clients
	// that looked for it just before. Capped at MaxTTL.
	NegativeTTL uint32

	// NS lists the zone's name servers, each a hostname or an IP address.
	// An IP address gets the name ns<N>.dns.<domain> (N counts IP entries
	// from 1), answered with that address and given as glue. Default: one
	// NS, ns.dns.<domain>, without an address; set this in production.
	NS []string

	// Hostmaster is the SOA RNAME in domain-name form. Default
	// "hostmaster.<domain>".
	Hostmaster string

	// SOA timers in seconds; defaults as CoreDNS (7200, 1800, 86400). The
	// SOA serial is the query time in Unix seconds, as Consul and CoreDNS.
	Refresh, Retry, Expire uint32

	// UDPSize is the largest UDP response the responder sends, whatever a
	// client advertises in EDNS0, and the size it advertises in its own OPT.
	// Default 1232 (avoids IP fragmentation, DNS flag day 2020); at least
	// 512, at most 65535.
	UDPSize int

	// Shuffle permutes the instances of each answer. Default
	// math/rand/v2.Shuffle (safe for concurrent use). Tests inject a
	// deterministic one.
	Shuffle func(n int, swap func(i, j int))

	// Allow lists the source networks whose queries are answered (Server
	// only); empty: every source. A UDP query from elsewhere is dropped
	// without an answer (a REFUSED would still reflect traffic at a spoofed
	// source); over TCP and DoT, where the source is proven, it is REFUSED.
	// Both are counted in cairn_dns_dropped_total{reason="allow"}. DoH is
	// served by the client port, which has its own access rules.
	Allow []netip.Prefix

	// RateLimit, when positive, limits UDP responses per source network
	// (an IPv4 /24, an IPv6 /56) to this many per second, with bursts of
	// the same size, as BIND's response-rate limiting does per client
	// network: past it, every RateSlip-th response is "slipped" (an empty
	// answer with TC set, which a genuine client retries over TCP, where
	// the source cannot be spoofed) and the others dropped. Each UDP
	// socket (one per core) keeps its own account, so a network whose
	// queries the kernel spreads over several sockets gets up to that many
	// times the rate. TCP, DoT and DoH are not limited here.
	RateLimit int
	// RateSlip: 1 slips every limited response, 2 (the default, BIND's)
	// every other one; negative: none, all are dropped.
	RateSlip int
	// RateLimitLoopback limits loopback sources too; by default they are
	// exempt (local resolvers and sidecars share an address).
	RateLimitLoopback bool

	// Server only: concurrent TCP connections (further ones wait in the
	// kernel backlog), the read timeout of a TCP connection's first query
	// and of UDP reads, and the idle timeout between TCP queries.
	MaxTCPConns int
	ReadTimeout time.Duration
	IdleTimeout time.Duration
}

// withDefaults returns c with zero fields defaulted, normalized and checked.
func (c Config) withDefaults() (Config, error) {
	if c.Domain == "" {
		c.Domain = DefaultDomain
	}
	c.Domain = strings.ToLower(dns.Fqdn(c.Domain))
	if !hostname(c.Domain) {
		return c, fmt.Errorf("%w: domain %q is not a host name", ErrConfig, c.Domain)
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = DefaultMaxTTL
	}
	if c.NegativeTTL == 0 {
		c.NegativeTTL = DefaultNegativeTTL
	}
	c.NegativeTTL = min(c.NegativeTTL, c.MaxTTL)
	if c.Hostmaster == "" {
		c.Hostmaster = "hostmaster." + c.Domain
	}
	c.Hostmaster = strings.ToLower(dns.Fqdn(c.Hostmaster))
	if !hostname(c.Hostmaster) {
		return c, fmt.Errorf("%w: hostmaster %q is not a host name", ErrConfig, c.Hostmaster)
	}
	if c.Refresh == 0 {
		c.Refresh = DefaultRefresh
	}
	if c.Retry == 0 {
		c.Retry = DefaultRetry
	}
	if c.Expire == 0 {
		c.Expire = DefaultExpire
	}
	switch {
	case c.UDPSize == 0:
		c.UDPSize = DefaultUDPSize
	case c.UDPSize < dns.MinMsgSize || c.UDPSize > dns.MaxMsgSize:
		return c, fmt.Errorf("%w: udp size %d not in [%d, %d]", ErrConfig, c.UDPSize, dns.MinMsgSize, dns.MaxMsgSize)
	}
	if c.Shuffle == nil {
		c.Shuffle = rand.Shuffle
	}
	if c.RateLimit < 0 {
		return c, fmt.Errorf("%w: rate limit %d is negative", ErrConfig, c.RateLimit)
	}
	if c.RateSlip == 0 {
		c.RateSlip = DefaultRateSlip
	}
	for i, p := range c.Allow {
		if !p.IsValid() {
			return c, fmt.Errorf("%w: allow: network %d is not valid", ErrConfig, i+1)
		}
	}
	if c.MaxTCPConns <= 0 {
		c.MaxTCPConns = DefaultMaxTCPConns
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	return c, nil
}

// Validate checks c as New does, without a source: a member checks its DNS
// settings before it starts (and may join a cluster).
func (c Config) Validate() error {
	c, err := c.withDefaults()
	if err == nil {
		_, _, err = c.nameServers()
	}
	return err
}

// nameServers turns Config.NS into NS targets and, for IP entries, the
// synthetic instances that answer their addresses.
func (c Config) nameServers() (names []string, hosts map[string][]*discovery.Instance, err error) {
	hosts = make(map[string][]*discovery.Instance)
	if len(c.NS) == 0 {
		return []string{"ns.dns." + c.Domain}, hosts, nil
	}
	n := 0
	for _, s := range c.NS {
		if ip, perr := netip.ParseAddr(s); perr == nil {
			n++
			name := "ns" + strconv.Itoa(n) + ".dns." + c.Domain
			names = append(names, name)
			hosts[name] = []*discovery.Instance{{
				Key:    name,
				Name:   name,
				Record: discovery.Record{Host: ip.WithZone("").String()},
			}}
			continue
		}
		name := strings.ToLower(dns.Fqdn(s))
		if !hostname(name) {
			return nil, nil, fmt.Errorf("%w: ns %q is neither an IP address nor a host name", ErrConfig, s)
		}
		names = append(names, name)
	}
	return names, hosts, nil
}

// hostname reports whether name (a lowercase FQDN) is a host name: labels
// of 1..63 letters, digits, '-' or '_', at most 254 bytes with the root.
func hostname(name string) bool {
	if len(name) < 2 || len(name) > 254 || !strings.HasSuffix(name, ".") {
		return false
	}
	for label := range strings.SplitSeq(name[:len(name)-1], ".") {
		if len(label) == 0 || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
