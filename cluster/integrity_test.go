package cluster

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/cluster/disk"
	"github.com/cairnkv/cairn/store"
)

// flipAll changes one byte of every copy of needle in the file at path (a
// bbolt file may hold old copies of a page) and reports how many it found.
func flipAll(t *testing.T, path string, needle []byte, at int) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := bytes.Count(b, needle)
	repl := bytes.Clone(needle)
	repl[at] ^= 0x20
	if err := os.WriteFile(path, bytes.ReplaceAll(b, needle, repl), 0o600); err != nil {
		t.Fatal(err)
	}
	return n
}

// logPath is the log of the data dir dir that errors name: raft.db or
// wal/.
func logPath(dir string) string {
	if defaultLogStore != LogStoreBolt {
		return filepath.Join(dir, disk.WALDir)
	}
	return filepath.Join(dir, disk.LogFile)
}

// logFiles are the files that hold the log of the data dir dir.
func logFiles(t *testing.T, dir string) []string {
	t.Helper()
	if defaultLogStore == LogStoreBolt {
		return []string{filepath.Join(dir, disk.LogFile)}
	}
	m, err := filepath.Glob(filepath.Join(dir, disk.WALDir, "*.wal"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no wal segment in %s (%v)", dir, err)
	}
	return m
}

// entryIndex finds the raft index of the command entry whose data holds
// needle, reading the closed log directly.
func entryIndex(t *testing.T, dir string, needle []byte) uint64 {
	t.Helper()
	logs, err := disk.OpenLogStore(dir, defaultLogStore, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	first, _ := logs.FirstIndex()
	last, _ := logs.LastIndex()
	for i := first; i <= last; i++ {
		var l raft.Log
		if logs.Raw().GetLog(i, &l) == nil && bytes.Contains(l.Data, needle) {
			return i
		}
	}
	t.Fatalf("no entry holds %q", needle)
	return 0
}

// One byte changed inside a log entry's value on disk: the restart fails
// with an error that names the entry's index and the file, and the value,
// corrupted or not, is never served.
func TestCorruptLogEntryRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	n := startNode(t, dir, clk)
	ctx := context.Background()
	for i := range 20 {
		if _, err := n.Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/k/" + itoa(i),
			Value: "value-of-key-" + itoa(i) + "-padding"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	value := []byte("value-of-key-17-padding")
	idx := entryIndex(t, dir, value)
	found := 0
	for _, p := range logFiles(t, dir) {
		found += flipAll(t, p, value, 5)
	}
	if found == 0 {
		t.Fatal("value not found in the log")
	}

	_, err := New(Config{Name: "n1", DataDir: dir, Now: clk.now})
	var ce *disk.CorruptEntryError
	if !errors.As(err, &ce) || !errors.Is(err, disk.ErrLogCorrupt) {
		t.Fatalf("restart with a corrupt entry: got %v, want a CorruptEntryError", err)
	}
	msg := err.Error()
	if ce.Index != idx || !strings.Contains(msg, "entry "+itoa(int(idx))+" ") ||
		!strings.Contains(msg, logPath(dir)) || !strings.Contains(msg, "cairn snapshot restore") {
		t.Fatalf("error does not name entry %d, the file and what to do: %v", idx, err)
	}
	t.Log(msg)
	if strings.Contains(msg, "value-of") {
		t.Fatalf("error carries the value: %v", err)
	}
}

// The FSM refuses a corrupt entry when it applies it: it does not apply it
// or anything after it, nor advance its applied index, nor take snapshots.
func TestApplyRefusesCorruptEntry(t *testing.T) {
	good := func(path string) []byte {
		return (&command{typ: cmdRequest, now: time.Unix(1, 0), req: &store.Request{Method: store.MethodPut, Path: path, Value: "v"}}).encode()
	}
	bad := good("/bad")
	bad[len(bad)-3] ^= 1
	legacy := (&command{typ: cmdRequest, now: time.Unix(1, 0), req: &store.Request{Method: store.MethodPut, Path: "/old", Value: "v"}}).encodeBody(nil)

	for _, tc := range []struct {
		name    string
		entries [][]byte // the last one is the corrupt one
	}{
		{"checksum mismatch", [][]byte{legacy, good("/a"), bad}},
		{"frame byte damaged into an old encoding", [][]byte{good("/a"), legacy}},
		{"truncated", [][]byte{good("/a"), good("/b")[:6]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFSM(store.New(store.Config{}), nil)
			var idx uint64
			for i, data := range tc.entries {
				idx = uint64(i + 1)
				res := f.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: data}).(applyResult)
				if i < len(tc.entries)-1 && res.err != nil {
					t.Fatalf("entry %d: %v", idx, res.err)
				}
				if i == len(tc.entries)-1 {
					var ce *disk.CorruptEntryError
					if !errors.As(res.err, &ce) || ce.Index != idx {
						t.Fatalf("corrupt entry %d applied: %v", idx, res.err)
					}
				}
			}
			if got := f.applied.Load(); got != idx-1 {
				t.Fatalf("applied index = %d, want %d", got, idx-1)
			}
			res := f.Apply(&raft.Log{Index: idx + 1, Data: good("/after")}).(applyResult)
			if !errors.Is(res.err, disk.ErrLogCorrupt) || f.applied.Load() != idx-1 {
				t.Fatalf("an entry after the corrupt one: %v, applied %d", res.err, f.applied.Load())
			}
			if _, err := f.store.Get("/after", false, false, time.Unix(1, 0)); err == nil {
				t.Fatal("entry after the corrupt one applied")
			}
			if _, err := f.Snapshot(); !errors.Is(err, disk.ErrLogCorrupt) {
				t.Fatalf("snapshot of a stopped FSM: %v", err)
			}
		})
	}
}

// Entries written before the checksum (no frame) still decode; a frame
// with a good checksum around a command this binary does not know is not
// corruption, and still panics in Apply as it did before.
func TestCommandFrame(t *testing.T) {
	c := command{typ: cmdRequest, now: time.Unix(5, 6), req: &store.Request{Method: "PUT", Path: "/a", Value: "v"}}
	got, err := decodeCommand(c.encodeBody(nil))
	if err != nil || *got.req != *c.req {
		t.Fatalf("unframed command: %v", err)
	}
	framed := c.encode()
	if framed[0] != disk.FrameByte {
		t.Fatalf("encode writes no frame: %x", framed[:5])
	}
	for i := range framed {
		b := bytes.Clone(framed)
		b[i] ^= 0x01
		if i == 0 {
			continue // no longer framed: the FSM's order rule catches it (TestApplyRefusesCorruptEntry)
		}
		if _, err := decodeCommand(b); !errors.Is(err, disk.ErrChecksum) {
			t.Fatalf("byte %d flipped: got %v, want a checksum error", i, err)
		}
	}

	unknown := (&command{typ: 99, now: time.Unix(1, 0)}).encode()
	f := newFSM(store.New(store.Config{}), nil)
	defer func() {
		if recover() == nil {
			t.Fatal("a well-checksummed unknown command did not panic")
		}
		if f.fault.Err() != nil {
			t.Fatal("an unknown command was reported as corruption")
		}
	}()
	f.Apply(&raft.Log{Index: 1, Data: unknown})
}

// A corrupt entry read back while the node runs (here: planted in the log
// and read as raft reads it) stops the node: it leaves raft, refuses
// writes and reads, and says why in its status and its metric.
func TestCorruptEntryStopsNode(t *testing.T) {
	if defaultLogStore != LogStoreBolt {
		t.Skip("plants an entry past the log's end, which the wal refuses; wal reads go through the same check (TestCorruptLogEntryRefusedAtStart)")
	}
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	n, err := New(Config{Name: "n1", DataDir: dir, ElectionTimeout: 200 * time.Millisecond,
		HeartbeatInterval: 20 * time.Millisecond, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	ctx := context.Background()
	poll.Until(t, waitTimeout, "leader ready", func() bool { return n.ReadBarrier(ctx) == nil })

	last, _ := n.logs.LastIndex()
	data := (&command{typ: cmdNoop, now: time.Unix(1, 0)}).encode()
	data[len(data)-1] ^= 0xff
	planted := last + 1000 // far beyond what raft will write in this test
	if err := n.logs.Raw().StoreLog(&raft.Log{Index: planted, Term: 1, Type: raft.LogCommand, Data: data}); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := n.logs.GetLog(planted, &l); !errors.Is(err, disk.ErrLogCorrupt) {
		t.Fatalf("reading the planted entry: %v", err)
	}
	poll.Until(t, waitTimeout, "raft shut down", func() bool { return n.raft.State() == raft.Shutdown })
	if err := n.Err(); !errors.Is(err, disk.ErrLogCorrupt) {
		t.Fatalf("Err = %v", err)
	}
	if st := n.Status(); !strings.Contains(st.Fault, "entry "+itoa(int(planted))) {
		t.Fatalf("status fault = %q", st.Fault)
	}
	if _, err := n.Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/x", Value: "y"}); !errors.Is(err, disk.ErrLogCorrupt) {
		t.Fatalf("write on a stopped node: %v", err)
	}
	if err := n.ReadBarrier(ctx); !errors.Is(err, disk.ErrLogCorrupt) {
		t.Fatalf("read on a stopped node: %v", err)
	}
	if got := gauge(t, reg, "cairn_log_corruption_total"); got != 1 {
		t.Fatalf("cairn_log_corruption_total = %v, want 1", got)
	}
	if err := n.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown of a stopped node: %v", err)
	}
}

// A leader that finds a corrupt entry in its log leaves raft; the other
// members elect another leader and keep taking writes.
func TestCorruptLeaderLeavesCluster(t *testing.T) {
	if defaultLogStore != LogStoreBolt {
		t.Skip("plants an entry past the log's end, which the wal refuses; wal reads go through the same check (TestCorruptLogEntryRefusedAtStart)")
	}
	clk := newFakeClock()
	hub := NewInmemHub()
	nodes := make([]*Node, 3)
	addr := func(i int) string { return "10.0.0." + itoa(i+1) + ":7001" }
	for i := range nodes {
		cfg := Config{Name: "n" + itoa(i+1), DataDir: t.TempDir(), PeerAddr: addr(i), Network: hub.Network(addr(i)), Now: clk.now}
		if i > 0 {
			cfg.Peers = []string{addr(0)}
		}
		nodes[i] = startNodeWith(t, cfg)
	}
	ctx := context.Background()
	if _, err := nodes[1].Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/before", Value: "1"}); err != nil {
		t.Fatal(err)
	}
	leader := -1
	poll.Until(t, waitTimeout, "a leader", func() bool {
		for i, n := range nodes {
			if n.isLeader() {
				leader = i
				return true
			}
		}
		return false
	})
	bad := nodes[leader]
	last, _ := bad.logs.LastIndex()
	data := (&command{typ: cmdNoop, now: time.Unix(1, 0)}).encode()
	data[len(data)-1] ^= 0xff
	if err := bad.logs.Raw().StoreLog(&raft.Log{Index: last + 1000, Term: 1, Type: raft.LogCommand, Data: data}); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := bad.logs.GetLog(last+1000, &l); !errors.Is(err, disk.ErrLogCorrupt) {
		t.Fatalf("reading the planted entry: %v", err)
	}
	other := nodes[(leader+1)%3]
	poll.Until(t, waitTimeout, "a write through the other members", func() bool {
		actx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		_, err := other.Propose(actx, &store.Request{Method: store.MethodPut, Path: "/after", Value: "2"})
		return err == nil
	})
	if bad.isLeader() || bad.Err() == nil {
		t.Fatalf("the corrupt member still leads (%v) or reports no fault", bad.isLeader())
	}
}

// FuzzCommandDecode: no input makes decoding or the entry check panic,
// and a framed input that decodes is one whose checksum holds.
func FuzzCommandDecode(f *testing.F) {
	for _, c := range []command{
		{typ: cmdRequest, now: time.Unix(5, 6), req: &store.Request{Method: "PUT", Path: "/a", Value: "v", HasTTL: true, TTL: 9}},
		{typ: cmdExpire, now: time.Unix(7, 0)},
		{typ: cmdNoop, now: time.Unix(8, 0)},
		{typ: cmdMember, now: time.Unix(9, 0), member: &memberCmd{ID: 1, Name: "n1", PeerURLs: []string{"https://10.0.0.1:7001"}}},
	} {
		f.Add(c.encode())
		f.Add(c.encodeBody(nil))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeCommand(data)
		if err == nil && len(data) > 0 && data[0] == disk.FrameByte {
			if _, _, ferr := disk.Unframe(data); ferr != nil || c == nil {
				t.Fatalf("framed entry decoded without a valid frame: %v", ferr)
			}
		}
		disk.CheckEntry(&raft.Log{Index: 1, Type: raft.LogCommand, Data: data}, true)
	})
}
