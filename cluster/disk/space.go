package disk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrFull is matched (errors.Is) by every error about a write that failed
// because the data dir's file system (or the user's quota there) is full,
// and by the node's refusals while it is.
var ErrFull = errors.New("disk full")

// Reasons a write to the data dir failed, as Classify names them (the
// reason label of cairn_disk_write_failures_total).
const (
	ReasonNoSpace      = "no_space"       // ENOSPC
	ReasonQuota        = "quota"          // EDQUOT
	ReasonFileTooLarge = "file_too_large" // EFBIG: a file size limit (ulimit -f, the file system's)
	ReasonOther        = "other"          // any other write error
)

// Reasons lists every reason Classify returns.
var Reasons = []string{ReasonNoSpace, ReasonQuota, ReasonFileTooLarge, ReasonOther}

// Classify names why a write failed; full reports whether the reason means
// the data dir has no room (ENOSPC, EDQUOT, EFBIG), which freeing space
// cures, as opposed to an I/O error.
func Classify(err error) (reason string, full bool) {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return ReasonNoSpace, true
	case isQuota(err):
		return ReasonQuota, true
	case errors.Is(err, syscall.EFBIG):
		return ReasonFileTooLarge, true
	}
	return ReasonOther, false
}

// FullError is a write that failed for want of room in Dir.
type FullError struct {
	Dir string
	Err error // the write's own error
}

func (e *FullError) Error() string {
	return fmt.Sprintf("disk full: free space in %s (%v)", e.Dir, e.Err)
}

func (e *FullError) Is(target error) bool { return target == ErrFull }
func (e *FullError) Unwrap() error        { return e.Err }

// Space is a data dir's disk-full state. The raft stores report every
// failed write to Failed; the first one that means "no room" makes the
// state full, and only Clear (called once a probe finds room again) ends
// it. It counts failed writes by reason.
type Space struct {
	Dir string

	full     atomic.Bool
	failures [4]atomic.Uint64 // by index in Reasons
	changed  chan struct{}    // one pending signal: the state may have changed

	mu    sync.Mutex
	err   error     // first full-disk error of the current episode
	since time.Time // when the current episode began
}

// NewSpace is the disk-full state of dir: not full.
func NewSpace(dir string) *Space {
	return &Space{Dir: dir, changed: make(chan struct{}, 1)}
}

// Failed records a failed write (err nil: none) and returns the error to
// give its caller: a *FullError when it means the disk is full, else err.
func (s *Space) Failed(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrFull) {
		return err // already recorded (a refusal while full)
	}
	reason, full := Classify(err)
	for i, r := range Reasons {
		if r == reason {
			s.failures[i].Add(1)
		}
	}
	if !full {
		return err
	}
	ferr := &FullError{Dir: s.Dir, Err: err}
	s.mu.Lock()
	if !s.full.Load() {
		s.err, s.since = ferr, time.Now()
		s.full.Store(true)
		s.signal()
	}
	s.mu.Unlock()
	return ferr
}

// Refuse is the error for a write not attempted because the disk is full
// (nil when it is not).
func (s *Space) Refuse() error {
	if !s.full.Load() {
		return nil
	}
	return &FullError{Dir: s.Dir, Err: errors.New("refused until a probe finds room again")}
}

// Full reports whether the data dir is full.
func (s *Space) Full() bool { return s.full.Load() }

// Episode is when the current disk-full episode began and its first
// error; nil while the data dir is not full.
func (s *Space) Episode() (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.full.Load() {
		return time.Time{}, nil
	}
	return s.since, s.err
}

// Clear ends a disk-full episode.
func (s *Space) Clear() {
	s.mu.Lock()
	if s.full.Load() {
		s.full.Store(false)
		s.err = nil
		s.signal()
	}
	s.mu.Unlock()
}

// Changed receives a value after the state changed (coalesced).
func (s *Space) Changed() <-chan struct{} { return s.changed }

func (s *Space) signal() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Failures is the number of failed writes with reason (one of Reasons).
func (s *Space) Failures(reason string) uint64 {
	for i, r := range Reasons {
		if r == reason {
			return s.failures[i].Load()
		}
	}
	return 0
}

// Room thresholds of Probe: a data dir is writable again when its file
// system has the free bytes its log needs (LogStore.RoomNeeded: at least
// MinFree) available to Cairn's user and a file of probeSize bytes can be
// written and synced there (which a quota or a file size limit refuses
// even when the file system has room).
const (
	MinFree   = 4 << 20
	probeSize = 64 << 10
	probeName = ".space-probe"
)

// Free is the space available to this process in dir's file system; known
// is false where the platform does not tell.
func Free(dir string) (free uint64, known bool, err error) { return freeBytes(dir) }

// Probe reports whether dir has room again (nil) or why not: minFree
// bytes free, and a small file written and synced.
func Probe(dir string, minFree uint64) error {
	free, known, err := freeBytes(dir)
	if err != nil {
		return fmt.Errorf("statfs %s: %w", dir, err)
	}
	if known && free < minFree {
		return fmt.Errorf("%d bytes free in %s, want %d: %w", free, dir, minFree, syscall.ENOSPC)
	}
	path := filepath.Join(dir, probeName)
	defer os.Remove(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(make([]byte, probeSize))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
