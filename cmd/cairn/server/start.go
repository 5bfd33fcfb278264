package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/disk"
	"github.com/cairnkv/cairn/cluster/peer"
	"github.com/cairnkv/cairn/cluster/v2http"
	"github.com/cairnkv/cairn/discovery"
	"github.com/cairnkv/cairn/dnsserver"
	"github.com/cairnkv/cairn/tlsauth/managed"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// The steps of New, in order. Each registers with onClose what undoes it,
// so that stop undoes a start that failed half way as well as a whole one.

func (s *Server) onClose(f func()) { s.closers = append(s.closers, f) }

func (s *Server) start() error {
	// The data dir's lock before anything in it is touched (the development
	// PKI of loadTLS): a second member on it fails at once with the PID of
	// the first. Released last, after the node's shutdown.
	lock, err := disk.Acquire(s.cfg.DataDir, s.log)
	if err != nil {
		return err
	}
	s.dataDirLock = lock
	s.onClose(lock.Unlock)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.handshake = newHandshakeLog(reg, s.log)
	t, err := s.loadTLS()
	if err != nil {
		return err
	}
	// Every port is bound before the node starts, which may join a cluster
	// as a voter: a port that cannot be had fails the start before then,
	// never leaving a member that joined and died (the client and peer
	// ports are bound in startNode, ahead of the node).
	if err := s.bindDNSAndMetrics(); err != nil {
		return err
	}
	if err := s.startNode(t, reg); err != nil {
		return err
	}
	if err := s.serveNode(t, reg); err != nil {
		return s.withdraw(err)
	}
	return nil
}

// serveNode starts what serves from the node: the serving certificates,
// DNS and the API.
func (s *Server) serveNode(t tlsSetup, reg *prometheus.Registry) error {
	if err := s.startCerts(t, reg); err != nil {
		return err
	}
	dcfg := discovery.Config{Prefix: s.cfg.DiscoveryPrefix, Domain: s.cfg.DNSDomain}
	if err := s.startDNS(dcfg, reg); err != nil {
		return err
	}
	// The dashboard probes the other members with this member's own
	// certificate (the client port's material) and the cluster CA.
	memberTLS := t.material.ClientConfig(t.opts)
	return s.newAPI(dcfg, reg, func() *tls.Config { return memberTLS })
}

// withdraw undoes the join of a start that failed after its node started
// (cluster.Node.Withdraw), so that it leaves no dead voter behind, and
// returns the start's error.
func (s *Server) withdraw(cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.node.RequestTimeout())
	defer cancel()
	if err := s.node.Withdraw(ctx); err != nil {
		s.log.Error("a failed start could not undo its join", "err", err)
		return fmt.Errorf("%w (and: %v)", cause, err)
	}
	return cause
}

// tlsSetup is the TLS material of both ports.
type tlsSetup struct {
	material, peer *tlsconf.Material // the same when the peer port has no files of its own
	opts           tlsconf.Options
	servingCA      *pki.CA         // the cluster CA when this member holds its key (servingCA)
	acmeRoots      *x509.CertPool  // tls.acme.ca_root, read before the node starts
	sealer         *managed.Sealer // tls.storage_key_file; nil: certmagic's files stored plain
}

// loadTLS loads the certificate files (making the development PKI on a
// first start without any), adds the CRLs and watches the files.
func (s *Server) loadTLS() (tlsSetup, error) {
	cfg := s.cfg
	files, dev, err := serverFiles(cfg, s.log)
	if err != nil {
		return tlsSetup{}, err
	}
	s.dev = dev
	minVersion, err := tlsconf.ParseMinVersion(cfg.TLSMinVersion)
	if err != nil {
		return tlsSetup{}, fmt.Errorf("tls.min_version: %w", err)
	}
	t := tlsSetup{opts: tlsconf.Options{MinVersion: minVersion, Logger: s.log, TrustDomain: cfg.TLSTrustDomain}}
	if t.material, err = tlsconf.LoadMaterial(files); err != nil {
		return tlsSetup{}, err
	}
	if err := checkServing(t.material, cfg.Addr, s.log); err != nil {
		return tlsSetup{}, err
	}
	t.peer = t.material
	if pf := peerFiles(cfg, files); pf != files {
		if t.peer, err = tlsconf.LoadMaterial(pf); err != nil {
			return tlsSetup{}, fmt.Errorf("peer TLS: %w", err)
		}
	}
	// What the serving certificates need from files is read here, before
	// the node starts and may join a cluster.
	if t.servingCA, err = servingCA(cfg, dev); err != nil {
		return tlsSetup{}, fmt.Errorf("serving certificates: %w", err)
	}
	if cfg.ACMECARoot != "" {
		if t.acmeRoots, err = readACMERoots(cfg.ACMECARoot); err != nil {
			return tlsSetup{}, err
		}
	}
	if cfg.TLSStorageKeyFile != "" {
		if t.sealer, err = managed.LoadSealer(cfg.TLSStorageKeyFile); err != nil {
			return tlsSetup{}, fmt.Errorf("tls.storage_key_file: %w", err)
		}
	}
	if s.reloader, err = newReloader(cfg, s.log, t.material, t.peer); err != nil {
		return tlsSetup{}, err
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); watchTLS(s.ctx, s.reloader, s.log) }()
	return t, nil
}

// startNode binds the client and peer ports, first, so that a port 0 is
// advertised as the port it got, and starts the raft node.
func (s *Server) startNode(t tlsSetup, reg *prometheus.Registry) error {
	cfg, logger := s.cfg, s.log
	var err error
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
	netw, err := peer.New(peer.Config{
		BindAddr: cfg.PeerBindAddr, AdvertiseAddr: s.peerAddr, Listener: peerLn,
		ServerTLS: t.peer.PeerServerConfig(t.opts, cfg.TLSTrustDomain, cfg.PeerAllowedCNs),
		ClientTLS: t.peer.PeerClientConfig(t.opts, cfg.TLSTrustDomain, cfg.PeerAllowedCNs),
		DialTLS:   t.peer.PeerDialConfig(t.opts, cfg.TLSTrustDomain, cfg.PeerAllowedCNs),
		Logger:    logger,
		Refused:   func(remote string, err error) { s.handshake.Refused("peer", remote, err) },
	})
	if err != nil {
		peerLn.Close()
		return err
	}
	node, err := cluster.New(cluster.Config{
		Name: cfg.Name, DataDir: cfg.DataDir, PeerAddr: s.peerAddr, ClientURLs: []string{s.clientURL},
		SnapshotCount: cfg.SnapshotCount, LogStore: cfg.LogStore, HeartbeatInterval: cfg.HeartbeatInterval,
		ElectionTimeout: cfg.ElectionTimeout, HistorySize: cfg.HistorySize, HistoryBytes: cfg.HistoryBytes,
		Network: netw, Peers: cfg.Peers, Discover: s.discover(t), ForceNewCluster: cfg.ForceNewCluster, DataDirLock: s.dataDirLock,
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
	return nil
}

// startCerts sets the serving certificates of the client port: managed by
// certmagic when this member can issue them or ACME is on, else the files
// (certs.go); and their expiry metric.
func (s *Server) startCerts(t tlsSetup, reg *prometheus.Registry) error {
	cfg := s.cfg
	validity, err := pki.ParseValidity(cfg.TLSServingValidity)
	if err != nil {
		return fmt.Errorf("tls.serving_cert_validity: %w", err)
	}
	tlsConf, stopCerts, err := managedServerTLS(s.ctx, servingConfig{
		Name: cfg.Name, TrustDomain: cfg.TLSTrustDomain, Managed: cfg.TLSManagedCerts, Sealer: t.sealer,
		Validity: validity, Hosts: servingHosts(cfg.Addr),
		ACME: acmeSettings{CA: cfg.ACMECA, Email: cfg.ACMEEmail, Domains: cfg.ACMEDomains,
			Roots: t.acmeRoots, TLSALPNPort: cfg.ACMETLSALPNPort},
	}, s.node, t.servingCA, t.material, t.opts, s.log)
	if err != nil {
		return err
	}
	s.tlsConf = tlsConf
	s.onClose(stopCerts) // before the node's shutdown: releases locks while raft is up
	return reg.Register(newCertExpiry(s.clientLn.Addr(), cfg.Addr, tlsConf, t.material, t.peer))
}

// bindDNSAndMetrics binds the DNS port (UDP and TCP) and the metrics port,
// each when configured; startDNS and newAPI serve on them.
func (s *Server) bindDNSAndMetrics() error {
	cfg := s.cfg
	if cfg.DNSAddr != "" {
		l, err := dnsserver.Listen(cfg.DNSAddr)
		if err != nil {
			return fmt.Errorf("dns: %w (is another process using it? set --dns-addr, or empty to turn DNS off)", err)
		}
		s.dnsLn = l
		s.onClose(func() { l.Close() }) // after Serve, Shutdown has closed it already
	}
	if cfg.DNSTLSAddr != "" {
		if cfg.DNSAddr == "" {
			return fmt.Errorf("dns.tls_addr %s needs the DNS responder: set dns.addr too", cfg.DNSTLSAddr)
		}
		ln, err := net.Listen("tcp", cfg.DNSTLSAddr)
		if err != nil {
			return fmt.Errorf("dns over TLS: listen on %s: %w (is another process using it? set --dns-tls-addr, or empty to turn it off)", cfg.DNSTLSAddr, err)
		}
		s.dotLn = ln
		s.onClose(func() { ln.Close() })
	}
	if cfg.MetricsAddr != "" {
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("listen on metrics address %s: %w (is another process using it? set --metrics-addr, or empty to turn it off)", cfg.MetricsAddr, err)
		}
		s.metricsLn = ln
		s.onClose(func() { ln.Close() })
	}
	return nil
}

// startDNS runs the discovery index of the registrations, fed by the local
// replica, and the DNS responder that answers from it.
func (s *Server) startDNS(dcfg discovery.Config, reg *prometheus.Registry) error {
	cfg, logger := s.cfg, s.log
	index := discovery.NewIndex(s.node.Store(), dcfg, s.opts.now)
	indexCtx, stopIndex := context.WithCancel(context.Background())
	indexDone := make(chan struct{})
	go func() {
		defer close(indexDone)
		if err := index.Run(indexCtx); err != nil && indexCtx.Err() == nil {
			logger.Error("discovery index stopped; DNS answers go stale", "err", err)
		}
	}()
	s.onClose(func() { stopIndex(); <-indexDone })
	if cfg.DNSAddr == "" {
		return nil
	}
	dnsCfg, err := cfg.dnsConfig()
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	dns, err := dnsserver.New(dnsCfg, index, reg, logger)
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	// DoT and DoH answers are filtered by the API's authorization, which
	// newAPI makes next: until then (no query can be answered before Run
	// anyway) they see nothing.
	dns.SetFilter(func(cs *tls.ConnectionState) func(string) bool {
		if h := s.keysAPI.Load(); h != nil {
			return h.KeyFilter(cs)
		}
		return func(string) bool { return false }
	})
	// A member that restarted answers SERVFAIL until it has applied again
	// what it served before it stopped (issue 16): never NXDOMAIN from a
	// replica it knows is behind.
	dns.SetReady(s.node.CaughtUp)
	if err := dns.Serve(s.dnsLn); err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	s.dns = dns
	if s.dotLn != nil {
		if err := dns.ServeTLS(tls.NewListener(s.dotLn, dotTLS(s.tlsConf, cfg.DNSTLSRequireClientCert))); err != nil {
			dns.Shutdown(context.Background())
			return fmt.Errorf("dns: %w", err)
		}
	}
	s.onClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		dns.Shutdown(ctx)
	})
	logger.Info("serving DNS", "addr", dns.Addr(), "domain", cfg.DNSDomain)
	return nil
}

// newAPI makes the HTTP servers Run starts: the etcd v2 API of the client
// port and, with metrics_addr, the metrics port, which it binds.
func (s *Server) newAPI(dcfg discovery.Config, reg *prometheus.Registry, memberTLS func() *tls.Config) error {
	cfg, logger := s.cfg, s.log
	handler, err := v2http.New(v2http.Config{
		Cluster: s.node, Logger: logger, Registry: reg, Gatherer: reg, Now: s.opts.now,
		CairnVersion:  s.opts.version,
		MaxValueBytes: cfg.MaxValueBytes, MaxRequestBytes: cfg.MaxRequestBytes,
		ValidateWrite: dcfg.Validate,
		TrustDomain:   cfg.TLSTrustDomain, AllowedNodeCNs: cfg.PeerAllowedCNs,
		MaxWatchers: cfg.MaxWatchers,
		RateLimit:   v2http.RateLimit{PerSecond: float64(cfg.RateLimit), Burst: int(cfg.RateBurst)},
		LogRequests: cfg.LogRequests,
		Dashboard:   v2http.DashboardConfig{Discovery: dcfg, MemberTLS: memberTLS},
	})
	if err != nil {
		return err
	}
	s.keysAPI.Store(handler)
	var api http.Handler = handler
	if s.dns != nil {
		mux := http.NewServeMux()
		mux.Handle("/dns-query", s.dns.DoHHandler())
		mux.Handle("/", handler)
		api = mux
	}
	// Connections over the cap are refused before TLS: Run wraps this
	// listener in NewTLSListener.
	limited, err := newLimitListener(s.clientLn, cfg.MaxConnections, reg)
	if err != nil {
		return err
	}
	s.clientLn = limited
	baseCtx, cancelAPI := context.WithCancel(context.Background())
	s.cancelAPI = cancelAPI
	s.onClose(cancelAPI)
	s.api = &http.Server{
		Handler:           api,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		// A whole request, body included. Watches are not cut off:
		// net/http clears the read deadline once a request's body is read
		// (a watch has none) to watch for the client going away, and
		// TestSlowBodyCutOff checks a watch outlives it.
		ReadTimeout: cfg.ReadTimeout,
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    log.New(s.handshake.HTTPErrorLog(logger), "", 0),
		BaseContext: func(net.Listener) context.Context { return baseCtx },
		ConnContext: v2http.ConnContext,
	}
	s.api.RegisterOnShutdown(func() { _ = handler.Close() }) // ends open watches so Shutdown need not wait
	if cfg.MetricsAddr == "" {
		return nil
	}
	s.metrics = newMetricsServer(handler, logger)
	s.metrics.BaseContext = func(net.Listener) context.Context { return baseCtx }
	return nil
}

// dotTLS is the DNS-over-TLS configuration: the client port's (same
// serving certificate, same reload, same client verification) with the
// "dot" ALPN protocol (RFC 7858 §3.2). Unless require is set, a client
// certificate is optional; one that is sent is verified as the client port
// verifies it, and its identity then filters the answers.
func dotTLS(base *tls.Config, require bool) *tls.Config {
	adapt := func(c *tls.Config) *tls.Config {
		c = c.Clone()
		c.NextProtos = []string{"dot"}
		if !require {
			c.ClientAuth = tls.VerifyClientCertIfGiven
			if verify := c.VerifyConnection; verify != nil {
				c.VerifyConnection = func(cs tls.ConnectionState) error {
					if len(cs.PeerCertificates) == 0 {
						return nil
					}
					return verify(cs)
				}
			}
		}
		return c
	}
	if base.GetConfigForClient == nil {
		return adapt(base)
	}
	out := adapt(base)
	out.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		c, err := base.GetConfigForClient(hello)
		if err != nil || c == nil {
			return c, err
		}
		return adapt(c), nil
	}
	return out
}
