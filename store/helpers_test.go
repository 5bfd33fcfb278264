package store

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// The fake clock: every test passes explicit times derived from t0. t0 is in
// a non-UTC zone on purpose, so that tests catch an expiration that is not
// converted to UTC.
var t0 = time.Date(2024, time.May, 6, 7, 8, 9, 0, time.FixedZone("UTC+2", 2*60*60))

const sec = time.Second

// at is the fake clock d after t0.
func at(d time.Duration) time.Time { return t0.Add(d) }

// Request builders, named after the HTTP requests they stand for.

func put(p, value string) Request { return Request{Method: MethodPut, Path: p, Value: value} }
func putDir(p string) Request     { return Request{Method: MethodPut, Path: p, Dir: true} }
func post(p, value string) Request {
	return Request{Method: MethodPost, Path: p, Value: value}
}
func del(p string) Request { return Request{Method: MethodDelete, Path: p} }

func withTTL(r Request, ttl uint64) Request {
	r.HasTTL, r.TTL = true, ttl
	return r
}

// mustApply applies every request at now and fails the test on any error. It
// returns the last event.
func mustApply(t testing.TB, s *Store, now time.Time, reqs ...Request) *Event {
	t.Helper()
	var e *Event
	for i := range reqs {
		var err error
		e, err = s.Apply(&reqs[i], now)
		if err != nil {
			t.Fatalf("Apply(%+v): %v", reqs[i], err)
		}
	}
	return e
}

// asStoreError checks that err is a *Error (never another type) and returns it.
func asStoreError(t testing.TB, err error) *Error {
	t.Helper()
	if err == nil {
		return nil
	}
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *store.Error", err, err)
	}
	return se
}

// wantErr checks an etcd error's code, cause and index.
func wantErr(t testing.TB, err error, code int, cause string, index uint64) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %d %q index %d", code, cause, index)
	}
	se := asStoreError(t, err)
	if se.ErrorCode != code || se.Cause != cause || se.Index != index {
		t.Fatalf("error = {%d %q index %d}, want {%d %q index %d}",
			se.ErrorCode, se.Cause, se.Index, code, cause, index)
	}
	if se.Message != errorMessages[code] || se.Message == "" {
		t.Fatalf("message = %q, want the table text %q", se.Message, errorMessages[code])
	}
}

// marshal is encoding/json's output for v (HTML-escaped, like etcd's encoder).
func marshal(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	return string(b)
}

// getJSON is the JSON of a successful Get.
func getJSON(t testing.TB, s *Store, p string, recursive, sorted bool, now time.Time) string {
	t.Helper()
	e, err := s.Get(p, recursive, sorted, now)
	if err != nil {
		t.Fatalf("Get(%q): %v", p, err)
	}
	return marshal(t, e)
}

// received returns the events already queued on w, without blocking, and
// whether its channel is closed. Delivery is synchronous with the write that
// produced the event, so no waiting is needed.
func received(w *Watcher) (evs []*Event, closed bool) {
	for {
		select {
		case e, ok := <-w.EventChan():
			if !ok {
				return evs, true
			}
			evs = append(evs, e)
		default:
			return evs, false
		}
	}
}

// mustWatch registers a watch and fails the test on error.
func mustWatch(t testing.TB, s *Store, key string, recursive, stream bool, since uint64) *Watcher {
	t.Helper()
	w, err := s.Watch(key, recursive, stream, since)
	if err != nil {
		t.Fatalf("Watch(%q, recursive=%v, stream=%v, %d): %v", key, recursive, stream, since, err)
	}
	return w
}

// keysAndIndexes summarises events as "action key@index" strings.
func keysAndIndexes(evs []*Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Action + " " + e.Node.Key + "@" + utoa(e.Index())
	}
	return out
}

// statsMap is the /v2/stats/store body as a map, for counter assertions by
// their JSON names.
func statsMap(t testing.TB, s *Store) map[string]uint64 {
	t.Helper()
	m := map[string]uint64{}
	if err := json.Unmarshal(s.Stats().JSON(), &m); err != nil {
		t.Fatalf("stats JSON: %v", err)
	}
	return m
}

// statsDelta is after-before for every counter that changed.
func statsDelta(before, after map[string]uint64) map[string]uint64 {
	d := map[string]uint64{}
	for k, v := range after {
		if v != before[k] {
			d[k] = v - before[k]
		}
	}
	return d
}
