package disk

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/raft"
)

// A wal whose disk fills up writes again once there is room, without a
// restart, and keeps every entry it acknowledged; the first failure is a
// no-room error (the disk-full state). Before, raft-wal v0.4.0 could not
// create its next segment and refused every later append ("segment is
// sealed"), and a batch it failed to write was refused again on every
// retry ("non-monotonic append"), until the process restarted.
func TestWALWritesAgainAfterAFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a full disk needs a small file system: mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m,mode=0700"); err != nil {
		t.Skipf("mounting a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	defer func(n int) { walSegmentSize = n }(walSegmentSize)
	walSegmentSize = 512 << 10

	s, err := OpenLogStore(dir, LogStoreWAL, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	fillPath := filepath.Join(dir, "fill")
	f, err := os.Create(fillPath)
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = f.Write(make([]byte, 16<<10))
	}
	// 64 KiB left: room for the first segment's last batch, not for the
	// next segment.
	if fi, err := f.Stat(); err != nil || f.Truncate(fi.Size()-64<<10) != nil {
		t.Fatalf("leaving 64 KiB: %v", err)
	}
	f.Close()

	entry := func(i uint64) []*raft.Log {
		return []*raft.Log{{Index: i, Term: 1, Data: framed(strings.Repeat("v", 16<<10))}}
	}
	next := uint64(1)
	for ; ; next++ {
		err := s.StoreLogs(entry(next))
		if err == nil {
			continue
		}
		if _, full := Classify(err); !full {
			t.Fatalf("entry %d on a full disk: %v; want a no-room error", next, err)
		}
		break
	}
	if next < 20 {
		t.Fatalf("the first segment (512 KiB, allocated ahead) took only %d entries of 16 KiB", next-1)
	}
	if err := os.Remove(fillPath); err != nil {
		t.Fatal(err)
	}
	// The failed entry, then enough for another segment.
	for end := next + 40; next < end; next++ {
		if err := s.StoreLogs(entry(next)); err != nil {
			t.Fatalf("entry %d after room came back: %v", next, err)
		}
	}
	check := func(s *LogStore) {
		t.Helper()
		for i := uint64(1); i < next; i++ {
			var l raft.Log
			if err := s.GetLog(i, &l); err != nil || l.Index != i {
				t.Fatalf("entry %d: index %d, %v", i, l.Index, err)
			}
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenLogStore(dir, LogStoreWAL, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if last, _ := s.LastIndex(); last != next-1 {
		t.Fatalf("after a restart the log ends at %d, want %d", last, next-1)
	}
	check(s)
}
