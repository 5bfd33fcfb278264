package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// secureDir restricts the data dir to its owner (0700), whatever mode it
// was made with: the snapshots in it hold the managed certificates'
// private keys. A dir it cannot restrict is an error with the command to
// run; a shared dir (sticky bit, as /tmp) is refused rather than
// restricted.
func secureDir(dir string, log *slog.Logger) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("disk: data dir %s: %w", dir, err)
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		// /tmp and its kind: shared by everyone, never to be chmodded.
		return fmt.Errorf("disk: data dir %s is a shared directory (sticky bit set); give Cairn a directory of its own, e.g. %s",
			dir, filepath.Join(dir, "cairn"))
	}
	if mode := fi.Mode().Perm(); mode&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("disk: data dir %s is open to group or others (mode %04o) and cannot be restricted (%v); run: chmod 700 %s",
				dir, mode, err, dir)
		}
		if log != nil {
			log.Warn("data dir was open to group or others; restricted to its owner", "data_dir", dir, "old_mode", fmt.Sprintf("%04o", mode))
		}
	}
	return nil
}

// SecureFiles makes Cairn's files in the data dir (raft.db, LOCK,
// format.json, the snapshots, the wal and the names in more) 0600, dirs
// 0700, whatever an older version or raft left.
func SecureFiles(dir string, more ...string) error {
	for _, name := range append([]string{LogFile, LockFile, FormatFile}, more...) {
		if err := restrict(filepath.Join(dir, name), 0o600); err != nil {
			return err
		}
	}
	if err := restrictTree(filepath.Join(dir, WALDir)); err != nil {
		return err
	}
	return restrictTree(filepath.Join(dir, SnapshotsDir))
}

// restrict chmods path to mode when it exists and has other bits.
func restrict(path string, mode fs.FileMode) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil && fi.Mode().Perm() != mode {
		err = os.Chmod(path, mode)
	}
	if err != nil {
		return fmt.Errorf("disk: restrict %s to %04o: %w; run: chmod %o %s", path, mode, err, mode, path)
	}
	return nil
}

// restrictTree makes every dir under root 0700 and every file 0600.
func restrictTree(root string) error {
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return restrict(p, 0o700)
		}
		return restrict(p, 0o600)
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// privateSnapshots is raft's file snapshot store with Cairn's modes: raft
// makes its dirs 0755 and files 0644; they are restricted as soon as they
// exist (a snapshot's meta.json appears at Close, inside a 0700 dir).
type privateSnapshots struct {
	*raft.FileSnapshotStore
	dir string // <data dir>/snapshots
}

// NewSnapshotStore is raft's file snapshot store in dataDir (two retained)
// with Cairn's modes.
func NewSnapshotStore(dataDir string, log hclog.Logger) (raft.SnapshotStore, error) {
	fss, err := raft.NewFileSnapshotStoreWithLogger(dataDir, 2, log)
	if err != nil {
		return nil, fmt.Errorf("disk: open snapshot store: %w", err)
	}
	s := &privateSnapshots{FileSnapshotStore: fss, dir: filepath.Join(dataDir, SnapshotsDir)}
	if err := restrictTree(s.dir); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *privateSnapshots) Create(version raft.SnapshotVersion, index, term uint64, conf raft.Configuration,
	confIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.FileSnapshotStore.Create(version, index, term, conf, confIndex, trans)
	if err != nil {
		return nil, err
	}
	if err := restrictTree(filepath.Join(s.dir, sink.ID()+".tmp")); err != nil {
		sink.Cancel()
		return nil, err
	}
	return &privateSink{SnapshotSink: sink, dir: filepath.Join(s.dir, sink.ID())}, nil
}

type privateSink struct {
	raft.SnapshotSink
	dir string
}

func (s *privateSink) Close() error {
	if err := s.SnapshotSink.Close(); err != nil {
		return err
	}
	return restrictTree(s.dir)
}
