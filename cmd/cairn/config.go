package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/cmd/cairn/server"
)

func newConfigCmd(stdout io.Writer, environ []string) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect the configuration"}
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the effective configuration as TOML, with where each value came from",
		Long: `Print the configuration cairn serve would run with, resolved from flags,
CAIRN_* variables, the --config file and defaults, as a TOML file: each
line ends with a comment naming the value's source. Given to
cairn serve --config, the output gives the same configuration.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfgFile, _ := cmd.Flags().GetString("config")
			cfg, src, err := server.Load(cmd.Flags(), cfgFile, environ)
			if err != nil {
				return err
			}
			return server.WriteTOML(stdout, cfg, src)
		},
	}
	server.AddFlags(show.Flags())
	show.Flags().String("config", "", "TOML configuration file (default "+server.DefaultConfigFile+" when present)")
	cmd.AddCommand(show)
	return cmd
}
