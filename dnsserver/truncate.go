package dnsserver

import "github.com/miekg/dns"

// fit makes m fit in size bytes (at least 512). Records are dropped whole,
// never cut. Additional records go first and alone do not set TC: they are
// optional (RFC 2181 §9), and setting TC for them would send every client
// of a large service to TCP for nothing. When answer or authority records
// must go, TC is set and every additional record but the OPT is dropped,
// since the client retries over TCP anyway (RFC 1035 §4.2.1).
func fit(m *dns.Msg, size int) {
	// Compression costs more CPU than the answer itself; use it only when
	// the message would not fit without.
	m.Compress = false
	if m.Len() <= size {
		return
	}
	nans, nns := len(m.Answer), len(m.Ns)
	// Truncate compresses, keeps as many records of each section as fit,
	// in order, and keeps the OPT.
	m.Truncate(size)
	if len(m.Answer) == nans && len(m.Ns) == nns {
		m.Truncated = false
		return
	}
	m.Truncated = true
	extra := m.Extra[:0]
	for _, rr := range m.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	m.Extra = extra
}
