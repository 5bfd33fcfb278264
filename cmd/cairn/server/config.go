package server

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/v2http"
	"github.com/cairnkv/cairn/discovery"
	"github.com/cairnkv/cairn/dnsserver"
	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/tlsauth"
	"github.com/cairnkv/cairn/tlsauth/pki"
)

// Config is every setting of a Cairn member. Each field is one key of the
// TOML file (settings: its spelling, flag and help), one flag and one
// environment variable CAIRN_<KEY> (dots as underscores); its default is
// in Default, its check in Config.complete. Load resolves them (flags >
// CAIRN_* > file > defaults).
//
// A Config built in Go starts from Default. New fills in what derives from
// other settings (DataDir, the bind addresses, PeerCRLFile, Peers from
// PeersFile) and checks everything, as Load does.
type Config struct {
	Name          string
	DataDir       string // default "<Name>.cairn"
	Addr          string // advertised client host:port; port 0 advertises the bound port
	BindAddr      string // default: see bindFor
	MetricsAddr   string // plain-HTTP /metrics and /health; empty: off
	CAFile        string
	CertFile      string
	KeyFile       string
	CRLFile       string
	SnapshotCount uint64
	LogStore      string // cluster.LogStoreWAL or cluster.LogStoreBolt; "": the data dir's, wal for a new one
	HistorySize   int
	HistoryBytes  int64

	Peers           []string
	PeersFile       string
	ForceNewCluster bool

	PeerAddr          string // advertised raft host:port; port 0 advertises the bound port
	PeerBindAddr      string // default: see bindFor
	PeerCAFile        string
	PeerCertFile      string
	PeerKeyFile       string
	PeerCRLFile       string // default CRLFile
	PeerAllowedCNs    []string
	HeartbeatInterval time.Duration
	ElectionTimeout   time.Duration

	TLSMinVersion      string
	TLSTrustDomain     string
	TLSManagedCerts    bool
	TLSServingValidity string // Go duration, or a number of days (7d) or years (1y)
	TLSStorageKeyFile  string // seals certmagic's files in the store; empty: plain
	ACMECA             string
	ACMEEmail          string
	ACMEDomains        []string
	ACMECARoot         string
	ACMETLSALPNPort    int

	MaxValueBytes     int64
	MaxRequestBytes   int64
	RateLimit         uint64
	RateBurst         uint64
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	MaxConnections    int
	MaxWatchers       int

	DNSAddr   string // empty: DNS off
	DNSDomain string
	DNSMaxTTL uint64
	DNSNS     []string
	// DNS abuse control and transports (issue 15).
	DNSAllow                []string // CIDRs; empty: every source
	DNSRateLimit            uint64   // UDP responses per second per /24 or /56; 0: off
	DNSRateSlip             int      // every Nth limited response slipped; 0 or less: none
	DNSRateLimitLoopback    bool
	DNSUDPSize              int
	DNSTLSAddr              string // empty: DNS over TLS off
	DNSTLSRequireClientCert bool
	DiscoveryPrefix         string

	DiscoveryURL         string // a discovery token's URL (bootstrap.Token); empty: none
	DiscoverySRV         string // a domain with _cairn-server._tcp SRV records (bootstrap.SRV); empty: none
	DiscoverySRVResolver string // host:port of the DNS server asked for them; empty: the system's

	LogFormat   string
	LogLevel    string
	LogRequests bool
}

// Default is the configuration of a member given no setting at all.
func Default() Config {
	return Config{
		Name:          cluster.DefaultName,
		Addr:          "127.0.0.1:4001",
		SnapshotCount: cluster.DefaultSnapshotCount,
		HistorySize:   store.DefaultHistorySize,
		HistoryBytes:  store.DefaultHistoryBytes,

		PeerAddr:          cluster.DefaultPeerAddr,
		HeartbeatInterval: cluster.DefaultHeartbeatInterval,
		ElectionTimeout:   cluster.DefaultElectionTimeout,

		TLSMinVersion:      "1.3",
		TLSTrustDomain:     tlsauth.DefaultTrustDomain,
		TLSManagedCerts:    true,
		TLSServingValidity: "7d",
		ACMETLSALPNPort:    443,

		MaxValueBytes:     v2http.DefaultMaxValueBytes,
		MaxRequestBytes:   v2http.DefaultMaxRequestBytes,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       DefaultReadTimeout,
		MaxConnections:    DefaultMaxConnections,
		MaxWatchers:       v2http.DefaultMaxWatchers,

		DNSAddr:         "127.0.0.1:8053",
		DNSDomain:       discovery.DefaultDomain,
		DNSMaxTTL:       dnsserver.DefaultMaxTTL,
		DNSRateLimit:    DefaultDNSRateLimit,
		DNSRateSlip:     dnsserver.DefaultRateSlip,
		DNSUDPSize:      dnsserver.DefaultUDPSize,
		DiscoveryPrefix: discovery.DefaultPrefix,

		LogFormat: "text",
		LogLevel:  "info",
	}
}

// setting is one configuration key.
type setting struct {
	key   string // TOML key; the variable is CAIRN_ + upper(key, . → _), or envNames'
	flag  string
	usage string
	field func(*Config) any // a pointer to the field
}

// envNames are the variables not derived from their key: etcd's
// ETCD_DISCOVERY is CAIRN_DISCOVERY, though discovery.url sits in the
// [discovery] table (whose prefix key predates it).
var envNames = map[string]string{"discovery.url": "CAIRN_DISCOVERY"}

// settings is the one list of keys: flags, CAIRN_* variables, the TOML
// file, `cairn config show` and config.example.toml's test derive from it.
// Within a table, keys come in the order config show prints them.
var settings = []setting{
	{"name", "name", "human-readable name of this member", func(c *Config) any { return &c.Name }},
	{"data_dir", "data-dir", "directory for the raft log, snapshots and the development PKI (default <name>.cairn)", func(c *Config) any { return &c.DataDir }},
	{"addr", "addr", "advertised client host:port (HTTPS); port 0 picks a free port", func(c *Config) any { return &c.Addr }},
	{"bind_addr", "bind-addr", "client listen host:port (default: --addr itself when its host is loopback, else its port on all interfaces)", func(c *Config) any { return &c.BindAddr }},
	{"metrics_addr", "metrics-addr", "plain-HTTP host:port serving only /metrics and /health, without client certificates (for Prometheus and probes); empty turns it off", func(c *Config) any { return &c.MetricsAddr }},
	{"ca_file", "ca-file", "CA bundle that client certificates must chain to", func(c *Config) any { return &c.CAFile }},
	{"cert_file", "cert-file", "serving certificate of the client port", func(c *Config) any { return &c.CertFile }},
	{"key_file", "key-file", "private key of --cert-file (mode 0600)", func(c *Config) any { return &c.KeyFile }},
	{"crl_file", "crl-file", "X.509 CRL (PEM or DER, signed by a CA of ca_file): certificates it lists are refused at every handshake; reloaded like the certificates", func(c *Config) any { return &c.CRLFile }},
	{"force_new_cluster", "force-new-cluster", "start this data dir as a new one-member cluster with all its data: recovery after losing a majority for good (docs/operations.md)", func(c *Config) any { return &c.ForceNewCluster }},
	{"snapshot_count", "snapshot-count", "applied raft entries between snapshots", func(c *Config) any { return &c.SnapshotCount }},
	{"log_store", "log-store", "where raft's log is kept: wal or boltdb, fixed when the data dir is created (empty: the data dir's, wal for a new one)", func(c *Config) any { return &c.LogStore }},
	{"history_size", "history-size", "events kept for watches from a past index", func(c *Config) any { return &c.HistorySize }},
	{"history_bytes", "history-bytes", "bytes of the events kept for watches from a past index (keys, values, previous values): past it or history_size the oldest are dropped; every member must use the same", func(c *Config) any { return &c.HistoryBytes }},
	{"peers", "peers", "peer addresses (host:port, comma-separated) of members to join through when the data dir is empty", func(c *Config) any { return &c.Peers }},
	{"peers_file", "peers-file", "file listing peer addresses (comma- or newline-separated), read like --peers", func(c *Config) any { return &c.PeersFile }},
	{"peer.addr", "peer-addr", "advertised peer host:port (raft); port 0 picks a free port", func(c *Config) any { return &c.PeerAddr }},
	{"peer.bind_addr", "peer-bind-addr", "peer listen host:port (default: --peer-addr itself when its host is loopback, else its port on all interfaces)", func(c *Config) any { return &c.PeerBindAddr }},
	{"peer.ca_file", "peer-ca-file", "CA bundle peer certificates must chain to (default: ca_file)", func(c *Config) any { return &c.PeerCAFile }},
	{"peer.cert_file", "peer-cert-file", "node certificate of the peer port, served and presented (default: cert_file)", func(c *Config) any { return &c.PeerCertFile }},
	{"peer.key_file", "peer-key-file", "private key of --peer-cert-file (default: key_file)", func(c *Config) any { return &c.PeerKeyFile }},
	{"peer.crl_file", "peer-crl-file", "X.509 CRL checked on the peer port (default: crl_file)", func(c *Config) any { return &c.PeerCRLFile }},
	{"peer.cert_allowed_cn", "peer-cert-allowed-cn", "comma-separated CNs accepted as nodes on the peer port, for certificates without a SPIFFE URI SAN", func(c *Config) any { return &c.PeerAllowedCNs }},
	{"peer.heartbeat_interval", "peer-heartbeat-interval", "raft heartbeat interval", func(c *Config) any { return &c.HeartbeatInterval }},
	{"peer.election_timeout", "peer-election-timeout", "raft election timeout", func(c *Config) any { return &c.ElectionTimeout }},
	{"tls.min_version", "tls-min-version", "lowest TLS version accepted: 1.3 or 1.2", func(c *Config) any { return &c.TLSMinVersion }},
	{"tls.managed_certs", "tls-managed-certs", "issue short-lived serving certificates for the client port from the cluster CA when this member holds its key (development PKI, or ca_file with ca.key beside it)", func(c *Config) any { return &c.TLSManagedCerts }},
	{"tls.serving_cert_validity", "tls-serving-cert-validity", "lifetime of a serving certificate issued from the cluster CA; renewed when a third is left", func(c *Config) any { return &c.TLSServingValidity }},
	{"tls.storage_key_file", "tls-storage-key-file", "file of 32-byte hex keys (openssl rand -hex 32), the same on every member, that encrypt the managed certificates' private keys in the replicated store; empty: stored plain", func(c *Config) any { return &c.TLSStorageKeyFile }},
	{"tls.trust_domain", "tls-trust-domain", "SPIFFE trust domain of certificate identities", func(c *Config) any { return &c.TLSTrustDomain }},
	{"tls.acme.ca", "tls-acme-ca", "ACME directory URL (default Let's Encrypt's)", func(c *Config) any { return &c.ACMECA }},
	{"tls.acme.email", "tls-acme-email", "contact e-mail of the ACME account", func(c *Config) any { return &c.ACMEEmail }},
	{"tls.acme.domains", "tls-acme-domains", "comma-separated DNS names to get ACME certificates for; empty turns ACME off", func(c *Config) any { return &c.ACMEDomains }},
	{"tls.acme.ca_root", "tls-acme-ca-root", "PEM roots that verify a private ACME server", func(c *Config) any { return &c.ACMECARoot }},
	{"tls.acme.tlsalpn_port", "tls-acme-tlsalpn-port", "port the TLS-ALPN-01 challenge listener binds (forward 443 to it)", func(c *Config) any { return &c.ACMETLSALPNPort }},
	{"limits.max_value_bytes", "max-value-bytes", "largest value accepted", func(c *Config) any { return &c.MaxValueBytes }},
	{"limits.max_request_bytes", "max-request-bytes", "largest request body accepted", func(c *Config) any { return &c.MaxRequestBytes }},
	{"limits.rate", "rate-limit", "requests per second per client identity; 0 turns rate limiting off", func(c *Config) any { return &c.RateLimit }},
	{"limits.rate_burst", "rate-burst", "requests an idle identity may make at once (default: the rate)", func(c *Config) any { return &c.RateBurst }},
	{"limits.read_header_timeout", "read-header-timeout", "time a client has to finish the TLS handshake and send a request's headers (slowloris guard; watches are not affected)", func(c *Config) any { return &c.ReadHeaderTimeout }},
	{"limits.read_timeout", "read-timeout", "time a client has to send a whole request, headers and body; a body still arriving then is cut off and its connection closed (watches, which send no body, stay open)", func(c *Config) any { return &c.ReadTimeout }},
	{"limits.max_connections", "max-connections", "connections open at once on the client port; one more is closed at once and counted in cairn_client_connections_refused_total", func(c *Config) any { return &c.MaxConnections }},
	{"limits.max_watchers", "max-watchers", "watches open at once on this member, all clients together; one more is answered 429 with errorCode 209", func(c *Config) any { return &c.MaxWatchers }},
	{"dns.addr", "dns-addr", "DNS listen host:port, UDP and TCP (port 53 in deployments); empty turns DNS off", func(c *Config) any { return &c.DNSAddr }},
	{"dns.domain", "dns-domain", "DNS zone the registrations are answered in", func(c *Config) any { return &c.DNSDomain }},
	{"dns.max_ttl", "dns-max-ttl", "largest TTL of a DNS answer, in seconds", func(c *Config) any { return &c.DNSMaxTTL }},
	{"dns.ns", "dns-ns", "comma-separated name servers of the zone (host names or IPs) for its NS and SOA records", func(c *Config) any { return &c.DNSNS }},
	{"dns.allow", "dns-allow", "comma-separated source networks (CIDR) whose DNS queries are answered; others are dropped (UDP) or REFUSED (TCP); empty: all", func(c *Config) any { return &c.DNSAllow }},
	{"dns.rate_limit", "dns-rate-limit", "UDP DNS responses per second per source network (IPv4 /24, IPv6 /56) before responses are slipped or dropped; 0 turns the limit off", func(c *Config) any { return &c.DNSRateLimit }},
	{"dns.rate_limit_slip", "dns-rate-limit-slip", "of the UDP responses over the rate limit, every Nth is sent empty with TC (the client retries over TCP) and the others dropped; 0: drop them all", func(c *Config) any { return &c.DNSRateSlip }},
	{"dns.rate_limit_loopback", "dns-rate-limit-loopback", "apply the DNS rate limit to loopback sources too (exempt by default)", func(c *Config) any { return &c.DNSRateLimitLoopback }},
	{"dns.udp_size", "dns-udp-size", "largest UDP DNS response in bytes (512 to 65535), whatever the client advertises", func(c *Config) any { return &c.DNSUDPSize }},
	{"dns.tls_addr", "dns-tls-addr", "DNS over TLS (RFC 7858) listen host:port (853 in deployments), with the client port's serving certificate; empty turns it off", func(c *Config) any { return &c.DNSTLSAddr }},
	{"dns.tls_require_client_cert", "dns-tls-require-client-cert", "DNS over TLS requires a client certificate chained to the CA, as the client port does; with authorization on, such a client sees only the services it may read", func(c *Config) any { return &c.DNSTLSRequireClientCert }},
	{"discovery.prefix", "discovery-prefix", "key directory of the SkyDNS-style registrations", func(c *Config) any { return &c.DiscoveryPrefix }},
	{"discovery.url", "discovery", "URL of a discovery token (cairn discovery new) to bootstrap a new cluster from when the data dir is empty, instead of --peers", func(c *Config) any { return &c.DiscoveryURL }},
	{"discovery.srv", "discovery-srv", "domain whose DNS SRV records _cairn-server._tcp.<domain> name the founding members' peer addresses, to bootstrap a new cluster from when the data dir is empty, instead of --peers", func(c *Config) any { return &c.DiscoverySRV }},
	{"discovery.srv_resolver", "discovery-srv-resolver", "DNS server (host:port) asked for --discovery-srv's records and their targets, e.g. a Cairn member's DNS port (default: the system's resolver)", func(c *Config) any { return &c.DiscoverySRVResolver }},
	{"log.format", "log-format", "log format: text or json", func(c *Config) any { return &c.LogFormat }},
	{"log.level", "log-level", "log level: debug, info, warn or error", func(c *Config) any { return &c.LogLevel }},
	{"log.requests", "log-requests", "log one line per API request (method, path without the query, status, duration, identity)", func(c *Config) any { return &c.LogRequests }},
}

// EnvName is the environment variable of a key: CAIRN_PEER_ADDR for
// peer.addr (CAIRN_DISCOVERY for discovery.url, etcd's ETCD_DISCOVERY).
func EnvName(key string) string {
	if name, ok := envNames[key]; ok {
		return name
	}
	return "CAIRN_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Keys lists every configuration key, in the order of config show.
func Keys() []string {
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = s.key
	}
	return out
}

func lookup(key string) (setting, bool) {
	for _, s := range settings {
		if s.key == key {
			return s, true
		}
	}
	return setting{}, false
}

// complete derives the settings whose default depends on others, then
// checks every setting; each error names its key.
func (c *Config) complete() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.DataDir == "" {
		c.DataDir = c.Name + ".cairn"
	}
	if c.PeerCRLFile == "" {
		c.PeerCRLFile = c.CRLFile
	}
	for _, a := range []struct{ key, val string }{{"addr", c.Addr}, {"peer.addr", c.PeerAddr}} {
		if _, _, err := net.SplitHostPort(a.val); err != nil {
			bad("%s: %q is not host:port", a.key, a.val)
		}
	}
	c.BindAddr = bindFor(c.BindAddr, c.Addr)
	c.PeerBindAddr = bindFor(c.PeerBindAddr, c.PeerAddr)
	for _, a := range []struct{ key, val, off string }{{"metrics_addr", c.MetricsAddr, "metrics"}, {"dns.addr", c.DNSAddr, "DNS"}} {
		if _, _, err := net.SplitHostPort(a.val); err != nil && a.val != "" {
			bad("%s: %q is not host:port (or empty to turn %s off)", a.key, a.val, a.off)
		}
	}
	if c.SnapshotCount == 0 {
		bad("snapshot_count: must be at least 1")
	}
	if c.LogStore != "" && c.LogStore != cluster.LogStoreBolt && c.LogStore != cluster.LogStoreWAL {
		bad("log_store: %q is not one of %s, %s (or empty: the data dir's, wal for a new one)", c.LogStore, cluster.LogStoreWAL, cluster.LogStoreBolt)
	}
	if c.HistorySize < 0 {
		bad("history_size: %d is negative", c.HistorySize)
	}
	if c.HistoryBytes < 0 {
		bad("history_bytes: %d is negative", c.HistoryBytes)
	}
	if c.TLSMinVersion != "1.3" && c.TLSMinVersion != "1.2" {
		bad("tls.min_version: %q is not one of 1.3, 1.2", c.TLSMinVersion)
	}
	if _, err := pki.ParseValidity(c.TLSServingValidity); err != nil {
		bad("tls.serving_cert_validity: %v", err)
	}
	if c.ACMETLSALPNPort < 0 || c.ACMETLSALPNPort > 65535 {
		bad("tls.acme.tlsalpn_port: %d is not a port", c.ACMETLSALPNPort)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log.format: %q is not one of text, json", c.LogFormat)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		bad("log.level: %q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.HeartbeatInterval <= 0 || c.ElectionTimeout < 2*c.HeartbeatInterval {
		bad("peer.election_timeout (%v) must be at least twice peer.heartbeat_interval (%v)", c.ElectionTimeout, c.HeartbeatInterval)
	}
	if c.ReadHeaderTimeout <= 0 {
		bad("limits.read_header_timeout: %v is not positive; it bounds how long a client may take to send a request's headers", c.ReadHeaderTimeout)
	}
	if c.ReadTimeout < c.ReadHeaderTimeout {
		bad("limits.read_timeout: %v is shorter than limits.read_header_timeout (%v); it bounds a whole request, headers and body", c.ReadTimeout, c.ReadHeaderTimeout)
	}
	if c.MaxConnections < 1 || c.MaxWatchers < 1 {
		bad("limits.max_connections (%d) and limits.max_watchers (%d): must be at least 1", c.MaxConnections, c.MaxWatchers)
	}
	if c.MaxValueBytes < 0 || c.MaxRequestBytes < 0 {
		bad("limits.max_value_bytes and limits.max_request_bytes: must not be negative")
	}
	if c.DNSMaxTTL == 0 || c.DNSMaxTTL > 1<<31-1 {
		bad("dns.max_ttl: %d is not between 1 and 2147483647 seconds", c.DNSMaxTTL)
	}
	if _, _, err := net.SplitHostPort(c.DNSTLSAddr); err != nil && c.DNSTLSAddr != "" {
		bad("dns.tls_addr: %q is not host:port (or empty to turn DNS over TLS off)", c.DNSTLSAddr)
	}
	if c.DNSTLSAddr != "" && c.DNSAddr == "" {
		bad("dns.tls_addr needs the DNS responder: set dns.addr too")
	}
	if dc, err := c.dnsConfig(); err != nil {
		bad("dns: %v", err)
	} else if err := dc.Validate(); err != nil {
		bad("dns: %v", err)
	}
	if !strings.HasPrefix(c.DiscoveryPrefix, "/") || strings.Trim(c.DiscoveryPrefix, "/") == "" {
		bad("discovery.prefix: %q is not a key directory like /skydns", c.DiscoveryPrefix)
	}
	if c.CertFile != "" || c.KeyFile != "" {
		if count(c.CAFile != "", c.CertFile != "", c.KeyFile != "") != 3 {
			bad("ca_file, cert_file and key_file go together: set all three; or ca_file alone with its ca.key beside it (the node certificate is then issued from it); or none for the development PKI")
		}
	}
	if count(c.PeerCertFile != "", c.PeerKeyFile != "") == 1 {
		bad("peer.cert_file and peer.key_file go together")
	}
	if c.PeersFile != "" {
		b, err := os.ReadFile(c.PeersFile)
		if err != nil {
			bad("peers_file: %w", err)
		}
		// Deduplicated, so that a completed configuration completes to itself.
		for _, p := range splitList(string(b)) {
			if !slices.Contains(c.Peers, p) {
				c.Peers = append(c.Peers, p)
			}
		}
	}
	c.checkDiscovery(bad)
	for _, p := range c.Peers {
		if _, _, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(p, "https://"), "http://")); err != nil {
			bad("peers: %q is not host:port", p)
		}
	}
	return errors.Join(errs...)
}

// bindFor applies etcd 0.4's rule: an unset bind address listens on all
// interfaces at the advertised port; a host without a port takes that port.
// bindFor derives a listen address from an advertised one. A bare host
// gets the advertised port. Empty means the advertised address itself when
// its host is loopback (a development node given --addr 127.0.0.1:4001 must
// not be reachable from the network), else the advertised port on every
// interface: an advertised name or IP may belong to a NAT or a load balancer
// rather than to an interface of this machine.
func bindFor(bind, advertised string) string {
	host, port, err := net.SplitHostPort(advertised)
	if err != nil {
		return bind
	}
	if bind == "" {
		if isLoopback(host) {
			return advertised
		}
		return net.JoinHostPort("", port)
	}
	if _, _, err := net.SplitHostPort(bind); err != nil {
		return net.JoinHostPort(bind, port)
	}
	return bind
}

// isLoopback reports whether host is "localhost" or a loopback IP.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func count(bs ...bool) int {
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

// DefaultDNSRateLimit is dns.rate_limit's default: high enough for the
// clients of one /24 behind a NAT, low enough that a spoofed flood cannot
// make a member reflect more than about 1.2 MB/s per UDP socket at one
// network.
const DefaultDNSRateLimit = 1000

// dnsConfig is the responder's configuration from the [dns] keys.
func (c Config) dnsConfig() (dnsserver.Config, error) {
	dc := dnsserver.Config{
		Domain: c.DNSDomain, MaxTTL: uint32(min(c.DNSMaxTTL, 1<<31-1)), NS: c.DNSNS,
		UDPSize:           c.DNSUDPSize,
		RateLimit:         int(min(c.DNSRateLimit, 1<<31-1)),
		RateSlip:          c.DNSRateSlip,
		RateLimitLoopback: c.DNSRateLimitLoopback,
	}
	if dc.RateSlip <= 0 {
		dc.RateSlip = -1 // dnsserver: negative drops every limited response
	}
	for _, s := range c.DNSAllow {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			if a, aerr := netip.ParseAddr(strings.TrimSpace(s)); aerr == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			} else {
				return dc, fmt.Errorf("allow: %q is not a network like 10.0.0.0/8 or an address", s)
			}
		}
		dc.Allow = append(dc.Allow, p.Masked())
	}
	return dc, nil
}
