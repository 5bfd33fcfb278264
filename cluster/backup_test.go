package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/store"
)

// backupWrites is a store with every kind of node a backup must keep:
// values, nested dirs, keys and a dir with TTLs (one long, one that will
// have passed by the time of the restore), hidden keys, in-order keys, a
// deleted key (it leaves an index gap) and an updated one (createdIndex !=
// modifiedIndex).
var backupWrites = []*store.Request{
	{Method: store.MethodPut, Path: "/a", Value: "1"},
	{Method: store.MethodPut, Path: "/dir/sub/b", Value: "two\nlines \x00 and a NUL"},
	{Method: store.MethodPut, Path: "/emptydir", Dir: true},
	{Method: store.MethodPut, Path: "/ttl/long", Value: "l", HasTTL: true, TTL: 3600},
	{Method: store.MethodPut, Path: "/ttl/short", Value: "s", HasTTL: true, TTL: 5},
	{Method: store.MethodPut, Path: "/ttldir", Dir: true, HasTTL: true, TTL: 7200},
	{Method: store.MethodPut, Path: "/_hidden", Value: "h"},
	{Method: store.MethodPut, Path: "/dir/_hidden/x", Value: "hx"},
	{Method: store.MethodPost, Path: "/queue", Value: "first"},
	{Method: store.MethodPost, Path: "/queue", Value: "second"},
	{Method: store.MethodPut, Path: "/gone", Value: "x"},
	{Method: store.MethodDelete, Path: "/gone"},
	{Method: store.MethodPut, Path: "/a", Value: "1 again"},
}

// storeState is everything of a store a restore must keep, as JSON: the
// recursive sorted tree (at now, for the ttl fields), the index, the
// counters and the history range. Without withStats, the counters are left
// out (reads count on the member that serves them only).
func storeState(t *testing.T, s *store.Store, now time.Time, withStats bool) string {
	t.Helper()
	stats := json.RawMessage(s.Stats().JSON()) // before the Get, which counts
	if !withStats {
		stats = nil
	}
	ev, err := s.Get("/", true, true, now)
	if err != nil {
		t.Fatal(err)
	}
	first, last := s.HistoryRange()
	b, err := json.MarshalIndent(map[string]any{"index": s.Index(), "stats": stats,
		"history": []uint64{first, last}, "tree": ev.Node}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeBackup(t *testing.T, n *Node, path string) BackupInfo {
	t.Helper()
	b, err := n.Backup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	k, err := b.WriteTo(&buf)
	if err != nil || k != int64(buf.Len()) {
		t.Fatalf("WriteTo: %d bytes, %v; wrote %d", k, err, buf.Len())
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return b.Info()
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	clk := newFakeClock()
	src := startNode(t, t.TempDir(), clk)
	ctx := context.Background()
	for _, r := range backupWrites {
		if _, err := src.Propose(ctx, r); err != nil {
			t.Fatalf("%s %s: %v", r.Method, r.Path, err)
		}
	}
	file := filepath.Join(t.TempDir(), "backup.snap")
	info := writeBackup(t, src, file)
	want := storeState(t, src.Store(), clk.now(), true) // its stats are read before its Get counts
	// Writes after the backup are not in it.
	if _, err := src.Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/after", Value: "x"}); err != nil {
		t.Fatal(err)
	}
	if info.StoreIndex != uint64(len(backupWrites)) || info.RaftIndex == 0 || info.ClusterID != src.ClusterID() ||
		info.MemberID != src.ID() || info.MemberName != "n1" {
		t.Errorf("info %+v", info)
	}

	sum, err := VerifyBackup(file)
	if err != nil {
		t.Fatal(err)
	}
	// Keys: a, b, long, short, _hidden, x, 2 in the queue; dirs: dir,
	// sub, emptydir, ttl, ttldir, _hidden, queue.
	if sum.Keys != 8 || sum.Dirs != 7 || sum.Expiring != 3 || sum.BackupInfo != info {
		t.Errorf("summary %+v; want 8 keys, 7 dirs, 3 expiring, info %+v", sum, info)
	}

	dir := filepath.Join(t.TempDir(), "restored")
	res, err := RestoreBackup(RestoreConfig{Backup: file, DataDir: dir, Name: "r1", PeerAddr: "10.0.0.1:7001",
		ClientURLs: []string{"https://10.0.0.1:4001"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.MemberID == src.ID() || res.ClusterID == src.ClusterID() || res.RaftIndex != info.RaftIndex || res.Backup != sum {
		t.Errorf("result %+v: want a new member and cluster ID, raft index %d", res, info.RaftIndex)
	}

	hub := NewInmemHub()
	r := startNodeWith(t, Config{Name: "r1", DataDir: dir, PeerAddr: "10.0.0.1:7001", Network: hub.Network("10.0.0.1:7001"),
		ClientURLs: []string{"https://10.0.0.1:4001"}, Now: clk.now})
	if got := storeState(t, r.Store(), clk.now(), true); got != want {
		t.Errorf("restored store:\n%s\nwant\n%s", got, want)
	}
	st := r.Status()
	if st.ID != res.MemberID || st.ClusterID != res.ClusterID || st.AppliedIndex <= info.RaftIndex {
		t.Errorf("restored status %+v; want member %x of cluster %x past raft index %d", st, res.MemberID, res.ClusterID, info.RaftIndex)
	}
	ms := r.Members()
	if len(ms) != 1 || ms[0].ID != res.MemberID || ms[0].Name != "r1" || ms[0].PeerURLs[0] != "https://10.0.0.1:7001" {
		t.Errorf("members %+v; want only the new member", ms)
	}

	// The store index goes on from the backup's.
	ev, err := r.Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/new", Value: "v"})
	if err != nil || ev.Node.CreatedIndex != info.StoreIndex+1 {
		t.Fatalf("write after restore: %+v, %v; want index %d", ev, err, info.StoreIndex+1)
	}
	// Expirations are absolute: the 5 s key expires once its time passes,
	// the 1 h one does not.
	clk.add(6 * time.Second)
	poll.Until(t, waitTimeout, "the short TTL key to expire", func() bool {
		_, err := r.Store().Get("/ttl/short", false, false, clk.now())
		return err != nil
	})
	if _, err := r.Store().Get("/ttl/long", false, false, clk.now()); err != nil {
		t.Errorf("long TTL key: %v", err)
	}

	// Another member joins the restored cluster with empty state and peers.
	j := startNodeWith(t, Config{Name: "j1", DataDir: t.TempDir(), PeerAddr: "10.0.0.2:7001", Network: hub.Network("10.0.0.2:7001"),
		Peers: []string{"10.0.0.1:7001"}, Now: clk.now})
	poll.Until(t, waitTimeout, "the joiner to catch up", func() bool { return j.Store().Index() == r.Store().Index() })
	if got, want := storeState(t, j.Store(), clk.now(), false), storeState(t, r.Store(), clk.now(), false); got != want {
		t.Errorf("joiner's store:\n%s\nwant\n%s", got, want)
	}
	if j.ClusterID() != res.ClusterID {
		t.Errorf("joiner's cluster ID %x, want %x", j.ClusterID(), res.ClusterID)
	}
}

// startNodeWith starts a node with fast test timings and waits until it
// serves linearizable reads.
func startNodeWith(t *testing.T, cfg Config) *Node {
	t.Helper()
	cfg.ElectionTimeout, cfg.HeartbeatInterval = 200*time.Millisecond, 20*time.Millisecond
	cfg.ExpiryInterval, cfg.SnapshotInterval = 10*time.Millisecond, 20*time.Millisecond
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	poll.Until(t, waitTimeout, cfg.Name+" ready", func() bool { return n.ReadBarrier(context.Background()) == nil })
	return n
}

func TestVerifyBackupRefusesDamage(t *testing.T) {
	clk := newFakeClock()
	src := startNode(t, t.TempDir(), clk)
	for _, r := range backupWrites {
		if _, err := src.Propose(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.snap")
	writeBackup(t, src, good)
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x20
		return c
	}
	// reframe rewrites the header and the trailer around a body, so that
	// only the body is wrong.
	reframe := func(header string, fsm []byte) []byte {
		c := binary.BigEndian.AppendUint32([]byte(backupMagic), uint32(len(header)))
		c = append(append(c, header...), fsm...)
		return appendTrailer(c)
	}
	hl := int(binary.BigEndian.Uint32(b[len(backupMagic):]))
	header, fsm := string(b[backupPrefixLen:int(backupPrefixLen)+hl]), b[int(backupPrefixLen)+hl:len(b)-backupTrailerLen]
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "the file is empty"},
		{"not a backup", []byte("hello, world, this is not a backup at all, but it is long enough for a trailer"), "not a Cairn backup"},
		{"magic only", b[:len(backupMagic)], "not a Cairn backup"},
		{"header cut", b[:backupPrefixLen+5], "incomplete"},
		{"cut in the middle", b[:len(b)/2], "incomplete"},
		{"last byte missing", b[:len(b)-1], "incomplete"},
		{"trailer missing", b[:len(b)-backupTrailerLen], "incomplete"},
		{"garbage appended", append(bytes.Clone(b), "more"...), "incomplete"},
		{"a bit flipped in the store", flip(len(b) / 2), "checksum mismatch"},
		{"a bit flipped in the checksum", flip(len(b) - 1), "checksum mismatch"},
		{"newer format", reframe(strings.Replace(header, `"format":1`, `"format":2`, 1), fsm), "format 2"},
		{"bad header", reframe("{", fsm), "bad header"},
		{"wrong store index", reframe(strings.Replace(header, `"storeIndex":13`, `"storeIndex":14`, 1), fsm), "store index 14, its snapshot 13"},
		{"store truncated, checksum recomputed", reframe(header, fsm[:len(fsm)-10]), "bad snapshot"},
		{"raft snapshot, not a backup", fsm, "not a Cairn backup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "bad.snap")
			if err := os.WriteFile(p, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := VerifyBackup(p)
			if !errors.Is(err, ErrBadBackup) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v; want ErrBadBackup saying %q", err, tt.want)
			}
			// A restore refuses it and leaves no data dir behind.
			dd := filepath.Join(dir, "dd")
			if _, err := RestoreBackup(RestoreConfig{Backup: p, DataDir: dd}); !errors.Is(err, ErrBadBackup) {
				t.Fatalf("restore: %v; want ErrBadBackup", err)
			}
			if _, err := os.Stat(dd); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a failed restore left %s: %v", dd, err)
			}
		})
	}
	if _, err := VerifyBackup(filepath.Join(dir, "missing.snap")); err == nil || errors.Is(err, ErrBadBackup) {
		t.Errorf("missing file: %v; want an open error", err)
	}
}

// appendTrailer frames b as a backup body.
func appendTrailer(b []byte) []byte {
	sum := sha256.Sum256(b)
	c := binary.BigEndian.AppendUint64(append(bytes.Clone(b), backupEnd...), uint64(len(b)))
	return append(c, sum[:]...)
}

func TestRestoreRefusesNonEmptyDataDir(t *testing.T) {
	clk := newFakeClock()
	src := startNode(t, t.TempDir(), clk)
	file := filepath.Join(t.TempDir(), "b.snap")
	writeBackup(t, src, file)

	empty := t.TempDir()
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "raft.db"), []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreBackup(RestoreConfig{Backup: file, DataDir: full}); !errors.Is(err, ErrDataDirNotEmpty) ||
		!strings.Contains(err.Error(), "raft.db") || !strings.Contains(err.Error(), "restore into a new or empty directory") {
		t.Fatalf("restore into a non-empty dir: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(full, "raft.db")); string(b) != "precious" {
		t.Fatal("a refused restore touched the data dir")
	}
	// An existing empty dir is fine, and restoring twice is refused.
	if _, err := RestoreBackup(RestoreConfig{Backup: file, DataDir: empty}); err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreBackup(RestoreConfig{Backup: file, DataDir: empty}); !errors.Is(err, ErrDataDirNotEmpty) {
		t.Fatalf("second restore: %v", err)
	}
	if _, err := RestoreBackup(RestoreConfig{Backup: file}); err == nil {
		t.Fatal("restore without a data dir succeeded")
	}
}

// A restored member started at another peer address than the restore was
// told announces it, and the configuration takes it over.
func TestRestoredMemberMoves(t *testing.T) {
	clk := newFakeClock()
	src := startNode(t, t.TempDir(), clk)
	file := filepath.Join(t.TempDir(), "b.snap")
	writeBackup(t, src, file)
	dir := filepath.Join(t.TempDir(), "r")
	if _, err := RestoreBackup(RestoreConfig{Backup: file, DataDir: dir, Name: "r1", PeerAddr: "10.0.0.1:7001"}); err != nil {
		t.Fatal(err)
	}
	r := startNodeWith(t, Config{Name: "r1", DataDir: dir, PeerAddr: "10.0.0.9:7001", Network: NewInmemHub().Network("10.0.0.9:7001"),
		ClientURLs: []string{"https://10.0.0.9:4001"}, Now: clk.now})
	poll.Until(t, waitTimeout, "the member at its new addresses", func() bool {
		ms := r.Members()
		return len(ms) == 1 && ms[0].PeerURLs[0] == "https://10.0.0.9:7001" && len(ms[0].ClientURLs) == 1 && ms[0].ClientURLs[0] == "https://10.0.0.9:4001"
	})
	if _, err := r.Propose(context.Background(), &store.Request{Method: store.MethodPut, Path: "/x", Value: "y"}); err != nil {
		t.Fatal(err)
	}
}
