package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// newReloader makes the TLS material of both ports revocable and
// reloadable without a restart: crl_file and peer.crl_file become part of
// the materials, checked at every handshake of their port, and the
// returned Reloader reloads every file on demand (Server.Reload, which
// cairn serve calls on SIGHUP) and, through watchTLS, when one changes.
//
// It is called before the peer port listens, so no handshake goes
// unchecked by the CRLs.
func newReloader(cfg Config, logger *slog.Logger, material, peerMaterial *tlsconf.Material) (*tlsconf.Reloader, error) {
	if err := setCRLs(cfg, material, peerMaterial); err != nil {
		return nil, err
	}
	r := tlsconf.NewReloader(logger)
	r.Add("client port", material)
	r.Add("peer port", peerMaterial)
	return r, nil
}

// watchTLS reloads the files of r when one changes (watched through its
// directory, after a short quiet period) until ctx ends.
func watchTLS(ctx context.Context, r *tlsconf.Reloader, logger *slog.Logger) {
	if err := r.Watch(ctx, tlsconf.WatchOptions{}); err != nil {
		logger.Warn("TLS files are not watched for changes; send SIGHUP to reload them", "err", err)
	}
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
