package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/cmd/cairn/server"
)

func newServeCmd(stdout, stderr io.Writer, environ []string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Cairn member (the default command)",
		Long: `Run a Cairn member serving the etcd v2 API over HTTPS with mandatory client
certificates. With no --ca-file/--cert-file/--key-file, a development PKI is
created in <data-dir>/pki and the curl command that uses it is printed.
SIGHUP reloads every certificate, key, CA bundle and CRL.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfgFile, _ := cmd.Flags().GetString("config")
			cfg, _, err := server.Load(cmd.Flags(), cfgFile, environ)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), cfg, stdout, stderr)
		},
	}
	server.AddFlags(cmd.Flags())
	cmd.Flags().String("config", "", "TOML configuration file (default "+server.DefaultConfigFile+" when present)")
	return cmd
}

// serve runs a member until ctx ends, reloading its TLS files on SIGHUP.
func serve(ctx context.Context, cfg server.Config, stdout, stderr io.Writer) error {
	s, err := server.New(cfg, server.WithLogger(server.NewLogger(stderr, cfg)),
		server.WithOutput(stdout), server.WithVersion(version), server.WithContext(ctx))
	if err != nil {
		return err
	}
	// The registration is kept after Run: a SIGHUP during shutdown is then
	// dropped instead of killing the process (its default action).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				_ = s.Reload("SIGHUP") // logged by the server
			}
		}
	}()
	return s.Run(ctx)
}
