package tlsauth

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// waitFor polls cond every 10 ms until it holds, failing after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", timeout, what)
		}
		<-tick.C
	}
}

// startWatch runs r.Watch until the test ends.
func startWatch(t *testing.T, r *Reloader) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Watch(ctx, WatchOptions{Debounce: 100 * time.Millisecond}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
}

// k8sVolume lays files out as a Kubernetes secret volume does: dir/<name>
// is a link to ..data/<name>, ..data a link to a timestamped directory.
// Update writes a new timestamped directory and swaps ..data atomically.
type k8sVolume struct {
	dir string
	gen int
}

func (v *k8sVolume) update(t *testing.T, files map[string][]byte) {
	t.Helper()
	v.gen++
	ts := filepath.Join(v.dir, "..2026_01_01_00_00_0"+string(rune('0'+v.gen)))
	if err := os.Mkdir(ts, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".key") {
			mode = 0o600
		}
		mustWrite(t, filepath.Join(ts, name), string(data), mode)
		link := filepath.Join(v.dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// TestWatch: every way of replacing the files is noticed and reloaded; a
// bad file is refused once and the material stays; nothing else happens
// for unrelated files in the directory.
func TestWatch(t *testing.T) {
	write := map[string]func(t *testing.T, path string, data []byte, mode os.FileMode){
		"in place": func(t *testing.T, path string, data []byte, mode os.FileMode) {
			mustWrite(t, path, string(data), mode)
		},
		"rename over": func(t *testing.T, path string, data []byte, mode os.FileMode) {
			if err := writeFileAtomic(path, data, mode); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, put := range write {
		t.Run(name, func(t *testing.T) {
			p := newTestPKI(t)
			log, logs := newTestLogger()
			r := NewReloader(log)
			r.Add("client port", p.nodeMat)
			startWatch(t, r)

			// An unrelated file: no reload, no log.
			mustWrite(t, filepath.Join(p.dir, "notes.txt"), "hello", 0o644)

			ca := newTestCA(t)
			node := mustIssueNode(t, ca, testTD, "n1")
			put(t, p.node.KeyFile, node.KeyPEM, 0o600)
			put(t, p.node.CertFile, node.CertPEM, 0o644)
			put(t, p.caFile, ca.CertPEM, 0o644)
			waitFor(t, 5*time.Second, "the new certificate", func() bool {
				return p.nodeMat.Certificate().Leaf.CheckSignatureFrom(ca.Cert) == nil
			})
			if n := strings.Count(logs.String(), "TLS material reloaded"); n != 1 {
				t.Errorf("%d reloads logged, want 1 (debounced):\n%s", n, logs)
			}

			// A bad certificate: refused once, the new material stays.
			before := p.nodeMat.Certificate()
			put(t, p.node.CertFile, []byte("garbage"), 0o644)
			waitFor(t, 5*time.Second, "the refusal", func() bool { return strings.Contains(logs.String(), "TLS reload refused") })
			put(t, p.node.KeyFile, node.KeyPEM, 0o600) // an event, but the same bad set
			if p.nodeMat.Certificate() != before {
				t.Error("a refused file replaced the material")
			}
			// Good files again: loaded.
			node2 := mustIssueNode(t, ca, testTD, "n1")
			put(t, p.node.KeyFile, node2.KeyPEM, 0o600)
			put(t, p.node.CertFile, node2.CertPEM, 0o644)
			waitFor(t, 5*time.Second, "the fixed certificate", func() bool {
				return p.nodeMat.Certificate() != before
			})
			if n := strings.Count(logs.String(), "TLS reload refused"); n != 1 {
				t.Errorf("%d refusals logged, want 1:\n%s", n, logs)
			}
			if !strings.Contains(logs.String(), p.node.CertFile) {
				t.Errorf("the refusal does not name the file:\n%s", logs)
			}
		})
	}

	t.Run("kubernetes secret volume", func(t *testing.T) {
		p := newTestPKI(t)
		v := &k8sVolume{dir: t.TempDir()}
		node := mustIssueNode(t, p.ca, testTD, "n1")
		v.update(t, map[string][]byte{"ca.crt": p.ca.CertPEM, "tls.crt": node.CertPEM, "tls.key": node.KeyPEM})
		m, err := LoadMaterial(Files{CAFile: filepath.Join(v.dir, "ca.crt"), CertFile: filepath.Join(v.dir, "tls.crt"), KeyFile: filepath.Join(v.dir, "tls.key")})
		if err != nil {
			t.Fatal(err)
		}
		r := NewReloader(nil)
		r.Add("client port", m)
		startWatch(t, r)
		for range 2 { // the second swap happens in a directory watched after the first
			ca := newTestCA(t)
			node := mustIssueNode(t, ca, testTD, "n1")
			v.update(t, map[string][]byte{"ca.crt": ca.CertPEM, "tls.crt": node.CertPEM, "tls.key": node.KeyPEM})
			waitFor(t, 5*time.Second, "the swapped secret", func() bool {
				return m.Certificate().Leaf.CheckSignatureFrom(ca.Cert) == nil
			})
		}
	})
}

func TestWatchWithoutMaterial(t *testing.T) {
	if err := NewReloader(nil).Watch(context.Background(), WatchOptions{}); err == nil {
		t.Fatal("Watch with nothing to watch returned nil")
	}
}
