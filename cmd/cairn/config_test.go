package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

func newFlags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	addFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

// The example file documents exactly the keys of the configuration, each
// with its default.
func TestConfigExampleCoversEveryKey(t *testing.T) {
	path := filepath.Join("..", "..", "config.example.toml")
	v := viper.New()
	v.SetConfigFile(path)
	if err := v.ReadInConfig(); err != nil {
		t.Fatal(err)
	}
	inFile := map[string]bool{}
	for _, k := range v.AllKeys() {
		inFile[k] = true
	}
	for _, s := range settings {
		if !inFile[s.key] {
			t.Errorf("config.example.toml lacks %q", s.key)
			continue
		}
		want := fmt.Sprint(s.def)
		if got := fmt.Sprint(v.Get(s.key)); got != want {
			t.Errorf("config.example.toml: %s = %v, but the default is %v", s.key, got, want)
		}
		delete(inFile, s.key)
	}
	for k := range inFile {
		t.Errorf("config.example.toml has %q, which is not a configuration key", k)
	}
	if _, _, err := loadConfig(newFlags(t), path, nil); err != nil {
		t.Fatalf("loading config.example.toml: %v", err)
	}
}

func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(file, []byte("name = \"from-file\"\n[peer]\nelection_timeout = \"3s\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc string
		args []string
		env  []string
		file string
		want string
	}{
		{"default", nil, nil, "", "default"},
		{"file over default", nil, nil, file, "from-file"},
		{"env over file", nil, []string{"CAIRN_NAME=from-env"}, file, "from-env"},
		{"flag over env", []string{"--name", "from-flag"}, []string{"CAIRN_NAME=from-env"}, file, "from-flag"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c, src, err := loadConfig(newFlags(t, tc.args...), tc.file, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if c.Name != tc.want {
				t.Fatalf("name = %q, want %q (sources %v)", c.Name, tc.want, src)
			}
		})
	}
	c, _, err := loadConfig(newFlags(t), file, nil)
	if err != nil || c.ElectionTimeout != 3*time.Second {
		t.Fatalf("nested duration from file: %v %v", c.ElectionTimeout, err)
	}
	if c.DataDir != "from-file.cairn" || c.BindAddr != ":4001" || c.PeerBindAddr != ":7001" {
		t.Fatalf("derived defaults: %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("nmae = \"x\"\n"), 0o600)
	for _, tc := range []struct {
		desc string
		args []string
		env  []string
		file string
		want string
	}{
		{"unknown file key", nil, nil, bad, `unknown key "nmae"`},
		{"unknown env", nil, []string{"CAIRN_NAEM=x"}, "", "unknown environment variable CAIRN_NAEM"},
		{"bad duration", nil, []string{"CAIRN_PEER_ELECTION_TIMEOUT=soon"}, "", "peer.election_timeout"},
		{"bad addr", []string{"--addr", "nohost"}, nil, "", `addr: "nohost" is not host:port`},
		{"bad tls", []string{"--tls-min-version", "1.1"}, nil, "", "tls.min_version"},
		{"bad log", []string{"--log-format", "xml"}, nil, "", "log.format"},
		{"partial tls files", []string{"--ca-file", "x", "--cert-file", "y"}, nil, "", "go together"},
		{"partial peer files", []string{"--peer-key-file", "y"}, nil, "", "peer.cert_file and peer.key_file go together"},
		{"bad peer", []string{"--peers", "a:1,nohost"}, nil, "", `peers: "nohost" is not host:port`},
		{"missing peers file", []string{"--peers-file", "/nonexistent"}, nil, "", "peers_file"},
		{"bad bool", nil, []string{"CAIRN_FORCE_NEW_CLUSTER=maybe"}, "", `force_new_cluster: "maybe" is not true or false`},
		{"bad dns addr", []string{"--dns-addr", "53"}, nil, "", "dns.addr"},
		{"bad max ttl", []string{"--dns-max-ttl", "0"}, nil, "", "dns.max_ttl"},
		{"bad prefix", []string{"--discovery-prefix", "skydns"}, nil, "", "discovery.prefix"},
		{"missing file", nil, nil, "/nonexistent.toml", "read config file"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, _, err := loadConfig(newFlags(t, tc.args...), tc.file, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
