//go:build linux

package server_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/cmd/cairn/server"
	"github.com/cairnkv/cairn/cmd/cairn/server/servertest"
)

// smallDisk mounts a tmpfs of mib MiB for the test, or skips it: mounting
// takes root (CAP_SYS_ADMIN), a privilege rather than an external binary,
// so CAIRN_REQUIRE_EXTERNAL does not make its absence a failure.
func smallDisk(t *testing.T, mib int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%dm,mode=0700", mib)); err != nil {
		t.Skipf("a full disk needs a small file system: mounting a tmpfs needs root (CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes zeros to path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return
		}
	}
}

func putValue(t *testing.T, s *servertest.Server, key, value string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, s.URL+"/v2/keys/"+key, strings.NewReader(url.Values{"value": {value}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A member on a real file system that fills up: writes fail with the
// reason, /health and the metrics say so, the term stays put over several
// election timeouts (before: one new term per timeout), and once space is
// freed writes succeed again without a restart; every acknowledged write
// is still there. On either log store: raft-wal allocates its 64 MiB
// segments ahead, so its disk fills when it starts the next one, and it
// writes again only once a whole segment fits (before: it resumed at 4 MiB
// free and filled the disk again at once, for ever).
func TestDiskFullRecovers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a full disk needs a small file system: mounting a tmpfs needs root")
	}
	for _, c := range []struct {
		store    string
		mib, max int // the disk's size, the 100 KiB writes that must fill it
	}{
		{cluster.LogStoreBolt, 8, 200},
		{cluster.LogStoreWAL, 160, 1000},
	} {
		t.Run(c.store, func(t *testing.T) { testDiskFullRecovers(t, c.store, c.mib, c.max) })
	}
}

func testDiskFullRecovers(t *testing.T, logStore string, mib, max int) {
	mnt := smallDisk(t, mib)
	dataDir := filepath.Join(mnt, "data")
	s := servertest.Start(t, func(c *server.Config) { c.DataDir, c.LogStore = dataDir, logStore })
	metrics := "http://" + s.MetricsAddr()

	fill(t, filepath.Join(mnt, "fill"))
	big := strings.Repeat("x", 100<<10)
	acked := map[string]bool{}
	var body string
	for i := 0; ; i++ {
		if i == max {
			t.Fatalf("%d writes of 100 KiB fit on a full %d MiB disk", max, mib)
		}
		key := fmt.Sprintf("big%d", i)
		code, b := putValue(t, s, key, big)
		if code < 300 {
			acked[key] = true
			continue
		}
		body = b
		break
	}
	if !strings.Contains(body, `"errorCode":300`) || !strings.Contains(body, "disk full") {
		t.Fatalf("a write on a full disk answered %s", body)
	}
	poll.Until(t, 10*time.Second, "disk full reported", func() bool { return s.Node().Status().DiskFull != "" })
	if code, b := putValue(t, s, "refused", "x"); code != http.StatusInternalServerError || !strings.Contains(b, "disk full on member test: free space in "+dataDir) {
		t.Errorf("a write while the disk is full: %d %s", code, b)
	}
	health := mustGet(t, metrics+"/health")
	if want := `{"health":"false","reason":"disk full: free space in ` + dataDir + `"}`; health != want {
		t.Errorf("/health = %s, want %s", health, want)
	}
	m := mustGet(t, metrics+"/metrics")
	for _, line := range []string{"cairn_disk_full 1", `cairn_disk_write_failures_total{reason="no_space"} `} {
		if !strings.Contains(m, "\n"+line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}

	// Five election timeouts, failing at the first new term.
	term := s.Node().Status().Term
	start, wait := time.Now(), 5*s.Config().ElectionTimeout
	poll.Until(t, wait+10*time.Second, "five election timeouts at the same term", func() bool {
		if got := s.Node().Status().Term; got != term {
			t.Fatalf("term went from %d to %d with a full disk", term, got)
		}
		return time.Since(start) > wait
	})

	if err := os.Remove(filepath.Join(mnt, "fill")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, "a write after space is freed", func() bool {
		code, _ := putValue(t, s, "after", "1")
		return code < 300
	})
	if h := mustGet(t, metrics+"/health"); h != `{"health":"true"}` {
		t.Errorf("/health after space is freed = %s", h)
	}
	if m := mustGet(t, metrics+"/metrics"); !strings.Contains(m, "\ncairn_disk_full 0") {
		t.Error("cairn_disk_full is not 0 after space is freed")
	}
	for key := range acked {
		resp, err := s.Client.Get(s.URL + "/v2/keys/" + key)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("acknowledged %s: %s", key, resp.Status)
		}
	}
}
