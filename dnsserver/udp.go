package dnsserver

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// udpLoop reads and answers the queries of one UDP socket, one at a time,
// in one goroutine. Listen opens one socket per core with SO_REUSEPORT (the
// kernel spreads sources over them), so loops run in parallel without
// sharing anything but the Responder and the metrics.
//
// It answers plain queries (parsePlain) from its own answer cache without
// allocating; other messages, and cache misses, are unpacked by miekg/dns
// and answered by Server.ServeDNS's code, as the TCP server does.
type udpLoop struct {
	s     *Server
	conn  *net.UDPConn
	local net.Addr
	// session: the socket is bound to a wildcard address, so replies must
	// leave from the address each query came to (IP_PKTINFO), which
	// miekg/dns's session functions handle (allocating; specific-address
	// sockets, the usual deployment, do not need them).
	session bool
	cache   *answerCache
	gen     Generationer // nil: no caching
	buf     []byte
	w       udpWriter    // of the query being answered
	rrl     *rateLimiter // nil: no rate limit
	out     []byte       // slipped responses
	batch   *batch       // recvmmsg/sendmmsg buffers; nil: one datagram at a time
}

func (s *Server) newUDPLoop(conn *net.UDPConn) *udpLoop {
	l := &udpLoop{s: s, conn: conn, local: conn.LocalAddr(), buf: make([]byte, readBufSize)}
	l.w.l = l
	l.rrl = newRateLimiter(s.cfg)
	if a, ok := conn.LocalAddr().(*net.UDPAddr); ok && a.IP.IsUnspecified() {
		l.session = setSessionOptions(conn) == nil
	}
	if g, ok := s.resp.src.(Generationer); ok {
		l.gen = g
		l.cache = newAnswerCache()
	}
	if !l.session {
		l.batch, _ = newBatch(conn) // nil where unsupported
	}
	return l
}

// run serves until the socket is closed.
func (l *udpLoop) run() {
	if l.batch != nil {
		l.runBatch()
		return
	}
	for {
		var (
			n    int
			from netip.AddrPort
			sess *dns.SessionUDP
			err  error
		)
		if l.session {
			n, sess, err = dns.ReadFromSessionUDP(l.conn, l.buf)
			if sess != nil {
				from = sess.RemoteAddr().(*net.UDPAddr).AddrPort()
			}
		} else {
			n, from, err = l.conn.ReadFromUDPAddrPort(l.buf)
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.s.log.Debug("dns: udp read", "err", err)
			continue
		}
		l.w.to, l.w.sess = from, sess
		l.handle(l.buf[:n], from, time.Now(), &l.w)
	}
}

// runBatch is run with recvmmsg and sendmmsg: the datagrams one call
// returns are answered in order, their replies queued, and sent together.
func (l *udpLoop) runBatch() {
	b := l.batch
	l.w.batch = b
	for {
		n, err := b.recv()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.s.log.Debug("dns: udp read", "err", err)
			continue
		}
		now := time.Now()
		for i := range n {
			p, from := b.packet(i)
			l.w.to, l.w.idx = from, i
			l.handle(p, from, now, &l.w)
		}
		if err := b.flush(); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.s.log.Debug("dns: udp write", "err", err)
		}
	}
}

// responseWriter is what handle writes to: the loop's udpWriter, or a test's.
type responseWriter interface {
	dns.ResponseWriter
	writePacket(b []byte) error
}

// handle answers the datagram p from src, received at now, through w.
func (l *udpLoop) handle(p []byte, src netip.AddrPort, now time.Time, w responseWriter) {
	s := l.s
	addr := src.Addr().Unmap()
	if !allowed(s.cfg.Allow, addr) {
		s.metrics.droppedAllow.Inc()
		return
	}
	q, plain := parsePlain(p)
	switch l.rrl.check(addr, now) {
	case rrlSlip:
		if plain {
			l.out = slipResponse(l.out, p, &q)
			if err := w.writePacket(l.out); err != nil {
				s.log.Debug("dns: write response", "proto", UDP, "remote", src.String(), "err", err)
			}
			s.metrics.slipped.Inc()
			return
		}
		s.metrics.droppedRate.Inc()
		return
	case rrlDrop:
		s.metrics.droppedRate.Inc()
		return
	}
	if !plain {
		l.slow(p, w)
		return
	}
	size := dns.MinMsgSize
	if q.bits&keyOPT != 0 {
		size = max(dns.MinMsgSize, min(int(q.udpSize), s.cfg.UDPSize))
	}
	var gen uint64
	var key []byte
	if l.cache != nil {
		gen = l.gen.Generation() // before the answer: a change after it makes the entry stale
		key = l.cache.keyOf(&q, size)
		if e := l.cache.get(key, gen, now); e != nil {
			b := e.pick(q.id)
			if err := w.writePacket(b); err != nil {
				s.log.Debug("dns: write response", "proto", UDP, "remote", src.String(), "err", err)
			}
			e.responses.Inc()
			if e.truncated {
				s.metrics.udpTruncated.Inc()
			}
			s.metrics.udpDuration.Observe(time.Since(now).Seconds())
			return
		}
	}
	req := new(dns.Msg)
	if err := req.Unpack(p); err != nil {
		l.slow(p, w)
		return
	}
	c := clock{now: now}
	b, resp := s.build(req, &c, UDP)
	if err := w.writePacket(b); err != nil {
		s.log.Debug("dns: write response", "proto", UDP, "remote", src.String(), "err", err)
	}
	s.count(req, resp, UDP, now)
	if l.cache == nil || resp.Rcode == dns.RcodeServerFailure {
		return
	}
	e := &cachedAnswer{
		variants:  [][]byte{b},
		gen:       gen,
		responses: s.metrics.responses.WithLabelValues(typeLabel(req), rcodeLabel(resp.Rcode), UDP),
		truncated: resp.Truncated,
	}
	for c.shuffled && len(e.variants) < cacheRotations {
		c.shuffled = false
		vb, vresp := s.build(req, &c, UDP)
		if vresp.Rcode == dns.RcodeServerFailure {
			return
		}
		e.variants = append(e.variants, vb)
	}
	e.until = c.until
	l.cache.put(key, e)
}

// slow answers a message that is not a plain query as miekg/dns's server
// would: a header that does not parse gets no answer; a message the accept
// function rejects, or that does not unpack, gets FORMERR or NOTIMP; the
// rest goes to ServeDNS.
func (l *udpLoop) slow(p []byte, w responseWriter) {
	s := l.s
	if len(p) < dnsHeaderLen {
		s.invalidFunc(UDP)(p, nil)
		return
	}
	var dh dns.Header
	dh.Id = uint16(p[0])<<8 | uint16(p[1])
	dh.Bits = uint16(p[2])<<8 | uint16(p[3])
	dh.Qdcount = uint16(p[4])<<8 | uint16(p[5])
	dh.Ancount = uint16(p[6])<<8 | uint16(p[7])
	dh.Nscount = uint16(p[8])<<8 | uint16(p[9])
	dh.Arcount = uint16(p[10])<<8 | uint16(p[11])
	action := s.acceptFunc(UDP)(dh)
	req := new(dns.Msg)
	if action == dns.MsgAccept {
		err := req.Unpack(p)
		if err == nil {
			s.ServeDNS(w, req)
			return
		}
		s.invalidFunc(UDP)(p, err)
		action = dns.MsgReject
	} else {
		req.Id = dh.Id
		req.Opcode = int(dh.Bits>>11) & 0xF
		req.RecursionDesired = dh.Bits&bitRD != 0
		req.CheckingDisabled = dh.Bits&bitCD != 0
	}
	if action == dns.MsgIgnore {
		return
	}
	// As miekg/dns answers a rejected message.
	opcode := req.Opcode
	req.SetRcodeFormatError(req)
	req.Zero = false
	if action == dns.MsgRejectNotImplemented {
		req.Opcode = opcode
		req.Rcode = dns.RcodeNotImplemented
	}
	req.Ns, req.Answer, req.Extra = nil, nil, nil
	if err := w.WriteMsg(req); err != nil {
		s.log.Debug("dns: write response", "proto", UDP, "err", err)
	}
}

// udpWriter is the dns.ResponseWriter of one UDP query.
type udpWriter struct {
	l     *udpLoop
	to    netip.AddrPort
	sess  *dns.SessionUDP
	batch *batch // replies are queued here, to the idx-th datagram's source
	idx   int
}

var _ dns.ResponseWriter = (*udpWriter)(nil)

func (w *udpWriter) writePacket(b []byte) error {
	var err error
	if w.batch != nil {
		return w.batch.queue(b, w.idx)
	}
	if w.sess != nil {
		_, err = dns.WriteToSessionUDP(w.l.conn, b, w.sess)
	} else {
		_, err = w.l.conn.WriteToUDPAddrPort(b, w.to)
	}
	return err
}

func (w *udpWriter) LocalAddr() net.Addr  { return w.l.local }
func (w *udpWriter) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(w.to) }
func (w *udpWriter) Write(b []byte) (int, error) {
	if err := w.writePacket(b); err != nil {
		return 0, err
	}
	return len(b), nil
}
func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	return w.writePacket(b)
}
func (w *udpWriter) Close() error        { return nil }
func (w *udpWriter) TsigStatus() error   { return nil }
func (w *udpWriter) TsigTimersOnly(bool) {}
func (w *udpWriter) Hijack()             {}
