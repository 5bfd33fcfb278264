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
	"os"
	"strconv"
	"time"

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
//	  holds (format and its one encoder and decoder in snapshot.go)
//	trailer, 48 bytes: "CAIRNEND", uint64 big-endian length of everything
//	  before the trailer, SHA-256 of everything before the trailer
//
// The trailer is written last, so a download cut short at any byte, or a
// file altered after the fact, is refused before anything is decoded.
// Backup.WriteTo and encodeBackupHeader write the file; openBackup and
// decodeBackupHeader read it back.
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
	h, snap := n.fsm.capture()
	return &Backup{
		info: BackupInfo{StoreIndex: snap.Index(), RaftIndex: h.Applied, ClusterID: n.ClusterID(),
			MemberID: n.id, MemberName: n.cfg.Name, Time: n.cfg.Now().UTC().Round(0)},
		fsm: fsmSnapshot{header: h, snap: snap},
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
	pre, err := encodeBackupHeader(b.info)
	if err != nil {
		return 0, err
	}
	if _, err := cw.Write(pre); err != nil {
		return cw.n, fmt.Errorf("cluster: write backup: %w", err)
	}
	// The FSM's own stream: the file holds what raft's snapshots hold.
	if _, err := b.fsm.WriteTo(cw); err != nil {
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
	info, err := decodeBackupHeader(hb)
	if err != nil {
		return nil, bad("%v", err)
	}
	return &backupFile{f: f, size: size, info: info, fsmOff: backupPrefixLen + hl, fsmEnd: body}, nil
}

// encodeBackupHeader renders the start of a backup file: magic, length,
// header.
func encodeBackupHeader(info BackupInfo) ([]byte, error) {
	j, err := json.Marshal(backupHeader{Format: backupFormat, StoreIndex: info.StoreIndex,
		RaftIndex: info.RaftIndex, ClusterID: hexID(info.ClusterID), MemberID: hexID(info.MemberID),
		MemberName: info.MemberName, Time: info.Time})
	if err != nil {
		return nil, fmt.Errorf("cluster: backup header: %w", err)
	}
	return append(binary.BigEndian.AppendUint32([]byte(backupMagic), uint32(len(j))), j...), nil
}

// decodeBackupHeader parses the header JSON of a backup file and checks its
// format version.
func decodeBackupHeader(j []byte) (BackupInfo, error) {
	var h backupHeader
	if err := json.Unmarshal(j, &h); err != nil {
		return BackupInfo{}, fmt.Errorf("bad header: %v", err)
	}
	if h.Format != backupFormat {
		return BackupInfo{}, fmt.Errorf("format %d; this cairn reads format %d (use the cairn version that wrote it, or a newer one)", h.Format, backupFormat)
	}
	cid, err1 := strconv.ParseUint(h.ClusterID, 16, 64)
	mid, err2 := strconv.ParseUint(h.MemberID, 16, 64)
	if err1 != nil || err2 != nil {
		return BackupInfo{}, errors.New("bad header: invalid cluster or member ID")
	}
	return BackupInfo{StoreIndex: h.StoreIndex, RaftIndex: h.RaftIndex, ClusterID: cid, MemberID: mid,
		MemberName: h.MemberName, Time: h.Time}, nil
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
	if err := newFSM(st, nil).Restore(io.NopCloser(bf.fsmStream())); err != nil {
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
