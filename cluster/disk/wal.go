package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// The log stores a data dir can hold (Config.LogStore, --log-store).
const (
	LogStoreBolt = "boltdb" // the log in raft.db, with the stable store
	LogStoreWAL  = "wal"    // the log in wal/ (hashicorp/raft-wal), the stable store in raft.db
)

// WALDir is the dir of the wal log store in a data dir.
const WALDir = "wal"

// walSegmentSize is the size of a wal segment file (preallocated); tests
// make it small.
var walSegmentSize = wal.DefaultSegmentSize

// walMetaFile is raft-wal's own index of its segments, a bbolt file.
const walMetaFile = "wal-meta.db"

// ChooseLogStore is the log store of the data dir: the one its files say
// (wal/ exists: wal; raft.db holds log entries: boltdb), or want when it
// holds no log yet ("": LogStoreWAL). A data dir whose store is not want
// is an error naming both: a data dir keeps the store it was created
// with; want "" takes the one it has.
func ChooseLogStore(dataDir, want string, boltHasLog bool) (string, error) {
	switch want {
	case "", LogStoreBolt, LogStoreWAL:
	default:
		return "", fmt.Errorf("disk: unknown log store %q; use %q or %q", want, LogStoreBolt, LogStoreWAL)
	}
	walDir := filepath.Join(dataDir, WALDir)
	_, err := os.Stat(walDir)
	hasWAL := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("disk: stat %s: %w", walDir, err)
	}
	have := ""
	switch {
	case hasWAL && boltHasLog:
		return "", Damaged(dataDir, "holds a raft log both in %s and in %s", LogFile, WALDir+"/")
	case hasWAL:
		have = LogStoreWAL
	case boltHasLog:
		have = LogStoreBolt
	case want == "":
		return LogStoreWAL, nil
	default:
		return want, nil
	}
	if want != "" && have != want {
		return "", fmt.Errorf("disk: data dir %s holds a %s log store and log_store is %s: a data dir keeps the log store it was created with; "+
			"start it with --log-store %s, or, to change stores, remove this member (cairn member remove ID), empty its data dir and start it again with --log-store %s and --peers",
			dataDir, have, want, have, want)
	}
	return have, nil
}

// openWAL opens (or creates) the wal log store in dataDir, with Cairn's
// modes and its failures as errors that name the dir.
// raft-wal v0.4.0's Close leaves its meta file open (and locked): the
// returned close closes both.
func openWAL(dataDir string, log hclog.Logger) (w *wal.WAL, closeAll func() error, err error) {
	dir := filepath.Join(dataDir, WALDir)
	if err := checkWAL(dir); err != nil {
		return nil, nil, err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, nil, fmt.Errorf("disk: create %s: %w", dir, err)
	}
	meta := &metadb.BoltMetaDB{}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	defer func() {
		if p := recover(); p != nil {
			meta.Close()
			w, closeAll, err = nil, nil, Damaged(dir, "cannot be opened (%v)", p)
		}
	}()
	w, err = wal.Open(dir,
		wal.WithMetaStore(meta),
		wal.WithLogger(log.Named("wal")),
		wal.WithSegmentSize(walSegmentSize),
		wal.WithSegmentFiler(truncatedTailFiler{segment.NewFiler(dir, privateVFS{walfs.New()})}))
	if err != nil {
		meta.Close()
		return nil, nil, Damaged(dir, "cannot be opened (%v)", err)
	}
	closeAll = func() error { return errors.Join(w.Close(), meta.Close()) }
	if err := restrictTree(dir); err != nil {
		closeAll()
		return nil, nil, err
	}
	return w, closeAll, nil
}

// checkWAL validates what raft-wal reads first: its meta file (a bbolt
// file, CheckBolt) must be there when segments are (raft-wal would start
// afresh and delete them).
func checkWAL(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("disk: read %s: %w", dir, err)
	}
	meta, segments := false, 0
	for _, e := range entries {
		switch {
		case e.Name() == walMetaFile:
			meta = true
		case filepath.Ext(e.Name()) == ".wal":
			segments++
			if err := checkSegmentHeader(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if !meta && segments > 0 {
		return Damaged(dir, "holds %d segment files and no %s (the index of its segments)", segments, walMetaFile)
	}
	if meta {
		fi, err := os.Stat(filepath.Join(dir, walMetaFile))
		if err == nil && fi.Size() == 0 {
			return Damaged(filepath.Join(dir, walMetaFile), "is empty")
		}
		return CheckBolt(filepath.Join(dir, walMetaFile), true)
	}
	return nil
}

// privateVFS is raft-wal's file system with Cairn's modes: it creates
// segment files 0644; they are restricted as soon as they exist. And a
// segment there is no room to allocate ahead is created empty, to grow as
// it is written: raft-wal cannot recover from a failed rotation (the full
// segment stays sealed, every append is refused until a restart), while a
// write that fails for want of room is the disk-full state Cairn handles.
type privateVFS struct{ *walfs.FS }

func (v privateVFS) Create(dir, name string, size uint64) (types.WritableFile, error) {
	f, err := v.FS.Create(dir, name, size)
	if _, full := Classify(err); full && size > 0 {
		os.Remove(filepath.Join(dir, name)) // what the failed allocation left
		f, err = v.FS.Create(dir, name, 0)
	}
	if err != nil {
		return nil, err
	}
	if err := restrict(filepath.Join(dir, name), 0o600); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

var _ raft.LogStore = (*wal.WAL)(nil)

// checkSegmentHeader refuses a segment file whose header is neither
// raft-wal's (magic, version) nor zeros (a segment created just before a
// crash): raft-wal would take it for a torn write and start the segment
// afresh, dropping its entries.
func checkSegmentHeader(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("disk: read %s: %w", path, err)
	}
	const headerLen, magic, version = 32, 0x58eb6b0d, 0
	if len(b) < headerLen {
		return Damaged(path, "is truncated: %d bytes, shorter than a segment header", len(b))
	}
	h := b[:headerLen]
	if binary.LittleEndian.Uint64(h[0:8]) == magic && h[7] == version {
		return nil
	}
	for _, c := range h {
		if c != 0 {
			return Damaged(path, "is not a wal segment: its header is damaged")
		}
	}
	return nil
}

// truncatedTailFiler works around hashicorp/raft-wal#31 (v0.4.0, the
// version the module proxy serves): when raft deletes the log's tail (a
// follower dropping entries a deposed leader sent), raft-wal marks the
// tail segment sealed without writing its index block, and after a restart
// every read of it fails ("sealed segment has no index block"). Such a
// segment is opened as raft-wal opens a tail after a crash: by scanning
// its frames. Entries past its MaxIndex are never asked of it: raft-wal
// reads them from the segment after it.
type truncatedTailFiler struct{ *segment.Filer }

func (f truncatedTailFiler) Open(info types.SegmentInfo) (types.SegmentReader, error) {
	if !info.SealTime.IsZero() && info.IndexStart == 0 {
		return f.Filer.RecoverTail(info)
	}
	return f.Filer.Open(info)
}
