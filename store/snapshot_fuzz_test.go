package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"runtime"
	"slices"
	"testing"
	"time"
)

// FuzzRestore feeds arbitrary streams to Restore, twice: as they are (the
// checksum almost always fails) and with a valid CRC-32C appended after a
// 'Z', so that the decoder's structural checks are what stands between a
// forged stream and the store. Properties:
//   - a refused stream is an ErrBadSnapshot and leaves the store as it was;
//   - a length field never allocates more than the stream holds (a few
//     bytes claiming a 64 MiB string cost a few bytes, not 64 MiB);
//   - an accepted stream gives a consistent tree (parent links, clean
//     paths, the TTL heap: checkTree), which serves reads, expires, deletes
//     and snapshots again to bytes that restore to the same state.
func FuzzRestore(f *testing.F) {
	rich := snapshotBytes(f, richStore(f, Config{}))
	f.Add(rich)
	f.Add(rich[:len(rich)-4]) // checksum cut off
	f.Add(rich[:len(rich)/2])
	f.Add(snapshotBytes(f, New(Config{})))
	f.Add([]byte(snapshotMagic))
	f.Add([]byte("CAIRNST0"))
	f.Add([]byte{})
	// A string length of 64 MiB with nothing behind it.
	f.Add(append([]byte(snapshotMagic+"\x01"+string(make([]byte, 16))+"N"), 0x80, 0x80, 0x80, 0x20))
	// The body of a small store, for the appended-checksum variant: the
	// fuzzer mutates paths, flags and indexes and the CRC still holds.
	small := New(Config{})
	mustApply(f, small, t0, put("/a/b", "v"), withTTL(putDir("/d"), 5), put("/d/_h", "x"))
	sb := snapshotBytes(f, small)
	f.Add(sb[:len(sb)-5])

	f.Fuzz(func(t *testing.T, data []byte) {
		restoreChecked(t, data)
		body := append(append(bytes.Clone(data), 'Z'), 0, 0, 0, 0)
		sum := crc32.Checksum(body[:len(body)-4], crc32.MakeTable(crc32.Castagnoli))
		binary.BigEndian.PutUint32(body[len(body)-4:], sum)
		restoreChecked(t, body)
	})
}

// restoreChecked restores data into a store that already holds something
// and checks FuzzRestore's properties.
func restoreChecked(t *testing.T, data []byte) {
	t.Helper()
	s := New(Config{HistorySize: 16})
	mustApply(t, s, t0, put("/keep", "me"))
	before := dumpNodes(s)

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	alloc := ms.TotalAlloc
	err := s.Restore(bytes.NewReader(data))
	runtime.ReadMemStats(&ms)
	// The reader's 64 KiB buffer, the structures of what was read (a node
	// costs a few hundred bytes, and a record is at least a few bytes of
	// input), and slack for the runtime.
	if used, limit := ms.TotalAlloc-alloc, uint64(1<<20+256*len(data)); used > limit {
		t.Fatalf("Restore of %d bytes allocated %d bytes (limit %d): %v", len(data), used, limit, err)
	}
	if err != nil {
		if !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("Restore error %v is not ErrBadSnapshot", err)
		}
		if !slices.Equal(dumpNodes(s), before) || s.Index() != 1 {
			t.Fatalf("a refused Restore changed the store")
		}
		return
	}
	checkTree(t, s)
	now := t0.Add(time.Hour)
	if _, err := s.Get("/", true, true, now); err != nil {
		t.Fatalf("Get / after Restore: %v", err)
	}
	r := New(Config{HistorySize: 16})
	if err := r.Restore(bytes.NewReader(snapshotBytes(t, s))); err != nil {
		t.Fatalf("restoring the restored store's own snapshot: %v", err)
	}
	compareDumps(t, r, s, now)
	for _, n := range dumpNodes(s) {
		if _, err := s.Get(n.path, false, false, now); err != nil {
			t.Fatalf("Get %q, a node of the tree: %v", n.path, err)
		}
	}
	s.DeleteExpiredKeys(time.Unix(1<<62, 0))
	checkTree(t, s)
	if _, err := s.Delete("/", true, true, now); err == nil {
		t.Fatalf("deleted the root")
	}
	for _, k := range rootKeys(s) {
		if _, err := s.Delete(k, true, true, now); err != nil {
			var se *Error
			if !errors.As(err, &se) || se.ErrorCode != EcodeKeyNotFound {
				t.Fatalf("Delete %q: %v", k, err)
			}
		}
	}
	checkTree(t, s)
}

// rootKeys lists the keys of the root's children, hidden ones included.
func rootKeys(s *Store) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for _, c := range s.root.children {
		out = append(out, c.path)
	}
	return out
}
