package cluster

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/cairnkv/cairn/cluster/disk"
)

// RestoreConfig says what to restore where. Zero values take the defaults
// of Config (DefaultName, DefaultPeerAddr).
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
	if err := disk.WriteFormat(cfg.DataDir); err != nil {
		return res, err
	}
	meta, id, cid, err := loadOrCreateMeta(cfg.DataDir, c.Name, func() uint64 { return 0 })
	if err != nil {
		return res, err
	}
	res.MemberID, res.ClusterID = id, cid
	res.RaftIndex = max(sum.RaftIndex, 1)

	// The backup's FSM header, with the new cluster's identity and members.
	old, hdrLen, err := decodeSnapHeader(bf.fsmStream())
	if err != nil {
		return res, fmt.Errorf("%w: %s: %v", ErrBadBackup, cfg.Backup, err)
	}
	pre, err := encodeSnapHeader(snapHeader{Applied: res.RaftIndex, LastNow: old.LastNow, ClusterID: cid,
		Members: []memberCmd{{ID: id, Name: c.Name, PeerURLs: []string{"https://" + c.PeerAddr}, ClientURLs: cfg.ClientURLs, Features: ownFeatures}}})
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
	snaps, err := disk.NewSnapshotStore(cfg.DataDir, RaftLogger(c.Logger))
	if err != nil {
		return res, err
	}
	// The transport only encodes the peer list of the snapshot's metadata.
	_, trans := raft.NewInmemTransport(raft.ServerAddress(c.PeerAddr))
	defer trans.Close()
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(meta.ID), Address: raft.ServerAddress(c.PeerAddr)}}}
	sink, err := snaps.Create(raft.SnapshotVersionMax, res.RaftIndex, 1, conf, res.RaftIndex, trans)
	if err != nil {
		return res, fmt.Errorf("cluster: create snapshot: %w", err)
	}
	if _, err = sink.Write(pre); err == nil {
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
