package server

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/cairnkv/cairn/store"
)

func newFlags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

// emptyFile is a config file without keys, so that tests do not read this
// machine's /etc/cairn/cairn.toml.
func emptyFile(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "empty.toml")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func load(t *testing.T, file string, environ []string, args ...string) (Config, Sources, error) {
	t.Helper()
	if file == "" {
		file = emptyFile(t)
	}
	return Load(newFlags(t, args...), file, environ)
}

// The example file documents exactly the keys of the configuration, each
// with its default.
func TestConfigExampleCoversEveryKey(t *testing.T) {
	path := filepath.Join("..", "..", "..", "config.example.toml")
	v := viper.New()
	v.SetConfigFile(path)
	if err := v.ReadInConfig(); err != nil {
		t.Fatal(err)
	}
	inFile := map[string]bool{}
	for _, k := range v.AllKeys() {
		inFile[k] = true
	}
	for _, k := range Keys() {
		if !inFile[k] {
			t.Errorf("config.example.toml lacks %q", k)
		}
		delete(inFile, k)
	}
	for k := range inFile {
		t.Errorf("config.example.toml has %q, which is not a configuration key", k)
	}
	got, _, err := load(t, path, nil)
	if err != nil {
		t.Fatalf("loading config.example.toml: %v", err)
	}
	want, _, err := load(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config.example.toml gives\n%+v\nthe defaults are\n%+v", got, want)
	}
}

// Every setting has a flag, a field of a type AddFlags knows, and a
// distinct key and flag.
func TestSettingsTable(t *testing.T) {
	keys, flags := map[string]bool{}, map[string]bool{}
	fields := map[any]bool{}
	var c Config
	for _, s := range settings {
		if keys[s.key] || flags[s.flag] {
			t.Errorf("key %q or flag %q twice", s.key, s.flag)
		}
		keys[s.key], flags[s.flag] = true, true
		fields[s.field(&c)] = true
	}
	if n := reflect.TypeFor[Config]().NumField(); len(fields) != n {
		t.Errorf("%d settings point to %d distinct fields; Config has %d", len(settings), len(fields), n)
	}
	newFlags(t) // panics on an unknown field type
}

func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(file, []byte("name = \"from-file\"\n[peer]\nelection_timeout = \"3s\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc string
		args []string
		env  string
		file string
		want string
		src  string
	}{
		{"default", nil, "", "", "default", "default"},
		{"file over default", nil, "", file, "from-file", "file " + file},
		{"env over file", nil, "from-env", file, "from-env", "env CAIRN_NAME"},
		{"flag over env", []string{"--name", "from-flag"}, "from-env", file, "from-flag", "flag --name"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var environ []string
			if tc.env != "" {
				environ = []string{"CAIRN_NAME=" + tc.env}
			}
			c, src, err := load(t, tc.file, environ, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if c.Name != tc.want || src["name"] != tc.src {
				t.Fatalf("name = %q from %q, want %q from %q", c.Name, src["name"], tc.want, tc.src)
			}
		})
	}
	c, _, err := load(t, file, nil)
	if err != nil || c.ElectionTimeout != 3*time.Second {
		t.Fatalf("nested duration from file: %v %v", c.ElectionTimeout, err)
	}
	if c.DataDir != "from-file.cairn" || c.BindAddr != "127.0.0.1:4001" || c.PeerBindAddr != "127.0.0.1:7001" {
		t.Fatalf("derived defaults: %+v", c)
	}
	// The environment over a table of the file keeps the table's other keys.
	both := filepath.Join(t.TempDir(), "both.toml")
	os.WriteFile(both, []byte("[peer]\nheartbeat_interval = \"200ms\"\nelection_timeout = \"3s\"\n[dns]\nns = [\"a\"]\n"), 0o600)
	c, src, err := load(t, both, []string{"CAIRN_PEER_ELECTION_TIMEOUT=5s", "CAIRN_DNS_NS=b,c"})
	if err != nil || c.ElectionTimeout != 5*time.Second || c.HeartbeatInterval != 200*time.Millisecond ||
		!reflect.DeepEqual(c.DNSNS, []string{"b", "c"}) || src["peer.heartbeat_interval"] != "file "+both {
		t.Fatalf("env over a table: %v %v %q %v, %v", c.ElectionTimeout, c.HeartbeatInterval, c.DNSNS, src, err)
	}
	if c, _, err := load(t, "", []string{"CAIRN_DNS_ADDR="}); err != nil || c.DNSAddr != "" {
		t.Fatalf("an empty CAIRN_DNS_ADDR turns DNS off: %q, %v", c.DNSAddr, err)
	}
}

func TestConfigLists(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(file, []byte("peers = [\"a:1\", \"b:2\"]\n[dns]\nns = \"ns1, ns2\"\n"), 0o600)
	c, _, err := load(t, file, []string{"CAIRN_PEER_CERT_ALLOWED_CN=n1 n2,n3"}, "--tls-acme-domains", "x.example", "--tls-acme-domains", "y.example,z.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct {
		key       string
		got, want []string
	}{
		{"peers", c.Peers, []string{"a:1", "b:2"}},
		{"dns.ns", c.DNSNS, []string{"ns1", "ns2"}},
		{"peer.cert_allowed_cn", c.PeerAllowedCNs, []string{"n1", "n2", "n3"}},
		{"tls.acme.domains", c.ACMEDomains, []string{"x.example", "y.example", "z.example"}},
	} {
		if !reflect.DeepEqual(l.got, l.want) {
			t.Errorf("%s = %q, want %q", l.key, l.got, l.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		f := filepath.Join(dir, name)
		os.WriteFile(f, []byte(body), 0o600)
		return f
	}
	bad := write("bad.toml", "nmae = \"x\"\n")
	badTable := write("table.toml", "[peer]\naddress = \"x:1\"\n")
	intDuration := write("int.toml", "[peer]\nelection_timeout = 1000\n")
	negative := write("neg.toml", "snapshot_count = -1\n")
	for _, tc := range []struct {
		desc string
		args []string
		env  [2]string
		file string
		want string
	}{
		{"unknown file key", nil, [2]string{}, bad, `unknown key "nmae"`},
		{"unknown key in a table", nil, [2]string{}, badTable, `unknown key "peer.address"`},
		{"duration as a number", nil, [2]string{}, intDuration, `peer.election_timeout: 1000 is not a duration: write it as a string`},
		{"negative count", nil, [2]string{}, negative, `snapshot_count: "-1" is not a non-negative integer`},
		{"unknown env", nil, [2]string{"CAIRN_NAEM", "x"}, "", "unknown environment variable CAIRN_NAEM"},
		{"bad duration", nil, [2]string{"CAIRN_PEER_ELECTION_TIMEOUT", "soon"}, "", `peer.election_timeout: "soon" is not a duration`},
		{"bad number", nil, [2]string{"CAIRN_HISTORY_SIZE", "many"}, "", `history_size: "many" is not a non-negative integer`},
		{"bad history bytes", nil, [2]string{"CAIRN_HISTORY_BYTES", "-1"}, "", `history_bytes: "-1" is not a non-negative integer`},
		{"bad addr", []string{"--addr", "nohost"}, [2]string{}, "", `addr: "nohost" is not host:port`},
		{"bad metrics addr", []string{"--metrics-addr", "9090"}, [2]string{}, "", `metrics_addr: "9090" is not host:port`},
		{"bad tls", []string{"--tls-min-version", "1.1"}, [2]string{}, "", "tls.min_version"},
		{"bad validity", []string{"--tls-serving-cert-validity", "soon"}, [2]string{}, "", "tls.serving_cert_validity"},
		{"bad log", []string{"--log-format", "xml"}, [2]string{}, "", "log.format"},
		{"partial tls files", []string{"--ca-file", "x", "--cert-file", "y"}, [2]string{}, "", "go together"},
		{"partial peer files", []string{"--peer-key-file", "y"}, [2]string{}, "", "peer.cert_file and peer.key_file go together"},
		{"bad peer", []string{"--peers", "a:1,nohost"}, [2]string{}, "", `peers: "nohost" is not host:port`},
		{"missing peers file", []string{"--peers-file", "/nonexistent"}, [2]string{}, "", "peers_file"},
		{"bad bool", nil, [2]string{"CAIRN_FORCE_NEW_CLUSTER", "maybe"}, "", `force_new_cluster: "maybe" is not true or false`},
		{"bad dns addr", []string{"--dns-addr", "53"}, [2]string{}, "", "dns.addr"},
		{"bad max ttl", []string{"--dns-max-ttl", "0"}, [2]string{}, "", "dns.max_ttl"},
		{"bad prefix", []string{"--discovery-prefix", "skydns"}, [2]string{}, "", "discovery.prefix"},
		{"discovery and peers", []string{"--peers", "a:1", "--discovery", "https://d:4001/v2/keys/_discovery/t"}, [2]string{}, "", "peers (--peers, --peers-file) and discovery.url (--discovery) each say how to find the other members"},
		{"discovery env and srv", []string{"--discovery-srv", "example.com"}, [2]string{"CAIRN_DISCOVERY", "https://d:4001/v2/keys/_discovery/t"}, "", "discovery.url (--discovery) and discovery.srv (--discovery-srv) each say"},
		{"bad discovery url", []string{"--discovery", "http://d:4001/_discovery/t"}, [2]string{}, "", "discovery.url: discovery URL"},
		{"resolver without srv", []string{"--discovery-srv-resolver", "127.0.0.1:8053"}, [2]string{}, "", "discovery.srv_resolver is set without discovery.srv"},
		{"bad resolver", []string{"--discovery-srv", "example.com", "--discovery-srv-resolver", "8053"}, [2]string{}, "", `discovery.srv_resolver: "8053" is not host:port`},
		{"missing file", nil, [2]string{}, "/nonexistent.toml", "read config file"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var environ []string
			if tc.env[0] != "" {
				environ = []string{tc.env[0] + "=" + tc.env[1]}
			}
			_, _, err := load(t, tc.file, environ, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// The client commands' variables are not settings of a member, and not
// errors either.
func TestConfigClientEnv(t *testing.T) {
	environ := []string{"CAIRN_ENDPOINTS=x", "CAIRN_CERT=x", "CAIRN_KEY=x", "CAIRN_CACERT=x", "HOME=/"}
	if _, _, err := load(t, "", environ); err != nil {
		t.Fatal(err)
	}
}

// What config show prints loads back into the same configuration, from
// every source and with every kind of value.
func TestConfigShowLoadsBack(t *testing.T) {
	dir := t.TempDir()
	peers := filepath.Join(dir, "peers")
	os.WriteFile(peers, []byte("c:3\nd:4\n"), 0o600)
	file := filepath.Join(dir, "c.toml")
	os.WriteFile(file, []byte(`name = "n1"
peers = ["a:1", "b:2"]
[peer]
election_timeout = "3s"
[tls.acme]
domains = ["x.example", "y.example"]
tlsalpn_port = 8443
[log]
requests = true
`), 0o600)
	environ := []string{"CAIRN_DNS_NS=ns1.example,ns2.example", "CAIRN_LIMITS_RATE=100", `CAIRN_DISCOVERY_PREFIX=/sky"dns\`}
	want, src, err := load(t, file, environ, "--peers-file", peers, "--metrics-addr", "127.0.0.1:9090",
		"--max-value-bytes", "2048", "--tls-managed-certs=false", "--dns-addr", "")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WriteTOML(&out, want, src); err != nil {
		t.Fatal(err)
	}
	compact := strings.Join(strings.Fields(out.String()), " ")
	for _, line := range []string{
		`peers = ["a:1", "b:2", "c:3", "d:4"] # file ` + file,
		"[peer]",
		`election_timeout = "3s" # file ` + file,
		"[tls.acme]",
		`tlsalpn_port = 8443 # file ` + file,
		`managed_certs = false # flag --tls-managed-certs`,
		`rate = 100 # env CAIRN_LIMITS_RATE`,
		`prefix = "/sky\"dns\\" # env CAIRN_DISCOVERY_PREFIX`,
	} {
		if !strings.Contains(compact, line) {
			t.Errorf("config show lacks %q:\n%s", line, out.String())
		}
	}
	shown := filepath.Join(dir, "shown.toml")
	if err := os.WriteFile(shown, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	got, _, err := Load(nil, shown, nil)
	if err != nil {
		t.Fatalf("loading config show's output: %v\n%s", err, out.String())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config show's output loads as\n%+v\nwant\n%+v\n%s", got, want, out.String())
	}
}

// history_bytes defaults to the store's bound and reaches Config from a
// flag or the environment.
func TestConfigHistoryBytes(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		environ []string
		want    int64
	}{
		{nil, nil, store.DefaultHistoryBytes},
		{[]string{"--history-bytes", "1048576"}, nil, 1 << 20},
		{nil, []string{"CAIRN_HISTORY_BYTES=2097152"}, 2 << 20},
	} {
		c, _, err := load(t, "", tc.environ, tc.args...)
		if err != nil || c.HistoryBytes != tc.want {
			t.Errorf("load(%q, %q): history_bytes %d, %v; want %d", tc.args, tc.environ, c.HistoryBytes, err, tc.want)
		}
	}
}

// An empty bind address listens where a loopback address is advertised,
// and on every interface for any other advertised host (a name or an IP
// that may be a NAT's).
func TestBindFor(t *testing.T) {
	for _, tc := range []struct{ bind, advertised, want string }{
		{"", "127.0.0.1:4001", "127.0.0.1:4001"},
		{"", "127.0.0.2:4001", "127.0.0.2:4001"},
		{"", "[::1]:4001", "[::1]:4001"},
		{"", "localhost:4001", "localhost:4001"},
		{"", "LOCALHOST:4001", "LOCALHOST:4001"},
		{"", "n1:4001", ":4001"},
		{"", "10.0.0.1:4001", ":4001"},
		{"", "[2001:db8::1]:4001", ":4001"},
		{"0.0.0.0", "127.0.0.1:4001", "0.0.0.0:4001"},
		{":5001", "127.0.0.1:4001", ":5001"},
		{"10.0.0.1:5001", "n1:4001", "10.0.0.1:5001"},
	} {
		if got := bindFor(tc.bind, tc.advertised); got != tc.want {
			t.Errorf("bindFor(%q, %q) = %q, want %q", tc.bind, tc.advertised, got, tc.want)
		}
	}
}

// The [dns] keys of issue 15: abuse control and DoT.
func TestConfigDNSAccess(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(file, []byte("[dns]\nallow = [\"10.0.0.0/8\", \"192.0.2.7\"]\nrate_limit = 50\nrate_limit_slip = 0\nudp_size = 4096\ntls_addr = \"127.0.0.1:8853\"\n"), 0o600)
	c, _, err := load(t, file, nil, "--dns-tls-require-client-cert", "--dns-rate-limit-loopback")
	if err != nil {
		t.Fatal(err)
	}
	dc, err := c.dnsConfig()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(dc.Allow) != "[10.0.0.0/8 192.0.2.7/32]" || dc.RateLimit != 50 || dc.RateSlip != -1 || !dc.RateLimitLoopback ||
		dc.UDPSize != 4096 || c.DNSTLSAddr != "127.0.0.1:8853" || !c.DNSTLSRequireClientCert {
		t.Errorf("dns config %+v from %+v", dc, c)
	}
	if d := Default(); d.DNSRateLimit != DefaultDNSRateLimit || d.DNSRateSlip != 2 || d.DNSTLSAddr != "" {
		t.Errorf("defaults %+v", d)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--dns-allow", "10.0.0.0/33"}, "dns: allow"},
		{[]string{"--dns-udp-size", "100"}, "udp size"},
		{[]string{"--dns-tls-addr", "853"}, "dns.tls_addr"},
		{[]string{"--dns-addr", "", "--dns-tls-addr", "127.0.0.1:853"}, "needs the DNS responder"},
	} {
		if _, _, err := load(t, "", nil, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}
