package modcli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/cmd/cairn/clientflags"
)

// ElectOptions are the settings of cairn elect (campaigning).
type ElectOptions struct {
	Name string // the election
	ID   string // this candidate's name, unique among the candidates
	// TTL of the candidate's queue entry, whole seconds (at least 1).
	TTL time.Duration
	// Timeout is how long to campaign: negative as long as it takes, 0
	// one try.
	Timeout time.Duration
	Grace   time.Duration // between SIGTERM and SIGKILL when leadership is lost
	Command []string      // run while leader; none: hold until a signal
}

// Elect is cairn elect --name: it campaigns in the election o.Name until
// o.ID leads, then runs o.Command while it leads (with CAIRN_ELECTION,
// CAIRN_LEADER_ID and CAIRN_LEADER_INDEX in its environment) and resigns
// when it exits; without a command it prints "elected ID index N" and
// leads until a signal. Leadership is renewed meanwhile; lost, it ends the
// command and cairn with ExitFailed.
func Elect(ctx context.Context, c *v2client.Client, o ElectOptions, e Env) error {
	name, err := cleanName(o.Name)
	if err != nil {
		return &ExitError{Code: ExitFailed, Err: err}
	}
	if o.ID == "" {
		return &ExitError{Code: ExitFailed, Err: errors.New("--name is required: the candidate's name, unique among the candidates (or --observe)")}
	}
	m, err := newMembers(c, e.Log)
	if err != nil {
		return &ExitError{Code: ExitFailed, Err: err}
	}
	mo := module{m: m, kind: "leader", name: name}
	l := &lease{what: "leadership of " + name, ttl: o.TTL}
	l.renew = func(ctx context.Context) error { return mo.leaderRenew(ctx, o.ID, o.TTL, l.index) }
	l.release = func(ctx context.Context) error { return mo.resign(ctx, o.ID) }
	deadline := deadlineOf(o.Timeout)

	e.Log.Info("campaigning", "election", name, "candidate", o.ID, "ttl", o.TTL)
	var renewedAt time.Time
	sig, err := interruptible(ctx, e.Signals, func(ctx context.Context) error {
		var err error
		renewedAt, err = acquire(ctx, l, e, func(ctx context.Context) (uint64, error) {
			return mo.campaign(ctx, o.ID, o.TTL, deadline)
		})
		return err
	})
	if sig != nil || err != nil {
		giveUp(ctx, l, false, e.Log) // the candidacy goes
		return acquireError(l.what, sig, o.Timeout, err)
	}
	e.Log.Info("elected", "election", name, "candidate", o.ID, "index", l.index)
	if len(o.Command) == 0 {
		if _, err := fmt.Fprintf(e.Stdout, "elected %s index %d\n", o.ID, l.index); err != nil {
			giveUp(ctx, l, false, e.Log)
			return &ExitError{Code: ExitFailed, Err: err}
		}
		return holdHeld(ctx, l, renewedAt, e)
	}
	env := append(append([]string(nil), e.Environ...), "CAIRN_ELECTION="+name,
		"CAIRN_LEADER_ID="+o.ID, "CAIRN_LEADER_INDEX="+strconv.FormatUint(l.index, 10))
	return runHeld(ctx, l, renewedAt, o.Command, env, o.Grace, e)
}

// observeRefresh bounds each wait of an observer. A wait answers a change
// from the leader the member read when the wait began, which may already
// be newer than the one the observer printed (a change between its read
// and the wait's): the observer reads the leader again at least this
// often, so such a change is printed late, never missed.
var observeRefresh = 10 * time.Second

// Observe is cairn elect --observe: it prints the leader of the election
// name, then each new one as it changes, one line each, until a signal (or
// ctx) ends it. A time without a leader is logged, not printed. Leaders
// that come and go between two reads may not be printed.
func Observe(ctx context.Context, c *v2client.Client, name string, e Env) error {
	name, err := cleanName(name)
	if err != nil {
		return &ExitError{Code: ExitFailed, Err: err}
	}
	m, err := newMembers(c, e.Log)
	if err != nil {
		return &ExitError{Code: ExitFailed, Err: err}
	}
	mo := module{m: m, kind: "leader", name: name}
	last, printed := "", false
	show := func(leader string) error {
		if printed && leader == last {
			return nil
		}
		last, printed = leader, true
		if leader == "" {
			e.Log.Info("no leader", "election", name)
			return nil
		}
		_, err := fmt.Fprintln(e.Stdout, leader)
		return err
	}
	_, err = interruptible(ctx, e.Signals, func(ctx context.Context) error {
		pause := minPause
		for {
			// The current leader first (a change between two waits is
			// seen here), then the next change.
			cur, err := mo.leader(ctx)
			if err == nil {
				if err = show(cur); err != nil {
					return err
				}
				var next string
				wctx, cancel := context.WithTimeout(ctx, observeRefresh)
				next, err = mo.waitLeader(wctx)
				cancel()
				if err == nil {
					pause = minPause
					if err = show(next); err != nil {
						return err
					}
					continue
				}
				if wctx.Err() != nil && ctx.Err() == nil {
					continue // no change within observeRefresh: read again
				}
			}
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, errGone):
				// No such election yet: look again a little later.
			case !isMemberError(err):
				return err
			}
			if !sleep(ctx, pause) {
				return nil
			}
			pause = min(2*pause, maxPause)
		}
	})
	if err != nil {
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("observe %s: %w", name, clientflags.WithHints(err))}
	}
	return nil
}
