package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/cmd/cairn/clientflags"
)

// Exit statuses of the kv commands: etcdctl v2's, so that scripts written
// for `etcdctl` keep their meaning.
const (
	exitBadArgs       = 1 // bad arguments or settings; `get` of a directory
	exitBadConnection = 2 // no member answered
	exitServerError   = 4 // the cluster answered with an error
)

// Output formats of etcdctl v2's --output.
const (
	outputSimple   = "simple"
	outputJSON     = "json"
	outputExtended = "extended"
)

// newKVCmd is etcdctl v2's key commands (get, set, mk, mkdir, setdir,
// update, updatedir, rm, rmdir, ls, watch, exec-watch) over Cairn's mutual
// TLS: the same requests, output and exit statuses.
func newKVCmd(stdout, stderr io.Writer, environ []string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kv",
		Short: "Read, write and watch keys (etcdctl v2 get, set, ls, watch, ...)",
		Long: `Read, write and watch keys through the etcd v2 keys API (/v2/keys), with
etcdctl v2's flags, output (--output simple, json or extended) and exit
statuses: 0 success, 1 bad arguments (and get of a directory), 2 no member
answered, 4 the cluster answered with an error, printed as etcdctl does:

  Error:  100: Key not found (/a) [12]

The connection comes from --endpoints, --cert, --key and --cacert, else from
CAIRN_ENDPOINTS, CAIRN_CERT, CAIRN_KEY and CAIRN_CACERT, else from the
development PKI of a member on this machine (<data-dir>/pki) and
https://127.0.0.1:4001.`,
		Example: `  cairn kv set /config/mode fast --data-dir /tmp/cairn-dev
  cairn kv get /config/mode
  cairn kv ls --recursive --sort -p /config
  cairn kv -o json get /config/mode
  cairn kv set --swap-with-value fast /config/mode slow
  cairn kv watch --forever --recursive /config
  cairn kv exec-watch --recursive /config -- sh -c 'echo "$ETCD_WATCH_ACTION $ETCD_WATCH_KEY"'`,
	}
	k := &kvCmd{stdout: stdout, stderr: stderr, environ: environ}
	k.cf = clientflags.Add(cmd.PersistentFlags())
	cmd.PersistentFlags().StringVarP(&k.output, "output", "o", outputSimple, "output format: simple, json or extended (etcdctl's -o)")

	ttlFlag := func(c *cobra.Command) {
		c.Flags().Int("ttl", 0, "key time-to-live in seconds (0: none)")
	}
	ttl := func(c *cobra.Command) time.Duration {
		n, _ := c.Flags().GetInt("ttl")
		return time.Duration(max(n, 0)) * time.Second
	}

	get := k.command("get <key>", "Print the value of a key", func(c *cobra.Command) {
		c.Flags().Bool("sort", false, "return the result in sorted order")
		c.Flags().BoolP("quorum", "q", false, "require a quorum read (Cairn's reads are linearizable anyway)")
	}, k.get)
	set := k.command("set <key> <value>", "Set the value of a key (the value is read from stdin when not given)", func(c *cobra.Command) {
		ttlFlag(c)
		c.Flags().String("swap-with-value", "", "set only if the current value is this one")
		c.Flags().Uint64("swap-with-index", 0, "set only if the key's modifiedIndex is this one")
	}, func(ctx context.Context, c *v2client.Client, cmd *cobra.Command, args []string) error {
		prevValue, _ := cmd.Flags().GetString("swap-with-value")
		prevIndex, _ := cmd.Flags().GetUint64("swap-with-index")
		return k.setKey(ctx, c, cmd, args, v2client.SetOptions{TTL: ttl(cmd), PrevValue: prevValue, PrevIndex: prevIndex})
	})
	mk := k.command("mk <key> <value>", "Create a key that must not exist (the value is read from stdin when not given)", func(c *cobra.Command) {
		ttlFlag(c)
		c.Flags().Bool("in-order", false, "create an in-order key under the directory <key>")
	}, func(ctx context.Context, c *v2client.Client, cmd *cobra.Command, args []string) error {
		if inOrder, _ := cmd.Flags().GetBool("in-order"); inOrder {
			return k.mkInOrder(ctx, c, cmd, args, ttl(cmd))
		}
		return k.setKey(ctx, c, cmd, args, v2client.SetOptions{TTL: ttl(cmd), PrevExist: v2client.PrevNoExist})
	})
	update := k.command("update <key> <value>", "Update a key that must exist (the value is read from stdin when not given)", ttlFlag,
		func(ctx context.Context, c *v2client.Client, cmd *cobra.Command, args []string) error {
			return k.setKey(ctx, c, cmd, args, v2client.SetOptions{TTL: ttl(cmd), PrevExist: v2client.PrevExists})
		})
	mkdir := k.command("mkdir <key>", "Create a directory that must not exist", ttlFlag,
		func(ctx context.Context, c *v2client.Client, cmd *cobra.Command, args []string) error {
			return k.setDir(ctx, c, args, v2client.SetOptions{TTL: ttl(cmd), PrevExist: v2client.PrevNoExist})
		})
	setdir := k.command("setdir <key>", "Create a directory, or replace a key with an empty one (an existing directory: error 102, use updatedir)", ttlFlag,
		func(ctx context.Context, c *v2client.Client, cmd *cobra.Command, args []string) error {
			return k.setDir(ctx, c, args, v2client.SetOptions{TTL: ttl(cmd)})
		})
	updatedir := k.command("updatedir <key>", "Set the TTL of an existing directory (no --ttl: make it permanent)", ttlFlag,
		func(ctx context.Context, c *v2client.Client, cmd *cobra.Command, args []string) error {
			return k.setDir(ctx, c, args, v2client.SetOptions{TTL: ttl(cmd), PrevExist: v2client.PrevExists})
		})
	rm := k.command("rm <key>", "Remove a key, or a directory with --dir or --recursive", func(c *cobra.Command) {
		c.Flags().Bool("dir", false, "remove the key if it is an empty directory or a key-value pair")
		c.Flags().BoolP("recursive", "r", false, "remove the key and everything under it")
		c.Flags().String("with-value", "", "remove only if the current value is this one")
		c.Flags().Uint64("with-index", 0, "remove only if the key's modifiedIndex is this one")
	}, k.rm)
	rmdir := k.command("rmdir <key>", "Remove an empty directory (or a key-value pair)", nil,
		func(ctx context.Context, c *v2client.Client, _ *cobra.Command, args []string) error {
			return k.remove(ctx, c, args, v2client.DeleteOptions{Dir: true})
		})
	ls := k.command("ls [key]", "List a directory (default /)", func(c *cobra.Command) {
		c.Flags().Bool("sort", false, "return the result in sorted order")
		c.Flags().BoolP("recursive", "r", false, "list every key under the directory, at every depth")
		c.Flags().BoolP("slash", "p", false, "append a slash (/) to directories")
		c.Flags().BoolP("quorum", "q", false, "require a quorum read (Cairn's reads are linearizable anyway)")
	}, k.ls)
	watch := k.command("watch <key>", "Wait for a change of a key and print it; with --forever, every change until interrupted", func(c *cobra.Command) {
		c.Flags().BoolP("forever", "f", false, "watch until interrupted (Ctrl+C)")
		c.Flags().Uint64("after-index", 0, "watch from the change after this store index (history replays what came since)")
		c.Flags().BoolP("recursive", "r", false, "watch the key and every key under it")
	}, k.watchCmd)
	execWatch := k.command("exec-watch <key> [--] <command> [args...]", "Run a command on every change of a key, until interrupted", func(c *cobra.Command) {
		c.Flags().Uint64("after-index", 0, "watch from the change after this store index (history replays what came since)")
		c.Flags().BoolP("recursive", "r", false, "watch the key and every key under it")
		// Everything after the key belongs to the command, its flags too.
		c.Flags().SetInterspersed(false)
	}, k.execWatch)
	execWatch.Long = `Run a command on every change of a key (with --recursive, of any key under
it), one run at a time, until interrupted. The command sees the change in
its environment, as with etcdctl:

  ETCD_WATCH_ACTION          set, update, create, delete, expire, compareAndSwap, ...
  ETCD_WATCH_KEY             the key that changed
  ETCD_WATCH_VALUE           its new value ("" when deleted)
  ETCD_WATCH_MODIFIED_INDEX  the store index of the change

Flags go before the key: everything after it is the command and its
arguments. Changes to directories are not run, only noted on stderr.`
	execWatch.Example = `  cairn kv exec-watch --recursive /config -- sh -c 'echo "$ETCD_WATCH_ACTION $ETCD_WATCH_KEY=$ETCD_WATCH_VALUE"'`
	set.Long = "Set the value of a key, creating it (and missing parent directories) if needed.\n" +
		"With --swap-with-value or --swap-with-index, set it only if the current value\n" +
		"or modifiedIndex matches (compare-and-swap). A value that begins with '-'\n" +
		"goes after '--': cairn kv set -- /key -value."
	cmd.AddCommand(get, set, mk, mkdir, setdir, update, updatedir, rm, rmdir, ls, watch, execWatch)
	return cmd
}

// kvCmd holds what every kv subcommand shares.
type kvCmd struct {
	stdout, stderr io.Writer
	environ        []string
	cf             *clientflags.Flags
	output         string
}

type kvFunc func(ctx context.Context, c *v2client.Client, cmd *cobra.Command, args []string) error

// command makes a subcommand that runs fn with a client, reports its error
// as etcdctl does and returns it with etcdctl's status (see fail).
func (k *kvCmd) command(use, short string, flags func(*cobra.Command), fn kvFunc) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		// etcdctl checks the arguments itself, with its own messages.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			if err := k.run(ctx, cmd, args, fn); err != nil {
				return k.fail(err)
			}
			return nil
		},
		ValidArgsFunction: k.completeKey,
	}
	if flags != nil {
		flags(c)
	}
	return c
}

func (k *kvCmd) run(ctx context.Context, cmd *cobra.Command, args []string, fn kvFunc) error {
	switch k.output {
	case outputSimple, outputJSON, outputExtended:
	default:
		return fmt.Errorf("unsupported output format %q: use simple, json or extended", k.output)
	}
	c, err := k.cf.Client(k.environ)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(ctx, c, cmd, args)
}

// exitStatusError is a kv command's error with the exit status etcdctl
// gives it, which main exits with (ExitCode).
type exitStatusError struct {
	code     int
	err      error
	bare     bool // print the message as is, without etcdctl's "Error:  "
	reported bool // printed already (by fail): main only sets the status
}

func (e *exitStatusError) Error() string { return e.err.Error() }
func (e *exitStatusError) Unwrap() error { return e.err }

// ExitCode is the process exit status the error calls for.
func (e *exitStatusError) ExitCode() int { return e.code }

// Reported is whether the error has been printed, as etcdctl prints it.
func (e *exitStatusError) Reported() bool { return e.reported }

func withStatus(code int, err error) error { return &exitStatusError{code: code, err: err} }

// fail prints err as etcdctl does ("Error:  " and the message, on stderr)
// and returns it as a reported *exitStatusError with etcdctl's status
// (exitBadArgs for an error without one), for main to exit with.
func (k *kvCmd) fail(err error) error {
	var se *exitStatusError
	if !errors.As(err, &se) {
		se = &exitStatusError{code: exitBadArgs, err: err}
	}
	if se.bare {
		fmt.Fprintln(k.stderr, se.err)
	} else {
		fmt.Fprintln(k.stderr, "Error: ", se.err)
	}
	se.reported = true
	return se
}

// keyArg is the first argument, which etcdctl requires.
func keyArg(args []string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("key required")
	}
	return args[0], nil
}

// valueArg is the second argument or, as etcdctl does, all of stdin.
func valueArg(cmd *cobra.Command, args []string) (string, error) {
	if len(args) > 1 {
		return args[1], nil
	}
	b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), clientflags.MaxResponseBytes))
	if err != nil || len(b) == 0 {
		return "", errors.New("value required")
	}
	return string(b), nil
}
