package modcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/cmd/cairn/clientflags"
)

// Defaults of the flags.
const (
	DefaultTTL   = 15 * time.Second
	DefaultGrace = 10 * time.Second
)

// Streams are the standard streams of the command line.
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// common are the flags cairn lock and cairn elect share.
type common struct {
	fs           *pflag.FlagSet
	cf           *clientflags.Flags
	ttl, timeout time.Duration
	grace        time.Duration
	verbose      bool
}

// add defines the connection flags (the other client commands' --timeout
// is --request-timeout here: --timeout is how long to wait) and the
// shared ones.
func (c *common) add(fs *pflag.FlagSet, waitWhat string) {
	c.fs = fs
	tmp := pflag.NewFlagSet("client", pflag.ContinueOnError)
	c.cf = clientflags.Add(tmp)
	tmp.VisitAll(func(f *pflag.Flag) {
		if f.Name == "timeout" {
			f.Name = "request-timeout"
			f.Usage, f.DefValue = "timeout of each request to one member, connection included (default ttl/4, between 1s and 5s; waiting for the "+waitWhat+" is not bounded by it)", "0s"
		}
		fs.AddFlag(f)
	})
	fs.DurationVar(&c.ttl, "ttl", DefaultTTL, "TTL of the queue entry, whole seconds: the "+waitWhat+" is lost this long after the last renewal (renewed about every ttl/3)")
	fs.DurationVar(&c.timeout, "timeout", 0, "how long to wait for the "+waitWhat+" (0: try once); by default as long as it takes")
	fs.DurationVar(&c.grace, "grace", DefaultGrace, "when the "+waitWhat+" is lost: time the command has to exit between SIGTERM and SIGKILL")
	fs.BoolVar(&c.verbose, "verbose", false, "log each step (waiting, acquired, renewals failing over, released) to stderr, not only warnings")
}

// settings checks the shared flags: the TTL in whole seconds, the wait
// (negative: unbounded).
func (c *common) settings() (ttl, timeout time.Duration, err error) {
	if c.ttl < time.Second {
		return 0, 0, fmt.Errorf("--ttl %v: at least 1s", c.ttl)
	}
	ttl = c.ttl.Round(time.Second)
	if ttl < c.ttl {
		ttl += time.Second
	}
	timeout = -1
	if c.fs.Changed("timeout") {
		if c.timeout < 0 {
			return 0, 0, fmt.Errorf("--timeout %v: not negative (0: try once)", c.timeout)
		}
		timeout = c.timeout
	}
	if c.grace < 0 {
		return 0, 0, fmt.Errorf("--grace %v: not negative", c.grace)
	}
	return ttl, timeout, nil
}

// client is the v2 client of the connection flags; unless
// --request-timeout is given, each request gets ttl/4, between 1s and 5s:
// several attempts on other members fit in a renewal's TTL.
func (c *common) client(environ []string, ttl time.Duration) (*v2client.Client, error) {
	cfg, err := c.cf.Config(environ)
	if err != nil {
		return nil, err
	}
	if !c.fs.Changed("request-timeout") {
		cfg.Timeout = min(max(ttl/4, time.Second), 5*time.Second)
	}
	return v2client.New(cfg)
}

// env is the run's Env: its streams, the log (warnings only unless
// --verbose) and the signals to forward, until stop.
func (c *common) env(s Streams, environ []string, prog string) (e Env, stop func()) {
	level := slog.LevelWarn
	if c.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(s.Stderr, &slog.HandlerOptions{Level: level})).With("prog", prog)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	stdin := s.Stdin
	if stdin == nil {
		stdin = os.Stdin
	}
	return Env{Stdin: stdin, Stdout: s.Stdout, Stderr: s.Stderr, Environ: environ, Signals: sigs, Log: log},
		func() { signal.Stop(sigs) }
}

// splitArgs splits NAME [-- CMD ARGS...]: dash is where "--" was (cobra's
// ArgsLenAtDash, -1 for none).
func splitArgs(args []string, dash int, usage string) (name string, command []string, err error) {
	switch {
	case len(args) == 0 || dash == 0:
		return "", nil, fmt.Errorf("give a name first: %s", usage)
	case dash > 1:
		return "", nil, fmt.Errorf("one name before --, not %q: %s", args[:dash], usage)
	}
	return args[0], args[1:], nil
}

// usageError is a bad command line: exit status ExitFailed.
func usageError(err error) error { return &ExitError{Code: ExitFailed, Err: err} }

// LockFlags are the flags of cairn lock.
type LockFlags struct {
	common
	value string
}

// AddLockFlags defines cairn lock's flags on fs.
func AddLockFlags(fs *pflag.FlagSet) *LockFlags {
	f := &LockFlags{}
	f.add(fs, "lock")
	fs.StringVar(&f.value, "value", "", "value of this holder's queue entry, shown by GET /mod/v2/lock/NAME (default host:pid:random; holders with one value share the lock)")
	return f
}

// Run is cairn lock NAME [flags] -- CMD [ARGS...]; dash is cobra's
// ArgsLenAtDash.
func (f *LockFlags) Run(ctx context.Context, args []string, dash int, s Streams, environ []string) error {
	const usage = "cairn lock NAME [flags] -- CMD [ARGS...]"
	name, command, err := splitArgs(args, dash, usage)
	if err == nil && len(command) == 0 {
		err = errors.New("no command to run: " + usage)
	}
	ttl, timeout, ferr := f.settings()
	if f.value == "-" {
		ferr = errors.Join(ferr, errors.New(`--value "-" is the value of every entry that has none: give one of this holder's own`))
	}
	if err = errors.Join(err, ferr); err != nil {
		return usageError(err)
	}
	c, err := f.client(environ, ttl)
	if err != nil {
		return usageError(clientflags.WithHints(err))
	}
	defer c.Close()
	e, stop := f.env(s, environ, "cairn lock")
	defer stop()
	return Lock(context.WithoutCancel(ctx), c, LockOptions{Name: name, TTL: ttl, Timeout: timeout,
		Value: f.value, Grace: f.grace, Command: command}, e)
}

// ElectFlags are the flags of cairn elect.
type ElectFlags struct {
	common
	id      string
	observe bool
}

// AddElectFlags defines cairn elect's flags on fs.
func AddElectFlags(fs *pflag.FlagSet) *ElectFlags {
	f := &ElectFlags{}
	f.add(fs, "leadership")
	fs.StringVar(&f.id, "name", "", "this candidate's name, unique among the candidates (what GET /mod/v2/leader/NAME answers while it leads)")
	fs.BoolVar(&f.observe, "observe", false, "do not campaign: print the leader's name, then each new one as it changes, until interrupted")
	return f
}

// Run is cairn elect NAME --name ID [-- CMD [ARGS...]] or cairn elect
// NAME --observe; dash is cobra's ArgsLenAtDash.
func (f *ElectFlags) Run(ctx context.Context, args []string, dash int, s Streams, environ []string) error {
	const usage = "cairn elect NAME --name ID [flags] [-- CMD [ARGS...]], or cairn elect NAME --observe"
	name, command, err := splitArgs(args, dash, usage)
	ttl, timeout, ferr := f.settings()
	err = errors.Join(err, ferr)
	switch {
	case f.observe && (f.id != "" || len(command) > 0):
		err = errors.Join(err, errors.New("--observe campaigns for no one: no --name, no command"))
	case !f.observe && f.id == "":
		err = errors.Join(err, errors.New("--name is required (the candidate's name), or --observe: "+usage))
	}
	if err != nil {
		return usageError(err)
	}
	c, err := f.client(environ, ttl)
	if err != nil {
		return usageError(clientflags.WithHints(err))
	}
	defer c.Close()
	e, stop := f.env(s, environ, "cairn elect")
	defer stop()
	ctx = context.WithoutCancel(ctx)
	if f.observe {
		return Observe(ctx, c, name, e)
	}
	return Elect(ctx, c, ElectOptions{Name: name, ID: f.id, TTL: ttl, Timeout: timeout,
		Grace: f.grace, Command: command}, e)
}
