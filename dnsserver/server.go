package dnsserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// Errors returned by Server.
var (
	ErrStarted = errors.New("dnsserver: server already started")
	ErrClosed  = errors.New("dnsserver: server closed")
)

// readBufSize is the largest UDP query read; longer datagrams are cut and
// then fail to parse. Real queries are a few hundred bytes.
const readBufSize = 4096

// Server serves a Responder over UDP and TCP on one address.
type Server struct {
	resp    *Responder
	cfg     Config
	log     *slog.Logger
	metrics *metrics

	mu      sync.Mutex
	udp     []*net.UDPConn // one per UDP loop
	tcp     *dns.Server
	addr    string
	started bool
	closed  bool
	wg      sync.WaitGroup // the UDP loops, the TCP and DoT serve loops

	tls     *dns.Server // DoT, when ServeTLS was called
	tlsAddr string
	filter  Filter
	ready   func() bool
}

// New returns a Server answering from src with cfg (zero fields defaulted).
// Its metrics are registered on reg (nil: not registered); it logs to log
// (nil: discarded).
func New(cfg Config, src Source, reg prometheus.Registerer, log *slog.Logger) (*Server, error) {
	r, err := NewResponder(cfg, src)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Server{resp: r, cfg: r.Config(), log: log, metrics: m}, nil
}

// Responder returns the answer function the server uses.
func (s *Server) Responder() *Responder { return s.resp }

// Listeners are the bound sockets of one DNS address: UDP (one socket per
// core, sharing the port with SO_REUSEPORT on Linux) and TCP on the same
// port.
type Listeners struct {
	udp []*net.UDPConn
	tcp net.Listener
}

// Listen binds addr (host:port; port 0 picks a free port, the same for UDP
// and TCP) without answering yet: a caller that must know the port is its
// own before it does anything it cannot take back (joining a cluster)
// binds first and calls Serve later. It opens one UDP socket per
// GOMAXPROCS; see ListenSockets.
func Listen(addr string) (*Listeners, error) {
	return ListenSockets(addr, runtime.GOMAXPROCS(0))
}

// ListenSockets is Listen with n UDP sockets (at least 1; 1 where the system
// has no SO_REUSEPORT). Each is read by its own goroutine with its own
// answer cache.
func ListenSockets(addr string, n int) (*Listeners, error) {
	if !reusePort || n < 1 {
		n = 1
	}
	pc, ln, err := listen(addr)
	if err != nil {
		return nil, fmt.Errorf("dnsserver: listen on %s: %w", addr, err)
	}
	l := &Listeners{udp: []*net.UDPConn{pc}, tcp: ln}
	for len(l.udp) < n {
		more, err := listenUDP(pc.LocalAddr().String())
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("dnsserver: listen on %s (socket %d): %w", addr, len(l.udp)+1, err)
		}
		l.udp = append(l.udp, more)
	}
	return l, nil
}

// Addr is the bound address.
func (l *Listeners) Addr() string { return l.udp[0].LocalAddr().String() }

// Close closes the sockets; after Serve, Shutdown does.
func (l *Listeners) Close() error {
	errs := []error{l.tcp.Close()}
	for _, c := range l.udp {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// Start listens on addr (Listen) and serves (Serve).
func (s *Server) Start(addr string) error {
	l, err := Listen(addr)
	if err != nil {
		return err
	}
	if err := s.Serve(l); err != nil {
		l.Close()
		return err
	}
	return nil
}

// Serve answers on l in the background until Shutdown, which closes l. It
// returns once both transports accept queries.
func (s *Server) Serve(l *Listeners) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.started:
		return ErrStarted
	}
	ln, addr := l.tcp, l.Addr()
	started := make(chan struct{}, 1)
	idle := s.cfg.IdleTimeout
	s.tcp = &dns.Server{
		Listener:     newLimitListener(ln, s.cfg.MaxTCPConns),
		Handler:      s,
		ReadTimeout:  s.cfg.ReadTimeout,
		WriteTimeout: s.cfg.ReadTimeout,
		IdleTimeout:  func() time.Duration { return idle },
		// miekg/dns closes a connection after 128 queries by default: a
		// client pipelining over one connection (RFC 7766 §6.2.1) then pays
		// a reconnect, and a TLS handshake over DoT, every 128 queries.
		// The idle timeout and the connection cap bound them instead.
		MaxTCPQueries:     -1,
		MsgAcceptFunc:     s.acceptFunc(TCP),
		MsgInvalidFunc:    s.invalidFunc(TCP),
		NotifyStartedFunc: func() { started <- struct{}{} },
	}
	errc := make(chan error, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.tcp.ActivateAndServe()
		if err != nil {
			s.log.Error("dns: serve loop stopped", "addr", addr, "err", err)
		}
		errc <- err
	}()
	select {
	case <-started:
	case err := <-errc:
		l.Close()
		s.wg.Wait()
		s.tcp = nil
		return fmt.Errorf("dnsserver: serve on %s: %w", addr, errors.Join(err, ErrClosed))
	}
	s.udp = l.udp
	for _, c := range l.udp {
		loop := s.newUDPLoop(c)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			loop.run()
		}()
	}
	s.started = true
	s.addr = addr
	s.log.Info("dns: serving", "addr", addr, "domain", s.cfg.Domain, "udp_sockets", len(l.udp))
	return nil
}

// listen binds UDP and then TCP to the same address. With port 0, it
// retries when the port the kernel picked for UDP is taken for TCP.
func listen(addr string) (*net.UDPConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	for attempt := 0; ; attempt++ {
		pc, err := listenUDP(addr)
		if err != nil {
			return nil, nil, err
		}
		_, p, _ := net.SplitHostPort(pc.LocalAddr().String())
		ln, err := net.Listen("tcp", net.JoinHostPort(host, p))
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if (port != "0" && port != "") || attempt == 9 {
			return nil, nil, err
		}
	}
}

// Addr returns the address the server listens on (UDP and TCP), or "" if
// it is not started.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Shutdown stops both listeners and waits, until ctx is done, for queries
// in flight to be answered. A Server cannot be started again.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	udp, tcp, started := s.udp, s.tcp, s.started
	wasClosed := s.closed
	s.closed = true
	s.addr = ""
	s.mu.Unlock()
	if wasClosed {
		return nil
	}
	var errs []error
	if err := s.shutdownTLS(ctx); err != nil {
		errs = append(errs, err)
	}
	// A UDP loop answers each query before it reads the next: closing the
	// socket ends it after the query in flight.
	for _, c := range udp {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if tcp != nil {
		if err := tcp.ShutdownContext(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	if started {
		s.log.Info("dns: stopped")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dnsserver: shutdown: %w", err)
	}
	return nil
}

// ServeDNS answers one query; it implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	start := time.Now()
	proto := UDP
	if _, ok := w.LocalAddr().(*net.TCPAddr); ok {
		proto = TCP
	}
	if len(s.cfg.Allow) > 0 && proto == TCP {
		if a, ok := w.RemoteAddr().(*net.TCPAddr); !ok || !allowed(s.cfg.Allow, a.AddrPort().Addr()) {
			s.metrics.droppedAllow.Inc()
			m := new(dns.Msg)
			m.SetRcode(req, dns.RcodeRefused)
			w.WriteMsg(m)
			return
		}
	}
	b, resp := s.build(req, &clock{now: start}, proto)
	if resp == nil {
		s.metrics.malformed.Inc()
		return
	}
	if _, err := w.Write(b); err != nil {
		s.log.Debug("dns: write response", "proto", proto, "remote", w.RemoteAddr().String(), "err", err)
	}
	s.count(req, resp, proto, start)
}

// build returns the packed response to req over proto and the response, or
// nils when req gets none. A panic, or a response that cannot be packed,
// becomes SERVFAIL: unsent, it would reach the client as silence (UDP) or a
// closed connection (TCP).
func (s *Server) build(req *dns.Msg, c *clock, proto string) ([]byte, *dns.Msg) {
	resp := s.answer(req, c, proto)
	if resp == nil {
		return nil, nil
	}
	b, err := resp.Pack()
	if err != nil {
		s.log.Error("dns: answer cannot be packed, sent SERVFAIL", "question", question(req), "proto", proto, "err", err)
		resp = servfail(req)
		b, _ = resp.Pack()
	}
	return b, resp
}

// count records a response sent.
func (s *Server) count(req, resp *dns.Msg, proto string, start time.Time) {
	s.metrics.responses.WithLabelValues(typeLabel(req), rcodeLabel(resp.Rcode), proto).Inc()
	if resp.Truncated {
		s.metrics.truncated.WithLabelValues(proto).Inc()
	}
	s.metrics.duration.WithLabelValues(proto).Observe(time.Since(start).Seconds())
}

// answer is Responder.respond with a panic turned into SERVFAIL, and
// SERVFAIL while the source is not ready (see SetReady).
func (s *Server) answer(req *dns.Msg, c *clock, proto string) (resp *dns.Msg) {
	if s.ready != nil && req != nil && !req.Response && !s.ready() {
		return servfail(req) // counted as a SERVFAIL response
	}
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("dns: panic while answering, sent SERVFAIL", "panic", fmt.Sprint(v), "question", question(req), "proto", proto, "stack", string(debug.Stack()))
			resp = servfail(req)
		}
	}()
	return s.resp.respond(req, c, proto)
}

// servfail is the SERVFAIL answer to req.
func servfail(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeServerFailure)
	return m
}

// question is req's question for a log line.
func question(req *dns.Msg) string {
	if len(req.Question) == 0 {
		return ""
	}
	return req.Question[0].String()
}

// acceptFunc screens a message by its header before it is parsed:
// responses are dropped (answering them invites loops), other opcodes are
// NOTIMP without parsing, and sections no query needs are FORMERR. Everything
// else, including a wrong question count, reaches the Responder. miekg/dns
// sends the NOTIMP and FORMERR answers; they are counted here.
func (s *Server) acceptFunc(proto string) dns.MsgAcceptFunc {
	return func(dh dns.Header) dns.MsgAcceptAction {
		const qr = 1 << 15
		switch {
		case dh.Bits&qr != 0:
			s.metrics.malformed.Inc()
			return dns.MsgIgnore
		case int(dh.Bits>>11)&0xF != dns.OpcodeQuery:
			s.metrics.malformed.Inc()
			s.metrics.responses.WithLabelValues(typeUnparsed, rcodeLabel(dns.RcodeNotImplemented), proto).Inc()
			return dns.MsgRejectNotImplemented
		case dh.Ancount > 0 || dh.Nscount > 0 || dh.Arcount > 2:
			s.metrics.malformed.Inc()
			s.metrics.responses.WithLabelValues(typeUnparsed, rcodeLabel(dns.RcodeFormatError), proto).Inc()
			return dns.MsgReject
		}
		return dns.MsgAccept
	}
}

// dnsHeaderLen is the size of a DNS message header.
const dnsHeaderLen = 12

// invalidFunc counts messages miekg/dns could not parse. It answers FORMERR
// when the header parsed, and nothing when it did not.
func (s *Server) invalidFunc(proto string) dns.MsgInvalidFunc {
	return func(m []byte, _ error) {
		s.metrics.malformed.Inc()
		if len(m) >= dnsHeaderLen {
			s.metrics.responses.WithLabelValues(typeUnparsed, rcodeLabel(dns.RcodeFormatError), proto).Inc()
		}
	}
}

// limitListener holds at most n connections open; Accept waits for a slot.
type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func newLimitListener(l net.Listener, n int) *limitListener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	lc := &limitConn{Conn: c, release: func() { <-l.sem }}
	if tc, ok := c.(*tls.Conn); ok {
		return &tlsLimitConn{limitConn: lc, tls: tc}, nil
	}
	return lc, nil
}

// tlsLimitConn is a limitConn of a TLS connection: it shows its state to
// miekg/dns (dns.ConnectionStater), so that DoT answers see the client's
// certificate.
type tlsLimitConn struct {
	*limitConn
	tls *tls.Conn
}

func (c *tlsLimitConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
