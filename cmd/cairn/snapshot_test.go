package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/v2http"
	"github.com/cairnkv/cairn/cmd/cairn/server"
	"github.com/cairnkv/cairn/cmd/cairn/server/servertest"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// snapshotMember is a member, n0, holding a few keys, and its
// development PKI. Managed certificates, which keep theirs in the store,
// are off: the store holds only the test's keys.
func snapshotMember(t *testing.T) (*servertest.Server, pki.Dev) {
	t.Helper()
	s := servertest.Start(t, func(c *server.Config) {
		c.Name = "n0"
		c.TLSManagedCerts = false
	})
	for _, r := range []*store.Request{
		{Method: store.MethodPut, Path: "/a", Value: "1"},
		{Method: store.MethodPut, Path: "/dir/b", Value: "2"},
		{Method: store.MethodPut, Path: "/ttl", Value: "3", HasTTL: true, TTL: 3600},
	} {
		if _, err := s.Node().Propose(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	return s, *s.DevPKI()
}

// connArgs connects to url with the member's node certificate: a backup
// holds Cairn's private keys, so with authorization off only a node
// identity may take one.
func connArgs(url string, dev pki.Dev) []string {
	return []string{"--endpoints", url, "--cacert", dev.CAFile, "--cert", dev.CertFile, "--key", dev.KeyFile}
}

func TestSnapshotSaveStatusRestore(t *testing.T) {
	s, dev := snapshotMember(t)
	n, url := s.Node(), s.URL
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.snap")

	stdout, stderr, err := runCairn(t, nil, append([]string{"snapshot", "save", file}, connArgs(url, dev)...)...)
	if err != nil {
		t.Fatalf("save: %v\n%s", err, stderr)
	}
	want := regexp.MustCompile(`^Snapshot saved to ` + regexp.QuoteMeta(file) + `: store index 3, raft index \d+, 3 keys, 1 directories, [0-9.]+ (B|KiB) in \S+ \(from member n0 at ` + regexp.QuoteMeta(url) + `\)\n$`)
	if !want.MatchString(stdout) || stderr != "" {
		t.Errorf("save printed %q, stderr %q; want %s", stdout, stderr, want)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("saved file: %v, %v; want mode 0600", fi, err)
	}
	if _, err := os.Stat(file + ".part"); !os.IsNotExist(err) {
		t.Errorf("%s.part left behind: %v", file, err)
	}

	stdout, _, err = runCairn(t, nil, "snapshot", "status", file)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"keys:         3\n", "directories:  1\n", "with a TTL:   1\n", "store index:  3\n",
		fmt.Sprintf("on member n0 (%x) of cluster %x\n", n.ID(), n.ClusterID())} {
		if !strings.Contains(stdout, line) {
			t.Errorf("status output lacks %q:\n%s", line, stdout)
		}
	}

	restored := filepath.Join(dir, "restored")
	stdout, _, err = runCairn(t, nil, "snapshot", "restore", file, "--data-dir", restored, "--name", "r1",
		"--peer-addr", "127.0.0.1:7101", "--addr", "127.0.0.1:4101")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Restored " + file + " into " + restored + ": 3 keys, 1 directories, store index 3 (backup of member n0",
		"with one member", "(name r1, peer address 127.0.0.1:7101)",
		"  cairn serve --name r1 --data-dir " + restored + " --addr 127.0.0.1:4101 --peer-addr 127.0.0.1:7101\n",
		"--peers 127.0.0.1:7101."} {
		if !strings.Contains(stdout, s) {
			t.Errorf("restore output lacks %q:\n%s", s, stdout)
		}
	}
	// The restored data dir opened as a node, to read its store: no
	// serving, so not a server.
	r, err := cluster.New(cluster.Config{Name: "r1", DataDir: restored, PeerAddr: "127.0.0.1:7101", ElectionTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	if ev, err := r.Store().Get("/dir/b", false, false, time.Now()); err != nil || *ev.Node.Value != "2" || ev.Node.CreatedIndex != 2 {
		t.Errorf("restored /dir/b: %+v, %v", ev, err)
	}

	// Restoring again into the same dir is refused, saying what to do.
	_, _, err = runCairn(t, nil, "snapshot", "restore", file, "--data-dir", restored)
	if err == nil || !strings.Contains(err.Error(), "restore into a new or empty directory") {
		t.Errorf("restore into a used dir: %v", err)
	}
}

func TestSnapshotRestoreTakesServeSettings(t *testing.T) {
	s, dev := snapshotMember(t)
	url := s.URL
	dir := t.TempDir()
	file := filepath.Join(dir, "b.snap")
	if _, _, err := runCairn(t, nil, append([]string{"snapshot", "save", file}, connArgs(url, dev)...)...); err != nil {
		t.Fatal(err)
	}
	toml := filepath.Join(dir, "cairn.toml")
	if err := os.WriteFile(toml, []byte("name = \"fromfile\"\n[peer]\naddr = \"10.9.9.9:7001\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(dir, "r")
	stdout, _, err := runCairn(t, []string{"CAIRN_DATA_DIR=" + restored, "CAIRN_NAME=fromenv"},
		"snapshot", "restore", file, "--config", toml)
	if err != nil {
		t.Fatal(err)
	}
	if want := "  cairn serve --name fromenv --data-dir " + restored + " --addr 127.0.0.1:4001 --peer-addr 10.9.9.9:7001\n"; !strings.Contains(stdout, want) {
		t.Errorf("restore output:\n%s\nwant the line %q", stdout, want)
	}
	if _, _, err := runCairn(t, []string{"CAIRN_BOGUS=1"}, "snapshot", "restore", file, "--data-dir", t.TempDir()); err == nil ||
		!strings.Contains(err.Error(), "unknown environment variable CAIRN_BOGUS") {
		t.Errorf("unknown variable: %v", err)
	}
}

// readOnlySnapshots hides Snapshotter: the server then answers 501.
type readOnlySnapshots struct{ v2http.Cluster }

// TestSnapshotSaveFailures: a save that does not get a whole backup
// fails and leaves no file. The failing servers are fakes: a real
// member's answer cut short, a stall, a member without snapshots (a real
// node with Snapshotter hidden), a refusal.
func TestSnapshotSaveFailures(t *testing.T) {
	s, dev := snapshotMember(t)
	url := s.URL

	// A server that cuts the member's backup short, cleanly: only the
	// trailer check can tell. It fetches the backup as a node.
	nodeTLS, err := tlsconf.ClientConfigFromFiles(tlsconf.Files{CAFile: dev.CAFile, CertFile: dev.CertFile, KeyFile: dev.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	asNode := &http.Client{Transport: &http.Transport{TLSClientConfig: nodeTLS}}
	t.Cleanup(asNode.CloseIdleConnections)
	cut := startServer(t, dev, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := asNode.Get(url + r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(body[:len(body)-7])
	}))
	// A server that answers and then sends nothing.
	stalled := startServer(t, dev, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("CAIRNBK1"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	unsupported := startMember(t, dev, readOnlySnapshots{s.Node()})
	// What a member answers a client that may not take a backup.
	notRoot := startServer(t, dev, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"message":"Insufficient credentials"}`))
	}))

	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		file string
		err  string
	}{
		{"cut short", connArgs(cut, dev), "b.snap", "is not a usable backup, so it was not saved"},
		{"stalled", append(connArgs(stalled, dev), "--timeout", "300ms"), "b.snap", "cut after 8 B: no data for 300ms"},
		{"not supported", connArgs(unsupported, dev), "b.snap", "snapshots are not supported by this server"},
		{"not root", connArgs(notRoot, dev), "b.snap", "Insufficient credentials; a backup holds Cairn's private keys: it needs a node certificate"},
		{"nobody there", connArgs(refusedEndpoint(t), dev), "b.snap", "no endpoint answered"},
		{"fails over", connArgs(refusedEndpoint(t)+","+url, dev), "b.snap", ""},
		{"no such directory", connArgs(url, dev), "missing/b.snap", "missing/b.snap.part"},
		{"no file", connArgs(url, dev), "", "provide the file to save the backup to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, tt.file)
			args := []string{"snapshot", "save"}
			if tt.file != "" {
				args = append(args, file)
			}
			_, _, err := runCairn(t, nil, append(args, tt.args...)...)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				os.Remove(file)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v; want one containing %q", err, tt.err)
			}
			for _, p := range []string{file, file + ".part"} {
				if _, err := os.Stat(p); tt.file != "" && !os.IsNotExist(err) {
					t.Errorf("a failed save left %s", p)
				}
			}
		})
	}
}

func TestSnapshotRestoreRefusesDamagedFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "b.snap")
	if err := os.WriteFile(file, []byte("CAIRNBK1\x00\x00\x00\x02{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{
		{"snapshot", "restore", file, "--data-dir", filepath.Join(dir, "r")},
		{"snapshot", "status", file},
	} {
		_, _, err := runCairn(t, nil, cmd...)
		if err == nil || !strings.Contains(err.Error(), "incomplete") || !strings.Contains(err.Error(), "take a new backup with cairn snapshot save") {
			t.Errorf("%s: %v", cmd[1], err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "r")); !os.IsNotExist(err) {
		t.Errorf("a refused restore created the data dir: %v", err)
	}
}

func TestProgressBar(t *testing.T) {
	start := time.Unix(1000, 0)
	now := start
	var out bytes.Buffer
	p := &progressBar{out: &out, start: start, now: func() time.Time { return now }}
	now = now.Add(time.Second)
	p.Write(make([]byte, 3<<20))
	now = now.Add(50 * time.Millisecond) // too soon to redraw
	p.Write(make([]byte, 1<<20))
	now = now.Add(time.Second)
	p.done()
	want := "\rDownloading snapshot: 3.0 MiB (3.0 MiB/s)\x1b[K" + "\rDownloading snapshot: 4.0 MiB (2.0 MiB/s)\x1b[K\n"
	if out.String() != want {
		t.Errorf("progress %q, want %q", out.String(), want)
	}
	if isTerminal(&out) || isTerminal(io.Discard) {
		t.Error("a buffer is not a terminal")
	}
}
