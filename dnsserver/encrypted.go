package dnsserver

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/miekg/dns"

	"github.com/cairnkv/cairn/discovery"
)

// Transport labels of the encrypted transports, in metrics. Their answers
// are sized as TCP's: complete up to 65535 bytes.
const (
	DoT = "dot" // DNS over TLS, RFC 7858
	DoH = "doh" // DNS over HTTPS, RFC 8484
)

// Filter returns what the client of a TLS connection may see: a predicate
// on registration keys (Instance.Key), or nil for everything. cmd wires the
// key store's authorization here (dnsserver imports no policy code): with
// authorization on, a DoT or DoH client sees only the services its
// identity may read. cs is nil for a client without TLS state.
type Filter func(cs *tls.ConnectionState) func(key string) bool

// filtered is a Source showing only the instances visible accepts.
type filtered struct {
	Source
	visible func(key string) bool
}

func (f filtered) keep(all []discovery.Instance) []discovery.Instance {
	var out []discovery.Instance
	for _, in := range all {
		if f.visible(in.Key) {
			out = append(out, in)
		}
	}
	return out
}

func (f filtered) Lookup(name string) []discovery.Instance { return f.keep(f.Source.Lookup(name)) }
func (f filtered) Exists(name string) bool                 { return len(f.Lookup(name)) > 0 }
func (f filtered) ByIP(ip netip.Addr) []discovery.Instance { return f.keep(f.Source.ByIP(ip)) }

// view is the source a client of cs answers from.
func (s *Server) view(cs *tls.ConnectionState) Source {
	if s.filter == nil {
		return nil
	}
	if v := s.filter(cs); v != nil {
		return filtered{Source: s.resp.src, visible: v}
	}
	return nil
}

// SetFilter sets the authorization filter of the DoT and DoH answers; call
// it before serving them. Without one, they see every registration.
func (s *Server) SetFilter(f Filter) { s.filter = f }

// SetReady sets the test of whether the source is fit to answer from; call
// it before serving. While it reports false every query gets SERVFAIL (a
// resolver tries another server, and caches nothing), never an NXDOMAIN
// or an empty answer from data known to be behind: a member that
// restarted answers so until it has applied again what it served before
// it stopped. SERVFAIL is never cached, so the answer cache holds nothing
// from that time.
func (s *Server) SetReady(ready func() bool) { s.ready = ready }

// dotHandler answers DoT queries.
type dotHandler struct{ s *Server }

func (h dotHandler) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	start := time.Now()
	if len(h.s.cfg.Allow) > 0 {
		if a, ok := w.RemoteAddr().(*net.TCPAddr); !ok || !allowed(h.s.cfg.Allow, a.AddrPort().Addr()) {
			h.s.metrics.droppedAllow.Inc()
			m := new(dns.Msg)
			m.SetRcode(req, dns.RcodeRefused)
			w.WriteMsg(m)
			return
		}
	}
	var cs *tls.ConnectionState
	if st, ok := w.(dns.ConnectionStater); ok {
		cs = st.ConnectionState()
	}
	b, resp := h.s.build(req, &clock{now: start, src: h.s.view(cs)}, TCP)
	if resp == nil {
		h.s.metrics.malformed.Inc()
		return
	}
	if _, err := w.Write(b); err != nil {
		h.s.log.Debug("dns: write response", "proto", DoT, "remote", w.RemoteAddr().String(), "err", err)
	}
	h.s.count(req, resp, DoT, start)
}

// ServeTLS answers DNS over TLS (RFC 7858) on ln, a listener whose
// connections are TLS (crypto/tls.NewListener), in the background until
// Shutdown. Connections are limited and timed out as TCP's.
func (s *Server) ServeTLS(ln net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	started := make(chan struct{}, 1)
	idle := s.cfg.IdleTimeout
	srv := &dns.Server{
		Listener:     newLimitListener(ln, s.cfg.MaxTCPConns),
		Net:          "tcp-tls",
		Handler:      dotHandler{s},
		ReadTimeout:  s.cfg.ReadTimeout,
		WriteTimeout: s.cfg.ReadTimeout,
		IdleTimeout:  func() time.Duration { return idle },
		// miekg/dns closes a connection after 128 queries by default: a
		// client pipelining over one connection (RFC 7766 §6.2.1) then pays
		// a reconnect, and a TLS handshake over DoT, every 128 queries.
		// The idle timeout and the connection cap bound them instead.
		MaxTCPQueries:     -1,
		MsgAcceptFunc:     s.acceptFunc(DoT),
		MsgInvalidFunc:    s.invalidFunc(DoT),
		NotifyStartedFunc: func() { started <- struct{}{} },
	}
	errc := make(chan error, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := srv.ActivateAndServe()
		if err != nil {
			s.log.Error("dns: DoT serve loop stopped", "addr", ln.Addr().String(), "err", err)
		}
		errc <- err
	}()
	select {
	case <-started:
	case err := <-errc:
		return fmt.Errorf("dnsserver: serve DoT on %s: %w", ln.Addr(), err)
	}
	s.tls = srv
	s.tlsAddr = ln.Addr().String()
	s.log.Info("dns: serving DNS over TLS", "addr", s.tlsAddr)
	return nil
}

// TLSAddr is the DoT listener's address, or "".
func (s *Server) TLSAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tlsAddr
}

// shutdownTLS stops the DoT server, if any.
func (s *Server) shutdownTLS(ctx context.Context) error {
	s.mu.Lock()
	srv := s.tls
	s.tlsAddr = ""
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.ShutdownContext(ctx)
}

// dohMediaType is RFC 8484's message media type.
const dohMediaType = "application/dns-message"

// DoHHandler answers DNS over HTTPS (RFC 8484): GET with ?dns= (a DNS
// message in unpadded base64url) and POST with an application/dns-message
// body. Mount it at /dns-query of a server that requires client
// certificates; the answers are filtered by the request's TLS state as
// DoT's are. Answers are complete (as TCP's); Cache-Control max-age is the
// smallest TTL in the answer (RFC 8484 §5.1).
func (s *Server) DoHHandler() http.Handler {
	return http.HandlerFunc(s.serveDoH)
}

func (s *Server) serveDoH(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var msg []byte
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		q := r.URL.Query().Get("dns")
		if q == "" {
			http.Error(w, "DoH: GET needs ?dns=<DNS query in base64url> (RFC 8484 §4.1)", http.StatusBadRequest)
			return
		}
		var err error
		if msg, err = base64.RawURLEncoding.DecodeString(q); err != nil {
			if msg, err = base64.URLEncoding.DecodeString(q); err != nil {
				http.Error(w, "DoH: ?dns= is not base64url: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
	case http.MethodPost:
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != dohMediaType {
			http.Error(w, "DoH: POST needs Content-Type: "+dohMediaType, http.StatusUnsupportedMediaType)
			return
		}
		var err error
		msg, err = io.ReadAll(http.MaxBytesReader(w, r.Body, dns.MaxMsgSize))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, "DoH: a DNS message is at most 65535 bytes", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "DoH: reading the body: "+err.Error(), http.StatusBadRequest)
			return
		}
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "DoH: use GET or POST", http.StatusMethodNotAllowed)
		return
	}
	if len(msg) > dns.MaxMsgSize {
		http.Error(w, "DoH: a DNS message is at most 65535 bytes", http.StatusRequestEntityTooLarge)
		return
	}
	req := new(dns.Msg)
	if err := req.Unpack(msg); err != nil {
		s.invalidFunc(DoH)(msg, err)
		http.Error(w, "DoH: not a DNS message: "+err.Error(), http.StatusBadRequest)
		return
	}
	b, resp := s.build(req, &clock{now: start, src: s.view(r.TLS)}, TCP)
	if resp == nil {
		s.metrics.malformed.Inc()
		http.Error(w, "DoH: the message is a response, not a query", http.StatusBadRequest)
		return
	}
	h := w.Header()
	h.Set("Content-Type", dohMediaType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "max-age="+strconv.FormatUint(uint64(minTTL(resp)), 10))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
	s.count(req, resp, DoH, start)
}

// minTTL is the smallest TTL of resp's records (OPT aside), 0 without any.
func minTTL(resp *dns.Msg) uint32 {
	var t uint32
	first := true
	for _, sec := range [][]dns.RR{resp.Answer, resp.Ns, resp.Extra} {
		for _, rr := range sec {
			if rr.Header().Rrtype == dns.TypeOPT {
				continue
			}
			if ttl := rr.Header().Ttl; first || ttl < t {
				t, first = ttl, false
			}
		}
	}
	return t
}
