package v2http

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the handler's Prometheus metrics.
//
//	cairn_http_requests_total{endpoint,method,code}          every request
//	cairn_http_request_duration_seconds{endpoint,method,code} latency, watches excluded
//	cairn_http_watches                                        open watch requests
//	cairn_http_watch_resumes_total                            watches re-registered after overflow or restore
//	cairn_store_index                                         the local store index (X-Etcd-Index)
//	cairn_store_watchers                                      watchers registered in the local store
//	cairn_store_ttl_keys                                      keys with a TTL in the local store (live registrations)
//	cairn_store_expired_keys_total                            keys the local store expired
//
// endpoint is one of keys, watch, members, machines, stats, version, health,
// metrics, snapshot, auth, dashboard, debug (/debug/pprof/), ratelimited,
// mod_lock, mod_leader, redirect, notfound (a leader observer,
// GET /mod/v2/leader/<name>?wait=true, is a watch); method is the request method when it is one
// HTTP defines, else "other", so that labels stay bounded.
type metrics struct {
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	watches      prometheus.Gauge
	watchResumes prometheus.Counter

	// series caches each label set's counter and histogram: looking
	// them up by label values hashes the labels on every request (2% of
	// a member's CPU serving local reads).
	series sync.Map // seriesKey -> series
}

type seriesKey struct {
	endpoint, method string
	code             int
}

type series struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

func newMetrics(reg prometheus.Registerer, c Cluster) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests of the client API by endpoint, method and status code.",
		}, []string{"endpoint", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "cairn", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to serve a client API request, watches excluded (their duration is the client's choice).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"endpoint", "method", "code"}),
		watches: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "cairn", Subsystem: "http", Name: "watches",
			Help: "Watch requests open on the client API.",
		}),
		watchResumes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "http", Name: "watch_resumes_total",
			Help: "Watches re-registered from history after the store dropped their watcher (overflow or snapshot restore).",
		}),
	}
	index := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "cairn", Subsystem: "store", Name: "index",
		Help: "The local store's etcd index (X-Etcd-Index).",
	}, func() float64 { return float64(c.Store().Index()) })
	watchers := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "cairn", Subsystem: "store", Name: "watchers",
		Help: "Watchers registered in the local store.",
	}, func() float64 { return float64(c.Store().WatcherCount()) })
	ttlKeys := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "cairn", Subsystem: "store", Name: "ttl_keys",
		Help: "Keys and directories with a TTL in the local store: the live registrations, which heartbeats keep alive.",
	}, func() float64 { return float64(c.Store().TTLKeys()) })
	expired := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "cairn", Subsystem: "store", Name: "expired_keys_total",
		Help: "Keys and directories the local store expired (expireCount of /v2/stats/store).",
	}, func() float64 { return float64(c.Store().Stats().ExpireCount) })
	for _, col := range []prometheus.Collector{m.requests, m.latency, m.watches, m.watchResumes, index, watchers, ttlKeys, expired} {
		if err := reg.Register(col); err != nil {
			return nil, errors.Join(errors.New("v2http: register metrics"), err)
		}
	}
	return m, nil
}

func (m *metrics) observe(endpoint, method string, w *statusWriter, d time.Duration) {
	if w.watch {
		endpoint = "watch"
	}
	k := seriesKey{endpoint, methodLabel(method), w.status()}
	v, ok := m.series.Load(k)
	if !ok {
		code := strconv.Itoa(k.code)
		s := series{requests: m.requests.WithLabelValues(k.endpoint, k.method, code)}
		if !w.watch { // endpoint "watch": no latency series
			s.latency = m.latency.WithLabelValues(k.endpoint, k.method, code)
		}
		v, _ = m.series.LoadOrStore(k, s)
	}
	s := v.(series)
	s.requests.Inc()
	if s.latency != nil {
		s.latency.Observe(d.Seconds())
	}
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete,
		http.MethodPatch, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// newMetricsHandler serves /metrics from g.
func newMetricsHandler(g prometheus.Gatherer, log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      slogPrintln{log},
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// slogPrintln adapts slog to promhttp's Logger.
type slogPrintln struct{ log *slog.Logger }

func (l slogPrintln) Println(v ...any) {
	l.log.Warn("metrics", "err", v)
}
