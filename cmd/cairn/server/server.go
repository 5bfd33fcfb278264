package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/disk"
	"github.com/cairnkv/cairn/cluster/v2http"
	"github.com/cairnkv/cairn/dnsserver"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// shutdownTimeout bounds each step of Close that waits for others: HTTP
// requests in flight, DNS queries, the raft shutdown.
const shutdownTimeout = 10 * time.Second

// drainTimeout is how long Close lets the client requests in flight finish
// (a write forwarded to the leader gets its answer, not an ambiguous
// "context canceled") before it cancels those still running (one waiting
// on an unreachable leader, say). Watches and long polls end at once:
// Shutdown runs the API handler's Close.
const drainTimeout = time.Second

// Option adjusts New.
type Option func(*options)

type options struct {
	logger  *slog.Logger
	out     io.Writer
	version string
	now     func() time.Time
	ctx     context.Context
}

// WithLogger sends the member's logs to l (default: discarded). NewLogger
// makes the one cairn serve uses.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithOutput makes Run print where the member serves, and with a
// development PKI the curl lines that reach it, to w (default: nothing).
func WithOutput(w io.Writer) Option { return func(o *options) { o.out = w } }

// WithVersion is Cairn's version, printed by Run and sent in the
// X-Cairn-Version header of /version (default: the module's build version).
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// WithClock makes now the member's clock (default time.Now): the time the
// leader stamps writes with (TTLs become expirations), the remaining TTL
// of keys read, and the discovery index's. For tests whose TTLs must be
// exact; certificates and timeouts keep the real time.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithContext bounds New's wait for the other founding members of a
// discovery token (Config.DiscoveryURL): when ctx ends, New fails
// (default: it waits as long as it takes).
func WithContext(ctx context.Context) Option { return func(o *options) { o.ctx = ctx } }

// Server is one Cairn member: the raft node, the etcd v2 API on the client
// port (HTTPS with client certificates), the DNS responder, the optional
// plain-HTTP metrics port, managed serving certificates and TLS reloads.
//
// New binds every port and starts the raft node, so the addresses are
// known (port 0 works) before Run; Run serves the client API until its
// context ends, then closes the server. Close stops everything New and
// Run started and may be called at any time, more than once.
type Server struct {
	cfg  Config
	log  *slog.Logger
	opts options

	ctx    context.Context // ends when Close starts: background work stops
	cancel context.CancelFunc
	wg     sync.WaitGroup // goroutines started by New

	dev       *pki.Dev
	reloader  *tlsconf.Reloader
	clientLn  net.Listener
	clientURL string
	peerAddr  string // advertised
	node      *cluster.Node
	dns       *dnsserver.Server
	dnsLn     *dnsserver.Listeners // bound by New before the node starts
	dotLn     net.Listener         // DNS over TLS, bound with dnsLn; nil: off
	keysAPI   atomic.Pointer[v2http.Handler]
	tlsConf   *tls.Config
	handshake *tlsconf.HandshakeLog // refused handshakes of both ports: counted, logged at a bounded rate
	api       *http.Server
	cancelAPI context.CancelFunc // cancels the requests in flight
	metricsLn net.Listener
	metrics   *http.Server
	closers   []func() // in the order of creation; Close runs them backwards
	closeOnce sync.Once

	dataDirLock *disk.Lock // held from the start of New to the end of Close

	mu      sync.Mutex
	running bool
	closed  bool
}

// New checks cfg (deriving what derives from other settings, as Load
// does), prepares the TLS material (a development PKI in <data_dir>/pki
// when no certificate is configured), binds the client, peer, DNS and
// metrics ports and starts the raft node. On error everything started is
// stopped again.
func New(cfg Config, opts ...Option) (*Server, error) {
	if err := cfg.complete(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg}
	for _, o := range opts {
		o(&s.opts)
	}
	if s.opts.logger == nil {
		s.opts.logger = slog.New(slog.DiscardHandler)
	}
	if s.opts.now == nil {
		s.opts.now = time.Now
	}
	s.log = s.opts.logger
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.start(); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// advertise is the advertised host:port, with a port 0 replaced by the
// port bound.
func advertise(advertised string, bound net.Addr) string {
	host, port, err := net.SplitHostPort(advertised)
	if err != nil || port != "0" {
		return advertised
	}
	if ta, ok := bound.(*net.TCPAddr); ok {
		return net.JoinHostPort(host, strconv.Itoa(ta.Port))
	}
	return advertised
}

// Run serves the client API (and the metrics port) until ctx ends or
// Close is called, then closes the server. It returns nil after a clean
// shutdown, or why a listener failed.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return errors.New("server: Run after Close")
	case s.running:
		s.mu.Unlock()
		return errors.New("server: Run called twice")
	}
	s.running = true
	errs := make(chan error, 2)
	serve := func(name string, srv *http.Server, ln net.Listener) {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("%s listener: %w", name, err)
				return
			}
			errs <- nil
		}()
	}
	serve("client", s.api, NewTLSListener(s.clientLn, s.tlsConf))
	n := 1
	if s.metrics != nil {
		serve("metrics", s.metrics, s.metricsLn)
		n++
	}
	s.mu.Unlock()

	s.log.Info("serving the etcd v2 API", "url", s.clientURL, "bind", s.clientLn.Addr().String(), "peer", s.peerAddr, "data_dir", s.cfg.DataDir)
	if s.metricsLn != nil {
		s.log.Info("serving /metrics and /health over plain HTTP", "addr", s.metricsLn.Addr().String())
	}
	if s.opts.out != nil {
		printWelcome(s.opts.out, s.opts.version, s.clientURL, s.DNSAddr(), s.dev)
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs: // nil when Close stopped it
		n--
	case <-s.node.Failed():
		// A corrupt raft log entry, or a log write that failed behind
		// replication: the node stopped applying; DNS and stale reads
		// would go on serving a replica frozen in time
		// (docs/reliability.md), so the member stops with the error.
		err = s.node.Err()
		s.log.Error("stopping: this member left raft", "err", err)
	}
	s.Close()
	for ; n > 0; n-- {
		if e := <-errs; err == nil {
			err = e
		}
	}
	return err
}

// Close stops the server: it stops serving (ending watches and requests
// in flight), stops the DNS responder, certificate management and the
// raft node, and waits for what it started. It returns nil; calling it
// again does nothing.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.log.Info("shutting down")
		if s.node != nil {
			// A leader hands over first, while it still serves: the writes
			// in flight finish, or move to the new leader as not proposed.
			s.node.StepDown(2 * s.cfg.ElectionTimeout)
		}
		// Shutdown stops accepting and waits for the requests in flight;
		// those still running after drainTimeout are canceled.
		if s.cancelAPI != nil {
			drain := time.AfterFunc(drainTimeout, s.cancelAPI)
			defer drain.Stop()
		}
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		for _, srv := range []*http.Server{s.api, s.metrics} {
			if srv == nil {
				continue
			}
			if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Warn("http shutdown", "err", err)
			}
		}
		s.stop()
	})
	return nil
}

// stop undoes start, also a start that failed half way.
func (s *Server) stop() {
	s.cancel()
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.wg.Wait()
}

// Reload re-reads every TLS file of both ports (certificates, keys, CA
// bundles, CRLs); trigger names the cause in the log (cairn serve passes
// "SIGHUP"). On error the material in use stays.
func (s *Server) Reload(trigger string) error { return s.reloader.Reload(trigger) }

// Config is the configuration the server runs with, derived settings
// filled in.
func (s *Server) Config() Config { return s.cfg }

// Node is the raft member.
func (s *Server) Node() *cluster.Node { return s.node }

// ClientAddr is the address the client port is bound to (host:port).
func (s *Server) ClientAddr() string { return s.clientLn.Addr().String() }

// ClientURL is the advertised client URL (https://addr, with the port
// bound when addr has port 0).
func (s *Server) ClientURL() string { return s.clientURL }

// PeerAddr is the advertised peer address, the raft address of this
// member (with the port bound when peer.addr has port 0): what other
// members list in --peers.
func (s *Server) PeerAddr() string { return s.peerAddr }

// DNSTLSAddr is the address DNS over TLS is served on; empty when off.
func (s *Server) DNSTLSAddr() string {
	if s.dns == nil {
		return ""
	}
	return s.dns.TLSAddr()
}

// DNSAddr is the address the DNS responder is bound to, UDP and TCP; empty
// with DNS off.
func (s *Server) DNSAddr() string {
	if s.dns == nil {
		return ""
	}
	return s.dns.Addr()
}

// MetricsAddr is the address of the plain-HTTP metrics port; empty when
// it is off.
func (s *Server) MetricsAddr() string {
	if s.metricsLn == nil {
		return ""
	}
	return s.metricsLn.Addr().String()
}

// DevPKI is the development PKI this server made or uses (its client
// certificate reaches the server), or nil when certificates are
// configured.
func (s *Server) DevPKI() *pki.Dev { return s.dev }

// NewLogger is the logger of a member with cfg's log.format, log.level and
// name, writing to w.
func NewLogger(w io.Writer, cfg Config) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h).With("node", cfg.Name)
}
