package dashboard

import (
	"bytes"
	"crypto/tls"
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/discovery"
)

// Prefix is the path the dashboard is served under.
const Prefix = "/mod/dashboard"

// DefaultProbeTimeout bounds the probe of one other member.
const DefaultProbeTimeout = 1500 * time.Millisecond

//go:embed assets
var assets embed.FS

// Cluster is what the dashboard reads of the raft node.
type Cluster interface {
	Status() cluster.Status
	Members() []cluster.Member
}

// Config configures a Handler. Cluster and Whoami are required.
type Config struct {
	Cluster Cluster
	// Discovery is the layout of registrations: the page lists services
	// below Discovery.Dir() and names them in Discovery.Zone().
	Discovery discovery.Config
	// Whoami answers /api/whoami for r: who the client is and, for each
	// key, what it may do. The keys API's authorization computes it.
	Whoami func(r *http.Request, keys []string) Identity
	// MemberTLS is the client TLS configuration (this member's own
	// certificate, the cluster CA) used to probe other members' /health
	// and serving certificates. Nil: other members are not probed, and the
	// page says so.
	MemberTLS func() *tls.Config
	// ProbeTimeout bounds the probe of one member; default
	// DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// Logger receives the handler's logs; nil discards them.
	Logger *slog.Logger
}

// Handler serves the dashboard. It is safe for concurrent use.
type Handler struct {
	cfg    Config
	static http.Handler
}

// New returns a Handler for cfg.
func New(cfg Config) *Handler {
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = DefaultProbeTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic("dashboard: embedded assets: " + err.Error()) // the embed pattern guarantees the directory
	}
	return &Handler{cfg: cfg, static: http.FileServer(http.FS(sub))}
}

// Owns reports whether r is the dashboard's: a path at or below Prefix, or
// a browser's GET of "/" (Accept: text/html), which is sent to the page.
func Owns(r *http.Request) bool {
	p := r.URL.Path
	if p == "/" {
		return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
			strings.Contains(r.Header.Get("Accept"), "text/html")
	}
	return p == Prefix || strings.HasPrefix(p, Prefix+"/")
}

// ServeHTTP implements http.Handler for the requests Owns.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == "/" || p == Prefix {
		http.Redirect(w, r, Prefix+"/", http.StatusFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method Not Allowed: the dashboard is read-only; write with /v2/keys", http.StatusMethodNotAllowed)
		return
	}
	hdr := w.Header()
	// Nothing from another origin: no CDN, no inline script.
	hdr.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	rest := strings.TrimPrefix(p, Prefix)
	switch {
	case rest == "/api/cluster":
		h.serveCluster(w, r)
	case rest == "/api/whoami":
		h.serveWhoami(w, r)
	case rest == "/":
		hdr.Set("Cache-Control", "no-cache")
		h.serveIndex(w, r)
	case strings.HasPrefix(rest, "/static/") && !strings.HasSuffix(rest, "/"):
		hdr.Set("Cache-Control", "no-cache")
		h.serveFile(w, r, rest)
	default:
		http.NotFound(w, r)
	}
}

// serveIndex serves the page itself (FileServer would redirect a request
// for index.html to the directory).
func (h *Handler) serveIndex(w http.ResponseWriter, r *http.Request) {
	b, err := fs.ReadFile(assets, "assets/index.html")
	if err != nil {
		http.Error(w, "dashboard: index.html missing from the binary", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(b))
}

// serveFile serves the embedded asset name (a path below assets/).
func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, name string) {
	r2 := r.Clone(r.Context())
	r2.URL.Path = name
	h.static.ServeHTTP(w, r2)
}
