package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"
)

func newRootCmd(stdout, stderr io.Writer, environ []string) *cobra.Command {
	serve := newServeCmd(stdout, stderr, environ)
	root := &cobra.Command{
		Use:   "cairn",
		Short: "Cairn: a TLS-only, raft-replicated etcd v2 key store with service discovery",
		Long: `Cairn is a highly available key-value store for shared configuration and
service discovery. It speaks the etcd v2 HTTP+JSON API over HTTPS with
mandatory client certificates. Run without a subcommand, it serves (see
"cairn serve --help").`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE:          serve.RunE,
	}
	// Plain `cairn` serves: it takes serve's flags too.
	root.Flags().AddFlagSet(serve.Flags())
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(serve, newConfigCmd(stdout, environ), newMemberCmd(stdout, stderr, environ))
	root.AddCommand(newRegisterCmd(stderr, environ), newServiceCmd(stdout, stderr, environ))
	root.AddCommand(newSnapshotCmd(stdout, stderr, environ))
	root.AddCommand(newCACmd(stdout), newCertCmd(stdout, stderr))
	root.AddCommand(newKVCmd(stdout, stderr, environ), newStatusCmd(stdout, stderr, environ))
	return root
}

func newConfigCmd(stdout io.Writer, environ []string) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect the configuration"}
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the effective configuration and where each value came from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfgFile, _ := cmd.Flags().GetString("config")
			_, source, err := loadConfig(cmd.Flags(), cfgFile, environ)
			if err != nil {
				return err
			}
			for _, r := range source {
				fmt.Fprintf(stdout, "%-26s = %-28q # %s\n", r.key, r.value, r.source)
			}
			return nil
		},
	}
	addFlags(show.Flags())
	show.Flags().String("config", "", "TOML configuration file")
	cmd.AddCommand(show)
	return cmd
}

func newLogger(w io.Writer, format, level, name string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h).With("node", name)
}
