package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// TestServeCommand runs `cairn serve` as a user would, on free ports: it
// prints the URL it serves (the port it got), answers there with the
// development PKI's client certificate, and exits 0 when interrupted.
func TestServeCommand(t *testing.T) {
	dataDir := t.TempDir()
	out, w := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() {
		defer w.Close()
		code <- run(ctx, []string{"serve", "--name", "n1", "--data-dir", dataDir,
			"--addr", "127.0.0.1:0", "--bind-addr", "127.0.0.1:0",
			"--peer-addr", "127.0.0.1:0", "--peer-bind-addr", "127.0.0.1:0",
			"--dns-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
			"--peer-heartbeat-interval", "20ms", "--peer-election-timeout", "400ms",
			"--config", emptyConfig(t)}, w, io.Discard, nil)
	}()
	lines := bufio.NewScanner(out)
	var url string
	for lines.Scan() {
		if u, ok := strings.CutPrefix(lines.Text(), "Cairn "+version+" is serving "); ok {
			url = u
			break
		}
	}
	go io.Copy(io.Discard, out)
	if !strings.HasPrefix(url, "https://127.0.0.1:") || strings.HasSuffix(url, ":0") {
		t.Fatalf("serve printed URL %q, want the port it got", url)
	}
	tc, err := tlsconf.ClientConfigFromFiles(tlsconf.Files{CAFile: dataDir + "/pki/ca.crt", CertFile: dataDir + "/pki/client.crt", KeyFile: dataDir + "/pki/client.key"})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	poll.Until(t, 20*time.Second, "a healthy member", func() bool {
		resp, err := client.Get(url + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	cancel()
	if c := <-code; c != 0 {
		t.Fatalf("cairn serve exited %d after an interrupt, want 0", c)
	}
}

// emptyConfig is a config file without keys, so that tests do not read
// this machine's /etc/cairn/cairn.toml.
func emptyConfig(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "empty.toml")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
