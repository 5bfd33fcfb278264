package managed

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
)

// memKV is an in-memory KV with the store's semantics where Storage
// relies on them: one index for all writes, files below implicit
// directories, TTLs measured on a settable clock. The storage behaviours
// on the real replicated store are tested in cmd/cairn (certs_test.go).
type memKV struct {
	mu    sync.Mutex
	index uint64
	files map[string]*memFile
	now   time.Time
}

type memFile struct {
	value            string
	created, updated uint64
	expires          time.Time // zero: permanent
}

func newMemKV() *memKV { return &memKV{files: make(map[string]*memFile), now: time.Unix(1e9, 0)} }

func (m *memKV) advance(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = m.now.Add(d)
	for k, f := range m.files {
		if !f.expires.IsZero() && !f.expires.After(m.now) {
			delete(m.files, k)
			m.index++
		}
	}
}

func (m *memKV) Get(_ context.Context, key string, recursive bool) (KVEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f, ok := m.files[key]; ok {
		return KVEntry{Key: key, Value: f.value, CreatedIndex: f.created, ModifiedIndex: f.updated}, nil
	}
	e, ok := m.dir(key, recursive)
	if !ok {
		return KVEntry{}, fmt.Errorf("%w: %s", ErrKVNotFound, key)
	}
	return e, nil
}

// dir builds the directory entry of key from the files below it.
func (m *memKV) dir(key string, recursive bool) (KVEntry, bool) {
	e := KVEntry{Key: key, Dir: true}
	seen := make(map[string]bool)
	for k, f := range m.files {
		rest, ok := strings.CutPrefix(k, key+"/")
		if !ok {
			continue
		}
		child, _, isDir := strings.Cut(rest, "/")
		ck := key + "/" + child
		if seen[ck] {
			continue
		}
		seen[ck] = true
		switch {
		case !isDir:
			e.Nodes = append(e.Nodes, KVEntry{Key: ck, Value: f.value, CreatedIndex: f.created, ModifiedIndex: f.updated})
		case recursive:
			sub, _ := m.dir(ck, true)
			e.Nodes = append(e.Nodes, sub)
		default:
			e.Nodes = append(e.Nodes, KVEntry{Key: ck, Dir: true})
		}
	}
	slices.SortFunc(e.Nodes, func(a, b KVEntry) int { return strings.Compare(a.Key, b.Key) })
	return e, len(seen) > 0
}

func (m *memKV) Set(_ context.Context, key, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.index++
	f := m.files[key]
	if f == nil {
		f = &memFile{created: m.index}
		m.files[key] = f
	}
	f.value, f.updated, f.expires = value, m.index, time.Time{}
	return nil
}

func (m *memKV) Create(_ context.Context, key, value string, ttl time.Duration) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.files[key]; ok {
		return 0, fmt.Errorf("%w: %s", ErrKVExists, key)
	}
	m.index++
	f := &memFile{value: value, created: m.index, updated: m.index}
	if ttl > 0 {
		f.expires = m.now.Add(ttl)
	}
	m.files[key] = f
	return f.created, nil
}

func (m *memKV) Refresh(_ context.Context, key, value string, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[key]
	switch {
	case !ok:
		return fmt.Errorf("%w: %s", ErrKVNotFound, key)
	case f.value != value:
		return fmt.Errorf("%w: %s", ErrKVCompareFailed, key)
	}
	m.index++
	f.updated, f.expires = m.index, m.now.Add(ttl)
	return nil
}

func (m *memKV) Swap(_ context.Context, key, old, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[key]
	switch {
	case !ok:
		return fmt.Errorf("%w: %s", ErrKVNotFound, key)
	case f.value != old:
		return fmt.Errorf("%w: %s", ErrKVCompareFailed, key)
	}
	m.index++
	f.value, f.updated = value, m.index
	return nil
}

func (m *memKV) Delete(_ context.Context, key, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if value != "" {
		f, ok := m.files[key]
		switch {
		case !ok:
			return fmt.Errorf("%w: %s", ErrKVNotFound, key)
		case f.value != value:
			return fmt.Errorf("%w: %s", ErrKVCompareFailed, key)
		}
		delete(m.files, key)
		m.index++
		return nil
	}
	found := false
	for k := range m.files {
		if k == key || strings.HasPrefix(k, key+"/") {
			delete(m.files, k)
			found = true
		}
	}
	if !found {
		return fmt.Errorf("%w: %s", ErrKVNotFound, key)
	}
	m.index++
	return nil
}

func (m *memKV) keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(func(yield func(string) bool) {
		for k := range m.files {
			if !yield(k) {
				return
			}
		}
	})
}

// TestCertStorageKeyMapping checks that any certmagic key maps to a store
// key the store keeps as it is (path.Clean) and does not hide (no
// component starting with '_'), and back.
func TestCertStorageKeyMapping(t *testing.T) {
	ctx := context.Background()
	kv := newMemKV()
	s := NewStorage(kv, StorageConfig{})
	keys := []string{
		"certificates/acme-v02.api.letsencrypt.org-directory/example.com/example.com.crt",
		"_hidden/_file",
		"dots/../x/./y",
		"sp ace/per%cent/wildcard_.example.com/*.example.com",
		"issue_cert_*.example.com",
	}
	for i, k := range keys {
		if err := s.Store(ctx, k, []byte{byte(i)}); err != nil {
			t.Fatalf("Store %q: %v", k, err)
		}
	}
	for _, sk := range kv.keys() {
		if !strings.HasPrefix(sk, DefaultPrefix+"/data/") {
			t.Errorf("store key %q outside the prefix", sk)
		}
		for c := range strings.SplitSeq(strings.TrimPrefix(sk, DefaultPrefix+"/"), "/") {
			if c == "" || c == "." || c == ".." || strings.HasPrefix(c, "_") {
				t.Errorf("store key %q has component %q", sk, c)
			}
		}
	}
	for i, k := range keys {
		v, err := s.Load(ctx, k)
		if err != nil || len(v) != 1 || v[0] != byte(i) {
			t.Errorf("Load %q = %v, %v", k, v, err)
		}
	}
	got, err := s.List(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !slices.Contains(got, k) {
			t.Errorf("List recursive misses %q: %q", k, got)
		}
	}
	if _, err := s.Load(ctx, ""); err == nil {
		t.Error("Load of the empty key succeeded")
	}
}

// TestCertStorageMemKV runs the storage behaviours on memKV: the same
// table as the cluster test in cmd/cairn, cheap enough for every run.
func TestCertStorageMemKV(t *testing.T) {
	ctx := context.Background()
	s := NewStorage(newMemKV(), StorageConfig{})
	if err := s.Store(ctx, "a/b/c.crt", []byte("crt")); err != nil {
		t.Fatal(err)
	}
	if err := s.Store(ctx, "a/d.key", []byte("key")); err != nil {
		t.Fatal(err)
	}
	if !s.Exists(ctx, "a") || !s.Exists(ctx, "a/b/c.crt") || s.Exists(ctx, "a/x") {
		t.Error("Exists wrong")
	}
	if got, err := s.List(ctx, "a", false); err != nil || !slices.Equal(got, []string{"a/b", "a/d.key"}) {
		t.Errorf("List a = %q, %v", got, err)
	}
	if got, err := s.List(ctx, "a", true); err != nil || !slices.Equal(got, []string{"a/b", "a/b/c.crt", "a/d.key"}) {
		t.Errorf("List a recursive = %q, %v", got, err)
	}
	if _, err := s.List(ctx, "nope", true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List missing: %v", err)
	}
	before := time.Now()
	info, err := s.Stat(ctx, "a/b/c.crt")
	if err != nil || !info.IsTerminal || info.Size != 3 || info.Key != "a/b/c.crt" || info.Modified.After(before) || before.Sub(info.Modified) > time.Minute {
		t.Errorf("Stat = %+v, %v", info, err)
	}
	if info, err := s.Stat(ctx, "a/b"); err != nil || info.IsTerminal {
		t.Errorf("Stat dir = %+v, %v", info, err)
	}
	if err := s.Delete(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, "a/b/c.crt"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load after Delete of its directory: %v", err)
	}
	if err := s.Delete(ctx, "a/b"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
}

func TestCertStorageLocksMemKV(t *testing.T) {
	ctx := context.Background()
	kv := newMemKV()
	cfg := StorageConfig{LockTTL: 10 * time.Second, LockRefresh: time.Hour, LockPoll: time.Millisecond}
	a, b := NewStorage(kv, cfg), NewStorage(kv, cfg)
	t.Cleanup(func() { a.Close(); b.Close() })

	if err := a.Lock(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	t1, ok := a.LockToken("x")
	if !ok {
		t.Fatal("no token while holding")
	}
	if ok, err := b.TryLock(ctx, "x"); ok || err != nil {
		t.Fatalf("second TryLock = %v, %v", ok, err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	err := b.Lock(short, "x")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock while held elsewhere = %v, want a deadline", err)
	}
	if err := b.Unlock(ctx, "x"); err == nil {
		t.Error("Unlock of a lock not held succeeded")
	}
	if err := a.RenewLockLease(ctx, "x", time.Hour); err != nil {
		t.Errorf("RenewLockLease: %v", err)
	}

	// a stops refreshing (LockRefresh is an hour): after the TTL the lock
	// expires and b gets it with a larger token; a learns it lost it.
	kv.advance(11 * time.Second)
	if err := b.Lock(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	t2, _ := b.LockToken("x")
	if t2 <= t1 {
		t.Errorf("token %d after %d: not increasing", t2, t1)
	}
	if err := a.RenewLockLease(ctx, "x", time.Hour); err == nil {
		t.Error("RenewLockLease of a lost lock succeeded")
	}
	if _, ok := a.LockToken("x"); ok {
		t.Error("a still reports a token for a lost lock")
	}
	if err := a.Unlock(ctx, "x"); err != nil {
		t.Errorf("Unlock of a lost lock: %v", err)
	}
	if ok, _ := a.TryLock(ctx, "x"); ok {
		t.Error("a's Unlock of its lost lock released b's")
	}
	if err := b.Unlock(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.TryLock(ctx, "x"); !ok || err != nil {
		t.Fatalf("TryLock after Unlock = %v, %v", ok, err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Lock(ctx, "y"); !errors.Is(err, ErrStorageClosed) {
		t.Errorf("Lock after Close = %v", err)
	}
}

func TestCertStorageRefreshKeepsLock(t *testing.T) {
	ctx := context.Background()
	kv := newMemKV()
	s := NewStorage(kv, StorageConfig{LockTTL: 3 * time.Second, LockRefresh: time.Millisecond})
	t.Cleanup(func() { s.Close() })
	if err := s.Lock(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	// Each step advances less than the TTL, then waits for a refresh,
	// seen as a new modifiedIndex.
	for range 5 {
		e, err := kv.Get(ctx, s.lockKey("x"), false)
		if err != nil {
			t.Fatalf("lock key gone: %v", err)
		}
		kv.advance(2 * time.Second)
		poll.Until(t, 10*time.Second, "a refresh", func() bool {
			n, err := kv.Get(ctx, s.lockKey("x"), false)
			return err == nil && n.ModifiedIndex > e.ModifiedIndex
		})
	}
	if err := s.Unlock(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, s.lockKey("x"), false); !errors.Is(err, ErrKVNotFound) {
		t.Errorf("lock key after Unlock: %v", err)
	}
}
