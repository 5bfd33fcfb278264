package managed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrStorageClosed is returned by the lock methods of a closed Storage.
var ErrStorageClosed = errors.New("tlsauth: certmagic storage closed")

// heldLock is a lock this Storage holds.
type heldLock struct {
	name, key string
	value     string // owner and a random token: ours alone
	token     uint64 // the key's createdIndex: the fencing token
	lost      atomic.Bool
	stopOnce  sync.Once
	stop      chan struct{}
	done      chan struct{}
}

func (h *heldLock) stopRefresh() {
	h.stopOnce.Do(func() { close(h.stop) })
	<-h.done
}

// Lock implements certmagic.Locker. A lock is the key Prefix/locks/<name>,
// created only if absent, with a TTL of LockTTL; its holder refreshes it
// every LockRefresh (compare-and-swap on its own random value, so it never
// extends a lock that has passed to another holder). A holder that dies
// stops refreshing and its lock expires after at most LockTTL, through the
// cluster's replicated expiry. Lock retries every LockPoll until it gets
// the lock, ctx ends or the store fails.
//
// The lock key's createdIndex is a fencing token (LockToken): the store
// index grows with every write, so each acquisition of a name gets a
// larger token than every earlier one.
func (s *Storage) Lock(ctx context.Context, name string) error {
	t := time.NewTicker(s.cfg.LockPoll)
	defer t.Stop()
	for {
		ok, err := s.TryLock(ctx, name)
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tlsauth: certmagic storage: lock %s: %w", name, context.Cause(ctx))
		case <-s.close:
			return ErrStorageClosed
		case <-t.C:
		}
	}
}

// TryLock implements certmagic.TryLocker: Lock without waiting, false if
// another holder has the lock.
func (s *Storage) TryLock(ctx context.Context, name string) (bool, error) {
	select {
	case <-s.close:
		return false, ErrStorageClosed
	default:
	}
	var nonce [16]byte
	_, _ = rand.Read(nonce[:]) // never fails
	h := &heldLock{
		name: name, key: s.lockKey(name),
		value: s.cfg.Owner + " " + hex.EncodeToString(nonce[:]),
		stop:  make(chan struct{}), done: make(chan struct{}),
	}
	token, err := s.kv.Create(ctx, h.key, h.value, s.cfg.LockTTL)
	switch {
	case errors.Is(err, ErrKVExists):
		return false, nil
	case err != nil:
		// The write may have been applied all the same; take it back so
		// that it does not block others for a whole TTL.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.LockTTL)
		_ = s.kv.Delete(dctx, h.key, h.value)
		cancel()
		return false, fmt.Errorf("tlsauth: certmagic storage: lock %s: %w", name, err)
	}
	h.token = token
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.close:
		// Closed meanwhile: nobody would refresh it; let it expire.
		return false, ErrStorageClosed
	default:
	}
	if old := s.held[name]; old != nil {
		// An earlier holding of ours that expired unnoticed (its key was
		// free for us to create): stop its refresher.
		old.lost.Store(true)
		old.stopOnce.Do(func() { close(old.stop) })
	}
	s.held[name] = h
	s.wg.Add(1)
	go s.refreshLoop(h)
	return true, nil
}

// Unlock implements certmagic.Locker. It stops refreshing the lock and
// deletes its key if it is still this holder's. A lock that was lost
// meanwhile (it expired, and maybe passed to another holder) is left alone
// and is not an error: it is released either way.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h := s.held[name]
	delete(s.held, name)
	s.mu.Unlock()
	if h == nil {
		return fmt.Errorf("tlsauth: certmagic storage: unlock %s: not locked by this storage", name)
	}
	h.stopRefresh()
	err := s.kv.Delete(ctx, h.key, h.value)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrKVNotFound), errors.Is(err, ErrKVCompareFailed):
		s.log.Warn("tlsauth: certmagic lock expired before it was released; its holder may have run unprotected", "lock", name)
		return nil
	}
	return fmt.Errorf("tlsauth: certmagic storage: unlock %s (it expires by itself within %v): %w", name, s.cfg.LockTTL, err)
}

// RenewLockLease implements certmagic.LockLeaseRenewer. A holder refreshes
// its locks for as long as it holds them, so leaseDuration is not needed:
// this refreshes the lock at once and reports whether it is still held.
func (s *Storage) RenewLockLease(ctx context.Context, name string, _ time.Duration) error {
	s.mu.Lock()
	h := s.held[name]
	s.mu.Unlock()
	if h == nil || h.lost.Load() {
		return fmt.Errorf("tlsauth: certmagic storage: renew lock %s: not held by this storage", name)
	}
	if err := s.kv.Refresh(ctx, h.key, h.value, s.cfg.LockTTL); err != nil {
		if errors.Is(err, ErrKVNotFound) || errors.Is(err, ErrKVCompareFailed) {
			h.lost.Store(true)
		}
		return fmt.Errorf("tlsauth: certmagic storage: renew lock %s: %w", name, err)
	}
	return nil
}

// LockToken returns the fencing token of the lock name while this storage
// holds it: the createdIndex of its lock key. Tokens of successive holders
// of a name increase.
func (s *Storage) LockToken(name string) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.held[name]
	if h == nil || h.lost.Load() {
		return 0, false
	}
	return h.token, true
}

// Close stops refreshing every lock this storage holds, without deleting
// them (they expire after LockTTL), and makes later lock calls fail. It is
// what a holder that dies does; call certmagic.CleanUpOwnLocks first to
// release the locks at a clean shutdown.
func (s *Storage) Close() error {
	s.mu.Lock()
	select {
	case <-s.close:
	default:
		close(s.close)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Storage) lockKey(name string) string {
	return s.cfg.Prefix + "/locks/" + escapeComponent(name)
}

// refreshLoop refreshes h every LockRefresh until h is released or lost,
// or the storage is closed.
func (s *Storage) refreshLoop(h *heldLock) {
	defer s.wg.Done()
	defer close(h.done)
	t := time.NewTicker(s.cfg.LockRefresh)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-s.close:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.LockRefresh)
		err := s.kv.Refresh(ctx, h.key, h.value, s.cfg.LockTTL)
		cancel()
		switch {
		case err == nil:
		case errors.Is(err, ErrKVNotFound), errors.Is(err, ErrKVCompareFailed):
			h.lost.Store(true)
			s.log.Warn("tlsauth: certmagic lock lost: it expired before its holder could refresh it", "lock", h.name, "token", h.token)
			return
		default:
			s.log.Warn("tlsauth: refreshing a certmagic lock failed; retrying", "lock", h.name, "err", err)
		}
	}
}
