package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/cmd/cairn/clientflags"
	"github.com/cairnkv/cairn/cmd/cairn/server/servertest"
	"github.com/cairnkv/cairn/discovery"
	"github.com/cairnkv/cairn/store"
)

func TestRegisterFlagErrors(t *testing.T) {
	base := []string{"register", "--service", "web", "--instance", "web-1", "--host", "10.0.0.5", "--port", "8080"}
	// with is base with flags replaced or added: "--flag", "value" pairs;
	// a value of "" drops the flag.
	with := func(kv ...string) []string {
		args := append([]string(nil), base...)
		for i := 0; i < len(kv); i += 2 {
			j := 0
			for j = 1; j < len(args); j += 2 {
				if args[j] == kv[i] {
					break
				}
			}
			switch {
			case j < len(args) && kv[i+1] == "":
				args = append(args[:j], args[j+2:]...)
			case j < len(args):
				args[j+1] = kv[i+1]
			default:
				args = append(args, kv[i], kv[i+1])
			}
		}
		return args
	}
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{"missing service", with("--service", ""), "--service is required"},
		{"missing instance", with("--instance", ""), "--instance is required"},
		{"missing host", with("--host", ""), "--host is required"},
		{"port too big", with("--port", "70000"), `record field "port": 70000 is out of range 0-65535`},
		{"negative port", with("--port", "-1"), `record field "port": -1 is out of range 0-65535`},
		{"port not a number", with("--port", "http"), `invalid argument "http" for "--port"`},
		{"weight too big", with("--weight", "65536"), `record field "weight": 65536 is out of range 0-65535`},
		{"service not a label", with("--service", "web_1"), `service "web_1": want DNS labels`},
		{"service with an empty label", with("--service", "web..prod"), `service "web..prod": want DNS labels`},
		{"instance with a dot", with("--instance", "web.1"), `instance "web.1": want a DNS label`},
		{"instance too long", with("--instance", strings.Repeat("a", 64)), "want a DNS label"},
		{"host neither IP nor name", with("--host", "10.0.0.300"), `record field "host": "10.0.0.300" is neither an IP address nor a hostname`},
		{"TTL too short", with("--ttl", "500ms"), "TTL 500ms: want at least 1s"},
		{"TTL not whole seconds", with("--ttl", "1500ms"), "TTL 1.5s: want whole seconds"},
		{"two checks", with("--check-http", "http://127.0.0.1:8080/health", "--check-tcp", "127.0.0.1:8080"), "--check-http and --check-tcp: give at most one check"},
		{"three checks", with("--check-http", "http://a/", "--check-tcp", "a:1", "--check-exec", "true"), "--check-http and --check-tcp and --check-exec: give at most one check"},
		{"check-http not a URL", with("--check-http", "127.0.0.1:8080/health"), `HTTP check "127.0.0.1:8080/health": want an http:// or https:// URL`},
		{"check-tcp without port", with("--check-tcp", "127.0.0.1"), `TCP check "127.0.0.1": want HOST:PORT`},
		{"check-interval without check", with("--check-interval", "1s"), "--check-interval and --check-timeout need a check"},
		{"check-interval over ttl/3", with("--ttl", "9s", "--check-exec", "true", "--check-interval", "4s"), "--check-interval 4s: want at most the heartbeat interval, ttl/3 = 3s"},
		{"check-interval zero", with("--check-exec", "true", "--check-interval", "0s"), "--check-interval 0s: want a positive duration"},
		{"empty domain", with("--domain", ""), "--domain is empty"},
		{"arguments", append(with(), "extra"), `unknown command "extra"`},
		{"plain http endpoint", with("--endpoints", "http://127.0.0.1:4001"), "Cairn serves HTTPS only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCairn(t, nil, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("cairn %s: %v; want an error with %q", strings.Join(tt.args, " "), err, tt.err)
			}
		})
	}
}

// registerConfig parses args as `cairn register` would and returns the
// registrar configuration.
func registerConfig(t *testing.T, environ []string, args ...string) (discovery.RegistrarConfig, *v2client.Client, error) {
	t.Helper()
	o := &registerOptions{}
	fs := pflag.NewFlagSet("register", pflag.ContinueOnError)
	cf := clientflags.Add(fs)
	o.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return o.registrarConfig(fs, cf, environ, &bytes.Buffer{})
}

func TestRegisterConfig(t *testing.T) {
	dataDir, _ := newDevPKI(t)
	tests := []struct {
		name    string
		args    []string
		key     string
		record  discovery.Record
		ttl     time.Duration
		timeout time.Duration // the client's per-request timeout; 0: the registrar's default
		check   bool
		err     string
	}{
		{name: "defaults", args: []string{"--service", "web", "--instance", "web-1", "--host", "10.0.0.5", "--port", "8080"},
			key: "/skydns/internal/cairn/web/web-1", record: discovery.Record{Host: "10.0.0.5", Port: 8080}, ttl: 10 * time.Second},
		{name: "every record field and a check",
			args: []string{"--service", "Web", "--instance", "WEB-2", "--host", "web-2.example.com", "--port", "443", "--priority", "5",
				"--weight", "60", "--text", "v=1", "--ttl", "30s", "--check-tcp", "127.0.0.1:443", "--check-interval", "2s", "--timeout", "3s"},
			key:    "/skydns/internal/cairn/web/web-2",
			record: discovery.Record{Host: "web-2.example.com", Port: 443, Priority: 5, Weight: 60, Text: "v=1"}, ttl: 30 * time.Second,
			timeout: 3 * time.Second, check: true},
		{name: "nested service, own prefix and domain",
			args: []string{"--service", "api.prod", "--instance", "a1", "--host", "::1", "--prefix", "/dns", "--domain", "example.org"},
			key:  "/dns/org/example/prod/api/a1", record: discovery.Record{Host: "::1"}, ttl: 10 * time.Second},
		{name: "TXT only", args: []string{"--service", "cfg", "--instance", "c", "--text", "hello"},
			key: "/skydns/internal/cairn/cfg/c", record: discovery.Record{Text: "hello"}, ttl: 10 * time.Second},
		{name: "bad log format", args: []string{"--service", "web", "--instance", "w", "--host", "10.0.0.5", "--log-format", "xml"},
			err: `--log-format "xml": want text or json`},
		{name: "bad log level", args: []string{"--service", "web", "--instance", "w", "--host", "10.0.0.5", "--log-level", "loud"},
			err: `--log-level "loud": want debug, info, warn or error`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, client, err := registerConfig(t, []string{"CAIRN_DATA_DIR=" + dataDir, "CAIRN_ENDPOINTS=https://10.0.0.1:4001,https://10.0.0.2:4001"}, tt.args...)
			if client != nil {
				defer client.Close()
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("%v; want an error with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.timeout == 0 {
				tt.timeout = discovery.RequestTimeout(tt.ttl)
			}
			if cfg.Key != tt.key || cfg.Record != tt.record || cfg.TTL != tt.ttl || client.Timeout() != tt.timeout || (cfg.Check != nil) != tt.check {
				t.Errorf("key %s, record %+v, ttl %v, timeout %v, check %v; want %s, %+v, %v, %v, %v",
					cfg.Key, cfg.Record, cfg.TTL, client.Timeout(), cfg.Check != nil, tt.key, tt.record, tt.ttl, tt.timeout, tt.check)
			}
			if strings.Join(client.Endpoints(), ",") != "https://10.0.0.1:4001,https://10.0.0.2:4001" || cfg.Keys == nil || cfg.Logger == nil {
				t.Errorf("endpoints %v, keys %v, logger %v", client.Endpoints(), cfg.Keys != nil, cfg.Logger != nil)
			}
			if _, err := discovery.NewRegistrar(cfg); err != nil {
				t.Errorf("NewRegistrar: %v", err)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer for a writer and a reader in different
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRegisterCommand runs `cairn register` in process against a
// single-node cluster: it registers, and deregisters when its context ends
// (what SIGTERM and SIGINT do in main).
func TestRegisterCommand(t *testing.T) {
	srv := servertest.Start(t, nil)
	const key = "/skydns/internal/cairn/web/web-1"

	var stdout, stderr syncBuffer
	root := newRootCmd(&stdout, &stderr, []string{"CAIRN_DATA_DIR=" + srv.Config().DataDir})
	root.SetArgs([]string{"register", "--endpoints", srv.URL, "--service", "web", "--instance", "web-1",
		"--host", "10.0.0.5", "--port", "8080", "--ttl", "5s"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	get := func() (string, bool) {
		ev, err := srv.Node().Store().Get(key, false, false, time.Now())
		var se *store.Error
		if errors.As(err, &se) && se.ErrorCode == store.EcodeKeyNotFound {
			return "", false
		}
		if err != nil {
			t.Fatal(err)
		}
		return *ev.Node.Value, true
	}
	// The key can be applied before the sidecar has read the answer: wait
	// for both, or cancelling may interrupt the registration.
	poll.Until(t, 10*time.Second, "the registration and its log line", func() bool {
		_, ok := get()
		return ok && strings.Contains(stderr.String(), "msg=registered")
	})
	if v, _ := get(); v != `{"host":"10.0.0.5","port":8080}` {
		t.Fatalf("%s = %s", key, v)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("cairn register: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cairn register did not return within 10 s of its context ending")
	}
	if _, ok := get(); ok {
		t.Errorf("%s still registered after cairn register returned", key)
	}
	for _, msg := range []string{"msg=registered", "msg=deregistered"} {
		if !strings.Contains(stderr.String(), msg) {
			t.Errorf("no %s in the log:\n%s", msg, stderr.String())
		}
	}
	if stdout.String() != "" {
		t.Errorf("stdout: %q; want nothing", stdout.String())
	}
}
