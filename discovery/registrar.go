package discovery

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cairnkv/cairn/store"
)

// Keys is the part of an etcd v2 client the registrar needs; Cairn's
// client (*v2client.Client of cluster/v2client, which fails over between
// members) has these methods, and cmd wires it in.
// Answers are the store's own types: the event of a write, or a
// *store.Error when the cluster refused it. Any other error means that no
// member answered (or the answer was lost): the registrar tries again.
// Each method may be retried, so each must mean the same thing twice.
type Keys interface {
	// SetTTL writes value at key with a TTL of whole seconds
	// (PUT value=&ttl=).
	SetTTL(ctx context.Context, key, value string, ttl time.Duration) (*store.Event, error)
	// Refresh extends the TTL of the existing key without changing its
	// value or waking watchers (PUT ?refresh=true&prevExist=true).
	Refresh(ctx context.Context, key string, ttl time.Duration) (*store.Event, error)
	// CompareAndDelete deletes key if it holds value (DELETE ?prevValue=).
	CompareAndDelete(ctx context.Context, key, value string) (*store.Event, error)
}

// RegistrarConfig configures a Registrar. Keys, Key, Record and TTL are
// required; the zero value of every other field is a working default.
type RegistrarConfig struct {
	// Keys writes to the cluster.
	Keys Keys

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
	// DeregisterTimeout bounds the delete when Run ends (default 10 s).
	DeregisterTimeout time.Duration

	// Logger receives every change of state: registered (and why),
	// registration gone or overwritten, heartbeat or registration failed
	// (at failures 1, 2, 4, 8, ...; the others at debug level), heartbeats
	// resumed, check failing, check passing, deregistered; each heartbeat
	// at debug level. Nil discards them.
	Logger *slog.Logger

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
// It speaks the etcd v2 keys API through Keys: register is a Set of the
// record's JSON with the TTL; a heartbeat is a Refresh (the value is kept
// and watchers are not woken); deregister is a CompareAndDelete of the
// record's JSON, which leaves alone a record that another registrar has
// since written at the same key.
//
// Time is the time package's (time.Now, timers), so tests simulate it with
// testing/synctest.
type Registrar struct {
	cfg      RegistrarConfig
	value    string // the record's JSON
	interval time.Duration
	log      *slog.Logger
	running  atomic.Bool
}

// Defaults and bounds of the registrar's timing.
const (
	minTimeout = time.Second
	maxTimeout = 5 * time.Second
	// defaultDeregisterTimeout bounds the delete at shutdown.
	defaultDeregisterTimeout = 10 * time.Second
	// minRetry and maxRetry bound the first wait after a failed write; the
	// wait doubles with each failure up to half the heartbeat interval.
	minRetry = 50 * time.Millisecond
	maxRetry = time.Second
)

// NewRegistrar checks cfg and returns a Registrar; Run starts it.
func NewRegistrar(cfg RegistrarConfig) (*Registrar, error) {
	if cfg.Keys == nil {
		return nil, errors.New("discovery: RegistrarConfig.Keys is required: the client that writes to the cluster")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	value, err := json.Marshal(cfg.Record)
	if err != nil {
		return nil, fmt.Errorf("discovery: registration %s: %w", cfg.Key, err)
	}

	interval := cfg.TTL / 3
	if cfg.CheckInterval == 0 || cfg.CheckInterval > interval {
		cfg.CheckInterval = interval
	}
	if cfg.CheckTimeout == 0 {
		cfg.CheckTimeout = min(max(cfg.CheckInterval/2, minTimeout), maxTimeout)
	}
	if cfg.DeregisterTimeout == 0 {
		cfg.DeregisterTimeout = defaultDeregisterTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Jitter == nil {
		cfg.Jitter = jitter
	}
	return &Registrar{
		cfg:      cfg,
		value:    string(value),
		interval: interval,
		log:      cfg.Logger.With("key", cfg.Key),
	}, nil
}

// Validate checks the registration that cfg describes (Key, Record, TTL,
// and the check's timing), without Keys: what NewRegistrar checks before it
// needs a client.
func (cfg RegistrarConfig) Validate() error {
	if cfg.Key == "" || !strings.HasPrefix(cfg.Key, "/") || strings.HasSuffix(cfg.Key, "/") {
		return fmt.Errorf("discovery: registration key %q: want an absolute key such as /skydns/internal/cairn/web/web-1", cfg.Key)
	}
	switch {
	case cfg.TTL < time.Second:
		return fmt.Errorf("discovery: TTL %v: want at least 1s", cfg.TTL)
	case cfg.TTL%time.Second != 0:
		return fmt.Errorf("discovery: TTL %v: want whole seconds (etcd TTLs are seconds)", cfg.TTL)
	}
	if err := cfg.Record.Validate(); err != nil {
		return err
	}
	if cfg.CheckInterval < 0 || cfg.CheckTimeout < 0 || cfg.DeregisterTimeout < 0 {
		return errors.New("discovery: negative CheckInterval, CheckTimeout or DeregisterTimeout")
	}
	return nil
}

// RequestTimeout is the timeout a registrar's client should give one
// request to one member, for a registration of ttl: a quarter of it,
// between 1 s and 5 s, so that a failover fits before the TTL runs out.
func RequestTimeout(ttl time.Duration) time.Duration {
	return min(max(ttl/4, minTimeout), maxTimeout)
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
	var s regState
	var t *time.Timer
	for {
		if err := r.step(ctx, &s); err != nil {
			return err
		}
		if t == nil {
			t = time.NewTimer(r.wait(&s))
			defer t.Stop()
		} else {
			t.Reset(r.wait(&s))
		}
		select {
		case <-ctx.Done():
			return r.deregister()
		case <-t.C:
		}
	}
}

// wait is how long to sleep before the next step.
func (r *Registrar) wait(s *regState) time.Duration {
	if !s.healthy {
		return r.cfg.CheckInterval
	}
	d := s.nextBeat.Sub(time.Now())
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
	if time.Now().Before(s.nextBeat) {
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
	return max(s.lastWrite.Add(r.cfg.TTL).Sub(time.Now()), 0)
}

// write registers or heartbeats, re-registering when the heartbeat finds
// the record gone or changed.
func (r *Registrar) write(ctx context.Context, s *regState) error {
	var (
		ev  *store.Event
		err error
	)
	if s.registered {
		ev, err = r.cfg.Keys.Refresh(ctx, r.cfg.Key, r.cfg.TTL)
		switch {
		case isCode(err, store.EcodeKeyNotFound):
			r.log.Warn("registration gone (expired, deleted or lost by the cluster): registering again")
			s.registered, s.reason, err = false, "gone", nil
		case err != nil:
			err = classify("heartbeat", r.cfg.Key, err)
		case ev.Node == nil || ev.Node.Value == nil || *ev.Node.Value != r.value:
			r.log.Warn("registration overwritten by another value: registering again", "value", nodeValue(ev))
			s.registered, s.reason = false, "overwritten"
		}
	}
	why := "" // why a registration is written; "" for a heartbeat
	if err == nil && !s.registered {
		why = cmp.Or(s.reason, "start")
		ev, err = r.cfg.Keys.SetTTL(ctx, r.cfg.Key, r.value, r.cfg.TTL)
		err = classify("register", r.cfg.Key, err)
	}
	if ctx.Err() != nil {
		return nil // shutting down
	}
	var perm *refusedError
	if errors.As(err, &perm) {
		r.log.Error("the cluster refused the registration", "err", err)
		return err
	}
	now := time.Now()
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

	switch {
	case why != "":
		r.log.Info("registered", "ttl", r.cfg.TTL, "why", why, "after_failures", s.failures, "value", r.value)
	case s.failures > 0:
		r.log.Info("heartbeats resumed", "after_failures", s.failures)
	default:
		r.log.Debug("heartbeat", "modified_index", ev.Index())
	}
	s.failures = 0
	s.registered, s.lastWrite = true, now
	s.nextBeat = now.Add(r.cfg.Jitter(r.interval))
	return nil
}

func nodeValue(ev *store.Event) string {
	if ev == nil || ev.Node == nil || ev.Node.Value == nil {
		return ""
	}
	return *ev.Node.Value
}

// isCode reports whether err is the etcd error code.
func isCode(err error, code int) bool {
	var se *store.Error
	return errors.As(err, &se) && se.ErrorCode == code
}

// classify turns the cluster's refusal of op (an answer with a status
// below 500: an invalid record, a certificate that may not write the key)
// into a *refusedError; other errors (no member answered, raft trouble)
// pass as they are, to be retried.
func classify(op, key string, err error) error {
	var sc interface{ StatusCode() int }
	if errors.As(err, &sc) && sc.StatusCode() < 500 {
		return &refusedError{op: op, key: key, err: err}
	}
	return err
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

// deregister deletes the record if it still holds this registrar's value.
func (r *Registrar) deregister() error {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.DeregisterTimeout)
	defer cancel()
	_, err := r.cfg.Keys.CompareAndDelete(ctx, r.cfg.Key, r.value)
	var sc interface{ StatusCode() int }
	switch {
	case err == nil:
		r.log.Info("deregistered")
	case isCode(err, store.EcodeKeyNotFound):
		r.log.Info("deregistered (the record was already gone)")
	case isCode(err, store.EcodeTestFailed):
		r.log.Warn("not deregistered: the key holds another registration now")
	case errors.As(err, &sc) && sc.StatusCode() < 500:
		err := &refusedError{op: "deregister", key: r.cfg.Key, err: err}
		r.log.Error("deregistration refused: the record expires within its TTL", "err", err, "ttl", r.cfg.TTL)
		return err
	default:
		r.log.Error("deregistration failed: the record expires within its TTL", "err", err, "ttl", r.cfg.TTL)
		return fmt.Errorf("discovery: deregister %s: %w", r.cfg.Key, err)
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
