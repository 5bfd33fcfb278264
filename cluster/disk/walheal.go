package disk

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
)

// healingWAL is the wal log store, reopened after a failed write.
// raft-wal v0.4.0 does not survive one: a batch it could not write (a full
// disk) stays in its in-memory index, so every later append of the same
// entries is refused ("non-monotonic append"), and a segment it could not
// create leaves the full one sealed, so every later append is refused
// ("segment is sealed"); both until the process restarts. Reopened, it
// recovers from what is on disk, which is what raft was told is stored
// (a failed StoreLogs stored nothing as far as raft knows).
type healingWAL struct {
	dataDir string
	log     hclog.Logger

	broken atomic.Bool // a write failed: reopen before the next one

	mu       sync.RWMutex // held to swap w; read-held to use it
	w        *wal.WAL
	closeAll func() error // nil once closed
}

func openHealingWAL(dataDir string, log hclog.Logger) (*healingWAL, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	w, closeAll, err := openWAL(dataDir, log)
	if err != nil {
		return nil, err
	}
	return &healingWAL{dataDir: dataDir, log: log, w: w, closeAll: closeAll}, nil
}

// reopen replaces a wal that failed a write with a fresh one from disk.
func (h *healingWAL) reopen() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.broken.Load() {
		return nil
	}
	if h.closeAll != nil {
		if err := h.closeAll(); err != nil {
			h.log.Warn("closing the wal after a failed write", "error", err)
		}
		h.closeAll = nil
	}
	w, closeAll, err := openWAL(h.dataDir, h.log)
	if err != nil {
		return fmt.Errorf("disk: reopening the wal after a failed write: %w", err)
	}
	h.w, h.closeAll = w, closeAll
	h.broken.Store(false)
	h.log.Info("reopened the wal after a failed write")
	return nil
}

// write runs a write on the wal, reopened first if an earlier one failed.
func (h *healingWAL) write(f func(*wal.WAL) error) error {
	if h.broken.Load() {
		if err := h.reopen(); err != nil {
			return err
		}
	}
	h.mu.RLock()
	err := f(h.w)
	h.mu.RUnlock()
	if err != nil && !errors.Is(err, wal.ErrClosed) {
		h.broken.Store(true)
	}
	return err
}

func (h *healingWAL) read(f func(*wal.WAL) error) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closeAll == nil {
		return wal.ErrClosed
	}
	return f(h.w)
}

func (h *healingWAL) StoreLogs(logs []*raft.Log) error {
	return h.write(func(w *wal.WAL) error { return w.StoreLogs(logs) })
}

func (h *healingWAL) StoreLog(l *raft.Log) error { return h.StoreLogs([]*raft.Log{l}) }

func (h *healingWAL) DeleteRange(lo, hi uint64) error {
	return h.write(func(w *wal.WAL) error { return w.DeleteRange(lo, hi) })
}

func (h *healingWAL) GetLog(index uint64, l *raft.Log) error {
	return h.read(func(w *wal.WAL) error { return w.GetLog(index, l) })
}

func (h *healingWAL) FirstIndex() (i uint64, err error) {
	err = h.read(func(w *wal.WAL) (err error) { i, err = w.FirstIndex(); return })
	return
}

func (h *healingWAL) LastIndex() (i uint64, err error) {
	err = h.read(func(w *wal.WAL) (err error) { i, err = w.LastIndex(); return })
	return
}

// Close closes the wal and its meta file.
func (h *healingWAL) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closeAll == nil {
		return nil
	}
	err := h.closeAll()
	h.closeAll = nil
	return err
}

var _ raft.LogStore = (*healingWAL)(nil)
