package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// reloadTLS makes the TLS material of both ports revocable and reloadable
// without a restart, and returns the peer network's per-dial client
// configuration (cluster.TLSNetworkConfig.DialTLS):
//
//   - crl_file and peer.crl_file become part of the materials, checked at
//     every handshake of their port;
//   - SIGHUP reloads every file; a change to any file (watched through its
//     directory) reloads them too, after a short quiet period;
//   - the peer port's outgoing connections take the peer material current
//     at each dial, so a rotated peer CA is trusted without a restart.
//
// Reloading stops when ctx ends. It is called before the peer port listens,
// so no handshake goes unchecked by the CRLs. If the CRLs cannot be set,
// nothing is started and the returned function returns the error, which
// cluster.NewTLSNetwork (calling it once) returns: serve then fails with it.
func reloadTLS(ctx context.Context, cfg Config, logger *slog.Logger, opts tlsconf.Options, material, peerMaterial *tlsconf.Material) func() (*tls.Config, error) {
	if err := setCRLs(cfg, material, peerMaterial); err != nil {
		return func() (*tls.Config, error) { return nil, err }
	}
	r := tlsconf.NewReloader(logger)
	r.Add("client port", material)
	r.Add("peer port", peerMaterial)

	// The registration is kept after ctx ends: a SIGHUP during shutdown
	// is then dropped instead of killing the process (its default action).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = r.Reload("SIGHUP") // logged by r
			}
		}
	}()
	go func() {
		if err := r.Watch(ctx, tlsconf.WatchOptions{}); err != nil {
			logger.Warn("TLS files are not watched for changes; send SIGHUP to reload them", "err", err)
		}
	}()
	return peerMaterial.PeerDialConfig(opts, cfg.TLSTrustDomain, cfg.PeerAllowedCNs)
}

// setCRLs adds the configured CRL files to the materials. A material that
// serves both ports has one CRL: its CA's.
func setCRLs(cfg Config, material, peerMaterial *tlsconf.Material) error {
	if cfg.CRLFile != "" {
		if err := material.SetCRLFile(cfg.CRLFile); err != nil {
			return fmt.Errorf("crl_file: %w", err)
		}
	}
	if peerMaterial == material {
		if cfg.PeerCRLFile != cfg.CRLFile {
			return fmt.Errorf("peer.crl_file %q differs from crl_file %q, but the peer port uses the client port's CA and certificate files: a CA has one CRL; set the same file, or give the peer port its own peer.ca_file", cfg.PeerCRLFile, cfg.CRLFile)
		}
		return nil
	}
	if cfg.PeerCRLFile != "" {
		if err := peerMaterial.SetCRLFile(cfg.PeerCRLFile); err != nil {
			return fmt.Errorf("peer.crl_file (default: crl_file): %w", err)
		}
	}
	return nil
}
