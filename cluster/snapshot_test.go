package cluster

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cairnkv/cairn/store"
)

// The fixtures in testdata were written by the code before the snapshot
// header had one owner (commit "cluster: snapshot and backup fixtures ..."),
// and must keep restoring, byte for byte:
//
//   - fsm-v1.snap: an FSM snapshot stream (what raft's snapshot store
//     holds) of fixtureFSM's state; fsm-v1.state.json is its store.
//   - backup-v1.cbk: a backup file of a one-member cluster that applied
//     backupWrites; backup-v1.state.json is its store at fixtureBackupTime.
var fixtureNow = time.Unix(1_700_000_000, 0)

// fixtureBackupTime is the clock of the member that wrote backup-v1.cbk
// (newFakeClock's start).
var fixtureBackupTime = time.Unix(1_700_000_000, 0)

// fixtureFSM replays the entries the FSM of fsm-v1.snap applied: three
// members (one removed), a leader's no-op, backupWrites one second apart,
// and an expiry sweep.
func fixtureFSM(t *testing.T) *fsm {
	t.Helper()
	f := newFSM(store.New(store.Config{}), nil)
	idx := uint64(0)
	apply := func(c command) {
		idx++
		if res := f.Apply(&raft.Log{Index: idx, Data: c.encode()}).(applyResult); res.err != nil {
			t.Fatal(res.err)
		}
	}
	apply(command{typ: cmdMember, now: fixtureNow, member: &memberCmd{ID: 0x1111, Name: "n1",
		PeerURLs: []string{"https://10.0.0.1:7001"}, ClientURLs: []string{"https://10.0.0.1:4001"}, ClusterID: 0xc1c1}})
	apply(command{typ: cmdMember, now: fixtureNow, member: &memberCmd{ID: 0x2222, Name: "n2",
		PeerURLs: []string{"https://10.0.0.2:7001"}, ClientURLs: []string{"https://10.0.0.2:4001"}}})
	apply(command{typ: cmdMember, now: fixtureNow, member: &memberCmd{ID: 0x3333, Name: "n3",
		PeerURLs: []string{"https://10.0.0.3:7001"}}})
	apply(command{typ: cmdMember, now: fixtureNow, member: &memberCmd{ID: 0x3333, Remove: true}})
	apply(command{typ: cmdNoop, now: fixtureNow})
	for i, r := range backupWrites {
		apply(command{typ: cmdRequest, now: fixtureNow.Add(time.Duration(i) * time.Second), req: r})
	}
	apply(command{typ: cmdExpire, now: fixtureNow.Add(30 * time.Second)})
	return f
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func persist(t *testing.T, f *fsm) []byte {
	t.Helper()
	s, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := s.(*fsmSnapshot).WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSnapshotFormatV1Compatible(t *testing.T) {
	old := readFixture(t, "fsm-v1.snap")

	// The same state written by this code has the same header bytes (the
	// store's stream orders siblings as its maps do, so only its content
	// is compared, below).
	_, n, err := decodeSnapHeader(bytes.NewReader(old))
	if err != nil {
		t.Fatal(err)
	}
	if got := persist(t, fixtureFSM(t)); !bytes.Equal(got[:n], old[:n]) {
		t.Errorf("snapshot header of the fixture's state:\n%q\nwant (testdata/fsm-v1.snap)\n%q", got[:n], old[:n])
	}

	// The old snapshot restores: store, members, removed, IDs, indexes.
	// An FSM that applied the same entries has the same store.
	f := newFSM(store.New(store.Config{}), nil)
	if err := f.Restore(ioNopCloser(old)); err != nil {
		t.Fatal(err)
	}
	if got := persist(t, f); !bytes.Equal(got[:n], old[:n]) {
		t.Errorf("restored and written again:\n%q\nwant\n%q", got[:n], old[:n])
	}
	want := string(readFixture(t, "fsm-v1.state.json"))
	for name, f := range map[string]*fsm{"restored": f, "replayed": fixtureFSM(t)} {
		if got := storeState(t, f.store, fixtureNow.Add(30*time.Second), true) + "\n"; got != want {
			t.Errorf("%s store:\n%s\nwant\n%s", name, got, want)
		}
	}
	if a, n, cid := f.applied.Load(), f.lastNow.Load(), f.clusterID.Load(); a != 19 || n != fixtureNow.Add(30*time.Second).UnixNano() || cid != 0xc1c1 {
		t.Errorf("applied %d, lastNow %d, cluster %x", a, n, cid)
	}
	if m, ok := f.member(0x2222); !ok || m.Name != "n2" || m.ClientURLs[0] != "https://10.0.0.2:4001" {
		t.Errorf("member n2: %+v, %v", m, ok)
	}
	if _, ok := f.member(0x3333); ok || !f.isRemoved(0x3333) || f.isRemoved(0x1111) {
		t.Error("member 3333 should be removed, 1111 not")
	}
}

func TestBackupFormatV1Compatible(t *testing.T) {
	file := filepath.Join("testdata", "backup-v1.cbk")
	old := readFixture(t, "backup-v1.cbk")
	want := BackupInfo{StoreIndex: 13, RaftIndex: 17, ClusterID: 0x4ada5f0a12338240, MemberID: 0x912c476908c91e92,
		MemberName: "n1", Time: fixtureBackupTime.UTC()}
	sum, err := VerifyBackup(file)
	if err != nil {
		t.Fatal(err)
	}
	if sum.BackupInfo != want || sum.Bytes != int64(len(old)) || sum.Keys != 8 || sum.Dirs != 7 || sum.Expiring != 3 {
		t.Errorf("summary %+v; want %+v, 8 keys, 7 dirs, 3 expiring", sum, want)
	}

	// Both headers written again by this code are the fixture's bytes.
	pre, err := encodeBackupHeader(want)
	if err != nil || !bytes.HasPrefix(old, pre) {
		t.Fatalf("backup header:\n%q\nwant a prefix of\n%q (%v)", pre, old, err)
	}
	h, n, err := decodeSnapHeader(bytes.NewReader(old[len(pre):]))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := encodeSnapHeader(h); err != nil || !bytes.Equal(b, old[len(pre):len(pre)+int(n)]) {
		t.Errorf("snapshot header:\n%q\nwant\n%q (%v)", b, old[len(pre):len(pre)+int(n)], err)
	}

	// It restores to the store it was taken from.
	dir := filepath.Join(t.TempDir(), "r")
	if _, err := RestoreBackup(RestoreConfig{Backup: file, DataDir: dir, Name: "r1", PeerAddr: "10.0.0.1:7001"}); err != nil {
		t.Fatal(err)
	}
	r := startNodeWith(t, Config{Name: "r1", DataDir: dir, PeerAddr: "10.0.0.1:7001",
		Network: NewInmemHub().Network("10.0.0.1:7001"), Now: func() time.Time { return fixtureBackupTime }})
	if got, want := storeState(t, r.Store(), fixtureBackupTime, true)+"\n", string(readFixture(t, "backup-v1.state.json")); got != want {
		t.Errorf("restored store:\n%s\nwant\n%s", got, want)
	}
	if _, err := r.Propose(context.Background(), &store.Request{Method: store.MethodPut, Path: "/new", Value: "v"}); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeSnapHeaderRefuses(t *testing.T) {
	good := readFixture(t, "fsm-v1.snap")
	tests := []struct {
		name string
		data string
		want string
	}{
		{"empty", "", "EOF"},
		{"magic only", snapMagic, "EOF"},
		{"store stream", "CAIRNST1\x00\x00\x00\x00", `does not start with "CAIRNFS1"`},
		{"newer format", "CAIRNFS2\x00\x00\x00\x02{}", `does not start with "CAIRNFS1"`},
		{"length over the limit", snapMagic + "\xff\xff\xff\xff", "over the limit"},
		{"header cut", string(good[:snapPrefixLen+10]), "header cut short"},
		{"not JSON", snapMagic + "\x00\x00\x00\x01{", "bad header"},
		{"wrong JSON type", snapMagic + "\x00\x00\x00\x0e{\"applied\":-1}", "bad header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := decodeSnapHeader(strings.NewReader(tt.data))
			if !errors.Is(err, errBadSnapHeader) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v; want errBadSnapHeader saying %q", err, tt.want)
			}
			// The FSM refuses it too, and keeps its state.
			f := fixtureFSM(t)
			if err := f.Restore(ioNopCloser([]byte(tt.data))); err == nil || f.applied.Load() != 19 {
				t.Fatalf("restore: %v, applied %d", err, f.applied.Load())
			}
		})
	}
}

// FuzzDecodeSnapHeader feeds arbitrary streams to the snapshot decoder and
// the FSM's Restore: no input panics, and a header that decodes encodes to
// bytes that decode to the same header.
func FuzzDecodeSnapHeader(f *testing.F) {
	good := readFixture(f, "fsm-v1.snap")
	f.Add(good)
	f.Add(good[:snapPrefixLen+20])
	f.Add([]byte(snapMagic + "\x00\x00\x00\x02{}"))
	f.Add([]byte(snapMagic + "\x00\x00\x00\x10{\"members\":null}"))
	f.Add([]byte(snapMagic + "\xff\xff\xff\xff"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, n, err := decodeSnapHeader(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, errBadSnapHeader) {
				t.Fatalf("error %v does not wrap errBadSnapHeader", err)
			}
		} else {
			if n < int64(snapPrefixLen) || n > int64(len(data)) {
				t.Fatalf("took %d bytes of %d", n, len(data))
			}
			b, err := encodeSnapHeader(h)
			if err != nil {
				t.Fatalf("encode a decoded header: %v", err)
			}
			h2, n2, err := decodeSnapHeader(bytes.NewReader(b))
			if err != nil || n2 != int64(len(b)) {
				t.Fatalf("decode an encoded header: %d of %d bytes, %v", n2, len(b), err)
			}
			if b2, _ := encodeSnapHeader(h2); !bytes.Equal(b, b2) {
				t.Fatalf("round trip changed the header: %+v -> %+v", h, h2)
			}
		}
		_ = newFSM(store.New(store.Config{}), nil).Restore(ioNopCloser(data))
	})
}

func ioNopCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }
