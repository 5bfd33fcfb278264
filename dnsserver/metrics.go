package dnsserver

import (
	"fmt"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus collectors.
type metrics struct {
	responses *prometheus.CounterVec   // type, rcode, proto
	duration  *prometheus.HistogramVec // proto
	truncated *prometheus.CounterVec   // proto
	malformed prometheus.Counter

	dropped *prometheus.CounterVec // reason: allow, rate
	slipped prometheus.Counter

	// Children resolved once for the UDP hot path.
	udpTruncated prometheus.Counter
	udpDuration  prometheus.Observer
	droppedAllow prometheus.Counter
	droppedRate  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		// Every response sent, also those miekg/dns sends for messages
		// rejected before the responder (type "unparsed"): the rate of
		// NXDOMAIN, REFUSED, SERVFAIL or FORMERR alone tells what clients
		// get, as coredns_dns_responses_total does.
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_dns_responses_total",
			Help: "DNS responses sent, by query type (\"unparsed\" for messages rejected before they were parsed), response code and transport.",
		}, []string{"type", "rcode", "proto"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cairn_dns_request_duration_seconds",
			Help:    "Time from a parsed DNS query to its response being written, by transport.",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 14), // 25µs .. 200ms
		}, []string{"proto"}),
		truncated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_dns_truncated_responses_total",
			Help: "DNS responses sent with TC set because the answer did not fit, by transport.",
		}, []string{"proto"}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_dns_malformed_requests_total",
			Help: "DNS messages that could not be parsed or were rejected before reaching the responder.",
		}),
	}
	m.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_dns_dropped_total",
		Help: "DNS queries not answered: from a source outside [dns] allow (reason \"allow\"; UDP only, TCP gets REFUSED), or over the UDP response rate limit and not slipped (reason \"rate\").",
	}, []string{"reason"})
	m.slipped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_dns_slipped_total",
		Help: "UDP queries over the response rate limit answered with an empty truncated (TC) response, so that a real client retries over TCP.",
	})
	m.udpTruncated = m.truncated.WithLabelValues(UDP)
	m.droppedAllow = m.dropped.WithLabelValues("allow")
	m.droppedRate = m.dropped.WithLabelValues("rate")
	m.udpDuration = m.duration.WithLabelValues(UDP)
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.responses, m.duration, m.truncated, m.malformed, m.dropped, m.slipped} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("dnsserver: register metrics: %w", err)
		}
	}
	return m, nil
}

// typeLabels bounds the type label's cardinality: any other type is "other".
var typeLabels = map[uint16]string{
	dns.TypeA: "A", dns.TypeAAAA: "AAAA", dns.TypeSRV: "SRV", dns.TypeTXT: "TXT",
	dns.TypePTR: "PTR", dns.TypeCNAME: "CNAME", dns.TypeSOA: "SOA", dns.TypeNS: "NS",
	dns.TypeANY: "ANY", dns.TypeMX: "MX", dns.TypeHTTPS: "HTTPS", dns.TypeSVCB: "SVCB",
	dns.TypeAXFR: "AXFR", dns.TypeIXFR: "IXFR",
}

// typeUnparsed is the type label of a response to a message that was
// rejected before its question was parsed.
const typeUnparsed = "unparsed"

func typeLabel(req *dns.Msg) string {
	if len(req.Question) != 1 {
		return "none"
	}
	if l, ok := typeLabels[req.Question[0].Qtype]; ok {
		return l
	}
	return "other"
}

func rcodeLabel(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return "other"
}
