package cluster

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"runtime"
	"testing"

	"github.com/cairnkv/cairn/store"
)

// FuzzSnapshotRestore restores arbitrary FSM snapshot streams, twice: as
// they are, and assembled from a header and a store body with the right
// magic, length and CRC-32C (so that the fuzzer gets past the framing to
// the JSON header and the store's records). Properties: a refused stream
// is errBadSnapHeader or store.ErrBadSnapshot and changes nothing; no length
// field allocates more than the stream holds; an accepted stream leaves an
// FSM whose own snapshot restores to the same state.
func FuzzSnapshotRestore(f *testing.F) {
	good := readFixture(f, "fsm-v1.snap")
	f.Add(good, []byte(nil), []byte(nil))
	f.Add(good[:len(good)-1], []byte(nil), []byte(nil))
	f.Add([]byte(snapMagic+"\x03\xff\xff\xff{}"), []byte(nil), []byte(nil)) // a 64 MiB header announced, 2 bytes sent
	f.Add([]byte(nil), []byte(`{"applied":7,"lastNow":5,"clusterID":9,"members":[{"id":1,"name":"n1","peerURLs":["https://10.0.0.1:7001"]}],"removed":[3]}`),
		[]byte("CAIRNST1\x02"+string(make([]byte, 16))+"N\x02/a\x00\x01\x01\x00"))
	f.Add([]byte(nil), []byte(`{"members":[{"id":1},{"id":1,"remove":true}],"applied":18446744073709551615}`), []byte("CAIRNST1"))
	f.Add([]byte(nil), []byte(`null`), []byte("CAIRNST1\x00"))
	f.Fuzz(func(t *testing.T, stream, header, body []byte) {
		restoreFSMChecked(t, stream)
		if header == nil && body == nil {
			return
		}
		b := append([]byte(snapMagic), 0, 0, 0, 0)
		binary.BigEndian.PutUint32(b[len(snapMagic):], uint32(len(header)))
		b = append(append(b, header...), body...)
		b = append(b, 'Z')
		sum := crc32.Checksum(append(bytes.Clone(body), 'Z'), crc32.MakeTable(crc32.Castagnoli))
		restoreFSMChecked(t, binary.BigEndian.AppendUint32(b, sum))
	})
}

func restoreFSMChecked(t *testing.T, data []byte) {
	t.Helper()
	fsm := newFSM(store.New(store.Config{HistorySize: 16}), nil)
	fsm.restoreHeader(snapHeader{Applied: 5, ClusterID: 77, Members: []memberCmd{{ID: 1, Name: "keep"}}})
	before, _ := fsm.capture()

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	alloc := ms.TotalAlloc
	err := fsm.Restore(ioNopCloser(data))
	runtime.ReadMemStats(&ms)
	if used, limit := ms.TotalAlloc-alloc, uint64(1<<20+256*len(data)); used > limit {
		t.Fatalf("Restore of %d bytes allocated %d bytes (limit %d): %v", len(data), used, limit, err)
	}
	if err != nil {
		if !errors.Is(err, errBadSnapHeader) && !errors.Is(err, store.ErrBadSnapshot) {
			t.Fatalf("Restore error %v is neither errBadSnapHeader nor store.ErrBadSnapshot", err)
		}
		if after, _ := fsm.capture(); !reflect.DeepEqual(after, before) || fsm.store.Index() != 0 {
			t.Fatalf("a refused Restore changed the FSM: %+v, was %+v", after, before)
		}
		return
	}
	h, snap := fsm.capture()
	var buf bytes.Buffer
	if _, err := (&fsmSnapshot{header: h, snap: snap}).WriteTo(&buf); err != nil {
		t.Fatalf("snapshot of the restored FSM: %v", err)
	}
	again := newFSM(store.New(store.Config{HistorySize: 16}), nil)
	if err := again.Restore(ioNopCloser(buf.Bytes())); err != nil {
		t.Fatalf("restore of the restored FSM's snapshot: %v", err)
	}
	h2, _ := again.capture()
	b1, _ := encodeSnapHeader(h)
	b2, _ := encodeSnapHeader(h2)
	if !bytes.Equal(b1, b2) || again.store.Index() != fsm.store.Index() {
		t.Fatalf("snapshot round trip: header %s, want %s; index %d, want %d", b2, b1, again.store.Index(), fsm.store.Index())
	}
}
