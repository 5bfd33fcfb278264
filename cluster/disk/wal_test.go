package disk

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// walDataDir makes a data dir whose log (n entries) is in a wal.
func walDataDir(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	s, err := OpenLogStore(dir, LogStoreWAL, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := s.StoreLogs([]*raft.Log{{Index: uint64(i + 1), Term: 1, Data: framed(strings.Repeat("v", 100))}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The wal keeps its entries across a reopen, its files are the owner's
// only, raft.db holds the stable store and no log, and the data dir then
// refuses the other store (and a bolt data dir the wal).
func TestWALStore(t *testing.T) {
	dir := walDataDir(t, 50)
	s, err := OpenLogStore(dir, LogStoreWAL, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if last, _ := s.LastIndex(); last != 50 || s.Kind != LogStoreWAL || !s.IsMonotonic() {
		t.Fatalf("reopened wal: last %d, kind %s", last, s.Kind)
	}
	if v, _ := s.GetUint64([]byte("CurrentTerm")); v != 1 {
		t.Fatalf("term %d, want 1", v)
	}
	if last, _ := s.BoltStore.LastIndex(); last != 0 {
		t.Fatalf("raft.db holds log entries up to %d", last)
	}
	// Compacted entries are gone, though raft-wal keeps them in its tail.
	if err := s.DeleteRange(1, 10); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := s.GetLog(5, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("compacted entry 5: %v", err)
	}
	if err := s.GetLog(11, &l); err != nil {
		t.Fatalf("entry 11: %v", err)
	}
	s.Close()
	filepath.WalkDir(filepath.Join(dir, WALDir), func(p string, d fs.DirEntry, err error) error {
		fi, _ := d.Info()
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", p, fi.Mode().Perm(), want)
		}
		return nil
	})
	if _, err := OpenLogStore(dir, LogStoreBolt, 0, nil, nil); err == nil || !strings.Contains(err.Error(), "--log-store wal") {
		t.Fatalf("wal data dir opened as boltdb: %v", err)
	}

	bolt := t.TempDir()
	b, err := OpenLogStore(bolt, LogStoreBolt, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Data: framed("x")}})
	b.Close()
	if _, err := OpenLogStore(bolt, LogStoreWAL, 0, nil, nil); err == nil || !strings.Contains(err.Error(), "--log-store boltdb") {
		t.Fatalf("boltdb data dir opened as wal: %v", err)
	}
	if _, err := os.Stat(filepath.Join(bolt, WALDir)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("refused open left a wal dir: %v", err)
	}
}

// A damaged wal is an error naming the wal and what to do, never a panic
// nor a silent fresh start. (A missing tail segment is not caught:
// raft-wal takes it for a crash before its first fsync and starts it
// again; ScanLog then catches a gap after the newest snapshot.)
func TestWALDamaged(t *testing.T) {
	segment := func(t *testing.T, dir string) string {
		m, _ := filepath.Glob(filepath.Join(dir, WALDir, "*.wal"))
		if len(m) == 0 {
			t.Fatal("no segment")
		}
		return m[0]
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"garbage segment", func(t *testing.T, dir string) {
			p := segment(t, dir)
			fi, _ := os.Stat(p)
			b := make([]byte, fi.Size())
			for i := range b {
				b[i] = byte(i*7 + 3)
			}
			os.WriteFile(p, b, 0o600)
		}},
		{"truncated segment header", func(t *testing.T, dir string) {
			os.Truncate(segment(t, dir), 10)
		}},
		{"meta file removed", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, WALDir, walMetaFile))
		}},
		{"meta file garbage", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, WALDir, walMetaFile), []byte(strings.Repeat("garbage!", 2000)), 0o600)
		}},
		{"meta file empty", func(t *testing.T, dir string) {
			os.Truncate(filepath.Join(dir, WALDir, walMetaFile), 0)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := walDataDir(t, 50)
			tc.damage(t, dir)
			// A snapshot at 10: entries 11..50 must be there.
			s, err := OpenLogStore(dir, LogStoreWAL, 10, nil, nil)
			if err == nil {
				last, _ := s.LastIndex()
				s.Close()
				t.Fatalf("damaged wal opened (last index %d)", last)
			}
			t.Log(err)
			if !errors.Is(err, ErrDamaged) && !errors.Is(err, ErrLogCorrupt) || !strings.Contains(err.Error(), filepath.Join(dir, WALDir)) ||
				!strings.Contains(err.Error(), "cairn snapshot restore") {
				t.Fatalf("error does not name the wal and what to do: %v", err)
			}
		})
	}
}

// hashicorp/raft-wal#31: a log whose tail raft deleted (and wrote again)
// reads back after a restart (truncatedTailFiler).
func TestWALTailTruncatedRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenLogStore(dir, LogStoreWAL, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	store := func(from, to uint64, term uint64) {
		for i := from; i <= to; i++ {
			if err := s.StoreLogs([]*raft.Log{{Index: i, Term: term, Data: framed("v" + strings.Repeat("x", int(i)))}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	store(1, 10, 1)
	if err := s.DeleteRange(8, 10); err != nil {
		t.Fatal(err)
	}
	store(8, 12, 2)
	s.Close()
	s, err = OpenLogStore(dir, LogStoreWAL, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := uint64(1); i <= 12; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil {
			t.Fatalf("entry %d after a restart: %v", i, err)
		}
		if want := uint64(1 + i/8); l.Term != want {
			t.Fatalf("entry %d: term %d, want %d", i, l.Term, want)
		}
	}
}

// TestChooseLogStore: an empty setting takes the store a data dir has, wal
// for a new one (so a data dir made when boltdb was the default keeps
// working); a named store must be the one the data dir has.
func TestChooseLogStore(t *testing.T) {
	walDir := walDataDir(t, 1)
	for _, c := range []struct {
		name       string
		dir        string
		want       string
		boltHasLog bool
		got        string
		err        string
	}{
		{"new, default", t.TempDir(), "", false, LogStoreWAL, ""},
		{"new, boltdb", t.TempDir(), LogStoreBolt, false, LogStoreBolt, ""},
		{"boltdb dir, default", t.TempDir(), "", true, LogStoreBolt, ""},
		{"wal dir, default", walDir, "", false, LogStoreWAL, ""},
		{"wal dir, boltdb", walDir, LogStoreBolt, false, "", "holds a wal log store and log_store is boltdb"},
		{"boltdb dir, wal", t.TempDir(), LogStoreWAL, true, "", "holds a boltdb log store and log_store is wal"},
		{"unknown", t.TempDir(), "sqlite", false, "", `unknown log store "sqlite"`},
	} {
		got, err := ChooseLogStore(c.dir, c.want, c.boltHasLog)
		if got != c.got || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: ChooseLogStore = %q, %v; want %q, error with %q", c.name, got, err, c.got, c.err)
		}
	}
}
