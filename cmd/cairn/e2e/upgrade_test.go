package e2e

// Upgrades with the real binary (docs/upgrading.md): a data dir written
// before the on-disk format was recorded (the fixture of
// cmd/cairn/server/testdata, which TestDataDirFixture checks key by key)
// is served by today's cairn serve; a data dir of a newer format is refused
// at start with what to do, and left as it was.

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/disk"
	"github.com/cairnkv/cairn/cmd/cairn/server/servertest"
)

func fixtureDataDir(t *testing.T, store string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	servertest.ExtractDataDir(t, filepath.Join(repoRoot(t), "cmd", "cairn", "server", "testdata", "datadir-v1-"+store+".tar.gz"), dir)
	return dir
}

func TestUpgradeFixture(t *testing.T) {
	for _, store := range []string{"boltdb", "wal"} {
		t.Run(store, func(t *testing.T) {
			dir := fixtureDataDir(t, store)
			s := StartCairn(t, &CairnConfig{Bin: needCairn(t), Name: "fixture", DataDir: dir})
			for key, want := range map[string]string{
				"/plain/k010":      `"value":"v10-2"`,
				"/plain/k030":      `"value":"cas"`,
				"/plain/_secret03": `"value":"hidden in a listed dir"`,
				"/ttl/t007":        `"expiration":"21`, // about 95 years on
				"/_hidden/h042":    `"value":"h42"`,
				"/dirs/d099":       `"dir":true`,
			} {
				_, body := s.Get(t, "/v2/keys"+key, "")
				if !strings.Contains(string(body), want) {
					t.Errorf("GET %s: %s, want %s", key, body, want)
				}
			}
			_, body := s.Get(t, "/v2/keys/_mod/lock/x", "sorted=true")
			var lock struct {
				Node struct{ Nodes []struct{ Value string } }
			}
			if err := json.Unmarshal(body, &lock); err != nil || len(lock.Node.Nodes) != 4 || lock.Node.Nodes[0].Value != "holder" {
				t.Errorf("lock queue /_mod/lock/x: %s (%v), want the holder and 3 waiters", body, err)
			}
			if _, body := s.Get(t, "/v2/auth/enable", ""); !strings.Contains(string(body), `"enabled":true`) {
				t.Errorf("auth: %s", body)
			}
			if _, body := s.Put(t, "/v2/keys/after-upgrade", "", "value=x"); !strings.Contains(string(body), `"createdIndex":`) {
				t.Errorf("write after the upgrade: %s", body)
			}
			if err := s.Proc.Stop(syscall.SIGTERM, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			if f, err := disk.CheckFormat(dir); f != disk.Format || err != nil {
				t.Errorf("format after a start: %d, %v", f, err)
			}
			if _, err := os.Stat(filepath.Join(dir, disk.FormatFile)); err != nil {
				t.Errorf("%s not recorded: %v", disk.FormatFile, err)
			}
		})
	}
}

func TestNewerFormatRefused(t *testing.T) {
	dir := fixtureDataDir(t, "wal")
	if err := os.WriteFile(filepath.Join(dir, disk.FormatFile), []byte(`{"format":2,"minVersion":"9.1.0"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	before := treeState(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	port, peer := FreePort(t), FreePort(t)
	cmd := exec.CommandContext(ctx, needCairn(t), "serve", "--name", "fixture", "--data-dir", dir,
		"--addr", "127.0.0.1:"+strconv.Itoa(port), "--peer-addr", "127.0.0.1:"+strconv.Itoa(peer), "--dns-addr", "")
	cmd.Env = cleanEnv("CAIRN_")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if ctx.Err() != nil || err == nil || !errors.As(err, &ee) {
		t.Fatalf("cairn serve on a data dir of format 2: %v, want a non-zero exit; output:\n%s", err, out)
	}
	for _, w := range []string{"has on-disk format 2", "this binary supports data dir formats 1 to 1", "Cairn 9.1.0 or later", "cairn snapshot restore"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if after := treeState(t, dir); after != before {
		t.Errorf("the data dir changed:\n%s\nwant\n%s", after, before)
	}
}

// treeState lists every path under dir with its mode, time and size.
func treeState(t *testing.T, dir string) string {
	t.Helper()
	var sb strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		sb.WriteString(p + " " + fi.Mode().String() + " " + fi.ModTime().String() + " " + strconv.Itoa(int(fi.Size())) + "\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb.String()
}
