package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// Kinds of Server.
const (
	KindCairn = "cairn"
	KindEtcd  = "etcd"
)

// startTimeout bounds how long a server may take to become ready.
const startTimeout = 30 * time.Second

// Server is a running cairn or etcd process with an HTTPS client for it.
type Server struct {
	Kind    string
	Name    string
	URL     string // client URL, https://127.0.0.1:<port>
	DataDir string
	Files   tlsconf.Files // the client's TLS material
	HTTP    *http.Client
	Proc    *Proc

	clientOnce sync.Once
	client     *v2client.Client
	clientErr  error
}

// Client is a v2client of the server alone, made on first use and closed
// when the test that made it ends. Tests that compare bytes with etcd (the
// differential suite) use Do.
func (s *Server) Client(t testing.TB) *v2client.Client {
	t.Helper()
	s.clientOnce.Do(func() {
		tc, err := tlsconf.ClientConfigFromFiles(s.Files)
		if err != nil {
			s.clientErr = err
			return
		}
		s.client, s.clientErr = v2client.New(v2client.Config{Endpoints: []string{s.URL}, TLS: tc, Timeout: 10 * time.Second})
		if s.clientErr == nil {
			t.Cleanup(s.client.Close)
		}
	})
	if s.clientErr != nil {
		t.Fatal(s.clientErr)
	}
	return s.client
}

// SetKey writes key=value through Client within 10 s.
func (s *Server) SetKey(t testing.TB, key, value string) (*store.Event, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Client(t).Set(ctx, key, value, v2client.SetOptions{})
}

// GetKey reads key through Client within 10 s.
func (s *Server) GetKey(t testing.TB, key string) (*store.Event, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Client(t).Get(ctx, key, v2client.GetOptions{})
}

// String names the server in messages.
func (s *Server) String() string { return s.Kind + "(" + s.URL + ")" }

// Do sends one raw request, for tests of the wire itself (the
// differential suite compares bytes with etcd). path is the URL path (e.g. "/v2/keys/a"), query the
// raw query and form, when not empty, a urlencoded body. It returns the
// response with its body read and closed.
func (s *Server) Do(ctx context.Context, method, path, query, form string) (*http.Response, []byte, error) {
	u := s.URL + path
	if query != "" {
		u += "?" + query
	}
	var body io.Reader
	if form != "" {
		body = strings.NewReader(form)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, nil, err
	}
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// Get is Do for a GET with a 10-second deadline, failing the test on a
// transport error.
func (s *Server) Get(t testing.TB, path, query string) (*http.Response, []byte) {
	t.Helper()
	return s.mustDo(t, http.MethodGet, path, query, "")
}

// Put is Do for a PUT with a form body, failing the test on a transport error.
func (s *Server) Put(t testing.TB, path, query, form string) (*http.Response, []byte) {
	t.Helper()
	return s.mustDo(t, http.MethodPut, path, query, form)
}

func (s *Server) mustDo(t testing.TB, method, path, query, form string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, body, err := s.Do(ctx, method, path, query, form)
	if err != nil {
		t.Fatalf("%s %s %s?%s: %v", s, method, path, query, err)
	}
	return resp, body
}

// Healthy checks GET /health: 200 with {"health":"true"}.
func (s *Server) Healthy(ctx context.Context) error {
	resp, body, err := s.Do(ctx, http.MethodGet, "/health", "", "")
	if err != nil {
		return err
	}
	var h struct {
		Health string `json:"health"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &h) != nil || h.Health != "true" {
		return fmt.Errorf("GET /health: %d %q", resp.StatusCode, body)
	}
	return nil
}

// waitReady polls until ready returns nil, failing fast with the server's
// output if the process exits.
func (s *Server) waitReady(t testing.TB, ready func(context.Context) error) {
	t.Helper()
	Poll(t, startTimeout, s.String()+" to become ready", func() error {
		if done, err := s.Proc.Exited(); done {
			t.Fatalf("%s exited before it was ready (%v); output:\n%s", s, err, s.Proc.Tail(12<<10))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return ready(ctx)
	})
}

// CairnConfig describes a cairn node to start. Zero fields get defaults.
type CairnConfig struct {
	Bin      string   // the cairn binary (required)
	Name     string   // --name; default "n1"
	DataDir  string   // --data-dir; default a new t.TempDir()
	Port     int      // client port; default FreePort
	PeerPort int      // peer port; default FreePort
	PKI      *PKI     // nil: cairn makes its development PKI in DataDir/pki
	Args     []string // extra flags after the standard ones
	Env      []string // extra environment
}

// StartCairn runs `cairn serve` with cfg and waits until GET /health says
// it is healthy. cfg's defaults are filled in, so the returned server's
// Config (via the same cfg value passed again) restarts it on the same
// ports and data dir.
func StartCairn(t testing.TB, cfg *CairnConfig) *Server {
	t.Helper()
	s := LaunchCairn(t, cfg)
	s.WaitHealthy(t)
	return s
}

// LaunchCairn is StartCairn without the wait: members that wait for each
// other (bootstrap by discovery) start at once, then WaitHealthy.
func LaunchCairn(t testing.TB, cfg *CairnConfig) *Server {
	t.Helper()
	if cfg.Bin == "" {
		t.Fatal("StartCairn: no binary")
	}
	if cfg.Name == "" {
		cfg.Name = "n1"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Port == 0 {
		cfg.Port = FreePort(t)
	}
	if cfg.PeerPort == 0 {
		cfg.PeerPort = FreePort(t)
	}
	addr := "127.0.0.1:" + strconv.Itoa(cfg.Port)
	peer := "127.0.0.1:" + strconv.Itoa(cfg.PeerPort)
	args := []string{"serve",
		"--name", cfg.Name, "--data-dir", cfg.DataDir,
		"--addr", addr, "--bind-addr", addr,
		"--peer-addr", peer, "--peer-bind-addr", peer,
		"--dns-addr", "", // off unless a test asks: parallel nodes would share the default port
	}
	files := tlsconf.Files{
		CAFile:   filepath.Join(cfg.DataDir, "pki", "ca.crt"),
		CertFile: filepath.Join(cfg.DataDir, "pki", "client.crt"),
		KeyFile:  filepath.Join(cfg.DataDir, "pki", "client.key"),
	}
	if cfg.PKI != nil {
		args = append(args, "--ca-file", cfg.PKI.CAFile, "--cert-file", cfg.PKI.NodeCert, "--key-file", cfg.PKI.NodeKey)
		files = cfg.PKI.ClientFiles()
	}
	args = append(args, cfg.Args...)
	cmd := exec.Command(cfg.Bin, args...)
	cmd.Env = append(cleanEnv("CAIRN_"), cfg.Env...)
	s := &Server{Kind: KindCairn, Name: cfg.Name, URL: "https://" + addr, DataDir: cfg.DataDir, Files: files}
	s.Proc = StartProc(t, "cairn "+cfg.Name, cmd)
	return s
}

// WaitHealthy waits until a cairn server LaunchCairn started answers GET
// /health with 200, failing the test if it exits first.
func (s *Server) WaitHealthy(t testing.TB) {
	t.Helper()
	s.waitReady(t, func(ctx context.Context) error {
		if s.HTTP == nil {
			c, err := NewHTTPClient(s.Files) // the dev PKI appears after start
			if err != nil {
				return err
			}
			s.HTTP = c
		}
		return s.Healthy(ctx)
	})
}

// StartEtcd runs the reference etcd 3.4 with the v2 API on, client TLS
// from p (client certificates required) and a plain-HTTP peer listener on
// loopback, and waits until it is healthy and its cluster version is
// decided (after that, an idle etcd consumes no store index).
func StartEtcd(t testing.TB, p *PKI, name string) *Server {
	t.Helper()
	bin := NeedBinary(t, "etcd")
	dir := t.TempDir()
	client := "https://127.0.0.1:" + strconv.Itoa(FreePort(t))
	peer := "http://127.0.0.1:" + strconv.Itoa(FreePort(t))
	cmd := exec.Command(bin,
		"--name", name, "--data-dir", filepath.Join(dir, "data"),
		"--enable-v2=true",
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", name+"="+peer,
		"--cert-file", p.NodeCert, "--key-file", p.NodeKey,
		"--trusted-ca-file", p.CAFile, "--client-cert-auth",
	)
	cmd.Env = cleanEnv("ETCD_")
	c, err := NewHTTPClient(p.ClientFiles())
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	s := &Server{Kind: KindEtcd, Name: name, URL: client, DataDir: dir, Files: p.ClientFiles(), HTTP: c}
	s.Proc = StartProc(t, "etcd "+name, cmd)
	s.waitReady(t, func(ctx context.Context) error {
		if err := s.Healthy(ctx); err != nil {
			return err
		}
		_, body, err := s.Do(ctx, http.MethodGet, "/version", "", "")
		if err != nil {
			return err
		}
		var v struct {
			Cluster string `json:"etcdcluster"`
		}
		if err := json.Unmarshal(body, &v); err != nil || v.Cluster == "" || v.Cluster == "not_decided" {
			return fmt.Errorf("cluster version not decided: %q", body)
		}
		return nil
	})
	return s
}

// cleanEnv is the test's environment without variables starting with
// prefix, so a developer's ETCD_* or CAIRN_* settings do not leak in.
func cleanEnv(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			env = append(env, kv)
		}
	}
	return env
}

// BuildCairn builds the cairn binary into dir and returns its path. The
// environment variable CAIRN_E2E_BIN names a prebuilt binary to use instead.
func BuildCairn(dir string) (string, error) {
	if bin := os.Getenv("CAIRN_E2E_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("CAIRN_E2E_BIN: %w", err)
		}
		return bin, nil
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("no go tool to build cairn: %w", err)
	}
	bin := filepath.Join(dir, "cairn")
	cmd := exec.Command(gobin, "build", "-o", bin, "github.com/cairnkv/cairn/cmd/cairn")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/cairn: %v\n%s", err, out)
	}
	return bin, nil
}
