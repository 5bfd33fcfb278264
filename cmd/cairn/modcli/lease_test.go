package modcli

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestKeep drives the renewal loop in a synctest bubble: simulated time,
// renewals that fail as scripted.
func TestKeep(t *testing.T) {
	errDown := errors.New("member down")
	tests := []struct {
		name string
		// renew answers attempt n (0-based) made at t (since the start).
		renew    func(n int, t time.Duration) error
		hang     bool          // attempts after the first never answer
		wantLost string        // "" for kept until the test stops it
		lostAt   time.Duration // when the loss is reported
	}{
		{"kept", func(int, time.Duration) error { return nil }, false, "", 0},
		{"failures within the TTL", func(n int, _ time.Duration) error {
			if n%3 != 2 {
				return errDown
			}
			return nil
		}, false, "", 0},
		{"gone", func(n int, _ time.Duration) error {
			if n == 2 {
				return gone("deleted", nil)
			}
			return nil
		}, false, "deleted", 9 * time.Second},
		{"no renewal for a TTL", func(n int, _ time.Duration) error {
			if n >= 1 {
				return errDown
			}
			return nil
		}, false, "no renewal succeeded within its TTL of 9s (last error: member down)", 3*time.Second + 9*time.Second},
		{"a renewal hangs", func(int, time.Duration) error { return nil }, true,
			"no renewal succeeded within its TTL of 9s", 3*time.Second + 9*time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				n := 0
				l := &lease{what: "lock x", index: 7, ttl: 9 * time.Second, renew: func(ctx context.Context) error {
					err := func() error {
						if n >= 1 && tc.hang { // a member that never answers: ctx ends it
							<-ctx.Done()
							return ctx.Err()
						}
						return tc.renew(n, time.Since(start))
					}()
					n++
					return err
				}}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				err := keep(ctx, l, start, slog.New(slog.NewTextHandler(io.Discard, nil)))
				took := time.Since(start)
				if tc.wantLost == "" {
					if err != nil || took != time.Minute {
						t.Fatalf("keep: %v after %v; want kept for the minute", err, took)
					}
					return
				}
				var le *LostError
				if !errors.As(err, &le) || !strings.Contains(err.Error(), tc.wantLost) || le.Index != 7 {
					t.Fatalf("keep: %v; want lost: %s", err, tc.wantLost)
				}
				if took != tc.lostAt {
					t.Fatalf("lost after %v; want %v", took, tc.lostAt)
				}
			})
		})
	}
}
