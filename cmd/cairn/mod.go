package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/cmd/cairn/modcli"
)

// newLockCmd is `cairn lock`, a client of the lock module (package modcli).
func newLockCmd(stdout, stderr io.Writer, environ []string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lock NAME [flags] -- CMD [ARGS...]",
		Short: "Run a command while holding a distributed lock (as consul lock), its fencing token in CAIRN_LOCK_INDEX",
		Long:  modcli.LockHelp, Example: modcli.LockExample,
	}
	f := modcli.AddLockFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return f.Run(cmd.Context(), args, cmd.ArgsLenAtDash(), modcli.Streams{Stdout: stdout, Stderr: stderr}, environ)
	}
	return modCmd(cmd)
}

// newElectCmd is `cairn elect`, a client of the leader module.
func newElectCmd(stdout, stderr io.Writer, environ []string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "elect NAME --name ID [flags] [-- CMD [ARGS...]] | elect NAME --observe",
		Short: "Campaign in a leader election and lead (running a command), or observe the leaders",
		Long:  modcli.ElectHelp, Example: modcli.ElectExample,
	}
	f := modcli.AddElectFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return f.Run(cmd.Context(), args, cmd.ArgsLenAtDash(), modcli.Streams{Stdout: stdout, Stderr: stderr}, environ)
	}
	return modCmd(cmd)
}

// modCmd makes a bad flag exit 125 too, as the command's other failures.
func modCmd(cmd *cobra.Command) *cobra.Command {
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &modcli.ExitError{Code: modcli.ExitFailed, Err: err}
	})
	return cmd
}
