package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Config is the effective configuration of `cairn serve`. Every field is a
// TOML key (the `key` column), a flag and an environment variable CAIRN_<KEY>
// with dots as underscores; flags win over the environment, which wins over
// the file, which wins over the defaults.
type Config struct {
	Name          string
	DataDir       string
	Addr          string
	BindAddr      string
	CAFile        string
	CertFile      string
	KeyFile       string
	CRLFile       string
	SnapshotCount uint64
	HistorySize   int

	Peers           []string
	PeersFile       string
	ForceNewCluster bool

	PeerAddr          string
	PeerBindAddr      string
	PeerCAFile        string
	PeerCertFile      string
	PeerKeyFile       string
	PeerCRLFile       string // crl_file when not set
	PeerAllowedCNs    []string
	HeartbeatInterval time.Duration
	ElectionTimeout   time.Duration

	TLSMinVersion      string
	TLSTrustDomain     string
	TLSManagedCerts    bool
	TLSServingValidity string
	ACMECA             string
	ACMEEmail          string
	ACMEDomains        []string
	ACMECARoot         string
	ACMETLSALPNPort    int

	MaxValueBytes   int64
	MaxRequestBytes int64
	RateLimit       uint64
	RateBurst       uint64

	ReadHeaderTimeout time.Duration

	DNSAddr         string
	DNSDomain       string
	DNSMaxTTL       uint64
	DNSNS           []string
	DiscoveryPrefix string

	LogFormat   string
	LogLevel    string
	LogRequests bool
}

// setting describes one configuration key.
type setting struct {
	key   string // TOML key; env CAIRN_ + upper(key with . → _)
	flag  string
	def   any
	usage string
}

// settings is the one list of configuration keys: flags, env, TOML,
// config.example.toml coverage and `config show` all derive from it.
var settings = []setting{
	{"name", "name", "default", "human-readable name of this member"},
	{"data_dir", "data-dir", "", "directory for the raft log, snapshots and the development PKI (default <name>.cairn)"},
	{"addr", "addr", "127.0.0.1:4001", "advertised client host:port (HTTPS)"},
	{"bind_addr", "bind-addr", "", "client listen host:port (default: the port of --addr on all interfaces)"},
	{"ca_file", "ca-file", "", "CA bundle that client certificates must chain to"},
	{"cert_file", "cert-file", "", "serving certificate of the client port"},
	{"key_file", "key-file", "", "private key of --cert-file (mode 0600)"},
	{"crl_file", "crl-file", "", "X.509 CRL (PEM or DER, signed by a CA of ca_file): certificates it lists are refused at every handshake; reloaded like the certificates"},
	{"force_new_cluster", "force-new-cluster", false, "start this data dir as a new one-member cluster with all its data: recovery after losing a majority for good (docs/operations.md)"},
	{"snapshot_count", "snapshot-count", uint64(10000), "applied raft entries between snapshots"},
	{"history_size", "history-size", 100000, "events kept for watches from a past index"},
	{"peers", "peers", "", "peer addresses (host:port, comma-separated) of members to join through when the data dir is empty"},
	{"peers_file", "peers-file", "", "file listing peer addresses (comma- or newline-separated), read like --peers"},
	{"peer.addr", "peer-addr", "127.0.0.1:7001", "advertised peer host:port (raft)"},
	{"peer.bind_addr", "peer-bind-addr", "", "peer listen host:port (default: the port of --peer-addr on all interfaces)"},
	{"peer.ca_file", "peer-ca-file", "", "CA bundle peer certificates must chain to (default: ca_file)"},
	{"peer.cert_file", "peer-cert-file", "", "node certificate of the peer port, served and presented (default: cert_file)"},
	{"peer.key_file", "peer-key-file", "", "private key of --peer-cert-file (default: key_file)"},
	{"peer.crl_file", "peer-crl-file", "", "X.509 CRL checked on the peer port (default: crl_file)"},
	{"peer.cert_allowed_cn", "peer-cert-allowed-cn", "", "comma-separated CNs accepted as nodes on the peer port, for certificates without a SPIFFE URI SAN"},
	{"peer.heartbeat_interval", "peer-heartbeat-interval", 100 * time.Millisecond, "raft heartbeat interval"},
	{"peer.election_timeout", "peer-election-timeout", 1000 * time.Millisecond, "raft election timeout"},
	{"tls.min_version", "tls-min-version", "1.3", "lowest TLS version accepted: 1.3 or 1.2"},
	{"tls.managed_certs", "tls-managed-certs", true, "issue short-lived serving certificates for the client port from the cluster CA when this member holds its key (development PKI, or ca_file with ca.key beside it)"},
	{"tls.serving_cert_validity", "tls-serving-cert-validity", "7d", "lifetime of a serving certificate issued from the cluster CA; renewed when a third is left"},
	{"tls.acme.ca", "tls-acme-ca", "", "ACME directory URL (default Let's Encrypt's)"},
	{"tls.acme.email", "tls-acme-email", "", "contact e-mail of the ACME account"},
	{"tls.acme.domains", "tls-acme-domains", "", "comma-separated DNS names to get ACME certificates for; empty turns ACME off"},
	{"tls.acme.ca_root", "tls-acme-ca-root", "", "PEM roots that verify a private ACME server"},
	{"tls.acme.tlsalpn_port", "tls-acme-tlsalpn-port", 443, "port the TLS-ALPN-01 challenge listener binds (forward 443 to it)"},
	{"tls.trust_domain", "tls-trust-domain", "cairn.internal", "SPIFFE trust domain of certificate identities"},
	{"limits.max_value_bytes", "max-value-bytes", int64(1 << 20), "largest value accepted"},
	{"limits.max_request_bytes", "max-request-bytes", int64(3 << 19), "largest request body accepted"},
	{"limits.rate", "rate-limit", uint64(0), "requests per second per client identity; 0 turns rate limiting off"},
	{"limits.rate_burst", "rate-burst", uint64(0), "requests an idle identity may make at once (default: the rate)"},
	{"limits.read_header_timeout", "read-header-timeout", 10 * time.Second, "time a client has to finish the TLS handshake and send a request's headers (slowloris guard; watches are not affected)"},
	{"dns.addr", "dns-addr", "127.0.0.1:8053", "DNS listen host:port, UDP and TCP (port 53 in deployments); empty turns DNS off"},
	{"dns.domain", "dns-domain", "cairn.internal.", "DNS zone the registrations are answered in"},
	{"dns.max_ttl", "dns-max-ttl", uint64(30), "largest TTL of a DNS answer, in seconds"},
	{"dns.ns", "dns-ns", "", "comma-separated name servers of the zone (host names or IPs) for its NS and SOA records"},
	{"discovery.prefix", "discovery-prefix", "/skydns", "key directory of the SkyDNS-style registrations"},
	{"log.format", "log-format", "text", "log format: text or json"},
	{"log.level", "log-level", "info", "log level: debug, info, warn or error"},
	{"log.requests", "log-requests", false, "log one line per API request (method, path without the query, status, duration, identity)"},
}

func envName(key string) string {
	return "CAIRN_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// addFlags defines every setting's flag on fs.
func addFlags(fs *pflag.FlagSet) {
	for _, s := range settings {
		usage := s.usage + " (env " + envName(s.key) + ")"
		switch d := s.def.(type) {
		case string:
			fs.String(s.flag, d, usage)
		case int:
			fs.Int(s.flag, d, usage)
		case int64:
			fs.Int64(s.flag, d, usage)
		case uint64:
			fs.Uint64(s.flag, d, usage)
		case time.Duration:
			fs.Duration(s.flag, d, usage)
		case bool:
			fs.Bool(s.flag, d, usage)
		default:
			panic(fmt.Sprintf("setting %s: unsupported default %T", s.key, d))
		}
	}
}

// loadConfig resolves every key: a flag that was set wins, then CAIRN_<KEY>,
// then the TOML file, then the default. configFile may be empty, then
// /etc/cairn/cairn.toml is read when present. It returns where each value came
// from (for `cairn config show`).
func loadConfig(fs *pflag.FlagSet, configFile string, environ []string) (Config, []resolved, error) {
	env := make(map[string]string)
	envKeys := make(map[string]string)
	for _, s := range settings {
		envKeys[envName(s.key)] = s.key
	}
	for _, kv := range environ {
		name, val, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "CAIRN_") || clientEnv[name] {
			continue
		}
		key, ok := envKeys[name]
		if !ok {
			return Config{}, nil, fmt.Errorf("unknown environment variable %s; known: %s", name, strings.Join(sortedKeys(envKeys), ", "))
		}
		env[key] = val
	}
	if configFile == "" {
		if _, err := os.Stat("/etc/cairn/cairn.toml"); err == nil {
			configFile = "/etc/cairn/cairn.toml"
		}
	}
	file := viper.New()
	if configFile != "" {
		file.SetConfigFile(configFile)
		file.SetConfigType("toml")
		if err := file.ReadInConfig(); err != nil {
			return Config{}, nil, fmt.Errorf("read config file %s: %w", configFile, err)
		}
		for _, k := range file.AllKeys() {
			if flagOf(k) == "" {
				return Config{}, nil, fmt.Errorf("config file %s: unknown key %q; config.example.toml lists every key", configFile, k)
			}
		}
	}
	v := viper.New()
	source := make(map[string]string, len(settings))
	var out []resolved
	for _, s := range settings {
		f := fs.Lookup(s.flag)
		switch {
		case f != nil && f.Changed:
			v.Set(s.key, f.Value.String())
			source[s.key] = "flag --" + s.flag
		case env[s.key] != "" || hasKey(env, s.key):
			v.Set(s.key, env[s.key])
			source[s.key] = "env " + envName(s.key)
		case file.IsSet(s.key):
			v.Set(s.key, file.Get(s.key))
			source[s.key] = "file " + configFile
		default:
			v.Set(s.key, s.def)
			source[s.key] = "default"
		}
	}
	for _, s := range settings {
		out = append(out, resolved{key: s.key, value: fmt.Sprint(v.Get(s.key)), source: source[s.key]})
	}
	c, err := decodeConfig(v)
	return c, out, err
}

// resolved is one key's effective value and where it came from.
type resolved struct{ key, value, source string }

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

// clientEnv are variables of the client commands, not of serve.
var clientEnv = map[string]bool{"CAIRN_ENDPOINTS": true, "CAIRN_CERT": true, "CAIRN_KEY": true, "CAIRN_CACERT": true}

func flagOf(key string) string {
	for _, s := range settings {
		if s.key == key {
			return s.flag
		}
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// decodeConfig converts and validates every value, naming the key on error.
func decodeConfig(v *viper.Viper) (Config, error) {
	var errs []error
	str := func(k string) string { return v.GetString(k) }
	dur := func(k string) time.Duration {
		raw := v.Get(k)
		if d, ok := raw.(time.Duration); ok {
			return d
		}
		d, err := time.ParseDuration(fmt.Sprint(raw))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a duration (e.g. 100ms, 1s)", k, raw))
		}
		return d
	}
	num := func(k string) int64 {
		raw := v.Get(k)
		var n int64
		if _, err := fmt.Sscan(fmt.Sprint(raw), &n); err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a non-negative integer", k, raw))
		}
		return n
	}
	boolean := func(k string) bool {
		raw := v.Get(k)
		if b, ok := raw.(bool); ok {
			return b
		}
		b, err := strconv.ParseBool(fmt.Sprint(raw))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not true or false", k, raw))
		}
		return b
	}
	list := func(k string) []string {
		raw := v.Get(k)
		if xs, ok := raw.([]any); ok { // a TOML array
			var out []string
			for _, x := range xs {
				out = append(out, fmt.Sprint(x))
			}
			return out
		}
		return splitList(fmt.Sprint(raw))
	}
	c := Config{
		Name: str("name"), DataDir: str("data_dir"), Addr: str("addr"), BindAddr: str("bind_addr"),
		CAFile: str("ca_file"), CertFile: str("cert_file"), KeyFile: str("key_file"),
		SnapshotCount: uint64(num("snapshot_count")), HistorySize: int(num("history_size")),
		Peers: list("peers"), PeersFile: str("peers_file"), ForceNewCluster: boolean("force_new_cluster"),
		PeerAddr: str("peer.addr"), PeerBindAddr: str("peer.bind_addr"),
		PeerCAFile: str("peer.ca_file"), PeerCertFile: str("peer.cert_file"), PeerKeyFile: str("peer.key_file"),
		PeerAllowedCNs:    list("peer.cert_allowed_cn"),
		HeartbeatInterval: dur("peer.heartbeat_interval"), ElectionTimeout: dur("peer.election_timeout"),
		TLSMinVersion: str("tls.min_version"), TLSTrustDomain: str("tls.trust_domain"),
		TLSManagedCerts: boolean("tls.managed_certs"), TLSServingValidity: str("tls.serving_cert_validity"),
		ACMECA: str("tls.acme.ca"), ACMEEmail: str("tls.acme.email"), ACMEDomains: list("tls.acme.domains"),
		ACMECARoot: str("tls.acme.ca_root"), ACMETLSALPNPort: int(num("tls.acme.tlsalpn_port")),
		MaxValueBytes: num("limits.max_value_bytes"), MaxRequestBytes: num("limits.max_request_bytes"),
		RateLimit: uint64(num("limits.rate")), RateBurst: uint64(num("limits.rate_burst")),
		DNSAddr: str("dns.addr"), DNSDomain: str("dns.domain"), DNSMaxTTL: uint64(num("dns.max_ttl")),
		DNSNS: list("dns.ns"), DiscoveryPrefix: str("discovery.prefix"),
		LogFormat: str("log.format"), LogLevel: str("log.level"), LogRequests: boolean("log.requests"),
	}
	c.CRLFile, c.PeerCRLFile = str("crl_file"), str("peer.crl_file")
	if c.PeerCRLFile == "" {
		c.PeerCRLFile = c.CRLFile
	}
	nerrs := len(errs)
	if c.ReadHeaderTimeout = dur("limits.read_header_timeout"); len(errs) == nerrs && c.ReadHeaderTimeout <= 0 {
		errs = append(errs, fmt.Errorf("limits.read_header_timeout: %v is not positive; it bounds how long a client may take to send a request's headers", c.ReadHeaderTimeout))
	}
	if c.DataDir == "" {
		c.DataDir = c.Name + ".cairn"
	}
	for _, a := range []struct{ key, val string }{{"addr", c.Addr}, {"peer.addr", c.PeerAddr}} {
		if _, _, err := net.SplitHostPort(a.val); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not host:port", a.key, a.val))
		}
	}
	c.BindAddr = bindFor(c.BindAddr, c.Addr)
	c.PeerBindAddr = bindFor(c.PeerBindAddr, c.PeerAddr)
	if c.TLSMinVersion != "1.3" && c.TLSMinVersion != "1.2" {
		errs = append(errs, fmt.Errorf("tls.min_version: %q is not one of 1.3, 1.2", c.TLSMinVersion))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("log.format: %q is not one of text, json", c.LogFormat))
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		errs = append(errs, fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.LogLevel))
	}
	if c.HeartbeatInterval <= 0 || c.ElectionTimeout < 2*c.HeartbeatInterval {
		errs = append(errs, fmt.Errorf("peer.election_timeout (%v) must be at least twice peer.heartbeat_interval (%v)", c.ElectionTimeout, c.HeartbeatInterval))
	}
	if c.DNSAddr != "" {
		if _, _, err := net.SplitHostPort(c.DNSAddr); err != nil {
			errs = append(errs, fmt.Errorf("dns.addr: %q is not host:port (or empty to turn DNS off)", c.DNSAddr))
		}
	}
	if c.DNSMaxTTL == 0 || c.DNSMaxTTL > 1<<31-1 {
		errs = append(errs, fmt.Errorf("dns.max_ttl: %d is not between 1 and 2147483647 seconds", c.DNSMaxTTL))
	}
	if !strings.HasPrefix(c.DiscoveryPrefix, "/") || strings.Trim(c.DiscoveryPrefix, "/") == "" {
		errs = append(errs, fmt.Errorf("discovery.prefix: %q is not a key directory like /skydns", c.DiscoveryPrefix))
	}
	if c.SnapshotCount == 0 {
		errs = append(errs, errors.New("snapshot_count: must be at least 1"))
	}
	if c.CertFile != "" || c.KeyFile != "" {
		if boolCount(c.CAFile != "", c.CertFile != "", c.KeyFile != "") != 3 {
			errs = append(errs, errors.New("ca_file, cert_file and key_file go together: set all three; or ca_file alone with its ca.key beside it (the node certificate is then issued from it); or none for the development PKI"))
		}
	}
	if n := boolCount(c.PeerCertFile != "", c.PeerKeyFile != ""); n == 1 {
		errs = append(errs, errors.New("peer.cert_file and peer.key_file go together"))
	}
	if c.PeersFile != "" {
		b, err := os.ReadFile(c.PeersFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("peers_file: %w", err))
		}
		c.Peers = append(c.Peers, splitList(string(b))...)
	}
	for _, p := range c.Peers {
		if _, _, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(p, "https://"), "http://")); err != nil {
			errs = append(errs, fmt.Errorf("peers: %q is not host:port", p))
		}
	}
	return c, errors.Join(errs...)
}

// bindFor applies etcd 0.4's rule: an unset bind address listens on all
// interfaces at the advertised port; a host without a port takes that port.
func bindFor(bind, advertised string) string {
	_, port, err := net.SplitHostPort(advertised)
	if err != nil {
		return bind
	}
	if bind == "" {
		return net.JoinHostPort("", port)
	}
	if _, _, err := net.SplitHostPort(bind); err != nil {
		return net.JoinHostPort(bind, port)
	}
	return bind
}

func boolCount(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// splitList splits a comma-, space- or newline-separated list.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == ' ' || r == '\t' || r == '\r' })
}
