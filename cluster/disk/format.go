package disk

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// A data dir's on-disk format. It counts changes to what the data dir holds
// that an older binary would misread: the files and their layout, raft.db's
// buckets, the snapshot stream (cluster/snapshot.go's magic), the raft log
// command encoding. FormatFile records it; a binary opens a data dir of its
// own format or an older one (upgrading it in place when something must
// change) and refuses a newer one before it changes anything.
//
// Format 1 is the layout Cairn has written since before FormatFile existed:
//
//	LOCK          the data-dir lock (PID of the holder)
//	member.json   the member's ID, cluster ID and name
//	raft.db       raft's stable store (bbolt), and the raft log with log store boltdb
//	wal/          the raft log with log store wal (hashicorp/raft-wal)
//	snapshots/    raft's file snapshot store; state.bin is "CAIRNFS1" + header + "CAIRNST1" store stream
//	pki/          the development PKI, when the member made one
//
// Its raft log may hold every command type up to cmdBatch (5): batches of
// writes, which the leader writes once every member announced featureBatch.
// So format 1 covers batches: every binary that reads FormatFile applies
// them. Binaries from before FormatFile neither read it nor apply batches
// (they stop with "undecodable raft entry"); no file can stop them, which is
// why docs/upgrading.md says never to go back to one.
//
// A data dir with no FormatFile is format 1: every data dir written before
// the file existed has today's layout.
const (
	FormatFile = "format.json"
	// Format is the format this binary writes.
	Format = 1
	// formatMinVersion is the oldest Cairn release that opens a data dir
	// of Format; a binary refusing a newer data dir quotes the file's.
	formatMinVersion = "0.1.0"
)

// ErrNewerFormat is matched (errors.Is) by the error for a data dir written
// in a format newer than this binary's.
var ErrNewerFormat = errors.New("disk: data dir of a newer format")

type newerFormatError string

func (e newerFormatError) Error() string        { return string(e) }
func (e newerFormatError) Is(target error) bool { return target == ErrNewerFormat }

// formatDoc is FormatFile's content.
type formatDoc struct {
	// Format is the data dir's format.
	Format int `json:"format"`
	// MinVersion is the oldest Cairn release that opens it.
	MinVersion string `json:"minVersion"`
}

// upgrades[f] upgrades a data dir of format f to f+1 in place. Format 1 is
// the only format so far: nothing to upgrade.
var upgrades = map[int]func(dataDir string) error{}

// CheckFormat reads the format of dataDir and refuses one newer than
// Format, changing nothing. A missing dir or FormatFile is format 1 (a new
// data dir, or one written before FormatFile existed).
func CheckFormat(dataDir string) (int, error) {
	p := filepath.Join(dataDir, FormatFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("disk: read %s: %w", p, err)
	}
	var d formatDoc
	if err := json.Unmarshal(b, &d); err != nil || d.Format < 1 {
		return 0, Damaged(p, "is not a data dir format record (%q)", truncate(b, 80))
	}
	if d.Format > Format {
		need := "a newer Cairn"
		if d.MinVersion != "" {
			need = "Cairn " + d.MinVersion + " or later"
		}
		return d.Format, newerFormatError(fmt.Sprintf("disk: data dir %s has on-disk format %d and this binary supports data dir formats 1 to %d: "+
			"start this member with %s, or roll back: restore a backup taken before the upgrade into a new, empty data dir "+
			"(cairn snapshot restore FILE --data-dir DIR; see docs/upgrading.md). The data dir was not changed",
			dataDir, d.Format, Format, need))
	}
	return d.Format, nil
}

// EnsureFormat brings dataDir, which the caller has locked, to Format: it
// checks it (CheckFormat), runs the upgrades from its format on, and
// records Format in FormatFile when the file is missing or older.
func EnsureFormat(dataDir string) error {
	f, err := CheckFormat(dataDir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dataDir, FormatFile)); err == nil && f == Format {
		return nil
	}
	for ; f < Format; f++ {
		if up := upgrades[f]; up != nil {
			if err := up(dataDir); err != nil {
				return fmt.Errorf("disk: upgrade data dir %s from format %d to %d: %w", dataDir, f, f+1, err)
			}
		}
	}
	return WriteFormat(dataDir)
}

// WriteFormat records Format in dataDir's FormatFile (0600, replaced
// atomically and synced).
func WriteFormat(dataDir string) error {
	p := filepath.Join(dataDir, FormatFile)
	b, _ := json.Marshal(formatDoc{Format: Format, MinVersion: formatMinVersion})
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("disk: write %s: %w", p, err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("disk: write %s: %w", p, err)
	}
	return syncDir(dataDir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("disk: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("disk: sync %s: %w", dir, err)
	}
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
