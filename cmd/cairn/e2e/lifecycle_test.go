package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
		value := fmt.Sprintf("value=%d", i)
		if resp, body := s.Put(t, "/v2/keys/graceful", "", value); resp.StatusCode/100 != 2 {
			t.Fatalf("PUT: %d %s", resp.StatusCode, body)
		}
		if err := s.Proc.Stop(sig, 15*time.Second); err != nil {
			t.Fatalf("%v: %v", sig, err)
		}
		s = StartCairn(t, cfg)
		resp, body := s.Get(t, "/v2/keys/graceful", "")
		if want := fmt.Sprintf(`"value":"%d"`, i); resp.StatusCode != http.StatusOK || !json.Valid(body) || !strings.Contains(string(body), want) {
			t.Errorf("after %v and restart: %d %s; want %s", sig, resp.StatusCode, body, want)
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
	if resp, body := s.Put(t, "/v2/keys/dev", "", "value=x"); resp.StatusCode != http.StatusCreated {
		t.Errorf("PUT with the dev client certificate: %d %s", resp.StatusCode, body)
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
	if resp, body := s.Get(t, "/v2/keys/dev", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET after restart: %d %s", resp.StatusCode, body)
	}
}
