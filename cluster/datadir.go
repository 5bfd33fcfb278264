package cluster

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// The data dir: what Cairn keeps in it, and the checks that run before
// any of it is handed to bbolt or raft, so that a damaged file is an error
// naming the file and what to do, never a panic or a fault inside them.
const (
	logFile      = "raft.db"
	snapshotsDir = "snapshots" // raft's FileSnapshotStore's
	lockFile     = "LOCK"
)

// boltOpenTimeout bounds the wait for bbolt's own file lock. The data-dir
// lock is taken first, so only a process that is not Cairn (a bbolt tool)
// can hold it.
const boltOpenTimeout = 5 * time.Second

// ErrDataDirDamaged is matched (errors.Is) by the errors of the start-up
// checks of a data dir's files.
var ErrDataDirDamaged = errors.New("cluster: damaged data dir")

// recoverHint is what an operator does about a damaged data dir.
const recoverHint = "if the other members are healthy, remove this member (cairn member remove ID), empty its data dir and start it again with --peers; " +
	"if it is the only member, restore the last backup into a new data dir (cairn snapshot restore); see docs/reliability.md"

func damaged(path, what string, args ...any) error {
	return fmt.Errorf("%w: %s %s; %s", ErrDataDirDamaged, path, fmt.Sprintf(what, args...), recoverHint)
}

// checkBoltFile validates raft.db's header before bbolt maps it: one of its
// two meta pages must be intact (magic, version, checksum, as bbolt checks
// them), and the file must be as long as the newest intact meta page says
// (bbolt maps pages up to that mark and faults on a shorter file). A
// missing file is fine (a new member); an empty one is fine only while
// there is no snapshot either.
func checkBoltFile(path string, haveSnapshots bool) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cluster: open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cluster: stat %s: %w", path, err)
	}
	size := fi.Size()
	if size == 0 {
		if haveSnapshots {
			return damaged(path, "is empty while the data dir holds snapshots: the log and the member's vote are lost")
		}
		return nil
	}
	var best *boltMeta
	for _, off := range []int64{0, 4096} {
		m, ok := readBoltMeta(f, off)
		if !ok {
			continue
		}
		if off == 0 && int64(m.pageSize) != 4096 {
			// The second meta page is one page in, whatever the page size.
			if m2, ok := readBoltMeta(f, int64(m.pageSize)); ok && m2.txid > m.txid {
				m = m2
			}
		}
		if best == nil || m.txid > best.txid {
			best = &m
		}
	}
	if best == nil {
		return damaged(path, "is not a valid database: both of its meta pages are damaged (%d bytes)", size)
	}
	if want := int64(best.pgid) * int64(best.pageSize); size < want {
		return damaged(path, "is truncated: %d bytes, its header says %d", size, want)
	}
	return nil
}

// boltMeta is the part of bbolt's meta page that checkBoltFile uses.
type boltMeta struct {
	pageSize uint32
	pgid     uint64
	txid     uint64
}

// readBoltMeta reads and validates the meta page at off: bbolt's page
// header (16 bytes), then magic, version, page size, flags, root bucket
// (16), freelist, high-water page id, txid and an FNV-64a checksum of the
// fields before it, in the machine's byte order (bbolt writes the struct).
func readBoltMeta(r io.ReaderAt, off int64) (boltMeta, bool) {
	const pageHeader, sumOff = 16, 56
	var b [pageHeader + sumOff + 8]byte
	if _, err := r.ReadAt(b[:], off); err != nil {
		return boltMeta{}, false
	}
	m := b[pageHeader:]
	e := binary.NativeEndian
	h := fnv.New64a()
	h.Write(m[:sumOff])
	if e.Uint32(m[0:]) != 0xED0CDAED || e.Uint32(m[4:]) != 2 || e.Uint64(m[sumOff:]) != h.Sum64() {
		return boltMeta{}, false
	}
	pm := boltMeta{pageSize: e.Uint32(m[8:]), pgid: e.Uint64(m[40:]), txid: e.Uint64(m[48:])}
	if pm.pageSize < 512 || pm.pageSize > 1<<20 || pm.pgid < 4 {
		return boltMeta{}, false
	}
	return pm, true
}

// checkSnapshots validates what raft's file snapshot store will read: every
// snapshot's meta.json parses and its state.bin exists with the size the
// meta gives (raft skips a snapshot it cannot read and then looks for log
// entries that were compacted into it, and panics). It returns the newest
// snapshot's index, 0 when there is none. Leftover .tmp dirs of an
// interrupted snapshot are ignored, as raft ignores them.
func checkSnapshots(dataDir string) (uint64, error) {
	dir := filepath.Join(dataDir, snapshotsDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cluster: read %s: %w", dir, err)
	}
	var newest uint64
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		metaPath := filepath.Join(dir, e.Name(), "meta.json")
		b, err := os.ReadFile(metaPath)
		if err != nil {
			return 0, damaged(metaPath, "cannot be read (%v)", err)
		}
		var meta raft.SnapshotMeta
		if err := json.Unmarshal(b, &meta); err != nil {
			return 0, damaged(metaPath, "is not a snapshot's metadata (%v)", err)
		}
		if meta.Index == 0 || meta.ID != e.Name() {
			return 0, damaged(metaPath, "is not this snapshot's metadata (id %q, index %d)", meta.ID, meta.Index)
		}
		statePath := filepath.Join(dir, e.Name(), "state.bin")
		fi, err := os.Stat(statePath)
		if err != nil {
			return 0, damaged(statePath, "is missing (%v)", err)
		}
		if fi.Size() != meta.Size {
			return 0, damaged(statePath, "is %d bytes, its meta.json says %d", fi.Size(), meta.Size)
		}
		newest = max(newest, meta.Index)
	}
	return newest, nil
}

// openLog checks and opens raft.db, and verifies every entry of its log:
// each command's checksum, and that no entry raft will replay (after the
// newest snapshot, index snapIndex) is missing.
func openLog(path string, snapIndex uint64, flt *fault) (*checkedLogStore, error) {
	if err := checkBoltFile(path, snapIndex > 0); err != nil {
		return nil, err
	}
	opts := *bbolt.DefaultOptions
	opts.Timeout = boltOpenTimeout
	bs, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &opts})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("cluster: open %s: another process holds its lock (waited %v); stop it", path, boltOpenTimeout)
	}
	if err != nil {
		return nil, damaged(path, "cannot be opened (%v)", err)
	}
	if err := scanLog(bs, path, snapIndex); err != nil {
		bs.Close()
		return nil, err
	}
	return &checkedLogStore{BoltStore: bs, path: path, fault: flt}, nil
}

// secureDir restricts the data dir to its owner (0700), whatever mode it
// was made with: the snapshots in it hold the managed certificates'
// private keys. A dir it cannot restrict is an error with the command to
// run; a shared dir (sticky bit, as /tmp) is refused rather than
// restricted.
func secureDir(dir string, log *slog.Logger) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("cluster: data dir %s: %w", dir, err)
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		// /tmp and its kind: shared by everyone, never to be chmodded.
		return fmt.Errorf("cluster: data dir %s is a shared directory (sticky bit set); give Cairn a directory of its own, e.g. %s",
			dir, filepath.Join(dir, "cairn"))
	}
	if mode := fi.Mode().Perm(); mode&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("cluster: data dir %s is open to group or others (mode %04o) and cannot be restricted (%v); run: chmod 700 %s",
				dir, mode, err, dir)
		}
		if log != nil {
			log.Warn("data dir was open to group or others; restricted to its owner", "data_dir", dir, "old_mode", fmt.Sprintf("%04o", mode))
		}
	}
	return nil
}

// secureFiles makes Cairn's files in the data dir 0600 (dirs 0700),
// whatever an older version or raft left.
func secureFiles(dir string) error {
	for _, name := range []string{logFile, metaFile, lockFile} {
		if err := restrict(filepath.Join(dir, name), 0o600); err != nil {
			return err
		}
	}
	return restrictTree(filepath.Join(dir, snapshotsDir))
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
		return fmt.Errorf("cluster: restrict %s to %04o: %w; run: chmod %o %s", path, mode, err, mode, path)
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

func newSnapshotStore(dataDir string, log *slog.Logger) (*privateSnapshots, error) {
	fss, err := raft.NewFileSnapshotStoreWithLogger(dataDir, 2, newRaftLogger(log))
	if err != nil {
		return nil, fmt.Errorf("cluster: open snapshot store: %w", err)
	}
	s := &privateSnapshots{FileSnapshotStore: fss, dir: filepath.Join(dataDir, snapshotsDir)}
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

// startRaft is raft.NewRaft with its start-up failures as errors that name
// the data dir's files: a snapshot that fails raft's own CRC-64 (raft then
// tries an older one, or none), and the panic raft raises, in this
// goroutine, when the snapshot it restored and the log leave a gap (which
// the checks above are meant to catch first).
func startRaft(rc *raft.Config, f *fsm, logs *checkedLogStore, snaps raft.SnapshotStore, trans raft.Transport, dataDir string) (r *raft.Raft, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, damaged(filepath.Join(dataDir, logFile), "does not continue the newest snapshot raft could restore (%v)", p)
		}
	}()
	r, err = raft.NewRaft(rc, f, logs, logs.BoltStore, snaps, trans)
	if err != nil && strings.Contains(err.Error(), "snapshot") {
		return nil, damaged(filepath.Join(dataDir, snapshotsDir), "holds no snapshot raft can restore (%v)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: start raft: %w", err)
	}
	return r, nil
}
