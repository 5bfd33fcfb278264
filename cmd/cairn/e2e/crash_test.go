package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCrashRecovery writes keys from concurrent clients, kills cairn with
// SIGKILL in the middle of the writes, restarts it on the same data dir
// and checks that every acknowledged write survived, and that a TTL key
// written before the kill survives the restart and then expires.
func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	const (
		keys    = 200
		workers = 16
		ttl     = 3 // seconds
	)
	cfg := &CairnConfig{Bin: needCairn(t), PKI: testPKI}
	s := StartCairn(t, cfg)

	resp, body := s.Put(t, "/v2/keys/crash/ttl", "", "value=t&ttl="+strconv.Itoa(ttl))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT ttl key: %d %s", resp.StatusCode, body)
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
				resp, body, err := s.Do(ctx, http.MethodPut, fmt.Sprintf("/v2/keys/crash/k%03d", i), "", fmt.Sprintf("value=v%03d", i))
				cancel()
				if err != nil || resp.StatusCode/100 != 2 {
					continue // not acknowledged: may or may not survive
				}
				var ev struct {
					Node struct {
						ModifiedIndex uint64 `json:"modifiedIndex"`
					} `json:"node"`
				}
				_ = json.Unmarshal(body, &ev)
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
	restarted := time.Since(ttlWritten)
	t.Logf("ready again %v after the TTL key was written", restarted.Round(time.Millisecond))
	resp, body = s.Get(t, "/v2/keys/crash/ttl", "")
	switch {
	case resp.StatusCode == http.StatusOK:
	case restarted >= ttl*time.Second-300*time.Millisecond:
		// The expiry time is absolute: after a slow restart the key may
		// rightly be gone already. Say so rather than fail on a slow machine.
		t.Logf("restart took %v, too close to the TTL of %ds to check that the key survived", restarted, ttl)
	default:
		t.Errorf("TTL key (ttl=%ds) missing %v after it was written, right after the restart: %d %s", ttl, restarted.Round(time.Millisecond), resp.StatusCode, body)
	}

	var maxIndex uint64
	for i, idx := range ackedKeys {
		maxIndex = max(maxIndex, idx)
		resp, body := s.Get(t, fmt.Sprintf("/v2/keys/crash/k%03d", i), "")
		var ev struct {
			Node struct {
				Value string `json:"value"`
			} `json:"node"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &ev) != nil || ev.Node.Value != fmt.Sprintf("v%03d", i) {
			t.Errorf("acknowledged key k%03d (index %d) after restart: %d %s", i, idx, resp.StatusCode, body)
		}
	}
	resp, _ = s.Get(t, "/v2/keys/crash", "")
	if got, _ := strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64); got < maxIndex {
		t.Errorf("X-Etcd-Index after restart = %d, below the acknowledged index %d", got, maxIndex)
	}

	Poll(t, 15*time.Second, "the TTL key to expire after the restart", func() error {
		resp, body := s.Get(t, "/v2/keys/crash/ttl", "")
		if resp.StatusCode == http.StatusNotFound {
			return nil
		}
		return fmt.Errorf("%d %s", resp.StatusCode, body)
	})
}
