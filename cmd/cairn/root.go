package main

import (
	"fmt"
	"io"
	"strings"

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
	root.AddCommand(newBenchCmd(stdout, stderr, environ), newDiscoveryCmd(stdout, environ))
	root.AddCommand(newLockCmd(stdout, stderr, environ), newElectCmd(stdout, stderr, environ))
	refuseUnknownCommands(root)
	return root
}

// refuseUnknownCommands makes every command that has subcommands fail on
// an argument that names none of them, with cobra's suggestions, instead
// of printing its help and succeeding (cobra's default for a group
// without RunE): `cairn member lst` exits 1, as etcdctl does. A group
// given no argument still prints its help and succeeds. The root serves,
// and takes no argument either.
func refuseUnknownCommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownCommands(sub)
	}
	if !c.HasSubCommands() {
		return
	}
	c.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		return unknownCommandError(cmd, args[0])
	}
	if c.RunE == nil && c.Run == nil {
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
}

func unknownCommandError(cmd *cobra.Command, name string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "unknown command %q for %q", name, cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		b.WriteString("\n\nDid you mean this?\n")
		for _, x := range s {
			fmt.Fprintf(&b, "\t%s\n", x)
		}
	}
	fmt.Fprintf(&b, "\nRun '%s --help' for usage.", cmd.CommandPath())
	return fmt.Errorf("%s", b.String())
}
