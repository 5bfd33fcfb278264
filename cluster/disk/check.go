package disk

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/raft"
)

// The files of a data dir that this package knows.
const (
	LogFile      = "raft.db"
	SnapshotsDir = "snapshots" // raft's FileSnapshotStore's
	LockFile     = "LOCK"
)

// ErrDamaged is matched (errors.Is) by the errors of the checks of a data
// dir's files.
var ErrDamaged = errors.New("disk: damaged data dir")

// recoverHint is what an operator does about a damaged data dir.
const recoverHint = "if the other members are healthy, remove this member (cairn member remove ID), empty its data dir and start it again with --peers; " +
	"if it is the only member, restore the last backup into a new data dir (cairn snapshot restore); see docs/reliability.md"

// Damaged is an ErrDamaged naming path, what is wrong with it, and what to do.
func Damaged(path, what string, args ...any) error {
	return fmt.Errorf("%w: %s %s; %s", ErrDamaged, path, fmt.Sprintf(what, args...), recoverHint)
}

// CheckBolt validates raft.db's header before bbolt maps it: one of its
// two meta pages must be intact (magic, version, checksum, as bbolt checks
// them), and the file must be as long as the newest intact meta page says
// (bbolt maps pages up to that mark and faults on a shorter file). A
// missing file is fine (a new member); an empty one is fine only while
// there is no snapshot either.
func CheckBolt(path string, haveSnapshots bool) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("disk: open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("disk: stat %s: %w", path, err)
	}
	size := fi.Size()
	if size == 0 {
		if haveSnapshots {
			return Damaged(path, "is empty while the data dir holds snapshots: the log and the member's vote are lost")
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
		return Damaged(path, "is not a valid database: both of its meta pages are damaged (%d bytes)", size)
	}
	if want := int64(best.pgid) * int64(best.pageSize); size < want {
		return Damaged(path, "is truncated: %d bytes, its header says %d", size, want)
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

// CheckSnapshots validates what raft's file snapshot store will read: every
// snapshot's meta.json parses and its state.bin exists with the size the
// meta gives (raft skips a snapshot it cannot read and then looks for log
// entries that were compacted into it, and panics). It returns the newest
// snapshot's index, 0 when there is none. Leftover .tmp dirs of an
// interrupted snapshot are ignored, as raft ignores them.
func CheckSnapshots(dataDir string) (uint64, error) {
	dir := filepath.Join(dataDir, SnapshotsDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("disk: read %s: %w", dir, err)
	}
	var newest uint64
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		metaPath := filepath.Join(dir, e.Name(), "meta.json")
		b, err := os.ReadFile(metaPath)
		if err != nil {
			return 0, Damaged(metaPath, "cannot be read (%v)", err)
		}
		var meta raft.SnapshotMeta
		if err := json.Unmarshal(b, &meta); err != nil {
			return 0, Damaged(metaPath, "is not a snapshot's metadata (%v)", err)
		}
		if meta.Index == 0 || meta.ID != e.Name() {
			return 0, Damaged(metaPath, "is not this snapshot's metadata (id %q, index %d)", meta.ID, meta.Index)
		}
		statePath := filepath.Join(dir, e.Name(), "state.bin")
		fi, err := os.Stat(statePath)
		if err != nil {
			return 0, Damaged(statePath, "is missing (%v)", err)
		}
		if fi.Size() != meta.Size {
			return 0, Damaged(statePath, "is %d bytes, its meta.json says %d", fi.Size(), meta.Size)
		}
		newest = max(newest, meta.Index)
	}
	return newest, nil
}
