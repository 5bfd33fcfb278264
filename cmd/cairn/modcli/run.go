package modcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
	"time"
)

// Env is what cairn lock and cairn elect run in: the command's standard
// streams and environment, the signals to forward, and the log.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Environ        []string
	// Signals are the signals cairn got (SIGINT, SIGTERM, SIGHUP): each is
	// forwarded to the command; before the command runs, one gives up the
	// wait; without a command, one gives up the lease.
	Signals <-chan os.Signal
	Log     *slog.Logger
}

// signalCode is the exit status of a process ended by sig.
func signalCode(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return exitSignalBase + int(s)
	}
	return exitSignalBase + int(syscall.SIGINT)
}

// interruptible runs acquire with a context that a signal cancels, and
// reports the signal that did.
func interruptible(ctx context.Context, signals <-chan os.Signal, acquire func(context.Context) error) (os.Signal, error) {
	ctx, cancel := context.WithCancel(ctx)
	got := make(chan os.Signal, 1)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case sig := <-signals:
			got <- sig
			cancel()
		case <-ctx.Done():
		}
	}()
	err := acquire(ctx)
	cancel()
	<-stopped
	select {
	case sig := <-got:
		return sig, err
	default:
		return nil, err
	}
}

// releaseBound bounds giving a lease up: past it the entry is left to
// expire by its TTL. A lost lease's entry is gone or soon will be: it is
// not worth waiting long for a member then.
func releaseBound(ttl time.Duration, lost bool) time.Duration {
	if lost {
		return min(ttl, 5*time.Second)
	}
	return max(ttl, 10*time.Second)
}

// giveUp releases l, with its own time bound (the caller's ctx may have
// ended: the release must still go out), and says so in the log.
func giveUp(ctx context.Context, l *lease, lost bool, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseBound(l.ttl, lost))
	defer cancel()
	pause := minPause
	for {
		err := l.release(ctx)
		switch {
		case err == nil || errors.Is(err, errGone):
			log.Info("released", "what", l.what, "index", l.index)
			return
		case !isMemberError(err) || !sleep(ctx, pause):
			log.Warn("could not release; it expires by its TTL", "what", l.what, "index", l.index, "ttl", l.ttl, "error", err)
			return
		}
		pause = min(2*pause, maxPause)
	}
}

// keeper is keep running in a goroutine of its own.
type keeper struct {
	stop   context.CancelFunc
	lost   chan error // keep's result, sent once
	result error
	ended  bool
}

func startKeeper(ctx context.Context, l *lease, renewedAt time.Time, log *slog.Logger) *keeper {
	ctx, cancel := context.WithCancel(ctx)
	k := &keeper{stop: cancel, lost: make(chan error, 1)}
	go func() { k.lost <- keep(ctx, l, renewedAt, log) }()
	return k
}

// got records keep's result, received from k.lost.
func (k *keeper) got(err error) {
	k.result, k.ended, k.lost = err, true, nil
}

// end stops the renewals and returns keep's result: a *LostError if the
// lease was lost before they stopped.
func (k *keeper) end() error {
	k.stop()
	if !k.ended {
		k.got(<-k.lost)
	}
	return k.result
}

// runHeld runs argv while l is held (renewed since renewedAt) and returns
// how cairn should exit: with the command's status once it has exited and
// l is released; with ExitFailed once l is lost (the command is then
// terminated first: SIGTERM to its group, SIGKILL after grace). Signals are
// forwarded to the command.
func runHeld(ctx context.Context, l *lease, renewedAt time.Time, argv, env []string, grace time.Duration, e Env) error {
	c, err := startChild(argv, env, e.Stdin, e.Stdout, e.Stderr, grace)
	if err != nil {
		giveUp(ctx, l, false, e.Log)
		return err
	}
	e.Log.Info("running", "what", l.what, "index", l.index, "command", argv[0], "pid", c.cmd.Process.Pid)
	// The renewals go on until the command has exited, whatever ctx does.
	k := startKeeper(context.WithoutCancel(ctx), l, renewedAt, e.Log)
	defer k.stop()
	done := ctx.Done()
	for {
		select {
		case sig := <-e.Signals:
			e.Log.Info("forwarding signal", "signal", sig, "pid", c.cmd.Process.Pid)
			c.signal(sig)
		case <-done:
			// The caller gives up (no signal to forward): as SIGTERM.
			done = nil
			c.signal(syscall.SIGTERM)
		case <-c.done:
			code := c.exitCode()
			if err := k.end(); err != nil {
				// Lost just as the command ended: its work may have
				// outlived the lock, which the caller must know.
				giveUp(ctx, l, true, e.Log)
				return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%w; %s exited meanwhile with status %d", err, argv[0], code)}
			}
			e.Log.Info("command exited", "status", code)
			giveUp(ctx, l, false, e.Log)
			return exitWith(code)
		case err := <-k.lost:
			k.got(err)
			if err == nil {
				continue // ctx ended: handled above
			}
			e.Log.Error("lease lost; stopping the command", "what", l.what, "index", l.index, "error", err, "grace", grace)
			c.terminate(grace)
			giveUp(ctx, l, true, e.Log)
			return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%w; %s was stopped (status %d)", err, argv[0], c.exitCode())}
		}
	}
}

// holdHeld holds l without a command until a signal (then releases it and
// returns nil) or until it is lost (ExitFailed).
func holdHeld(ctx context.Context, l *lease, renewedAt time.Time, e Env) error {
	k := startKeeper(ctx, l, renewedAt, e.Log)
	defer k.stop()
	select {
	case sig := <-e.Signals:
		e.Log.Info("signal: giving up", "what", l.what, "signal", sig)
	case <-ctx.Done():
	case err := <-k.lost:
		k.got(err)
	}
	if err := k.end(); err != nil {
		giveUp(ctx, l, true, e.Log) // a new entry of the same name, if any, goes too
		return &ExitError{Code: ExitFailed, Err: err}
	}
	giveUp(ctx, l, false, e.Log)
	return nil
}
