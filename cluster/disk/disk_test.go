package disk

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

func framed(body string) []byte {
	return Frame(append(make([]byte, FrameHeader), body...))
}

// Every byte changed after the frame marker fails the checksum; the
// marker itself changed makes an unframed entry, which the order rule of
// CheckEntry refuses after a framed one.
func TestFrame(t *testing.T) {
	good := framed("\x01some command")
	body, isFramed, err := Unframe(good)
	if err != nil || !isFramed || string(body) != "\x01some command" {
		t.Fatalf("Unframe(Frame(x)) = %q, %v, %v", body, isFramed, err)
	}
	for i := 1; i < len(good); i++ {
		b := bytes.Clone(good)
		b[i] ^= 0x10
		if _, _, err := Unframe(b); !errors.Is(err, ErrChecksum) {
			t.Fatalf("byte %d changed: %v", i, err)
		}
	}
	for i := range FrameHeader {
		if _, _, err := Unframe(good[:i+1]); i > 0 && !errors.Is(err, ErrChecksum) {
			t.Fatalf("cut to %d bytes: %v", i+1, err)
		}
	}
	old := []byte("\x01an unframed command")
	if body, isFramed, err := Unframe(old); err != nil || isFramed || !bytes.Equal(body, old) {
		t.Fatalf("unframed entry: %q, %v, %v", body, isFramed, err)
	}
}

func TestCheckEntry(t *testing.T) {
	bad := framed("\x01x")
	bad[len(bad)-1] ^= 1
	for _, tc := range []struct {
		name      string
		l         raft.Log
		sawFramed bool
		corrupt   bool
	}{
		{"framed", raft.Log{Type: raft.LogCommand, Data: framed("\x01x")}, false, false},
		{"unframed first", raft.Log{Type: raft.LogCommand, Data: []byte("\x01x")}, false, false},
		{"unframed after framed", raft.Log{Type: raft.LogCommand, Data: []byte("\x01x")}, true, true},
		{"checksum", raft.Log{Type: raft.LogCommand, Data: bad}, false, true},
		{"raft's own entry", raft.Log{Type: raft.LogConfiguration, Data: []byte("anything")}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.l.Index = 42
			_, _, err := CheckEntry(&tc.l, tc.sawFramed)
			var ce *CorruptEntryError
			if got := errors.As(err, &ce); got != tc.corrupt || (got && ce.Index != 42) {
				t.Fatalf("CheckEntry: %v", err)
			}
		})
	}
}

// CheckBolt refuses what bbolt would fault on, and accepts a missing file.
func TestCheckBolt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, LogFile)
	if err := CheckBolt(path, true); err != nil {
		t.Fatalf("missing raft.db: %v", err)
	}
	logs, err := OpenLog(path, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var entries []*raft.Log
	for i := range 2000 {
		entries = append(entries, &raft.Log{Index: uint64(i + 1), Term: 1, Data: framed(strings.Repeat("v", 200))})
	}
	if err := logs.StoreLogs(entries); err != nil {
		t.Fatal(err)
	}
	logs.Close()
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		snap bool
		want string // "" for no error
	}{
		{"intact", good, true, ""},
		{"truncated", good[:len(good)/2], false, "is truncated"},
		{"header cut", good[:100], false, "is truncated"},
		{"zeroed", make([]byte, len(good)), false, "both of its meta pages are damaged"},
		{"empty, new member", nil, false, ""},
		{"empty beside snapshots", nil, true, "is empty while the data dir holds snapshots"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			err := CheckBolt(path, tc.snap)
			if tc.want == "" && err != nil || tc.want != "" && (!errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// A second Acquire of a held dir fails at once; Unlock frees it; a shared
// (sticky) dir is refused untouched; a loose dir is restricted.
func TestAcquire(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := Acquire(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %04o, want 0700", fi.Mode().Perm())
	}
	if _, err := Acquire(dir, nil); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "in use by PID") {
		t.Fatalf("second Acquire: %v", err)
	}
	l.Unlock()
	l, err = Acquire(dir, nil)
	if err != nil {
		t.Fatalf("after Unlock: %v", err)
	}
	l.Unlock()

	shared := filepath.Join(t.TempDir(), "shared")
	os.Mkdir(shared, 0o777)
	os.Chmod(shared, 0o777|fs.ModeSticky)
	if _, err := Acquire(shared, nil); err == nil || !strings.Contains(err.Error(), "shared directory") {
		t.Fatalf("sticky dir: %v", err)
	}
	if entries, _ := os.ReadDir(shared); len(entries) != 0 {
		t.Fatalf("wrote into the shared dir: %v", entries)
	}
}
