package v2http

import (
	"errors"
	"net/http"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnkv/cairn/store"
)

// The modules of etcd 0.3/0.4 (reference/etcd-v2.md §5), on the client
// port: /mod/v2/lock/<name> (mod_lock.go), a fair lock whose index is a
// fencing token, and /mod/v2/leader/<name> (mod_leader.go), an election
// on the same queue. Both keep their state in the ordinary key space, as
// in-order keys with a TTL (mod_queue.go), so that it is replicated,
// snapshotted and expired like any key, and readable through /v2/keys:
//
//	/_mod/lock/<name>/<20-digit index>    value = the caller's value, or "-"
//	/_mod/leader/<name>/<20-digit index>  value = the candidate's name
//
// The entry with the lowest index holds the lock (is the leader); its
// index is the fencing token, strictly increasing per name because the
// store index only grows. A request is authorized as a read (GET) or a
// write (any other method) of the backing directory, with the rules of
// /v2/keys (authorizeKey); the module then writes with the member's own
// rights.

// Paths of the modules.
const (
	modPrefix       = "/mod/v2/"
	modLockPrefix   = "/mod/v2/lock"
	modLeaderPrefix = "/mod/v2/leader"
	modKeyPrefix    = "/_mod" // the backing directories live below it
)

// Module names, as the label of metrics and the directory below
// modKeyPrefix.
const (
	modLock   = "lock"
	modLeader = "leader"
)

var lockMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete}
var leaderMethods = []string{http.MethodGet, http.MethodPut, http.MethodDelete}

// serveMod routes /mod/v2/...; it reports false for a path it does not
// serve (the caller answers 404).
func (h *Handler) serveMod(w http.ResponseWriter, r *http.Request) (endpoint string, ok bool) {
	p := r.URL.Path
	switch {
	case p == modLockPrefix || strings.HasPrefix(p, modLockPrefix+"/"):
		h.serveLock(w, r, p[len(modLockPrefix):])
		return "mod_lock", true
	case p == modLeaderPrefix || strings.HasPrefix(p, modLeaderPrefix+"/"):
		h.serveLeader(w, r, p[len(modLeaderPrefix):])
		return "mod_leader", true
	}
	return "", false
}

// modRequest is a parsed module request: the queue it is about.
type modRequest struct {
	module string // modLock or modLeader
	name   string // the clean name, without its leading slash
	dir    string // the backing directory, /_mod/<module>/<name>
}

// parseMod reads the form of r (the body of PUT and POST first, then the
// query, as /v2/keys does) and the name from rest, the URL path after the
// module's prefix. The name is cleaned like a key and may contain '/'; an
// empty one is error 209. The backing directory must fit the key limits
// of Config, with room for the in-order entry below it, and the form's
// valueParam (the value an entry would hold) the value limit.
func (h *Handler) parseMod(w http.ResponseWriter, r *http.Request, module, rest, valueParam string) (modRequest, *store.Error) {
	if r.Body != nil && (r.Method == http.MethodPut || r.Method == http.MethodPost) {
		r.Body = http.MaxBytesReader(unwrap(w), r.Body, h.cfg.MaxRequestBytes)
	}
	if err := r.ParseForm(); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return modRequest{}, requestError(store.EcodeInvalidForm, "request body not received within the server's read timeout: "+err.Error())
		}
		return modRequest{}, requestError(store.EcodeInvalidForm, err.Error())
	}
	name := strings.TrimPrefix(path.Clean("/"+rest), "/")
	if name == "" {
		return modRequest{}, requestError(store.EcodeInvalidField, "a "+module+" name is required: /mod/v2/"+module+"/<name>")
	}
	mr := modRequest{module: module, name: name, dir: modKeyPrefix + "/" + module + "/" + name}
	// The entry adds a level and 21 bytes (/ and 20 digits).
	kr := keyRequest{Request: store.Request{Path: mr.dir + "/00000000000000000000", Value: formValue(r.Form, valueParam)}}
	if e := h.checkWriteLimits(&kr); e != nil {
		return modRequest{}, e
	}
	return mr, nil
}

// authorizeMod checks the client of r against the backing directory of mr:
// a GET needs read on it, any other method write, as /v2/keys would ask
// of a request on that key. A refusal is answered (110, HTTP 401) and
// reported false.
func (h *Handler) authorizeMod(w http.ResponseWriter, r *http.Request, mr *modRequest) bool {
	kr := keyRequest{Request: store.Request{Method: r.Method, Path: mr.dir}}
	pr := h.principal(r)
	if authorizeKey(pr, h.isNode(r), r.Method, &kr) {
		return true
	}
	h.refuseKey(w, r, pr, &kr)
	return false
}

// parseTTL reads the required ttl of an acquire or a renew: a positive
// number of seconds, else error 202 with cause (0.4's "Acquire", "Renew").
func parseTTL(r *http.Request, cause string) (uint64, *store.Error) {
	ttl, err := strconv.ParseUint(formValue(r.Form, "ttl"), 10, 64)
	if err != nil || ttl == 0 {
		return 0, requestError(store.EcodeTTLNaN, cause)
	}
	return ttl, nil
}

// parseTimeout reads the timeout of an acquire: -1 without one (wait for
// ever), 0 (try once), or a number of seconds; anything else is 205.
func parseTimeout(r *http.Request) (int64, *store.Error) {
	s := formValue(r.Form, "timeout")
	if s == "" {
		return -1, nil
	}
	t, err := strconv.ParseInt(s, 10, 64)
	if err != nil || t < 0 || t > maxModTimeout {
		return 0, requestError(store.EcodeTimeoutNaN, "Acquire")
	}
	return t, nil
}

// maxModTimeout bounds timeout= (seconds): a year, far beyond any use,
// and small enough not to overflow a time.Duration.
const maxModTimeout = 365 * 24 * 3600

// writeModText answers a module request with a plain-text body.
func (h *Handler) writeModText(w http.ResponseWriter, r *http.Request, code int, etcdIndex uint64, body string) {
	w.Header().Set("X-Etcd-Index", utoa(etcdIndex))
	writeBody(w, r, code, "text/plain; charset=utf-8", []byte(body))
}

// modMetrics are the modules' Prometheus metrics.
//
//	cairn_mod_acquired_total{module}         acquisitions answered (lock: POST; leader: PUT), renewals by a repeated acquire included
//	cairn_mod_waiters{module}                requests waiting in a queue on this member
//	cairn_mod_abandoned_total{module,reason} waits that ended without the lock: timeout, not_first (timeout=0), disconnect, shutdown, lost
//	cairn_mod_released_total{module}         entries released by DELETE
type modMetrics struct {
	acquired  *prometheus.CounterVec
	waiters   *prometheus.GaugeVec
	abandoned *prometheus.CounterVec
	released  *prometheus.CounterVec
}

func newModMetrics(reg prometheus.Registerer) (*modMetrics, error) {
	m := &modMetrics{
		acquired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "mod", Name: "acquired_total",
			Help: "Locks acquired (module lock) and elections won or renewed (module leader) through this member.",
		}, []string{"module"}),
		waiters: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "cairn", Subsystem: "mod", Name: "waiters",
			Help: "Requests waiting in a lock or election queue on this member.",
		}, []string{"module"}),
		abandoned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "mod", Name: "abandoned_total",
			Help: "Waits that ended without the lock, by reason (timeout, not_first, disconnect, shutdown, lost); the queue entry is deleted.",
		}, []string{"module", "reason"}),
		released: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "mod", Name: "released_total",
			Help: "Queue entries released by DELETE through this member.",
		}, []string{"module"}),
	}
	for _, mod := range []string{modLock, modLeader} {
		m.acquired.WithLabelValues(mod)
		m.waiters.WithLabelValues(mod)
		m.released.WithLabelValues(mod)
	}
	for _, col := range []prometheus.Collector{m.acquired, m.waiters, m.abandoned, m.released} {
		if err := reg.Register(col); err != nil {
			return nil, errors.Join(errors.New("v2http: register module metrics"), err)
		}
	}
	return m, nil
}

// checkModMethod answers 405 (with Allow) for a method not in ms.
func checkModMethod(w http.ResponseWriter, r *http.Request, ms []string) bool {
	if slices.Contains(ms, r.Method) {
		return true
	}
	return allowMethod(w, r.Method, ms...)
}
