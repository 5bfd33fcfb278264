package modcli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/cmd/cairn/clientflags"
)

// LockOptions are the settings of cairn lock.
type LockOptions struct {
	Name string
	// TTL of the queue entry, whole seconds (at least 1): the lock is lost
	// this long after the last renewal the member got.
	TTL time.Duration
	// Timeout is how long to wait for the lock: negative waits as long as
	// it takes, 0 tries once.
	Timeout time.Duration
	// Value identifies this holder's queue entry; "" makes one unique to
	// this process (host:pid:random). Two holders with one value share the
	// entry, and so the lock.
	Value string
	// Grace is the time the command has between SIGTERM and SIGKILL when
	// the lock is lost.
	Grace   time.Duration
	Command []string // the command and its arguments
}

// uniqueValue is host:pid:random, the default value of a lock's entry.
func uniqueValue() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "host"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + ":" + strconv.Itoa(os.Getpid()) + ":" + hex.EncodeToString(b)
}

// Lock is cairn lock: it acquires the lock o.Name, runs o.Command while it
// holds it (with CAIRN_LOCK_INDEX, the fencing token, and CAIRN_LOCK_NAME
// in its environment), renews it meanwhile, and releases it when the
// command exits. The error is an *ExitError with the status to exit with
// (nil: status 0).
func Lock(ctx context.Context, c *v2client.Client, o LockOptions, e Env) error {
	if len(o.Command) == 0 {
		return &ExitError{Code: ExitFailed, Err: errors.New("no command to run: cairn lock NAME [flags] -- CMD [ARGS...]")}
	}
	name, err := cleanName(o.Name)
	if err != nil {
		return &ExitError{Code: ExitFailed, Err: err}
	}
	m, err := newMembers(c, e.Log)
	if err != nil {
		return &ExitError{Code: ExitFailed, Err: err}
	}
	mo := module{m: m, kind: "lock", name: name}
	value := o.Value
	if value == "" {
		value = uniqueValue()
	}
	l := &lease{what: "lock " + name, ttl: o.TTL}
	l.renew = func(ctx context.Context) error { return mo.lockRenew(ctx, o.TTL, l.index) }
	l.release = func(ctx context.Context) error { return mo.lockRelease(ctx, l.index, "") }
	deadline := deadlineOf(o.Timeout)

	e.Log.Info("waiting for the lock", "name", name, "value", value, "ttl", o.TTL)
	var renewedAt time.Time
	sig, err := interruptible(ctx, e.Signals, func(ctx context.Context) error {
		var err error
		renewedAt, err = acquire(ctx, l, e, func(ctx context.Context) (uint64, error) {
			return mo.lockAcquire(ctx, o.TTL, value, deadline)
		})
		return err
	})
	if sig != nil || err != nil {
		// Whatever was queued (or granted just now) goes.
		giveUp(ctx, &lease{what: "queue entry of " + l.what, ttl: o.TTL, release: func(ctx context.Context) error {
			return mo.lockRelease(ctx, 0, value)
		}}, false, e.Log)
		return acquireError(l.what, sig, o.Timeout, err)
	}
	e.Log.Info("lock acquired", "name", name, "index", l.index)
	env := append(append([]string(nil), e.Environ...),
		"CAIRN_LOCK_NAME="+name, "CAIRN_LOCK_INDEX="+strconv.FormatUint(l.index, 10))
	return runHeld(ctx, l, renewedAt, o.Command, env, o.Grace, e)
}

// deadlineOf is the deadline of a wait of timeout (zero: none).
func deadlineOf(timeout time.Duration) time.Time {
	if timeout < 0 {
		return time.Time{}
	}
	return time.Now().Add(timeout)
}

// acquire waits for the lease l with get (a lock's POST, a candidate's
// PUT), then renews it once: the member may have set the entry's TTL long
// before it granted it, and the command runs only under a lease whose end
// is known. An entry lost in between is queued again. It sets l.index and
// returns when the renewal was sent.
func acquire(ctx context.Context, l *lease, e Env, get func(context.Context) (uint64, error)) (time.Time, error) {
	for {
		index, err := get(ctx)
		if err != nil {
			return time.Time{}, err
		}
		l.index = index
		sent, err := firstRenewal(ctx, l)
		if err == nil {
			return sent, nil
		}
		if ctx.Err() != nil {
			return time.Time{}, ctx.Err()
		}
		e.Log.Warn("lost right after it was granted; queueing again", "what", l.what, "index", index, "error", err)
	}
}

// firstRenewal renews l until a renewal succeeds (it returns when that one
// was sent), the entry is gone, or a TTL has passed.
func firstRenewal(ctx context.Context, l *lease) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, l.ttl)
	defer cancel()
	pause := minPause
	for {
		sent := time.Now()
		err := l.renew(ctx)
		switch {
		case err == nil:
			return sent, nil
		case errors.Is(err, errGone):
			return time.Time{}, err
		case !sleep(ctx, pause):
			return time.Time{}, err
		}
		pause = min(2*pause, maxPause)
	}
}

// acquireError is how a wait that did not end in a lease ends cairn.
func acquireError(what string, sig os.Signal, timeout time.Duration, err error) error {
	switch {
	case sig != nil:
		return &ExitError{Code: signalCode(sig), Err: fmt.Errorf("%s: interrupted (%v) while waiting; nothing was run", what, sig)}
	case errors.Is(err, errNotGranted):
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%s: not acquired within --timeout %v: %w; nothing was run", what, timeout, err)}
	}
	return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%s: %w; nothing was run", what, clientflags.WithHints(err))}
}
