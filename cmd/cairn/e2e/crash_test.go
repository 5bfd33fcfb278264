package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/store"
)

// TestCrashRecovery writes keys from concurrent clients, kills cairn with
// SIGKILL in the middle of the writes, restarts it on the same data dir
// and checks that every acknowledged write survived, and that a TTL key
// written before the kill survives the restart and then expires, on each
// log store.
func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	for _, ls := range []string{"boltdb", "wal"} {
		t.Run(ls, func(t *testing.T) {
			t.Parallel()
			crashRecovery(t, ls)
		})
	}
}

func crashRecovery(t *testing.T, logStore string) {
	const (
		keys    = 200
		workers = 16
		ttl     = 3 // seconds
	)
	cfg := &CairnConfig{Bin: needCairn(t), PKI: testPKI, Args: []string{"--log-store", logStore}}
	s := StartCairn(t, cfg)

	c := s.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Create(ctx, "/crash/ttl", "t", ttl*time.Second); err != nil {
		t.Fatalf("PUT ttl key: %v", err)
	}
	ttlWritten := time.Now()

	first := s
	var (
		next, acked atomic.Int64
		mu          sync.Mutex
		ackedKeys   = map[int]uint64{} // key number -> acknowledged modifiedIndex
		wg          sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1))
				if i > keys {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				ev, err := c.Set(ctx, fmt.Sprintf("/crash/k%03d", i), fmt.Sprintf("v%03d", i), v2client.SetOptions{})
				cancel()
				if err != nil {
					continue // not acknowledged: may or may not survive
				}
				mu.Lock()
				ackedKeys[i] = ev.Node.ModifiedIndex
				mu.Unlock()
				if acked.Add(1) == keys/2 {
					// Kill from here, with the other writers' requests in
					// flight: polling from the test goroutine is too slow.
					first.Proc.Kill()
				}
			}
		})
	}
	wg.Wait()
	if acked.Load() < keys/2 {
		t.Fatalf("only %d of %d writes were acknowledged before any kill", acked.Load(), keys)
	} // the writers are done: ackedKeys is ours now
	t.Logf("%d of %d writes acknowledged before SIGKILL", len(ackedKeys), keys)

	s = StartCairn(t, cfg)
	c = s.Client(t)
	restarted := time.Since(ttlWritten)
	t.Logf("ready again %v after the TTL key was written", restarted.Round(time.Millisecond))
	get := func(key string) (*store.Event, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return c.Get(ctx, key, v2client.GetOptions{})
	}
	_, err := get("/crash/ttl")
	switch {
	case err == nil:
	case restarted >= ttl*time.Second-300*time.Millisecond:
		// The expiry time is absolute: after a slow restart the key may
		// rightly be gone already. Say so rather than fail on a slow machine.
		t.Logf("restart took %v, too close to the TTL of %ds to check that the key survived", restarted, ttl)
	default:
		t.Errorf("TTL key (ttl=%ds) missing %v after it was written, right after the restart: %v", ttl, restarted.Round(time.Millisecond), err)
	}

	var maxIndex uint64
	for i, idx := range ackedKeys {
		maxIndex = max(maxIndex, idx)
		ev, err := get(fmt.Sprintf("/crash/k%03d", i))
		if err != nil || ev.Node.Value == nil || *ev.Node.Value != fmt.Sprintf("v%03d", i) {
			t.Errorf("acknowledged key k%03d (index %d) after restart: %+v, %v", i, idx, ev, err)
		}
	}
	if ev, err := get("/crash"); err != nil || ev.EtcdIndex < maxIndex {
		t.Errorf("X-Etcd-Index after restart = %+v, %v; want at least the acknowledged index %d", ev, err, maxIndex)
	}

	Poll(t, 15*time.Second, "the TTL key to expire after the restart", func() error {
		ev, err := get("/crash/ttl")
		var se *store.Error
		if errors.As(err, &se) && se.ErrorCode == store.EcodeKeyNotFound {
			return nil
		}
		return fmt.Errorf("%+v, %v", ev, err)
	})
}
