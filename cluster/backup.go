package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/cairnkv/cairn/store"
)

// A backup is one file holding a consistent copy of a cluster's state:
// keys, values, TTLs (absolute expiration times), the store index and every
// node's createdIndex and modifiedIndex, the watch history, the store
// counters. RestoreBackup makes a new one-member cluster from it.
//
// File format, version 1:
//
//	magic "CAIRNBK1"
//	uint32 big-endian length, then the backup header (backupHeader, JSON)
//	the FSM snapshot stream, byte for byte what raft's snapshot store
//	  holds: "CAIRNFS1", uint32 length, snapHeader JSON, the store's
//	  stream ("CAIRNST1" ... CRC-32C)
//	trailer, 48 bytes: "CAIRNEND", uint64 big-endian length of everything
//	  before the trailer, SHA-256 of everything before the trailer
//
// The trailer is written last, so a download cut short at any byte, or a
// file altered after the fact, is refused before anything is decoded.
const (
	backupMagic      = "CAIRNBK1"
	backupEnd        = "CAIRNEND"
	backupFormat     = 1
	backupTrailerLen = len(backupEnd) + 8 + sha256.Size
	backupPrefixLen  = int64(len(backupMagic) + 4)
	maxBackupHeader  = 1 << 20
)

// Errors of VerifyBackup and RestoreBackup, wrapped with the details.
var (
	ErrBadBackup       = errors.New("cluster: not a usable backup")
	ErrDataDirNotEmpty = errors.New("cluster: the data dir is not empty")
)

const incomplete = "the file is incomplete (a download or copy cut short?)"

// BackupInfo describes a backup: where and when it was taken, and at which
// point of the cluster's history.
type BackupInfo struct {
	// StoreIndex is the store index (X-Etcd-Index) the backup was taken at:
	// the store in it is exactly the store at that index.
	StoreIndex uint64
	// RaftIndex is the raft index the member had applied when the backup
	// was taken: every entry up to it is in the backup.
	RaftIndex uint64
	// ClusterID and MemberID name the cluster and the member it came from.
	ClusterID, MemberID uint64
	// MemberName is that member's name.
	MemberName string
	// Time is when it was taken, by the clock of that member.
	Time time.Time
}

// backupHeader is BackupInfo as the file holds it.
type backupHeader struct {
	Format     int       `json:"format"`
	StoreIndex uint64    `json:"storeIndex"`
	RaftIndex  uint64    `json:"raftIndex"`
	ClusterID  string    `json:"clusterID"`
	MemberID   string    `json:"memberID"`
	MemberName string    `json:"memberName"`
	Time       time.Time `json:"time"`
}

// Backup is a consistent copy of a member's state, ready to be written out
// with WriteTo (any number of times, from any goroutine).
type Backup struct {
	info BackupInfo
	fsm  fsmSnapshot
}

// Backup takes a backup of the cluster's state from this member's replica.
// It is consistent in two ways:
//
//   - Linearizable: it is taken after a read barrier (see ReadBarrier), so
//     it holds every write acknowledged to any client, through any member,
//     before Backup was called, as a backup taken on the leader would.
//   - Point in time: keys, values, TTLs, indexes and the watch history are
//     the store exactly as it was at one store index (BackupInfo.StoreIndex),
//     captured under the store's lock like raft's own snapshots. Writes that
//     go on while the backup is written out are not in it.
//
// Taking it copies the store's node headers, not its values; nothing is
// written to disk, and no lock is held while WriteTo streams it. The
// member table is read at about the same moment; a restore replaces it.
// An error is ReadBarrier's: no quorum, or the request timed out.
func (n *Node) Backup(ctx context.Context) (*Backup, error) {
	if err := n.ReadBarrier(ctx); err != nil {
		return nil, err
	}
	f := n.fsm
	// Every entry up to applied is in the store (the FSM advances after it
	// applies); a few later ones may be too, which StoreIndex pins down.
	applied := f.applied.Load()
	snap := f.store.Snapshot()
	// Read after the store: lastNow never decreases, so it is at least the
	// time of every write in snap, and a restored leader never stamps an
	// earlier one.
	h := snapHeader{Applied: applied, LastNow: f.lastNow.Load(), ClusterID: f.clusterID.Load()}
	f.metaMu.RLock()
	for id, m := range f.members {
		h.Members = append(h.Members, memberCmd{ID: id, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs})
	}
	for id := range f.removed {
		h.Removed = append(h.Removed, id)
	}
	f.metaMu.RUnlock()
	hb, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("cluster: backup header: %w", err)
	}
	return &Backup{
		info: BackupInfo{StoreIndex: snap.Index(), RaftIndex: applied, ClusterID: n.ClusterID(),
			MemberID: n.id, MemberName: n.cfg.Name, Time: n.cfg.Now().UTC().Round(0)},
		fsm: fsmSnapshot{header: hb, snap: snap},
	}, nil
}

// Info describes the backup.
func (b *Backup) Info() BackupInfo { return b.info }

// WriteTo streams the backup file to w, with no whole-store buffer. An
// error is w's; what was written is then incomplete, and the trailer
// missing says so to whoever reads it.
func (b *Backup) WriteTo(w io.Writer) (int64, error) {
	sum := sha256.New()
	cw := &hashWriter{w: w, h: sum}
	hb, err := json.Marshal(backupHeader{Format: backupFormat, StoreIndex: b.info.StoreIndex,
		RaftIndex: b.info.RaftIndex, ClusterID: hexID(b.info.ClusterID), MemberID: hexID(b.info.MemberID),
		MemberName: b.info.MemberName, Time: b.info.Time})
	if err != nil {
		return 0, fmt.Errorf("cluster: backup header: %w", err)
	}
	pre := binary.BigEndian.AppendUint32([]byte(backupMagic), uint32(len(hb)))
	if _, err := cw.Write(append(pre, hb...)); err != nil {
		return cw.n, fmt.Errorf("cluster: write backup: %w", err)
	}
	// The FSM's own Persist: the file holds what raft's snapshots hold.
	if err := b.fsm.Persist(&writerSink{w: cw}); err != nil {
		return cw.n, fmt.Errorf("cluster: write backup: %w", err)
	}
	tr := binary.BigEndian.AppendUint64([]byte(backupEnd), uint64(cw.n))
	tr = sum.Sum(tr)
	k, err := w.Write(tr)
	if err != nil {
		return cw.n + int64(k), fmt.Errorf("cluster: write backup: %w", err)
	}
	return cw.n + int64(k), nil
}

// hashWriter writes to w and hashes and counts what w took.
type hashWriter struct {
	w io.Writer
	h io.Writer
	n int64
}

func (c *hashWriter) Write(p []byte) (int, error) {
	k, err := c.w.Write(p)
	c.h.Write(p[:k])
	c.n += int64(k)
	return k, err
}

// writerSink is a raft.SnapshotSink over a plain writer, for Persist.
type writerSink struct{ w io.Writer }

func (s *writerSink) Write(p []byte) (int, error) { return s.w.Write(p) }
func (s *writerSink) Close() error                { return nil }
func (s *writerSink) Cancel() error               { return nil }
func (s *writerSink) ID() string                  { return "backup" }

// BackupSummary describes a backup file that VerifyBackup read in full.
type BackupSummary struct {
	BackupInfo
	// Bytes is the size of the file.
	Bytes int64
	// Keys counts the keys that hold a value, hidden ones included; Dirs
	// the directories; Expiring the keys and directories with a TTL.
	Keys, Dirs, Expiring int
}

// backupFile is an opened backup whose trailer checked out.
type backupFile struct {
	f      *os.File
	size   int64
	info   BackupInfo
	fsmOff int64 // the FSM snapshot stream: [fsmOff, fsmEnd)
	fsmEnd int64
}

// openBackup opens path and checks its framing and checksum, reading the
// file once. It does not decode the snapshot.
func openBackup(path string) (_ *backupFile, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cluster: open backup: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrBadBackup, path, fmt.Sprintf(format, a...))
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cluster: open backup: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, bad("not a regular file")
	}
	size := st.Size()
	if size == 0 {
		return nil, bad("the file is empty")
	}
	var pre [backupPrefixLen]byte
	if _, err := f.ReadAt(pre[:], 0); err != nil || string(pre[:len(backupMagic)]) != backupMagic {
		return nil, bad("not a Cairn backup (it does not start with %q)", backupMagic)
	}
	hl := int64(binary.BigEndian.Uint32(pre[len(backupMagic):]))
	if hl > maxBackupHeader {
		return nil, bad("header of %d bytes is too large", hl)
	}
	if size < backupPrefixLen+hl+int64(backupTrailerLen) {
		return nil, bad("%s: it is only %d bytes long", incomplete, size)
	}
	var tr [backupTrailerLen]byte
	if _, err := f.ReadAt(tr[:], size-int64(backupTrailerLen)); err != nil {
		return nil, fmt.Errorf("cluster: read backup %s: %w", path, err)
	}
	body := size - int64(backupTrailerLen)
	if string(tr[:len(backupEnd)]) != backupEnd || binary.BigEndian.Uint64(tr[len(backupEnd):]) != uint64(body) {
		return nil, bad("%s: its end marker is missing", incomplete)
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, io.NewSectionReader(f, 0, body)); err != nil {
		return nil, fmt.Errorf("cluster: read backup %s: %w", path, err)
	}
	if !bytes.Equal(sum.Sum(nil), tr[len(backupEnd)+8:]) {
		return nil, bad("SHA-256 checksum mismatch: the file was altered or damaged after it was written")
	}
	hb := make([]byte, hl)
	if _, err := f.ReadAt(hb, backupPrefixLen); err != nil {
		return nil, fmt.Errorf("cluster: read backup %s: %w", path, err)
	}
	var h backupHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, bad("bad header: %v", err)
	}
	if h.Format != backupFormat {
		return nil, bad("format %d; this cairn reads format %d (use the cairn version that wrote it, or a newer one)", h.Format, backupFormat)
	}
	cid, err1 := strconv.ParseUint(h.ClusterID, 16, 64)
	mid, err2 := strconv.ParseUint(h.MemberID, 16, 64)
	if err1 != nil || err2 != nil {
		return nil, bad("bad header: invalid cluster or member ID")
	}
	return &backupFile{
		f: f, size: size, fsmOff: backupPrefixLen + hl, fsmEnd: body,
		info: BackupInfo{StoreIndex: h.StoreIndex, RaftIndex: h.RaftIndex, ClusterID: cid, MemberID: mid,
			MemberName: h.MemberName, Time: h.Time},
	}, nil
}

func (b *backupFile) fsmStream() *io.SectionReader {
	return io.NewSectionReader(b.f, b.fsmOff, b.fsmEnd-b.fsmOff)
}

// VerifyBackup checks the backup file at path completely: its length and
// SHA-256 checksum, its header, and its snapshot, which it decodes into a
// scratch store (so it needs about as much memory as the store). An error
// wrapping ErrBadBackup says what is wrong with the file.
func VerifyBackup(path string) (BackupSummary, error) {
	bf, err := openBackup(path)
	if err != nil {
		return BackupSummary{}, err
	}
	defer bf.f.Close()
	return bf.verify()
}

// verify decodes the snapshot of an opened backup.
func (bf *backupFile) verify() (BackupSummary, error) {
	st := store.New(store.Config{})
	if err := newFSM(st).Restore(io.NopCloser(bf.fsmStream())); err != nil {
		return BackupSummary{}, fmt.Errorf("%w: %s: %v", ErrBadBackup, bf.f.Name(), err)
	}
	if got := st.Index(); got != bf.info.StoreIndex {
		return BackupSummary{}, fmt.Errorf("%w: %s: its header says store index %d, its snapshot %d", ErrBadBackup, bf.f.Name(), bf.info.StoreIndex, got)
	}
	sum := BackupSummary{BackupInfo: bf.info, Bytes: bf.size}
	nodes, _ := st.GetAll("/", time.Time{})
	for _, n := range nodes {
		if n.Dir {
			sum.Dirs++
		} else {
			sum.Keys++
		}
		if n.Expiration != nil {
			sum.Expiring++
		}
	}
	return sum, nil
}

// RestoreConfig says what to restore where. Zero values take the defaults
// of Config (name "default", peer address 127.0.0.1:7001).
type RestoreConfig struct {
	// Backup is the backup file.
	Backup string
	// DataDir is the data dir to create. It must not exist, or be empty.
	DataDir string
	// Name, PeerAddr and ClientURLs are the new member's, as it will be
	// served (a different peer address or client URLs at start are taken
	// over when the member announces itself).
	Name       string
	PeerAddr   string
	ClientURLs []string
	// Logger receives raft's logs; nil discards them.
	Logger *slog.Logger
}

// RestoreResult describes a restored data dir.
type RestoreResult struct {
	// Backup is what the backup held.
	Backup BackupSummary
	// MemberID and ClusterID are the new member's and cluster's, both new.
	MemberID, ClusterID uint64
	// RaftIndex is the index of the raft snapshot the data dir starts from.
	RaftIndex uint64
}

// RestoreBackup creates a data dir holding a new one-member cluster with
// the state of a backup: a new member ID and cluster ID, and raft state
// made of one snapshot (a raft configuration of just this member, at peer
// address cfg.PeerAddr) and an empty log. New(Config{DataDir: ...}) then
// starts with every key, value, TTL, index and the watch history of the
// backup; expiration times are absolute, so keys whose time passed expire
// at the first sweep. Other members join it as usual, with empty data dirs
// and Peers.
//
// It refuses a data dir that exists and is not empty (ErrDataDirNotEmpty)
// and a backup that VerifyBackup refuses (ErrBadBackup). On failure it
// leaves the data dir as it found it.
func RestoreBackup(cfg RestoreConfig) (res RestoreResult, err error) {
	c := Config{Name: cfg.Name, PeerAddr: cfg.PeerAddr, Logger: cfg.Logger}
	c.setDefaults()
	if cfg.DataDir == "" {
		return res, errors.New("cluster: no data dir to restore into; set --data-dir")
	}
	existed, err := checkEmptyDir(cfg.DataDir)
	if err != nil {
		return res, err
	}
	bf, err := openBackup(cfg.Backup)
	if err != nil {
		return res, err
	}
	defer bf.f.Close()
	sum, err := bf.verify()
	if err != nil {
		return res, err
	}
	res.Backup = sum

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return res, fmt.Errorf("cluster: create data dir: %w", err)
	}
	defer func() {
		if err != nil {
			emptyDir(cfg.DataDir, existed)
		}
	}()
	meta, id, cid, err := loadOrCreateMeta(cfg.DataDir, c.Name, func() uint64 { return 0 })
	if err != nil {
		return res, err
	}
	res.MemberID, res.ClusterID = id, cid
	res.RaftIndex = max(sum.RaftIndex, 1)

	// The backup's FSM header, with the new cluster's identity and members.
	fsmStream := bf.fsmStream()
	old, hdrLen, err := readSnapHeader(fsmStream)
	if err != nil {
		return res, fmt.Errorf("%w: %s: %v", ErrBadBackup, cfg.Backup, err)
	}
	h := snapHeader{Applied: res.RaftIndex, LastNow: old.LastNow, ClusterID: cid,
		Members: []memberCmd{{ID: id, Name: c.Name, PeerURLs: []string{"https://" + c.PeerAddr}, ClientURLs: cfg.ClientURLs}}}
	hb, err := json.Marshal(h)
	if err != nil {
		return res, fmt.Errorf("cluster: restore: %w", err)
	}

	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft.db")})
	if err != nil {
		return res, fmt.Errorf("cluster: create raft log: %w", err)
	}
	defer func() {
		if cerr := logs.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("cluster: close raft log: %w", cerr)
		}
	}()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, newRaftLogger(c.Logger))
	if err != nil {
		return res, fmt.Errorf("cluster: create snapshot store: %w", err)
	}
	// The transport only encodes the peer list of the snapshot's metadata.
	_, trans := raft.NewInmemTransport(raft.ServerAddress(c.PeerAddr))
	defer trans.Close()
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(meta.ID), Address: raft.ServerAddress(c.PeerAddr)}}}
	sink, err := snaps.Create(raft.SnapshotVersionMax, res.RaftIndex, 1, conf, res.RaftIndex, trans)
	if err != nil {
		return res, fmt.Errorf("cluster: create snapshot: %w", err)
	}
	pre := binary.BigEndian.AppendUint32([]byte(snapMagic), uint32(len(hb)))
	if _, err = sink.Write(append(pre, hb...)); err == nil {
		// The store's stream, byte for byte: its history capacity and
		// every event are kept, whatever this process's defaults are.
		_, err = io.Copy(sink, io.NewSectionReader(bf.f, bf.fsmOff+hdrLen, bf.fsmEnd-bf.fsmOff-hdrLen))
	}
	if err != nil {
		sink.Cancel()
		return res, fmt.Errorf("cluster: write snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return res, fmt.Errorf("cluster: write snapshot: %w", err)
	}
	return res, nil
}

// readSnapHeader reads the start of an FSM snapshot stream and returns its
// header and how many bytes it took.
func readSnapHeader(r io.Reader) (snapHeader, int64, error) {
	var h snapHeader
	var pre [len(snapMagic) + 4]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil || string(pre[:len(snapMagic)]) != snapMagic {
		return h, 0, errors.New("not a Cairn snapshot (bad header)")
	}
	hl := binary.BigEndian.Uint32(pre[len(snapMagic):])
	if hl > maxFrame {
		return h, 0, fmt.Errorf("snapshot header of %d bytes is too large", hl)
	}
	hb := make([]byte, hl)
	if _, err := io.ReadFull(r, hb); err != nil {
		return h, 0, fmt.Errorf("snapshot header: %w", err)
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return h, 0, fmt.Errorf("snapshot header: %w", err)
	}
	return h, int64(len(pre)) + int64(hl), nil
}

// checkEmptyDir refuses a dir that has anything in it, and reports whether
// it exists.
func checkEmptyDir(dir string) (existed bool, err error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("cluster: data dir %s: %w", dir, err)
	case len(entries) > 0:
		var names []string
		for i, e := range entries {
			if i == 3 {
				names = append(names, "...")
				break
			}
			names = append(names, e.Name())
		}
		return true, fmt.Errorf("%w: %s holds %s; a restore creates a new cluster and never overwrites a member's data: restore into a new or empty directory",
			ErrDataDirNotEmpty, dir, strings.Join(names, ", "))
	}
	return true, nil
}

// emptyDir undoes a failed restore: it removes dir, or only what is in it
// when it existed before.
func emptyDir(dir string, existed bool) {
	if !existed {
		os.RemoveAll(dir)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}
