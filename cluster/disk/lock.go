//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package disk

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrInUse is matched (errors.Is) by Acquire's error when another
// process (or another Node of this one) holds the data dir.
var ErrInUse = errors.New("disk: data dir in use")

// Lock is an exclusive flock on <data dir>/LOCK, which holds the PID
// of its owner. flock belongs to the open file description, so a second
// Node in the same process is refused as a second process is, and the
// kernel releases it when the process dies: a stale LOCK file never
// blocks a start.
type Lock struct{ f *os.File }

// Acquire creates dir (0700) if need be, restricts it to its owner
// (logging to log, which may be nil, when it had to), and takes its lock
// without waiting: a dir in use is an ErrInUse naming the PID that
// holds it. It refuses a data dir of a newer format (ErrNewerFormat)
// before it changes anything, and brings an older one to Format
// (EnsureFormat) once it holds the lock. cluster.New takes it itself unless Config.DataDirLock holds it; a
// server that writes into the data dir before New (a development PKI)
// takes it first.
func Acquire(dir string, log *slog.Logger) (*Lock, error) {
	if dir == "" {
		return nil, errors.New("disk: no data dir configured; set --data-dir")
	}
	// A data dir of a newer format is refused before anything in it
	// changes, the lock file included.
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
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("disk: open %s: %w", p, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(b))
			if pid == "" {
				pid = "unknown"
			}
			return nil, inUseError(fmt.Sprintf("disk: data dir %s in use by PID %s; stop that process, or give this one another --data-dir",
				dir, pid))
		}
		return nil, fmt.Errorf("disk: lock %s: %w", p, err)
	}
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt(pid, 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("disk: write %s: %w", p, err)
	}
	if err := EnsureFormat(dir); err != nil {
		f.Close()
		return nil, err
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock (closing the file releases the flock); a nil
// lock is a no-op. The file stays: removing it could let two processes
// lock different inodes.
func (l *Lock) Unlock() {
	if l != nil {
		l.f.Close()
	}
}

type inUseError string

func (e inUseError) Error() string        { return string(e) }
func (e inUseError) Is(target error) bool { return target == ErrInUse }
