package v2client_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/cairnkv/cairn/cluster/v2client"
)

func TestSaveSnapshot(t *testing.T) {
	errCut := errors.New("connection reset")
	errBad := errors.New("bad checksum")
	tests := []struct {
		name     string
		body     io.Reader
		verify   error
		unusable bool
		err      error
	}{
		{name: "saved", body: strings.NewReader("backup")},
		{name: "cut", body: io.MultiReader(strings.NewReader("back"), iotest.ErrReader(errCut)), err: errCut},
		{name: "unusable", body: strings.NewReader("backup"), verify: errBad, unusable: true, err: errBad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "b.snap")
			var progress bytes.Buffer
			var verified string
			n, err := v2client.SaveSnapshot(tt.body, file, v2client.SaveOptions{Progress: &progress, Verify: func(path string) error {
				b, _ := os.ReadFile(path)
				verified = string(b)
				return tt.verify
			}})
			if _, serr := os.Stat(file + ".part"); !os.IsNotExist(serr) {
				t.Errorf("%s.part left behind: %v", file, serr)
			}
			got, rerr := os.ReadFile(file)
			if tt.err == nil {
				st, _ := os.Stat(file)
				if err != nil || n != 6 || string(got) != "backup" || verified != "backup" || progress.String() != "backup" || st.Mode().Perm() != 0o600 {
					t.Fatalf("n %d, err %v, file %q (%v), verified %q, progress %q", n, err, got, rerr, verified, progress.String())
				}
				return
			}
			var se *v2client.SaveError
			if !errors.As(err, &se) || !errors.Is(err, tt.err) || se.Unusable != tt.unusable || !os.IsNotExist(rerr) {
				t.Fatalf("err %v, file %q (%v)", err, got, rerr)
			}
			if !tt.unusable && se.Bytes != 4 {
				t.Errorf("cut after %d bytes, want 4", se.Bytes)
			}
		})
	}
}
