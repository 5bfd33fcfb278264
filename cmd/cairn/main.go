// Command cairn is the Cairn server, admin tool and registration sidecar.
// main only parses, wires and waits: the logic lives in the packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Environ())
	stop()
	os.Exit(code)
}

// exitCoder is an error that chooses the process exit status (kv's
// etcdctl statuses); any other error exits 1.
type exitCoder interface {
	error
	ExitCode() int
}

// reporter is an error its command has printed already (kv prints
// etcdctl's "Error:  " lines itself); main then only sets the status.
type reporter interface {
	error
	Reported() bool
}

// run executes the command line args and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) int {
	root := newRootCmd(stdout, stderr, environ)
	root.SetArgs(args)
	return exitStatus(root.ExecuteContext(ctx), stderr)
}

// exitStatus is the exit status of err (0 for nil), which it prints to
// stderr unless the command did.
func exitStatus(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	if r, ok := errors.AsType[reporter](err); !ok || !r.Reported() {
		fmt.Fprintln(stderr, "cairn:", err)
	}
	if ec, ok := errors.AsType[exitCoder](err); ok {
		return ec.ExitCode()
	}
	return 1
}
