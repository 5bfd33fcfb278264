package modcli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// lease is a held lock or leadership: what renews it and what gives it
// up.
type lease struct {
	what  string // "lock backups", "leadership of db"
	index uint64 // the fencing token
	ttl   time.Duration
	// renew makes one attempt, bounded by its ctx: nil renewed, an error
	// wrapping errGone the entry is gone, any other error a failed attempt.
	renew func(ctx context.Context) error
	// release gives the lease up; an entry already gone is no error.
	release func(ctx context.Context) error
}

// LostError is the end of a lease that the holder did not choose.
type LostError struct {
	What  string // "lock backups", "leadership of db"
	Index uint64
	Why   string
}

func (e *LostError) Error() string {
	return fmt.Sprintf("lost the %s (index %d): %s", e.What, e.Index, e.Why)
}

// retryPause is the pause after a failed renewal: short against the TTL,
// so that a failover to another member fits in it several times.
func retryPause(ttl time.Duration) time.Duration {
	return min(max(ttl/15, 100*time.Millisecond), time.Second)
}

// keep renews l about every ttl/3 until ctx ends (it then returns nil) or
// the lease is lost: a renewal found the entry gone, or none succeeded for
// a whole TTL counted from when the last successful one was sent (the
// member counts from when it got it, later, so the lease never outlives
// the member's entry). renewedAt is when the last successful renewal (or
// the acquisition) was sent. A failed renewal is tried again on the next
// member after a short pause, each attempt bounded by what is left of the
// TTL.
func keep(ctx context.Context, l *lease, renewedAt time.Time, log *slog.Logger) error {
	interval := l.ttl / 3
	end := renewedAt.Add(l.ttl)
	next := renewedAt.Add(interval)
	var lastErr error
	for {
		if !sleep(ctx, time.Until(next)) {
			return nil
		}
		if !time.Now().Before(end) {
			return &LostError{What: l.what, Index: l.index,
				Why: fmt.Sprintf("no renewal succeeded within its TTL of %v (last error: %v)", l.ttl, lastErr)}
		}
		sent := time.Now()
		actx, cancel := context.WithDeadline(ctx, end)
		err := l.renew(actx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case err == nil:
			if lastErr != nil {
				log.Info("renewed again", "what", l.what, "index", l.index)
			}
			end, next, lastErr = sent.Add(l.ttl), sent.Add(interval), nil
		case errors.Is(err, errGone):
			return &LostError{What: l.what, Index: l.index, Why: err.Error()}
		default:
			if errors.Is(err, context.DeadlineExceeded) && lastErr != nil {
				err = lastErr // the attempt ran out of TTL: the error before says more
			}
			log.Warn("renewal failed; trying again", "what", l.what, "index", l.index, "left", time.Until(end).Round(time.Millisecond), "error", err)
			lastErr = err
			next = time.Now().Add(retryPause(l.ttl))
			if next.After(end) {
				next = end
			}
		}
	}
}
