package tlsconf_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	"github.com/cairnkv/cairn/tlsauth/tlstest"
)

// startWatch runs r.Watch until the test ends.
func startWatch(t *testing.T, r *tlsconf.Reloader) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Watch(ctx, tlsconf.WatchOptions{Debounce: 100 * time.Millisecond}) }()
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
		tlstest.WriteFile(t, filepath.Join(ts, name), string(data), mode)
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
			tlstest.WriteFile(t, path, string(data), mode)
		},
		"rename over": func(t *testing.T, path string, data []byte, mode os.FileMode) {
			if err := pki.WriteFileAtomic(path, data, mode); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, put := range write {
		t.Run(name, func(t *testing.T) {
			p := tlstest.NewPKI(t)
			log, logs := newTestLogger()
			r := tlsconf.NewReloader(log)
			r.Add("client port", p.NodeMaterial)
			startWatch(t, r)

			// An unrelated file: no reload, no log.
			tlstest.WriteFile(t, filepath.Join(p.Dir, "notes.txt"), "hello", 0o644)

			ca := tlstest.NewCA(t)
			node := tlstest.IssueNode(t, ca, tlstest.TrustDomain, "n1")
			put(t, p.Node.KeyFile, node.KeyPEM, 0o600)
			put(t, p.Node.CertFile, node.CertPEM, 0o644)
			put(t, p.CAFile, ca.CertPEM, 0o644)
			poll.Until(t, 5*time.Second, "the new certificate", func() bool {
				return p.NodeMaterial.Certificate().Leaf.CheckSignatureFrom(ca.Cert) == nil
			})
			if n := strings.Count(logs.String(), "TLS material reloaded"); n != 1 {
				t.Errorf("%d reloads logged, want 1 (debounced):\n%s", n, logs)
			}

			// A bad certificate: refused once, the new material stays.
			before := p.NodeMaterial.Certificate()
			put(t, p.Node.CertFile, []byte("garbage"), 0o644)
			poll.Until(t, 5*time.Second, "the refusal", func() bool { return strings.Contains(logs.String(), "TLS reload refused") })
			put(t, p.Node.KeyFile, node.KeyPEM, 0o600) // an event, but the same bad set
			if p.NodeMaterial.Certificate() != before {
				t.Error("a refused file replaced the material")
			}
			// Good files again: loaded.
			node2 := tlstest.IssueNode(t, ca, tlstest.TrustDomain, "n1")
			put(t, p.Node.KeyFile, node2.KeyPEM, 0o600)
			put(t, p.Node.CertFile, node2.CertPEM, 0o644)
			poll.Until(t, 5*time.Second, "the fixed certificate", func() bool {
				return p.NodeMaterial.Certificate() != before
			})
			if n := strings.Count(logs.String(), "TLS reload refused"); n != 1 {
				t.Errorf("%d refusals logged, want 1:\n%s", n, logs)
			}
			if !strings.Contains(logs.String(), p.Node.CertFile) {
				t.Errorf("the refusal does not name the file:\n%s", logs)
			}
		})
	}

	t.Run("kubernetes secret volume", func(t *testing.T) {
		p := tlstest.NewPKI(t)
		v := &k8sVolume{dir: t.TempDir()}
		node := tlstest.IssueNode(t, p.CA, tlstest.TrustDomain, "n1")
		v.update(t, map[string][]byte{"ca.crt": p.CA.CertPEM, "tls.crt": node.CertPEM, "tls.key": node.KeyPEM})
		m, err := tlsconf.LoadMaterial(tlsconf.Files{CAFile: filepath.Join(v.dir, "ca.crt"), CertFile: filepath.Join(v.dir, "tls.crt"), KeyFile: filepath.Join(v.dir, "tls.key")})
		if err != nil {
			t.Fatal(err)
		}
		r := tlsconf.NewReloader(nil)
		r.Add("client port", m)
		startWatch(t, r)
		for range 2 { // the second swap happens in a directory watched after the first
			ca := tlstest.NewCA(t)
			node := tlstest.IssueNode(t, ca, tlstest.TrustDomain, "n1")
			v.update(t, map[string][]byte{"ca.crt": ca.CertPEM, "tls.crt": node.CertPEM, "tls.key": node.KeyPEM})
			poll.Until(t, 5*time.Second, "the swapped secret", func() bool {
				return m.Certificate().Leaf.CheckSignatureFrom(ca.Cert) == nil
			})
		}
	})
}

func TestWatchWithoutMaterial(t *testing.T) {
	if err := tlsconf.NewReloader(nil).Watch(context.Background(), tlsconf.WatchOptions{}); err == nil {
		t.Fatal("Watch with nothing to watch returned nil")
	}
}
