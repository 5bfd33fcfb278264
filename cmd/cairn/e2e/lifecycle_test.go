package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestGracefulShutdown checks that SIGTERM and SIGINT stop cairn cleanly
// (exit status 0) and that a restart on the same data dir keeps the data.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	cfg := &CairnConfig{Bin: needCairn(t), PKI: testPKI}
	s := StartCairn(t, cfg)
	for i, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		value := fmt.Sprint(i)
		if _, err := s.SetKey(t, "/graceful", value); err != nil {
			t.Fatalf("PUT: %v", err)
		}
		if err := s.Proc.Stop(sig, 15*time.Second); err != nil {
			t.Fatalf("%v: %v", sig, err)
		}
		s = StartCairn(t, cfg)
		if ev, err := s.GetKey(t, "/graceful"); err != nil || *ev.Node.Value != value {
			t.Errorf("after %v and restart: %+v, %v; want %s", sig, ev, err, value)
		}
	}
}

// TestDevPKI starts cairn without TLS flags: it must make a development
// PKI in its data dir, serve with it, and keep it across restarts.
func TestDevPKI(t *testing.T) {
	t.Parallel()
	cfg := &CairnConfig{Bin: needCairn(t)} // no PKI: StartCairn uses DataDir/pki/client.*
	s := StartCairn(t, cfg)
	files := []string{"ca.crt", "ca.key", "node.crt", "node.key", "client.crt", "client.key"}
	before := map[string][]byte{}
	for _, f := range files {
		p := filepath.Join(cfg.DataDir, "pki", f)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("dev PKI: %v", err)
			continue
		}
		before[f] = b
		if fi, err := os.Stat(p); err == nil && filepath.Ext(f) == ".key" && fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v; keys must not be readable by group or others", f, fi.Mode().Perm())
		}
	}
	if ev, err := s.SetKey(t, "/dev", "x"); err != nil || !ev.IsCreated() {
		t.Errorf("PUT with the dev client certificate: %+v, %v", ev, err)
	}
	if err := s.Proc.Stop(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	s = StartCairn(t, cfg)
	for _, f := range []string{"ca.crt", "client.crt"} {
		if b, _ := os.ReadFile(filepath.Join(cfg.DataDir, "pki", f)); string(b) != string(before[f]) {
			t.Errorf("%s changed across a restart", f)
		}
	}
	if _, err := s.GetKey(t, "/dev"); err != nil {
		t.Errorf("GET after restart: %v", err)
	}
}
