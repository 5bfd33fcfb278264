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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/v2http"
	"github.com/cairnkv/cairn/discovery"
	"github.com/cairnkv/cairn/dnsserver"
	"github.com/cairnkv/cairn/tlsauth"
)

// shutdownTimeout bounds each step of Close that waits for others: HTTP
// requests in flight, DNS queries, the raft shutdown.
const shutdownTimeout = 10 * time.Second

// Option adjusts New.
type Option func(*options)

type options struct {
	logger  *slog.Logger
	out     io.Writer
	version string
	now     func() time.Time
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

	dev       *tlsauth.DevPKI
	reloader  *tlsauth.Reloader
	clientLn  net.Listener
	clientURL string
	peerAddr  string // advertised
	node      *cluster.Node
	dns       *dnsserver.Server
	tlsConf   *tls.Config
	api       *http.Server
	cancelAPI context.CancelFunc // cancels the requests in flight
	metricsLn net.Listener
	metrics   *http.Server
	closers   []func() // in the order of creation; Close runs them backwards
	closeOnce sync.Once

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

func (s *Server) onClose(f func()) { s.closers = append(s.closers, f) }

// start does New's work; s.stop undoes what it did, also when it fails.
func (s *Server) start() error {
	cfg, logger := s.cfg, s.log
	files, dev, err := serverFiles(cfg, logger)
	if err != nil {
		return err
	}
	s.dev = dev
	minVersion, err := tlsauth.ParseMinVersion(cfg.TLSMinVersion)
	if err != nil {
		return fmt.Errorf("tls.min_version: %w", err)
	}
	material, err := tlsauth.LoadMaterial(files)
	if err != nil {
		return err
	}
	opts := tlsauth.Options{MinVersion: minVersion, Logger: logger}
	peerMaterial := material
	if pf := peerFiles(cfg, files); pf != files {
		if peerMaterial, err = tlsauth.LoadMaterial(pf); err != nil {
			return fmt.Errorf("peer TLS: %w", err)
		}
	}
	if s.reloader, err = newReloader(cfg, logger, material, peerMaterial); err != nil {
		return err
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); watchTLS(s.ctx, s.reloader, logger) }()

	// The ports, bound first: a port 0 is advertised as the port it got.
	if s.clientLn, err = net.Listen("tcp", cfg.BindAddr); err != nil {
		return fmt.Errorf("listen on client address %s: %w (is another process using it? set --bind-addr)", cfg.BindAddr, err)
	}
	ln := s.clientLn
	s.onClose(func() { ln.Close() })
	s.clientURL = "https://" + advertise(cfg.Addr, s.clientLn.Addr())
	peerLn, err := net.Listen("tcp", cfg.PeerBindAddr)
	if err != nil {
		return fmt.Errorf("listen on peer address %s: %w (is another process using it? set --peer-bind-addr)", cfg.PeerBindAddr, err)
	}
	s.peerAddr = advertise(cfg.PeerAddr, peerLn.Addr())
	netw, err := cluster.NewTLSNetwork(cluster.TLSNetworkConfig{
		BindAddr: cfg.PeerBindAddr, AdvertiseAddr: s.peerAddr, Listener: peerLn,
		ServerTLS: peerMaterial.PeerServerConfig(opts, cfg.TLSTrustDomain, cfg.PeerAllowedCNs),
		ClientTLS: peerMaterial.PeerClientConfig(opts, cfg.TLSTrustDomain, cfg.PeerAllowedCNs),
		DialTLS:   peerMaterial.PeerDialConfig(opts, cfg.TLSTrustDomain, cfg.PeerAllowedCNs),
		Logger:    logger,
	})
	if err != nil {
		peerLn.Close()
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	node, err := cluster.New(cluster.Config{
		Name: cfg.Name, DataDir: cfg.DataDir, PeerAddr: s.peerAddr, ClientURLs: []string{s.clientURL},
		SnapshotCount: cfg.SnapshotCount, HeartbeatInterval: cfg.HeartbeatInterval,
		ElectionTimeout: cfg.ElectionTimeout, HistorySize: cfg.HistorySize,
		Network: netw, Peers: cfg.Peers, ForceNewCluster: cfg.ForceNewCluster,
		Now: s.opts.now, Logger: logger, Registry: reg,
	})
	if err != nil {
		netw.Close()
		return err
	}
	s.node = node
	s.onClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := node.Shutdown(ctx); err != nil {
			logger.Error("raft shutdown", "err", err)
		}
	})

	// Serving certificates of the client port: managed by certmagic when
	// this member can issue them or ACME is on, else the files (certs.go).
	validity, err := tlsauth.ParseValidity(cfg.TLSServingValidity)
	if err != nil {
		return fmt.Errorf("tls.serving_cert_validity: %w", err)
	}
	servingCAKey, err := servingCA(cfg, dev)
	if err != nil {
		return fmt.Errorf("serving certificates: %w", err)
	}
	tlsConf, stopCerts, err := managedServerTLS(s.ctx, servingConfig{
		Name: cfg.Name, TrustDomain: cfg.TLSTrustDomain, Managed: cfg.TLSManagedCerts,
		Validity: validity, Hosts: servingHosts(cfg.Addr),
		ACME: acmeSettings{CA: cfg.ACMECA, Email: cfg.ACMEEmail, Domains: cfg.ACMEDomains,
			CARootFile: cfg.ACMECARoot, TLSALPNPort: cfg.ACMETLSALPNPort},
	}, node, servingCAKey, material, opts, logger)
	if err != nil {
		return err
	}
	s.tlsConf = tlsConf
	s.onClose(stopCerts) // before the node's shutdown: releases locks while raft is up
	if err := reg.Register(newCertExpiry(s.clientLn.Addr(), cfg.Addr, tlsConf, material, peerMaterial)); err != nil {
		return err
	}

	// Discovery: an index of the registrations, fed by the local replica,
	// which the DNS responder answers from.
	dcfg := discovery.Config{Prefix: cfg.DiscoveryPrefix, Domain: cfg.DNSDomain}
	index := discovery.NewIndex(node.Store(), dcfg, s.opts.now)
	indexCtx, stopIndex := context.WithCancel(context.Background())
	indexDone := make(chan struct{})
	go func() {
		defer close(indexDone)
		if err := index.Run(indexCtx); err != nil && indexCtx.Err() == nil {
			logger.Error("discovery index stopped; DNS answers go stale", "err", err)
		}
	}()
	s.onClose(func() { stopIndex(); <-indexDone })
	if cfg.DNSAddr != "" {
		dns, err := dnsserver.New(dnsserver.Config{Domain: cfg.DNSDomain, MaxTTL: uint32(cfg.DNSMaxTTL), NS: cfg.DNSNS}, index, reg, logger)
		if err != nil {
			return fmt.Errorf("dns: %w", err)
		}
		if err := dns.Start(cfg.DNSAddr); err != nil {
			return fmt.Errorf("dns: listen on %s: %w (is another process using it? set --dns-addr, or empty to turn DNS off)", cfg.DNSAddr, err)
		}
		s.dns = dns
		s.onClose(func() {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			dns.Shutdown(ctx)
		})
		logger.Info("serving DNS", "addr", dns.Addr(), "domain", cfg.DNSDomain)
	}

	handler, err := v2http.New(v2http.Config{
		Cluster: node, Logger: logger, Registry: reg, Gatherer: reg, Now: s.opts.now,
		CairnVersion:  s.opts.version,
		MaxValueBytes: cfg.MaxValueBytes, MaxRequestBytes: cfg.MaxRequestBytes,
		ValidateWrite: dcfg.Validate,
		TrustDomain:   cfg.TLSTrustDomain, AllowedNodeCNs: cfg.PeerAllowedCNs,
		RateLimit:   v2http.RateLimit{PerSecond: float64(cfg.RateLimit), Burst: int(cfg.RateBurst)},
		LogRequests: cfg.LogRequests,
	})
	if err != nil {
		return err
	}
	baseCtx, cancelAPI := context.WithCancel(context.Background())
	s.cancelAPI = cancelAPI
	s.api = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
	}
	s.api.RegisterOnShutdown(func() { _ = handler.Close() }) // ends open watches so Shutdown need not wait
	if cfg.MetricsAddr != "" {
		if s.metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("listen on metrics address %s: %w (is another process using it? set --metrics-addr, or empty to turn it off)", cfg.MetricsAddr, err)
		}
		mln := s.metricsLn
		s.onClose(func() { mln.Close() })
		s.metrics = newMetricsServer(handler, logger)
		s.metrics.BaseContext = func(net.Listener) context.Context { return baseCtx }
	}
	return nil
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

	s.log.Info("serving the etcd v2 API", "url", s.clientURL, "bind", s.clientLn.Addr().String(), "data_dir", s.cfg.DataDir)
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
		s.cancelAPI() // cancels in-flight requests, so Shutdown does not wait for them
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
func (s *Server) DevPKI() *tlsauth.DevPKI { return s.dev }

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
