package disk

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A new data dir and one written before format.json existed both get
// format 1 recorded when they are locked.
func TestFormatRecorded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
	}{
		{"new", nil},
		{"before format.json", map[string]string{"member.json": `{"id":"1","clusterID":"2","name":"n"}`, LockFile: "42\n", LogFile: ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			writeFiles(t, dir, tc.files)
			l, err := Acquire(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Unlock()
			b, err := os.ReadFile(filepath.Join(dir, FormatFile))
			if err != nil {
				t.Fatal(err)
			}
			if want := `{"format":1,"minVersion":"0.1.0"}` + "\n"; string(b) != want {
				t.Fatalf("format.json = %q, want %q", b, want)
			}
			if fi, _ := os.Stat(filepath.Join(dir, FormatFile)); fi.Mode().Perm() != 0o600 {
				t.Fatalf("format.json mode %04o", fi.Mode().Perm())
			}
			if f, err := CheckFormat(dir); f != 1 || err != nil {
				t.Fatalf("CheckFormat = %d, %v", f, err)
			}
		})
	}
}

// A data dir of a newer format, or with a damaged format.json, is refused
// with what to do, and nothing in it changes (not even the lock file).
func TestFormatRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		format  string
		newer   bool
		want    []string
		wantErr error
	}{
		{"newer", `{"format":2,"minVersion":"0.9.0"}`, true,
			[]string{"has on-disk format 2", "supports data dir formats 1 to 1", "Cairn 0.9.0 or later", "cairn snapshot restore", "docs/upgrading.md", "The data dir was not changed"}, ErrNewerFormat},
		{"newer, no version", `{"format":7}`, true, []string{"has on-disk format 7", "a newer Cairn"}, ErrNewerFormat},
		{"not json", `format 1`, false, []string{"format.json is not a data dir format record"}, ErrDamaged},
		{"format 0", `{"format":0}`, false, []string{"is not a data dir format record"}, ErrDamaged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			writeFiles(t, dir, map[string]string{FormatFile: tc.format, LockFile: "42\n", "member.json": "{}"})
			if err := os.Chmod(dir, 0o755); err != nil { // Acquire would restrict it
				t.Fatal(err)
			}
			before := readTree(t, dir)
			_, err := Acquire(dir, nil)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Acquire: %v, want %v", err, tc.wantErr)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if after := readTree(t, dir); !maps.Equal(before, after) {
				t.Errorf("the data dir changed:\n%v\n%v", before, after)
			}
		})
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// readTree maps each path under dir to its mode, size, time and content.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String() + " " + fi.ModTime().String()
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(b)
		}
		m[p] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
