//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// ErrDataDirInUse is matched (errors.Is) by New's error when another
// process holds the data dir.
var ErrDataDirInUse = errors.New("cluster: data dir in use")

// DataDirLock: without flock, the LOCK file only records the PID; bbolt's own
// exclusive lock on raft.db (waited for at most boltOpenTimeout) is what
// keeps a second process out on these systems.
type DataDirLock struct{ f *os.File }

func LockDataDir(dir string, log *slog.Logger) (*DataDirLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: create data dir: %w", err)
	}
	if err := secureDir(dir, log); err != nil {
		return nil, err
	}
	p := filepath.Join(dir, lockFile)
	if err := os.WriteFile(p, fmt.Appendf(nil, "%d\n", os.Getpid()), 0o600); err != nil {
		return nil, fmt.Errorf("cluster: write %s: %w", p, err)
	}
	return &DataDirLock{}, nil
}

func (l *DataDirLock) Unlock() {}
