package v2http

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/tlsauth"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Config.
const (
	DefaultVersion              = "2.3.8"
	DefaultMaxValueBytes        = 1 << 20 // 1 MiB
	DefaultMaxRequestBytes      = 3 << 19 // 1.5 MiB
	DefaultMaxKeyBytes          = 4096    // bytes of the cleaned key path
	DefaultMaxKeyDepth          = 64      // path segments
	DefaultMaxWatchersPerClient = 1000    // open watch requests
	DefaultMaxWatchers          = 100000  // open watch requests, all clients
	DefaultTrustDomain          = tlsauth.DefaultTrustDomain
)

// healthTimeout bounds the read barrier of /health: a node that cannot
// confirm a read within it is not healthy, whatever RequestTimeout is.
const healthTimeout = time.Second

// defaultRequestTimeout is Config.RequestTimeout's default for c.
func defaultRequestTimeout(c Cluster) time.Duration {
	if t, ok := c.(interface{ RequestTimeout() time.Duration }); ok && t.RequestTimeout() > 0 {
		return t.RequestTimeout()
	}
	return cluster.RequestTimeoutFor(cluster.DefaultElectionTimeout)
}

// Config configures a Handler. Only Cluster is required; every zero value
// means the default.
type Config struct {
	Cluster Cluster
	// Logger receives the handler's logs; nil discards them.
	Logger *slog.Logger
	// Registry receives the handler's metrics; nil means a private registry.
	Registry prometheus.Registerer
	// Gatherer is what /metrics serves. Nil means Registry when it is also a
	// Gatherer (as *prometheus.Registry is), else New fails.
	Gatherer prometheus.Gatherer
	// Version is the etcd version /version reports (etcd clients parse it as
	// semver and gate features on it); default DefaultVersion. etcdcluster
	// is its major.minor.0.
	Version string
	// CairnVersion is Cairn's own version, sent in the X-Cairn-Version
	// header of /version; default the main module's build version.
	CairnVersion string
	// MaxValueBytes bounds a written value; default DefaultMaxValueBytes.
	MaxValueBytes int64
	// MaxRequestBytes bounds a request body; default DefaultMaxRequestBytes.
	MaxRequestBytes int64
	// MaxKeyBytes and MaxKeyDepth bound the key of a PUT or POST; defaults
	// DefaultMaxKeyBytes and DefaultMaxKeyDepth.
	MaxKeyBytes int
	MaxKeyDepth int
	// MaxWatchersPerClient bounds the open watch requests of one client (as
	// named by ClientID); default DefaultMaxWatchersPerClient.
	MaxWatchersPerClient int
	// MaxWatchers bounds the open watch requests of all clients together;
	// default DefaultMaxWatchers. A watch beyond it, like one beyond
	// MaxWatchersPerClient, is answered 429 with errorCode 209.
	MaxWatchers int
	// ClientID names the client of a request for per-client limits; default
	// DefaultClientID.
	ClientID func(r *http.Request) string
	// RequestTimeout bounds Propose and ReadBarrier. The default is the
	// Cluster's own bound when it has one (a RequestTimeout() method, as
	// cluster.Node has), else cluster.RequestTimeoutFor of the default
	// election timeout: one default, owned by package cluster. Watches have
	// no timeout.
	RequestTimeout time.Duration
	// Now is the clock for the ttl of read nodes; default time.Now. Writes
	// take the leader's clock, never this one.
	Now func() time.Time
	// ValidateWrite, when set, checks every PUT and POST before it is
	// proposed, after the size limits (discovery.Config.Validate checks the
	// records under the discovery prefix). key is the clean key; for a POST
	// it is the directory the in-order key is created in. Refreshes
	// (refresh=true, which keep the stored value) are not checked. An error
	// is answered as etcd error 209 "Invalid field" (HTTP 400, index 0) with
	// the error text as cause, and nothing is stored.
	ValidateWrite func(key, value string, dir bool) error
	// TrustDomain is the SPIFFE trust domain of client certificate
	// identities ([tls] trust_domain), as tlsauth.PeerIdentity reads them
	// for authorization and rate limits; default DefaultTrustDomain.
	TrustDomain string
	// AllowedNodeCNs are the CNs of certificates without a SPIFFE URI SAN
	// that are nodes (--peer-cert-allowed-cn, see tlsauth.IsNode). Node
	// identities are root under authorization.
	AllowedNodeCNs []string
	// RateLimit limits requests per client identity; the zero value (the
	// default) turns it off.
	RateLimit RateLimit
	// LogRequests logs one line per request (method, path without the
	// query, status, duration, identity).
	LogRequests bool
	// Dashboard configures /mod/dashboard/ (dashboard.go).
	Dashboard DashboardConfig
}

// Handler serves the etcd v2 HTTP API. It is safe for concurrent use.
type Handler struct {
	cfg     Config
	cluster Cluster
	admin   MemberAdmin // nil: membership changes are not supported
	// caughtUp, when the Cluster has it, says whether a restarted member
	// has applied again what it served before it stopped (stale reads are
	// refused until then).
	caughtUp interface{ CaughtUp() bool }
	log      *slog.Logger
	metrics  *metrics
	watchers *watchLimiter
	promh    http.Handler
	policy   *policyCache // the authorization policy of the local replica
	limiter  *rateLimiter // nil: no rate limit

	modMetrics *modMetrics

	done      chan struct{} // closed by Close: ends every watch
	closeOnce sync.Once
}

// New returns a Handler for cfg. It registers the handler's metrics with
// cfg.Registry and fails if they are already registered there.
func New(cfg Config) (*Handler, error) {
	if cfg.Cluster == nil {
		return nil, errors.New("v2http: Config.Cluster is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if cfg.CairnVersion == "" {
		cfg.CairnVersion = buildVersion()
	}
	if cfg.MaxValueBytes <= 0 {
		cfg.MaxValueBytes = DefaultMaxValueBytes
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.MaxKeyBytes <= 0 {
		cfg.MaxKeyBytes = DefaultMaxKeyBytes
	}
	if cfg.MaxKeyDepth <= 0 {
		cfg.MaxKeyDepth = DefaultMaxKeyDepth
	}
	if cfg.MaxWatchersPerClient <= 0 {
		cfg.MaxWatchersPerClient = DefaultMaxWatchersPerClient
	}
	if cfg.MaxWatchers <= 0 {
		cfg.MaxWatchers = DefaultMaxWatchers
	}
	if cfg.ClientID == nil {
		cfg.ClientID = DefaultClientID
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = defaultRequestTimeout(cfg.Cluster)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TrustDomain == "" {
		cfg.TrustDomain = DefaultTrustDomain
	}
	// IdentityFromCert checks the trust domain before the certificate.
	if _, err := tlsauth.IdentityFromCert(nil, cfg.TrustDomain); errors.Is(err, tlsauth.ErrInvalidTrustDomain) {
		return nil, fmt.Errorf("v2http: Config.TrustDomain: %w", err)
	}
	cfg.AllowedNodeCNs = slices.Clone(cfg.AllowedNodeCNs)
	if cfg.Registry == nil {
		reg := prometheus.NewRegistry()
		cfg.Registry = reg
		if cfg.Gatherer == nil {
			cfg.Gatherer = reg
		}
	}
	if cfg.Gatherer == nil {
		g, ok := cfg.Registry.(prometheus.Gatherer)
		if !ok {
			return nil, errors.New("v2http: Config.Gatherer is required when Config.Registry is not a prometheus.Gatherer")
		}
		cfg.Gatherer = g
	}
	h := &Handler{
		cfg:      cfg,
		cluster:  cfg.Cluster,
		log:      cfg.Logger,
		watchers: newWatchLimiter(cfg.MaxWatchersPerClient, cfg.MaxWatchers),
		policy:   &policyCache{log: cfg.Logger},
		limiter:  newRateLimiter(cfg.RateLimit),
		done:     make(chan struct{}),
	}
	h.admin, _ = cfg.Cluster.(MemberAdmin)
	h.caughtUp, _ = cfg.Cluster.(interface{ CaughtUp() bool })
	m, err := newMetrics(cfg.Registry, cfg.Cluster)
	if err != nil {
		return nil, err
	}
	h.metrics = m
	if h.modMetrics, err = newModMetrics(cfg.Registry); err != nil {
		return nil, err
	}
	h.promh = newMetricsHandler(cfg.Gatherer, cfg.Logger)
	return h, nil
}

// Close ends every open watch (its client sees the response end, as when a
// member stops, and resumes elsewhere) and makes later watches end right
// after their headers. Everything else is still served. Wire it to
// http.Server.RegisterOnShutdown so that Shutdown does not wait for watches.
func (h *Handler) Close() error {
	h.closeOnce.Do(func() { close(h.done) })
	return nil
}

// Paths served.
const (
	keysPrefix     = "/v2/keys"
	membersPrefix  = "/v2/members"
	machinesPath   = "/v2/machines"
	statsSelfPath  = "/v2/stats/self"
	statsStorePath = "/v2/stats/store"
	statsLeadPath  = "/v2/stats/leader"
	versionPath    = "/version"
	healthPath     = "/health"
	metricsPath    = "/metrics"
)

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	endpoint := h.route(sw, r)
	elapsed := time.Since(start)
	h.metrics.observe(endpoint, r.Method, sw, elapsed)
	if h.cfg.LogRequests {
		h.logRequest(r, sw, endpoint, elapsed)
	}
}

// logRequest writes one line per request. The query string is left out: it
// may carry a value, and no value is ever logged.
func (h *Handler) logRequest(r *http.Request, sw *statusWriter, endpoint string, elapsed time.Duration) {
	ident := ""
	if id, ok, err := h.identityOf(r); ok && err == nil {
		ident = id.String()
	}
	code := sw.code
	if code == 0 {
		code = http.StatusOK
	}
	h.log.Info("request", "method", r.Method, "path", r.URL.Path, "endpoint", endpoint,
		"code", code, "duration", elapsed, "identity", ident, "remote", r.RemoteAddr)
}

// route dispatches r and returns the endpoint label for metrics.
func (h *Handler) route(w *statusWriter, r *http.Request) string {
	p := r.URL.Path
	if r.Method != http.MethodConnect {
		if cp := cleanPath(p); cp != p {
			redirectClean(w, r, cp)
			return "redirect"
		}
	}
	if h.limiter != nil && !h.allowRequest(w, r) {
		return "ratelimited"
	}
	switch p {
	case keysPrefix:
		h.serveKeys(w, r)
		return "keys"
	case membersPrefix:
		h.serveMembers(w, r)
		return "members"
	case machinesPath:
		h.serveMachines(w, r)
		return "machines"
	case statsSelfPath:
		h.serveStatsSelf(w, r)
		return "stats"
	case statsStorePath:
		h.serveStatsStore(w, r)
		return "stats"
	case statsLeadPath:
		h.serveStatsLeader(w, r)
		return "stats"
	case versionPath:
		h.serveVersion(w, r)
		return "version"
	case healthPath:
		h.serveHealth(w, r)
		return "health"
	case metricsPath:
		h.promh.ServeHTTP(w, r)
		return "metrics"
	case snapshotPath:
		return h.serveSnapshot(w, r)
	case transferPath:
		h.serveTransfer(w, r)
		return "members"
	}
	switch {
	case strings.HasPrefix(p, keysPrefix+"/"):
		h.serveKeys(w, r)
		return "keys"
	case strings.HasPrefix(p, membersPrefix+"/"):
		h.serveMembers(w, r)
		return "members"
	case strings.HasPrefix(p, authPrefix+"/"):
		if h.serveAuth(w, r) {
			return "auth"
		}
	case strings.HasPrefix(p, debugPrefix) || p+"/" == debugPrefix:
		h.serveDebug(w, r)
		return "debug"
	case strings.HasPrefix(p, modPrefix):
		if endpoint, ok := h.serveMod(w, r); ok {
			return endpoint
		}
	}
	if h.serveDashboard(w, r) {
		return "dashboard"
	}
	http.NotFound(w, r)
	return "notfound"
}

// redirectClean answers a request for a non-canonical path (//, /./, /../)
// with a redirect to the cleaned path, as etcd's router (Go's ServeMux of
// its time) did before any handler ran.
//
// Deviation: etcd answers 301 for every method, and Go clients follow a 301
// for PUT, POST and DELETE as a GET, silently turning a write into a read
// (reference §1.2.1, §3.17). GET and HEAD get etcd's 301; other methods get
// 307, which clients follow with the same method and body (Go 1.26's own
// ServeMux now answers 307 for every method).
func redirectClean(w http.ResponseWriter, r *http.Request, cleaned string) {
	code := http.StatusMovedPermanently
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		code = http.StatusTemporaryRedirect
	}
	u := url.URL{Path: cleaned, RawQuery: r.URL.RawQuery}
	http.Redirect(w, r, u.String(), code)
}

// cleanPath is net/http's: the canonical form of p, trailing slash kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		if len(p) == len(np)+1 && strings.HasPrefix(p, np) {
			np = p
		} else {
			np += "/"
		}
	}
	return np
}

// buildVersion is the main module's version from the build info.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
