package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/tlsauth/managed"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// servingConfig is what the client listener's managed certificates need
// from the configuration.
type servingConfig struct {
	Name        string // member name: the identity in CA-issued certificates
	TrustDomain string
	// Managed lets certmagic issue the serving certificates from the
	// cluster CA when this member has the CA key (tls.managed_certs).
	Managed bool
	// Validity of a CA-issued serving certificate (tls.serving_cert_validity;
	// 0 means managed.DefaultServingValidity).
	Validity time.Duration
	// Hosts are the names and addresses the CA issues for (servingHosts).
	Hosts []string
	// Sealer encrypts certmagic's files in the store (tls.storage_key_file).
	Sealer *managed.Sealer
	ACME   acmeSettings
}

// acmeSettings are the [tls.acme] keys.
type acmeSettings struct {
	CA          string         // tls.acme.ca: directory URL (default Let's Encrypt)
	Email       string         // tls.acme.email
	Domains     []string       // tls.acme.domains: none turns ACME off
	Roots       *x509.CertPool // tls.acme.ca_root's PEM roots of a private ACME server; nil: the system's
	TLSALPNPort int            // tls.acme.tlsalpn_port: challenge listener port (default 443)
}

// servingHosts are the names a CA-issued serving certificate covers: those
// of the development node certificate (the advertised client host, this
// machine's host name, loopback).
func servingHosts(addr string) []string {
	return append(advertisedHosts(addr), "localhost", "127.0.0.1", "::1")
}

// servingCA returns the cluster CA when this member holds its key, else
// nil. That is the case of the development PKI (<data-dir>/pki/ca.key) and
// of ca_file without cert_file (ca.key beside ca_file), the two cases in
// which serverFiles issues the node certificate itself. With cert_file the
// operator runs the PKI, and the serving certificate stays theirs.
func servingCA(cfg Config, dev *pki.Dev) (*pki.CA, error) {
	switch {
	case cfg.CertFile != "":
		return nil, nil
	case cfg.CAFile != "":
		return pki.LoadCA(cfg.CAFile, filepath.Join(filepath.Dir(cfg.CAFile), "ca.key"))
	case dev != nil:
		return pki.LoadCA(dev.CAFile, dev.CAKeyFile)
	}
	return nil, nil
}

// managedServerTLS returns the client listener's TLS configuration and a
// function that stops what it started. Client certificates are required
// and verified against the cluster CA pool of material in every case.
//
// Serving certificates come from certmagic, with the replicated store as
// its storage, when there is something to manage: certificates issued by
// the cluster CA for sc.Hosts (when ca is not nil and sc.Managed) and
// certificates from ACME for sc.ACME.Domains. Until a managed certificate
// exists, and for names none covers, material's certificate is served.
// Management starts in the background once the store answers a
// linearizable read, so a member waiting for a quorum still serves.
// With nothing to manage it is material.ServerConfig.
//
// Call stop before the node shuts down: it releases the locks this member
// holds.
func managedServerTLS(ctx context.Context, sc servingConfig, node *cluster.Node, ca *pki.CA, material *tlsconf.Material, opts tlsconf.Options, logger *slog.Logger) (conf *tls.Config, stop func(), err error) {
	useCA := ca != nil && sc.Managed
	if !useCA && len(sc.ACME.Domains) == 0 {
		if sc.Managed {
			logger.Info("serving the node certificate files on the client port: this member has no CA key to issue short-lived certificates with, and no ACME domain is set")
		}
		return material.ServerConfig(opts), func() {}, nil
	}
	storage := managed.NewStorage(certKV{node}, managed.StorageConfig{Owner: sc.Name, Logger: logger, Sealer: sc.Sealer})
	mc := managed.ManagerConfig{Storage: storage, Logger: logger}
	if useCA {
		mc.Issuer = &managed.CAIssuer{CA: ca, TrustDomain: sc.TrustDomain, NodeName: sc.Name, Validity: sc.Validity}
		mc.Hosts = sc.Hosts
	}
	if len(sc.ACME.Domains) > 0 {
		mc.ACME = managed.ACMEConfig{CA: sc.ACME.CA, Email: sc.ACME.Email, Domains: sc.ACME.Domains,
			TLSALPNPort: sc.ACME.TLSALPNPort, TrustedRoots: sc.ACME.Roots}
	}
	mgr, err := managed.NewManager(mc)
	if err != nil {
		storage.Close()
		return nil, nil, err
	}

	startCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := waitStoreReadable(startCtx, node); err != nil {
			return
		}
		if err := mgr.Start(); err != nil {
			logger.Error("serving certificates are not managed; serving the node certificate files", "err", err)
			return
		}
		logger.Info("managing serving certificates", "ca_hosts", mgr.Hosts(), "acme_domains", mgr.Domains())
	}()
	stop = func() {
		cancel()
		wg.Wait()
		mgr.Stop()
		uctx, ucancel := context.WithTimeout(context.Background(), 5*time.Second)
		certmagic.CleanUpOwnLocks(uctx, managed.ZapLogger(logger))
		ucancel()
		storage.Close()
	}
	return managed.ServerConfig(material, opts, mgr.GetCertificate), stop, nil
}

// waitStoreReadable returns once the store answers a linearizable read, or
// with ctx's error.
func waitStoreReadable(ctx context.Context, node *cluster.Node) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if err := node.ReadBarrier(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func readACMERoots(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls.acme.ca_root: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls.acme.ca_root %s: no PEM certificate in it", file)
	}
	return pool, nil
}
