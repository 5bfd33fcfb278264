package cluster

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/cluster/disk"
	"github.com/cairnkv/cairn/store"
)

// usedDataDir makes a data dir as a member leaves it: writes, at least one
// snapshot, and log entries after it.
func usedDataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	fillUntilSnapshot(t, dir)
	return dir
}

// fillUntilSnapshot starts a member on dir, writes 100 keys, waits for a
// snapshot and stops the member.
func fillUntilSnapshot(t *testing.T, dir string) {
	t.Helper()
	n := startNode(t, dir, newFakeClock())
	ctx := context.Background()
	for i := range 100 {
		if _, err := n.Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/k/" + itoa(i), Value: "v"}); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, waitTimeout, "a snapshot", func() bool { return len(snapshotDirs(t, dir)) > 0 })
	if err := n.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func snapshotDirs(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, disk.SnapshotsDir, "*", "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Dir(m[i])
	}
	return m
}

// copyDir copies a data dir (regular files and dirs only).
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// Every damaged data dir is an error that names the file and what to do,
// never a panic or a fault inside bbolt or raft.
func TestDamagedDataDir(t *testing.T) {
	src := usedDataDir(t)
	newestSnap := func(dir string) string {
		ds := snapshotDirs(t, dir)
		return ds[len(ds)-1]
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string) string // returns the file the error must name
	}{
		{"truncated raft.db", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, disk.LogFile)
			fi, _ := os.Stat(p)
			truncate(t, p, fi.Size()/2)
			return p
		}},
		{"raft.db cut inside its header", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, disk.LogFile)
			truncate(t, p, 100)
			return p
		}},
		{"zeroed raft.db", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, disk.LogFile)
			fi, _ := os.Stat(p)
			write(t, p, make([]byte, fi.Size()))
			return p
		}},
		{"empty raft.db beside snapshots", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, disk.LogFile)
			truncate(t, p, 0)
			return p
		}},
		{"garbage meta.json", func(t *testing.T, dir string) string {
			p := filepath.Join(newestSnap(dir), "meta.json")
			write(t, p, []byte("\x00garbage{"))
			return p
		}},
		{"meta.json of another snapshot", func(t *testing.T, dir string) string {
			p := filepath.Join(newestSnap(dir), "meta.json")
			write(t, p, []byte(`{"ID":"1-2-3","Index":2,"Size":10}`))
			return p
		}},
		{"missing state.bin", func(t *testing.T, dir string) string {
			p := filepath.Join(newestSnap(dir), "state.bin")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"state.bin with a byte changed", func(t *testing.T, dir string) string {
			p := filepath.Join(newestSnap(dir), "state.bin")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0x20
			write(t, p, b)
			return filepath.Join(dir, disk.SnapshotsDir)
		}},
		{"truncated state.bin", func(t *testing.T, dir string) string {
			p := filepath.Join(newestSnap(dir), "state.bin")
			fi, _ := os.Stat(p)
			truncate(t, p, fi.Size()-1)
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, src)
			file := tc.damage(t, dir)
			n, err := New(Config{Name: "n1", DataDir: dir})
			if err == nil {
				n.Shutdown(context.Background())
				t.Fatal("a damaged data dir started")
			}
			t.Log(err)
			if !errors.Is(err, disk.ErrDamaged) || !strings.Contains(err.Error(), file) ||
				!strings.Contains(err.Error(), "cairn snapshot restore") {
				t.Fatalf("error does not name %s and what to do: %v", file, err)
			}
			// The lock was released: a repaired dir starts at once.
			l, err := disk.Acquire(dir, nil)
			if err != nil {
				t.Fatalf("lock left held after a failed start: %v", err)
			}
			l.Unlock()
		})
	}
	// The undamaged copy starts with every key.
	n, err := New(Config{Name: "n1", DataDir: copyDir(t, src)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	poll.Until(t, waitTimeout, "every key back", func() bool { return n.Store().Index() >= 100 })
}

func truncate(t *testing.T, p string, size int64) {
	t.Helper()
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A second node on a data dir in use fails at once, naming the PID that
// holds it; once the first stops, the dir is free.
func TestDataDirLock(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, newFakeClock())
	_, err := New(Config{Name: "n2", DataDir: dir})
	want := "data dir " + dir + " in use by PID " + strconv.Itoa(os.Getpid())
	if !errors.Is(err, disk.ErrInUse) || !strings.Contains(err.Error(), want) {
		t.Fatalf("second node on the dir: got %v, want %q", err, want)
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	startNode(t, dir, newFakeClock())
}

// The data dir ends up 0700 and every file Cairn keeps in it 0600 (dirs
// 0700), whatever mode the dir was made with and whatever raft's snapshot
// store creates; files left loose by an older version are restricted at
// the next start.
func TestDataDirModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			want := fs.FileMode(0o600)
			if d.IsDir() {
				want = 0o700
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s: mode %04o, want %04o", p, fi.Mode().Perm(), want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	fillUntilSnapshot(t, dir)
	check()

	// As an older version left them.
	os.Chmod(dir, 0o755)
	for _, d := range snapshotDirs(t, dir) {
		os.Chmod(filepath.Join(d, "state.bin"), 0o644)
		os.Chmod(d, 0o755)
	}
	n := startNode(t, dir, newFakeClock())
	check()
	n.Shutdown(context.Background())
}

// A lock the caller took (as serve does before writing its development
// PKI) is used by New and stays the caller's after Shutdown.
func TestDataDirLockHeldByCaller(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	lock, err := disk.Acquire(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{Name: "n1", DataDir: dir, DataDirLock: lock})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := disk.Acquire(dir, nil); !errors.Is(err, disk.ErrInUse) {
		t.Fatalf("lock released by Shutdown: %v", err)
	}
	lock.Unlock()
	l, err := disk.Acquire(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Unlock()
}

// A shared directory (sticky bit, as /tmp) is refused, not chmodded.
func TestDataDirShared(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{Name: "n1", DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), "shared directory") {
		t.Fatalf("a sticky dir as data dir: %v", err)
	}
	if fi, _ := os.Stat(dir); fi.Mode()&fs.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Fatalf("the shared dir was changed: %v", fi.Mode())
	}
}
