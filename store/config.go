package store

// DefaultHistorySize is the number of events kept for watches from a past
// index: far above etcd's hard-coded 1000, so a quiet watcher is not evicted
// by unrelated traffic. DefaultHistoryBytes bounds the memory.
const DefaultHistorySize = 100_000

// DefaultHistoryBytes bounds the bytes of the events kept for watches (keys,
// values, previous values and a fixed overhead per event): 64 MiB holds the
// whole DefaultHistorySize window of 100-byte values (about 600 bytes an
// event), while large values shorten the window instead of pinning memory
// (300 writes of 1 MB no longer hold 600 MB).
const DefaultHistoryBytes = 64 << 20

// DefaultWatchBuffer is how many events a stream watcher may have queued
// before it is closed with ErrWatcherOverflow (and resumed from history).
const DefaultWatchBuffer = 1024

// Config configures a Store. The zero value is usable.
type Config struct {
	// HistorySize is the number of events kept for watches; 0 means
	// DefaultHistorySize.
	HistorySize int
	// HistoryBytes bounds the size of the events kept for watches; 0 means
	// DefaultHistoryBytes. The oldest events are dropped when either bound
	// is exceeded (the newest is always kept), and a watch from an index
	// older than what is kept gets error 401. Replicas must share both
	// bounds to keep the same window.
	HistoryBytes int64
	// WatchBuffer is the per-stream-watcher buffer; 0 means DefaultWatchBuffer.
	WatchBuffer int
}

// withDefaults is cfg with its zero (or negative) fields defaulted.
func (cfg Config) withDefaults() Config {
	if cfg.HistorySize <= 0 {
		cfg.HistorySize = DefaultHistorySize
	}
	if cfg.HistoryBytes <= 0 {
		cfg.HistoryBytes = DefaultHistoryBytes
	}
	if cfg.WatchBuffer <= 0 {
		cfg.WatchBuffer = DefaultWatchBuffer
	}
	return cfg
}
