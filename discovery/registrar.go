package discovery

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn/store"
)

// RegistrarConfig configures a Registrar. Endpoints, TLS, Key, Record and TTL
// are required; the zero value of every other field is a working default.
type RegistrarConfig struct {
	// Endpoints are the https://host:port client URLs of cluster members.
	// Requests go to the member that answered last and fail over to the
	// next on a connection error, a timeout or a 5xx answer.
	Endpoints []string
	// TLS is the client side of the members' mutual TLS: the CA to verify
	// them with and the certificate to present (see tlsconf.Material.ClientConfig).
	TLS *tls.Config

	// Key is the registration's key, e.g. /skydns/internal/cairn/web/web-1
	// for instance web-1 of service web: Config.Key("web-1.web").
	Key string
	// Record is the value written at Key, as SkyDNS JSON.
	Record Record
	// TTL is the key's TTL: a whole number of seconds, at least one. The
	// registrar heartbeats about every TTL/3, so the record outlives two
	// lost heartbeats and expires within TTL of the last one.
	TTL time.Duration

	// Check reports the health of what is registered (nil: always
	// healthy). It runs before each heartbeat and every CheckInterval.
	// While it fails the registrar writes nothing, so the record expires
	// and DNS drops it; once it passes again the record is written at once.
	Check func(context.Context) error
	// CheckInterval is how often Check runs (default: the heartbeat
	// interval, TTL/3). A shorter interval notices recovery sooner; it does
	// not make heartbeats more frequent.
	CheckInterval time.Duration
	// CheckTimeout bounds one run of Check (default CheckInterval/2,
	// between 1 s and 5 s).
	CheckTimeout time.Duration
	// RequestTimeout bounds one request to one member, connection included
	// (default TTL/4, between 1 s and 5 s).
	RequestTimeout time.Duration

	// Logger receives every change of state: registered (and why),
	// registration gone or overwritten, heartbeat or registration failed
	// (at failures 1, 2, 4, 8, ...; the others at debug level), heartbeats
	// resumed, endpoint switched, check failing, check passing,
	// deregistered; each heartbeat at debug level. Nil discards them.
	Logger *slog.Logger

	// Now and After are the registrar's clock (default time.Now and
	// time.After). Requests still time out in real time.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// Jitter returns the wait before the next heartbeat for the nominal
	// interval d (default: uniformly random within d ± 10%), so that
	// registrars started together do not heartbeat together.
	Jitter func(d time.Duration) time.Duration
}

// Registrar keeps one registration alive: it writes the record with a TTL,
// refreshes the TTL before it runs out while the check passes, writes the
// record again when it finds it gone (expired, deleted, or lost by the
// cluster) or overwritten, and deletes it when its context ends.
//
// It speaks the etcd v2 keys API: register is
// PUT /v2/keys<key> value=<record JSON>&ttl=<s>; a heartbeat is
// PUT /v2/keys<key>?refresh=true&prevExist=true&ttl=<s> (no value: the value
// is kept and watchers are not woken); deregister is
// DELETE /v2/keys<key>?prevValue=<record JSON>, which leaves alone a record
// that another registrar has since written at the same key.
type Registrar struct {
	cfg      RegistrarConfig
	value    string // the record's JSON
	ttl      string // the TTL in seconds, as sent
	interval time.Duration
	client   *keysClient
	log      *slog.Logger
	running  atomic.Bool
}

// Defaults and bounds of the registrar's timing.
const (
	minTimeout = time.Second
	maxTimeout = 5 * time.Second
	// minRetry and maxRetry bound the first wait after a failed write; the
	// wait doubles with each failure up to half the heartbeat interval.
	minRetry = 50 * time.Millisecond
	maxRetry = time.Second
)

// NewRegistrar checks cfg and returns a Registrar; Run starts it.
func NewRegistrar(cfg RegistrarConfig) (*Registrar, error) {
	eps, err := checkEndpoints(cfg.Endpoints)
	if err != nil {
		return nil, err
	}
	cfg.Endpoints = eps
	if cfg.TLS == nil {
		return nil, errors.New("discovery: RegistrarConfig.TLS is required: Cairn serves HTTPS with client certificates only")
	}
	if cfg.Key == "" || !strings.HasPrefix(cfg.Key, "/") || strings.HasSuffix(cfg.Key, "/") {
		return nil, fmt.Errorf("discovery: registration key %q: want an absolute key such as /skydns/internal/cairn/web/web-1", cfg.Key)
	}
	switch {
	case cfg.TTL < time.Second:
		return nil, fmt.Errorf("discovery: TTL %v: want at least 1s", cfg.TTL)
	case cfg.TTL%time.Second != 0:
		return nil, fmt.Errorf("discovery: TTL %v: want whole seconds (etcd TTLs are seconds)", cfg.TTL)
	}
	if err := cfg.Record.Validate(); err != nil {
		return nil, err
	}
	value, err := json.Marshal(cfg.Record)
	if err != nil {
		return nil, fmt.Errorf("discovery: registration %s: %w", cfg.Key, err)
	}
	if cfg.CheckInterval < 0 || cfg.CheckTimeout < 0 || cfg.RequestTimeout < 0 {
		return nil, errors.New("discovery: negative CheckInterval, CheckTimeout or RequestTimeout")
	}

	interval := cfg.TTL / 3
	if cfg.CheckInterval == 0 || cfg.CheckInterval > interval {
		cfg.CheckInterval = interval
	}
	if cfg.CheckTimeout == 0 {
		cfg.CheckTimeout = min(max(cfg.CheckInterval/2, minTimeout), maxTimeout)
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = min(max(cfg.TTL/4, minTimeout), maxTimeout)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	if cfg.Jitter == nil {
		cfg.Jitter = jitter
	}
	return &Registrar{
		cfg:      cfg,
		value:    string(value),
		ttl:      strconv.FormatInt(int64(cfg.TTL/time.Second), 10),
		interval: interval,
		client:   newKeysClient(eps, cfg.TLS, cfg.RequestTimeout),
		log:      cfg.Logger.With("key", cfg.Key),
	}, nil
}

// checkEndpoints returns endpoints as https://host:port, or why they will
// not do.
func checkEndpoints(endpoints []string) ([]string, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("discovery: no endpoints: want the https:// client URL of at least one member")
	}
	out := make([]string, 0, len(endpoints))
	for _, e := range endpoints {
		u, err := url.Parse(e)
		switch {
		case err != nil:
			return nil, fmt.Errorf("discovery: endpoint %q: %w", e, err)
		case u.Scheme != "https":
			return nil, fmt.Errorf("discovery: endpoint %q: want https://host:port (Cairn serves HTTPS only)", e)
		case u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil:
			return nil, fmt.Errorf("discovery: endpoint %q: want https://host:port", e)
		}
		out = append(out, "https://"+u.Host)
	}
	return out, nil
}

// jitter is d scaled by a random factor in [0.9, 1.1).
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

// Value is the record's JSON as the registrar writes it.
func (r *Registrar) Value() string { return r.value }

// regState is the registrar's view of its registration.
type regState struct {
	checked    bool      // Check has run at least once
	healthy    bool      // Check's last verdict
	registered bool      // the record is in place, as far as the last write knows
	reason     string    // why the record is to be written again when not registered
	lastWrite  time.Time // when the last write succeeded
	nextBeat   time.Time // when the next write is due
	failures   int       // consecutive failed writes
	endpoint   string    // the member that answered last
}

// Run keeps the registration alive until ctx ends, then deletes it and
// returns. It returns nil once the record is deleted (or was found gone or
// replaced by another registrar's), and the error when the delete failed;
// the record then expires within TTL. It returns early with an error when
// the cluster refuses the record for good (an answer other than 2xx, 5xx
// or "key not found": an invalid record, a certificate that may not write
// the key). Unreachable members are not such a refusal: the registrar
// keeps trying. Run may be called once.
func (r *Registrar) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("discovery: Registrar.Run called twice")
	}
	defer r.client.close()
	var s regState
	for {
		if err := r.step(ctx, &s); err != nil {
			return err
		}
		wait := r.wait(&s)
		select {
		case <-ctx.Done():
			return r.deregister()
		case <-r.cfg.After(wait):
		}
	}
}

// wait is how long to sleep before the next step.
func (r *Registrar) wait(s *regState) time.Duration {
	if !s.healthy {
		return r.cfg.CheckInterval
	}
	d := s.nextBeat.Sub(r.cfg.Now())
	if r.cfg.Check != nil {
		d = min(d, r.cfg.CheckInterval)
	}
	return max(d, 0)
}

// step runs the check and, when it passes and a write is due, writes. Its
// error is a permanent refusal.
func (r *Registrar) step(ctx context.Context, s *regState) error {
	if !r.check(ctx, s) {
		// No longer kept alive: write it afresh, at once, on recovery.
		s.registered, s.reason, s.nextBeat = false, "check passing again", time.Time{}
		return nil
	}
	if r.cfg.Now().Before(s.nextBeat) {
		return nil // a check between heartbeats
	}
	return r.write(ctx, s)
}

// check runs Check and logs a change of verdict.
func (r *Registrar) check(ctx context.Context, s *regState) bool {
	var err error
	if r.cfg.Check != nil {
		cctx, cancel := context.WithTimeout(ctx, r.cfg.CheckTimeout)
		err = r.cfg.Check(cctx)
		cancel()
		if err != nil && ctx.Err() != nil {
			return s.healthy // shutting down: not the check's verdict
		}
	}
	healthy := err == nil
	switch {
	case !healthy && (s.healthy || !s.checked) && s.registered:
		r.log.Warn("check failing: not heartbeating, the record expires", "err", err, "expires_in", r.expiresIn(s).Round(time.Millisecond))
	case !healthy && (s.healthy || !s.checked):
		r.log.Warn("check failing: not registering until it passes", "err", err)
	case healthy && !s.healthy && s.checked:
		r.log.Info("check passing")
	}
	s.checked, s.healthy = true, healthy
	return healthy
}

// expiresIn is how long the record has left, as far as the registrar knows;
// 0 when it is not in place.
func (r *Registrar) expiresIn(s *regState) time.Duration {
	if !s.registered {
		return 0
	}
	return max(s.lastWrite.Add(r.cfg.TTL).Sub(r.cfg.Now()), 0)
}

// write registers or heartbeats, re-registering when the heartbeat finds
// the record gone or changed.
func (r *Registrar) write(ctx context.Context, s *regState) error {
	var (
		a   *keysAnswer
		err error
	)
	if s.registered {
		a, err = r.refresh(ctx)
		switch {
		case err != nil:
		case a.ErrorCode == store.EcodeKeyNotFound:
			r.log.Warn("registration gone (expired, deleted or lost by the cluster): registering again", "endpoint", a.Endpoint)
			s.registered, s.reason = false, "gone"
		case !a.ok():
			err = refused("heartbeat", r.cfg.Key, a)
		case a.Node.Value != r.value:
			r.log.Warn("registration overwritten by another value: registering again", "endpoint", a.Endpoint, "value", a.Node.Value)
			s.registered, s.reason = false, "overwritten"
		}
	}
	why := "" // why a registration is written; "" for a heartbeat
	if err == nil && !s.registered {
		why = cmp.Or(s.reason, "start")
		a, err = r.register(ctx)
		if err == nil && !a.ok() {
			err = refused("register", r.cfg.Key, a)
		}
	}
	if ctx.Err() != nil {
		return nil // shutting down
	}
	var perm *refusedError
	if errors.As(err, &perm) {
		r.log.Error("the cluster refused the registration", "err", err)
		return err
	}
	now := r.cfg.Now()
	if err != nil {
		s.failures++
		retry := r.retry(s.failures)
		s.nextBeat = now.Add(retry)
		what := "heartbeat failed"
		if !s.registered {
			what = "registration failed"
		}
		// A long outage logs at failures 1, 2, 4, 8, ...: not twice a second.
		level := slog.LevelDebug
		if s.failures&(s.failures-1) == 0 {
			level = slog.LevelWarn
		}
		r.log.Log(ctx, level, what, "err", err, "failures", s.failures, "retry_in", retry.Round(time.Millisecond), "expires_in", r.expiresIn(s).Round(time.Millisecond))
		return nil
	}

	if s.endpoint != "" && a.Endpoint != s.endpoint {
		r.log.Info("endpoint switched", "from", s.endpoint, "to", a.Endpoint, "because", strings.Join(a.Skipped, "; "))
	}
	s.endpoint = a.Endpoint
	switch {
	case why != "":
		r.log.Info("registered", "endpoint", a.Endpoint, "ttl", r.cfg.TTL, "why", why, "after_failures", s.failures, "value", r.value)
	case s.failures > 0:
		r.log.Info("heartbeats resumed", "endpoint", a.Endpoint, "after_failures", s.failures)
	default:
		r.log.Debug("heartbeat", "endpoint", a.Endpoint, "modified_index", a.Node.ModifiedIndex)
	}
	s.failures = 0
	s.registered, s.lastWrite = true, now
	s.nextBeat = now.Add(r.cfg.Jitter(r.interval))
	return nil
}

// retry is the wait after the nth consecutive failed write: from an eighth
// of the heartbeat interval (within [minRetry, maxRetry]), doubling, to at
// most half of it, jittered.
func (r *Registrar) retry(n int) time.Duration {
	d := min(max(r.interval/8, minRetry), maxRetry)
	for i := 1; i < n && d < r.interval/2; i++ {
		d *= 2
	}
	return r.cfg.Jitter(min(d, max(r.interval/2, minRetry)))
}

func (r *Registrar) register(ctx context.Context) (*keysAnswer, error) {
	return r.client.do(ctx, http.MethodPut, r.cfg.Key, nil, url.Values{"value": {r.value}, "ttl": {r.ttl}})
}

func (r *Registrar) refresh(ctx context.Context) (*keysAnswer, error) {
	q := url.Values{"refresh": {"true"}, "prevExist": {"true"}, "ttl": {r.ttl}}
	return r.client.do(ctx, http.MethodPut, r.cfg.Key, q, nil)
}

// deregister deletes the record if it still holds this registrar's value,
// giving each member one try.
func (r *Registrar) deregister() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(len(r.cfg.Endpoints))*r.cfg.RequestTimeout)
	defer cancel()
	a, err := r.client.do(ctx, http.MethodDelete, r.cfg.Key, url.Values{"prevValue": {r.value}}, nil)
	switch {
	case err != nil:
		r.log.Error("deregistration failed: the record expires within its TTL", "err", err, "ttl", r.cfg.TTL)
		return fmt.Errorf("discovery: deregister %s: %w", r.cfg.Key, err)
	case a.ok():
		r.log.Info("deregistered", "endpoint", a.Endpoint)
	case a.ErrorCode == store.EcodeKeyNotFound:
		r.log.Info("deregistered (the record was already gone)", "endpoint", a.Endpoint)
	case a.ErrorCode == store.EcodeTestFailed:
		r.log.Warn("not deregistered: the key holds another registration now", "endpoint", a.Endpoint)
	default:
		err := refused("deregister", r.cfg.Key, a)
		r.log.Error("deregistration refused: the record expires within its TTL", "err", err, "ttl", r.cfg.TTL)
		return err
	}
	return nil
}

// refusedError is a permanent refusal by the cluster.
type refusedError struct {
	op, key string
	err     error
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("discovery: %s %s: %v", e.op, e.key, e.err)
}

func (e *refusedError) Unwrap() error { return e.err }

func refused(op, key string, a *keysAnswer) error {
	return &refusedError{op: op, key: key, err: a.err()}
}
