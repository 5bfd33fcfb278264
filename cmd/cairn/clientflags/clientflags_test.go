package clientflags_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/cairnkv/cairn/cmd/cairn/clientflags"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// newDevPKI makes the development PKI of a data dir, as cairn serve does
// on its first start, and returns the data dir.
func newDevPKI(t *testing.T) (string, pki.Dev) {
	t.Helper()
	dataDir := t.TempDir()
	p, _, err := pki.EnsureDev(filepath.Join(dataDir, "pki"), "node1", "cairn.internal", nil)
	if err != nil {
		t.Fatal(err)
	}
	return dataDir, p
}

func TestParseEndpoints(t *testing.T) {
	tests := []struct {
		raw  string
		want []string
		err  string
	}{
		{"https://10.0.0.1:4001", []string{"https://10.0.0.1:4001"}, ""},
		{" https://a:1/ , https://[::1]:2,,", []string{"https://a:1", "https://[::1]:2"}, ""},
		{"http://a:4001", nil, "Cairn serves HTTPS only: write https://a:4001"},
		{"a:4001", nil, `endpoint "a:4001" is not a URL: write https://a:4001`},
		{"ftp://a:1", nil, "the scheme must be https"},
		{"https://a:1/v2/keys", nil, "give only https://host:port"},
		{"https://", nil, "has no host"},
		{" , ", nil, "no endpoint given"},
	}
	for _, tt := range tests {
		got, err := clientflags.ParseEndpoints(tt.raw)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want one containing %q", tt.raw, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%q: %q, %v; want %q", tt.raw, got, err, tt.want)
		}
	}
}

// TestClientSettingsPrecedence: flag > environment > development PKI, for
// the endpoints, the key pair and the CA each.
func TestClientSettingsPrecedence(t *testing.T) {
	dataDir, dev := newDevPKI(t)
	emptyDir := t.TempDir()
	flagFiles := []string{"--cert", "/f/c.crt", "--key", "/f/c.key", "--cacert", "/f/ca.crt"}
	envFiles := []string{"CAIRN_CERT=/e/c.crt", "CAIRN_KEY=/e/c.key", "CAIRN_CACERT=/e/ca.crt"}
	tests := []struct {
		name  string
		args  []string
		env   []string
		eps   string
		files tlsconf.Files
		err   string
	}{
		{"dev PKI", []string{"--data-dir", dataDir}, nil, "https://127.0.0.1:4001", tlsconf.DevClientFiles(dev), ""},
		{"dev PKI from CAIRN_DATA_DIR", nil, []string{"CAIRN_DATA_DIR=" + dataDir}, "https://127.0.0.1:4001", tlsconf.DevClientFiles(dev), ""},
		{"flag data dir beats env", []string{"--data-dir", dataDir}, []string{"CAIRN_DATA_DIR=" + emptyDir}, "https://127.0.0.1:4001", tlsconf.DevClientFiles(dev), ""},
		{"env beats dev PKI", []string{"--data-dir", dataDir}, append([]string{"CAIRN_ENDPOINTS=https://e:1,https://e:2"}, envFiles...),
			"https://e:1,https://e:2", tlsconf.Files{CAFile: "/e/ca.crt", CertFile: "/e/c.crt", KeyFile: "/e/c.key"}, ""},
		{"flags beat env", append([]string{"--endpoints", "https://f:1"}, flagFiles...), append([]string{"CAIRN_ENDPOINTS=https://e:1"}, envFiles...),
			"https://f:1", tlsconf.Files{CAFile: "/f/ca.crt", CertFile: "/f/c.crt", KeyFile: "/f/c.key"}, ""},
		{"each setting on its own", []string{"--data-dir", dataDir, "--cacert", "/f/ca.crt"}, []string{"CAIRN_CERT=/e/c.crt", "CAIRN_KEY=/e/c.key"},
			"https://127.0.0.1:4001", tlsconf.Files{CAFile: "/f/ca.crt", CertFile: "/e/c.crt", KeyFile: "/e/c.key"}, ""},
		{"flag pair beats env pair", []string{"--cert", "/f/c.crt", "--key", "/f/c.key"}, envFiles,
			"https://127.0.0.1:4001", tlsconf.Files{CAFile: "/e/ca.crt", CertFile: "/f/c.crt", KeyFile: "/f/c.key"}, ""},
		{"cert without key", []string{"--cert", "/f/c.crt"}, envFiles, "", tlsconf.Files{}, "--cert and --key go together"},
		{"env cert without key", nil, []string{"CAIRN_CERT=/e/c.crt"}, "", tlsconf.Files{}, "CAIRN_CERT and CAIRN_KEY go together"},
		{"no PKI anywhere", []string{"--data-dir", emptyDir}, nil, "", tlsconf.Files{},
			"no client certificate: pass --cert/--key, set CAIRN_CERT/CAIRN_KEY, or run on a node with a development PKI in --data-dir (--data-dir " + emptyDir},
		{"no CA anywhere", []string{"--data-dir", emptyDir, "--cert", "/f/c.crt", "--key", "/f/c.key"}, nil, "", tlsconf.Files{},
			"no CA certificate to verify the members with: pass --cacert, set CAIRN_CACERT"},
		{"default data dir from CAIRN_NAME", nil, []string{"CAIRN_NAME=" + filepath.Join(emptyDir, "n1")}, "", tlsconf.Files{},
			"(default --data-dir " + filepath.Join(emptyDir, "n1") + ".cairn has no pki/client.crt)"},
		{"bad flag endpoint", []string{"--endpoints", "http://a:1"}, nil, "", tlsconf.Files{}, "--endpoints: endpoint \"http://a:1\": Cairn serves HTTPS only"},
		{"bad env endpoint", nil, []string{"CAIRN_ENDPOINTS=a:1"}, "", tlsconf.Files{}, "CAIRN_ENDPOINTS: endpoint \"a:1\" is not a URL"},
		{"bad timeout", []string{"--timeout", "0s"}, nil, "", tlsconf.Files{}, "--timeout must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			cf := clientflags.Add(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			s, err := cf.Resolve(tt.env)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(s.Endpoints, ","); got != tt.eps {
				t.Errorf("endpoints %s, want %s", got, tt.eps)
			}
			if s.Files != tt.files {
				t.Errorf("files %+v, want %+v", s.Files, tt.files)
			}
			if s.Timeout != clientflags.DefaultTimeout {
				t.Errorf("timeout %v", s.Timeout)
			}
		})
	}
}
