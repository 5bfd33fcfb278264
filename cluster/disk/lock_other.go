//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package disk

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// ErrInUse is matched (errors.Is) by Acquire's error when another
// process holds the data dir.
var ErrInUse = errors.New("disk: data dir in use")

// Lock: without flock, the LOCK file only records the PID; bbolt's own
// exclusive lock on raft.db (waited for at most boltOpenTimeout) is what
// keeps a second process out on these systems.
type Lock struct{ f *os.File }

func Acquire(dir string, log *slog.Logger) (*Lock, error) {
	if _, err := CheckFormat(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("disk: create data dir: %w", err)
	}
	if err := secureDir(dir, log); err != nil {
		return nil, err
	}
	p := filepath.Join(dir, LockFile)
	if err := os.WriteFile(p, fmt.Appendf(nil, "%d\n", os.Getpid()), 0o600); err != nil {
		return nil, fmt.Errorf("disk: write %s: %w", p, err)
	}
	if err := EnsureFormat(dir); err != nil {
		return nil, err
	}
	return &Lock{}, nil
}

func (l *Lock) Unlock() {}
