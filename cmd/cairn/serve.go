package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/v2http"
	"github.com/cairnkv/cairn/discovery"
	"github.com/cairnkv/cairn/dnsserver"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

func newServeCmd(stdout, stderr io.Writer, environ []string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Cairn member (the default command)",
		Long: `Run a Cairn member serving the etcd v2 API over HTTPS with mandatory client
certificates. With no --ca-file/--cert-file/--key-file, a development PKI is
created in <data-dir>/pki and the curl command that uses it is printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfgFile, _ := cmd.Flags().GetString("config")
			cfg, _, err := loadConfig(cmd.Flags(), cfgFile, environ)
			if err != nil {
				return err
			}
			logger := newLogger(stderr, cfg.LogFormat, cfg.LogLevel, cfg.Name)
			return serve(cmd.Context(), cfg, stdout, logger)
		},
	}
	addFlags(cmd.Flags())
	cmd.Flags().String("config", "", "TOML configuration file (default /etc/cairn/cairn.toml when present)")
	return cmd
}

// serve runs a member until ctx ends, then shuts down cleanly.
func serve(ctx context.Context, cfg Config, stdout io.Writer, logger *slog.Logger) error {
	files, dev, err := serverFiles(cfg, logger)
	if err != nil {
		return err
	}
	minVersion, err := tlsconf.ParseMinVersion(cfg.TLSMinVersion)
	if err != nil {
		return err
	}
	material, err := tlsconf.LoadMaterial(files)
	if err != nil {
		return err
	}
	opts := tlsconf.Options{MinVersion: minVersion, Logger: logger}
	peerMaterial := material
	if pf := peerFiles(cfg, files); pf != files {
		if peerMaterial, err = tlsconf.LoadMaterial(pf); err != nil {
			return fmt.Errorf("peer TLS: %w", err)
		}
	}
	netw, err := cluster.NewTLSNetwork(cluster.TLSNetworkConfig{
		BindAddr: cfg.PeerBindAddr, AdvertiseAddr: cfg.PeerAddr,
		ServerTLS: peerMaterial.PeerServerConfig(opts, cfg.TLSTrustDomain, cfg.PeerAllowedCNs),
		ClientTLS: peerMaterial.PeerClientConfig(opts, cfg.TLSTrustDomain, cfg.PeerAllowedCNs),
		Logger:    logger,
		DialTLS:   reloadTLS(ctx, cfg, logger, opts, material, peerMaterial), // CRLs, SIGHUP and file watching: reload.go
	})
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	clientURL := "https://" + cfg.Addr
	node, err := cluster.New(cluster.Config{
		Name: cfg.Name, DataDir: cfg.DataDir, PeerAddr: cfg.PeerAddr, ClientURLs: []string{clientURL},
		SnapshotCount: cfg.SnapshotCount, HeartbeatInterval: cfg.HeartbeatInterval,
		ElectionTimeout: cfg.ElectionTimeout, HistorySize: cfg.HistorySize,
		Network: netw, Peers: cfg.Peers, ForceNewCluster: cfg.ForceNewCluster,
		Logger: logger, Registry: reg,
	})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := node.Shutdown(sctx); err != nil {
			logger.Error("raft shutdown", "err", err)
		}
	}()

	// Serving certificates of the client port: managed by certmagic when
	// this member can issue them or ACME is on, else the files (certs.go).
	validity, err := pki.ParseValidity(cfg.TLSServingValidity)
	if err != nil {
		return fmt.Errorf("tls.serving_cert_validity: %w", err)
	}
	servingCAKey, err := servingCA(cfg, dev)
	if err != nil {
		return fmt.Errorf("serving certificates: %w", err)
	}
	tlsConf, stopCerts, err := managedServerTLS(ctx, servingConfig{
		Name: cfg.Name, TrustDomain: cfg.TLSTrustDomain, Managed: cfg.TLSManagedCerts,
		Validity: validity, Hosts: servingHosts(cfg.Addr),
		ACME: acmeSettings{CA: cfg.ACMECA, Email: cfg.ACMEEmail, Domains: cfg.ACMEDomains,
			CARootFile: cfg.ACMECARoot, TLSALPNPort: cfg.ACMETLSALPNPort},
	}, node, servingCAKey, material, opts, logger)
	if err != nil {
		return err
	}
	defer stopCerts() // runs before the node's shutdown: releases locks while raft is up

	// Discovery: an index of the registrations, fed by the local replica,
	// which the DNS responder answers from.
	dcfg := discovery.Config{Prefix: cfg.DiscoveryPrefix, Domain: cfg.DNSDomain}
	index := discovery.NewIndex(node.Store(), dcfg, time.Now)
	indexCtx, stopIndex := context.WithCancel(context.Background())
	indexDone := make(chan struct{})
	go func() {
		defer close(indexDone)
		if err := index.Run(indexCtx); err != nil && indexCtx.Err() == nil {
			logger.Error("discovery index stopped; DNS answers go stale", "err", err)
		}
	}()
	defer func() { stopIndex(); <-indexDone }()
	if cfg.DNSAddr != "" {
		dns, err := dnsserver.New(dnsserver.Config{Domain: cfg.DNSDomain, MaxTTL: uint32(cfg.DNSMaxTTL), NS: cfg.DNSNS}, index, reg, logger)
		if err != nil {
			return fmt.Errorf("dns: %w", err)
		}
		if err := dns.Start(cfg.DNSAddr); err != nil {
			return fmt.Errorf("dns: listen on %s: %w (is another process using it? set --dns-addr, or empty to turn DNS off)", cfg.DNSAddr, err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			dns.Shutdown(sctx)
		}()
		logger.Info("serving DNS", "addr", dns.Addr(), "domain", cfg.DNSDomain)
	}

	handler, err := v2http.New(v2http.Config{
		Cluster: apiNode{node}, Logger: logger, Registry: reg, Gatherer: reg,
		MaxValueBytes: cfg.MaxValueBytes, MaxRequestBytes: cfg.MaxRequestBytes,
		ValidateWrite: dcfg.Validate,
		TrustDomain:   cfg.TLSTrustDomain, AllowedNodeCNs: cfg.PeerAllowedCNs,
		RateLimit:   v2http.RateLimit{PerSecond: float64(cfg.RateLimit), Burst: int(cfg.RateBurst)},
		LogRequests: cfg.LogRequests,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.BindAddr)
	if err != nil {
		return fmt.Errorf("listen on client address %s: %w (is another process using it? set --bind-addr)", cfg.BindAddr, err)
	}
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
	}
	srv.ReadHeaderTimeout = cfg.ReadHeaderTimeout
	srv.RegisterOnShutdown(func() { _ = handler.Close() }) // ends open watches so Shutdown need not wait
	served := make(chan error, 1)
	go func() { served <- srv.Serve(newTLSListener(ln, tlsConf)) }()

	logger.Info("serving the etcd v2 API", "url", clientURL, "bind", cfg.BindAddr, "data_dir", cfg.DataDir)
	printWelcome(stdout, clientURL, cfg.DNSAddr, dev)

	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("client listener: %w", err)
	}
	logger.Info("shutting down")
	cancelBase() // cancels in-flight requests, so Shutdown does not wait for them
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("http shutdown", "err", err)
	}
	return nil
}

// serverFiles returns the certificate files of this node: the operator's;
// or, with ca_file alone, a node certificate issued from the CA key beside
// it (nodes sharing another node's development CA); or the development PKI
// of the data dir, created on first start (then dev is set).
func serverFiles(cfg Config, logger *slog.Logger) (tlsconf.Files, *pki.Dev, error) {
	hosts := advertisedHosts(cfg.Addr, cfg.PeerAddr)
	pkiDir := filepath.Join(cfg.DataDir, "pki")
	switch {
	case cfg.CertFile != "":
		return tlsconf.Files{CAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile}, nil, nil
	case cfg.CAFile != "":
		caKey := filepath.Join(filepath.Dir(cfg.CAFile), "ca.key")
		d, err := pki.EnsureNodeCert(pkiDir, cfg.CAFile, caKey, cfg.Name, cfg.TLSTrustDomain, hosts)
		if err != nil {
			return tlsconf.Files{}, nil, fmt.Errorf("ca_file without cert_file and key_file: issuing this node's certificate from %s: %w (pass --cert-file and --key-file, or point --ca-file at a development PKI's ca.crt)", caKey, err)
		}
		return tlsconf.DevFiles(d), nil, nil
	}
	p, created, err := pki.EnsureDev(pkiDir, cfg.Name, cfg.TLSTrustDomain, hosts)
	if err != nil {
		return tlsconf.Files{}, nil, fmt.Errorf("development PKI: %w", err)
	}
	if created {
		logger.Info("created a development PKI", "dir", p.Dir)
	}
	return tlsconf.DevFiles(p), &p, nil
}

// peerFiles are the files of the peer port: each peer.* file, or the
// client-side one.
func peerFiles(cfg Config, client tlsconf.Files) tlsconf.Files {
	f := client
	if cfg.PeerCAFile != "" {
		f.CAFile = cfg.PeerCAFile
	}
	if cfg.PeerCertFile != "" {
		f.CertFile, f.KeyFile = cfg.PeerCertFile, cfg.PeerKeyFile
	}
	return f
}

// advertisedHosts are the hosts of the advertised addresses, for the
// development node certificate.
func advertisedHosts(addrs ...string) []string {
	var hosts []string
	for _, a := range addrs {
		if h, _, err := net.SplitHostPort(a); err == nil && h != "" {
			hosts = append(hosts, h)
		}
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	return hosts
}

func printWelcome(w io.Writer, url, dnsAddr string, dev *pki.Dev) {
	fmt.Fprintf(w, "Cairn %s is serving %s\n", version, url)
	if dev == nil {
		return
	}
	curl := fmt.Sprintf("curl --cacert %s --cert %s --key %s", dev.CAFile, dev.ClientCertFile, dev.ClientKeyFile)
	fmt.Fprintf(w, "Development PKI in %s (client identity %q). Try:\n", dev.Dir, pki.DevClientName)
	fmt.Fprintf(w, "  %s %s/v2/keys/message -XPUT -d value=\"Hello world\"\n", curl, url)
	fmt.Fprintf(w, "  %s %s/v2/keys/message\n", curl, url)
	if host, port, err := net.SplitHostPort(dnsAddr); err == nil {
		fmt.Fprintf(w, "Register a service for 60 s and find it by DNS:\n")
		fmt.Fprintf(w, "  %s %s/v2/keys/skydns/internal/cairn/web/web-1 -XPUT -d ttl=60 -d value='{\"host\":\"127.0.0.1\",\"port\":8080}'\n", curl, url)
		fmt.Fprintf(w, "  dig @%s -p %s web.cairn.internal SRV\n", host, port)
	}
}
