package managed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
)

// KV is the replicated key store as Storage needs it: the etcd v2 key
// tree of the cluster, seen through a few of its operations. tlsauth
// cannot import the cluster, so the binary wires a concrete KV in.
//
// Keys are absolute paths ("/_cairn/certmagic/data/..."); writes create
// missing parent directories. Reads are linearizable: a read returns every
// write acknowledged before it began, whichever member took the write.
// Errors are ErrKVNotFound, ErrKVExists or ErrKVCompareFailed (wrapped) for
// the outcomes below, anything else for a failure of the cluster.
type KV interface {
	// Get returns the file or directory at key. A directory's entry lists
	// its children in Nodes, and their children too when recursive.
	// ErrKVNotFound if there is no such key.
	Get(ctx context.Context, key string, recursive bool) (KVEntry, error)
	// Set writes value to the file key, replacing any value, and makes it
	// permanent.
	Set(ctx context.Context, key, value string) error
	// Create writes value to the file key only if key does not exist
	// (ErrKVExists otherwise). With ttl > 0 the key expires ttl after the
	// write (rounded up to whole seconds) unless refreshed. It returns the
	// key's createdIndex, which grows with every write to the store.
	Create(ctx context.Context, key, value string, ttl time.Duration) (createdIndex uint64, err error)
	// Refresh restarts the ttl of the file key only if it holds value:
	// ErrKVNotFound if it is gone, ErrKVCompareFailed if it holds another
	// value. Its value and createdIndex do not change.
	Refresh(ctx context.Context, key, value string, ttl time.Duration) error
	// Swap writes value to the file key only if it holds old:
	// ErrKVNotFound if it is gone, ErrKVCompareFailed if it holds another
	// value.
	Swap(ctx context.Context, key, old, value string) error
	// Delete removes key. With value empty it removes a file or a whole
	// directory; otherwise only the file key holding value
	// (ErrKVCompareFailed if it holds another). ErrKVNotFound if key does
	// not exist.
	Delete(ctx context.Context, key, value string) error
}

// KVEntry is a file or a directory of the key store.
type KVEntry struct {
	Key           string // absolute path
	Value         string // a file's value
	Dir           bool
	CreatedIndex  uint64
	ModifiedIndex uint64
	Nodes         []KVEntry // a directory's children, as Get was asked for
}

// Outcomes of KV operations; a KV wraps them (test with errors.Is).
var (
	ErrKVNotFound      = errors.New("tlsauth: key not found")
	ErrKVExists        = errors.New("tlsauth: key already exists")
	ErrKVCompareFailed = errors.New("tlsauth: key holds another value")
)

// DefaultPrefix is the key directory of Storage: below
// Cairn's hidden internal prefix, so that listings and recursive watches
// of the key space do not show it and, with authorization on, only root
// may read it through the API.
const DefaultPrefix = "/_cairn/certmagic"

// Lock timings of Storage by default.
const (
	DefaultLockTTL  = 15 * time.Second
	DefaultLockPoll = time.Second
)

// StorageConfig configures a Storage. The zero value is usable.
type StorageConfig struct {
	// Prefix is the key directory (default DefaultPrefix).
	// Files live below Prefix/data, locks below Prefix/locks.
	Prefix string
	// Owner names the holder in lock values, for an operator reading them
	// (e.g. the member name). Every lock value also carries a random token.
	Owner string
	// LockTTL is the lifetime of a lock key that its holder stops
	// refreshing: a dead holder's lock frees itself after at most this
	// long. Default DefaultLockTTL; at least 1 s (the store counts TTLs in
	// whole seconds).
	LockTTL time.Duration
	// LockRefresh is how often a holder refreshes its lock keys (default
	// LockTTL/3).
	LockRefresh time.Duration
	// LockPoll is how often Lock retries a lock held by another (default
	// DefaultLockPoll).
	LockPoll time.Duration
	// Logger receives lost locks and failed refreshes. Nil discards them.
	Logger *slog.Logger
	// Sealer, when not nil, encrypts every file before it is stored
	// (tls.storage_key_file); files stored plain before are resealed when
	// read. Nil stores files as they are.
	Sealer *Sealer
}

// Storage is a certmagic.Storage on the replicated key store, so that
// every member shares the ACME account, the certificates and their keys,
// and renewals are coordinated across the cluster.
//
// Files are stored one key each, below Prefix/data, as JSON holding the
// bytes (base64) and the time they were written (Stat's Modified). Key
// components are escaped so that any certmagic key maps to one store key
// and back: a leading '_' (which the store would hide) and characters
// outside a URL path segment are percent-encoded.
//
// Locks are create-only keys with a TTL below Prefix/locks; see Lock.
// Storage is safe for concurrent use.
type Storage struct {
	kv  KV
	cfg StorageConfig
	log *slog.Logger

	mu    sync.Mutex
	held  map[string]*heldLock // by lock name
	close chan struct{}
	wg    sync.WaitGroup
}

var (
	_ certmagic.Storage          = (*Storage)(nil)
	_ certmagic.TryLocker        = (*Storage)(nil)
	_ certmagic.LockLeaseRenewer = (*Storage)(nil)
)

// NewStorage returns a Storage on kv. Close stops its lock
// refreshers.
func NewStorage(kv KV, cfg StorageConfig) *Storage {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	cfg.Prefix = "/" + strings.Trim(cfg.Prefix, "/")
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = DefaultLockTTL
	}
	cfg.LockTTL = max(cfg.LockTTL, time.Second)
	if cfg.LockRefresh <= 0 {
		cfg.LockRefresh = cfg.LockTTL / 3
	}
	if cfg.LockPoll <= 0 {
		cfg.LockPoll = DefaultLockPoll
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Storage{kv: kv, cfg: cfg, log: log, held: make(map[string]*heldLock), close: make(chan struct{})}
}

// storedFile is the value of a file key: the file's bytes, or with a
// Sealer, nonce and ciphertext bound to the certmagic key.
type storedFile struct {
	Modified time.Time `json:"modified"`
	Data     []byte    `json:"data,omitempty"`   // base64 in JSON
	Sealed   []byte    `json:"sealed,omitempty"` // base64 in JSON
}

// Store implements certmagic.Storage.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	k, err := s.dataKey(key)
	if err != nil {
		return err
	}
	v, err := s.encode(key, storedFile{Modified: time.Now().UTC(), Data: value})
	if err != nil {
		return fmt.Errorf("tlsauth: certmagic storage: encode %s: %w", key, err)
	}
	if err := s.kv.Set(ctx, k, string(v)); err != nil {
		return fmt.Errorf("tlsauth: certmagic storage: store %s: %w", key, err)
	}
	return nil
}

// Load implements certmagic.Storage: fs.ErrNotExist if key is not a file.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	f, _, err := s.load(ctx, key)
	return f.Data, err
}

func (s *Storage) load(ctx context.Context, key string) (storedFile, KVEntry, error) {
	k, err := s.dataKey(key)
	if err != nil {
		return storedFile{}, KVEntry{}, err
	}
	e, err := s.kv.Get(ctx, k, false)
	if err != nil {
		return storedFile{}, e, s.readError("load", key, err)
	}
	if e.Dir {
		return storedFile{}, e, fmt.Errorf("tlsauth: certmagic storage: load %s: is a directory: %w", key, fs.ErrNotExist)
	}
	var f storedFile
	if err := json.Unmarshal([]byte(e.Value), &f); err != nil {
		return storedFile{}, e, fmt.Errorf("tlsauth: certmagic storage: load %s: malformed value: %w", key, err)
	}
	reseal := false
	switch {
	case f.Sealed != nil && s.cfg.Sealer == nil:
		return storedFile{}, e, fmt.Errorf("tlsauth: certmagic storage: load %s: it is sealed with a storage key; set tls.storage_key_file to the key file the other members use", key)
	case f.Sealed != nil:
		plain, first, err := s.cfg.Sealer.open(key, f.Sealed)
		if err != nil {
			return storedFile{}, e, fmt.Errorf("tlsauth: certmagic storage: load %s: %w", key, err)
		}
		f.Data, f.Sealed, reseal = plain, nil, !first
	case s.cfg.Sealer != nil:
		reseal = true // stored before the storage key was set
	}
	if reseal {
		s.reseal(ctx, key, k, e.Value, f)
	}
	return f, e, nil
}

// encode is the stored value of f, sealed when there is a Sealer.
func (s *Storage) encode(key string, f storedFile) ([]byte, error) {
	if s.cfg.Sealer != nil {
		f.Sealed, f.Data = s.cfg.Sealer.seal(key, f.Data), nil
	}
	return json.Marshal(f)
}

// reseal rewrites a file read plain, or sealed with an older key, sealed
// with the first key, unless it changed since it was read (old).
func (s *Storage) reseal(ctx context.Context, key, storeKey, old string, f storedFile) {
	v, err := s.encode(key, f)
	if err == nil {
		err = s.kv.Swap(ctx, storeKey, old, string(v))
	}
	if err != nil && !errors.Is(err, ErrKVCompareFailed) && !errors.Is(err, ErrKVNotFound) {
		s.log.Warn("could not reseal a certmagic file with the storage key; it stays as it was", "key", key, "err", err)
		return
	}
	if err == nil {
		s.log.Info("resealed a certmagic file with the first storage key", "key", key)
	}
}

// Delete implements certmagic.Storage: it removes a file or a directory
// with everything below it. A missing key is not an error.
func (s *Storage) Delete(ctx context.Context, key string) error {
	k, err := s.dataKey(key)
	if err != nil {
		return err
	}
	if err := s.kv.Delete(ctx, k, ""); err != nil && !errors.Is(err, ErrKVNotFound) {
		return fmt.Errorf("tlsauth: certmagic storage: delete %s: %w", key, err)
	}
	return nil
}

// Exists implements certmagic.Storage: whether key is a file or a
// directory (false also when the store could not be asked).
func (s *Storage) Exists(ctx context.Context, key string) bool {
	k, err := s.dataKey(key)
	if err != nil {
		return false
	}
	_, err = s.kv.Get(ctx, k, false)
	return err == nil
}

// List implements certmagic.Storage: the keys directly below the
// directory path, or with recursive every key below it (files and
// directories), each as a full key. fs.ErrNotExist if path does not exist;
// a file has nothing below it.
func (s *Storage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	e, err := s.kv.Get(ctx, s.dataKeyOrRoot(path), recursive)
	if err != nil {
		return nil, s.readError("list", path, err)
	}
	var keys []string
	var walk func([]KVEntry) error
	walk = func(nodes []KVEntry) error {
		for _, n := range nodes {
			key, err := s.certmagicKey(n.Key)
			if err != nil {
				return err
			}
			keys = append(keys, key)
			if recursive {
				if err := walk(n.Nodes); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(e.Nodes); err != nil {
		return nil, fmt.Errorf("tlsauth: certmagic storage: list %s: %w", path, err)
	}
	return keys, nil
}

// Stat implements certmagic.Storage: a file's size and the time it was
// stored; a directory is not terminal. fs.ErrNotExist if key does not
// exist.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	k, err := s.dataKey(key)
	if err != nil {
		return certmagic.KeyInfo{}, err
	}
	e, err := s.kv.Get(ctx, k, false)
	if err != nil {
		return certmagic.KeyInfo{}, s.readError("stat", key, err)
	}
	if e.Dir {
		return certmagic.KeyInfo{Key: key, IsTerminal: false}, nil
	}
	var f storedFile
	if err := json.Unmarshal([]byte(e.Value), &f); err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("tlsauth: certmagic storage: stat %s: malformed value: %w", key, err)
	}
	size := len(f.Data)
	if f.Sealed != nil {
		size = max(0, len(f.Sealed)-sealOverhead)
	}
	return certmagic.KeyInfo{Key: key, Modified: f.Modified, Size: int64(size), IsTerminal: true}, nil
}

// String names the storage in certmagic's logs.
func (s *Storage) String() string { return "cairn:" + s.cfg.Prefix }

func (s *Storage) readError(op, key string, err error) error {
	if errors.Is(err, ErrKVNotFound) {
		return fmt.Errorf("tlsauth: certmagic storage: %s %s: %w", op, key, fs.ErrNotExist)
	}
	return fmt.Errorf("tlsauth: certmagic storage: %s %s: %w", op, key, err)
}

// dataKey maps a certmagic key to its store key below Prefix/data.
func (s *Storage) dataKey(key string) (string, error) {
	k := s.dataKeyOrRoot(key)
	if k == s.cfg.Prefix+"/data" {
		return "", errors.New("tlsauth: certmagic storage: empty key")
	}
	return k, nil
}

// dataKeyOrRoot is dataKey accepting "" for the top directory.
func (s *Storage) dataKeyOrRoot(key string) string {
	var b strings.Builder
	b.WriteString(s.cfg.Prefix + "/data")
	for c := range strings.SplitSeq(key, "/") {
		if c == "" {
			continue
		}
		b.WriteByte('/')
		b.WriteString(escapeComponent(c))
	}
	return b.String()
}

// certmagicKey maps a store key below Prefix/data back to its certmagic key.
func (s *Storage) certmagicKey(storeKey string) (string, error) {
	rest, ok := strings.CutPrefix(storeKey, s.cfg.Prefix+"/data/")
	if !ok {
		return "", fmt.Errorf("store key %q is outside %s/data", storeKey, s.cfg.Prefix)
	}
	parts := strings.Split(rest, "/")
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return "", fmt.Errorf("store key %q: %w", storeKey, err)
		}
		parts[i] = u
	}
	return strings.Join(parts, "/"), nil
}

// escapeComponent makes c a store path component that path.Clean keeps
// and the store does not hide, reversibly (url.PathUnescape).
func escapeComponent(c string) string {
	e := url.PathEscape(c)
	switch {
	case e == ".":
		return "%2E"
	case e == "..":
		return "%2E%2E"
	case strings.HasPrefix(e, "_"):
		return "%5F" + e[1:]
	}
	return e
}
