package v2client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/cairnkv/cairn/store"
)

// PrevExist is the prevExist condition of a set.
type PrevExist string

// The prevExist conditions, named as in etcd's Go v2 client.
const (
	PrevIgnore  PrevExist = ""      // no condition
	PrevExists  PrevExist = "true"  // the key must exist (update)
	PrevNoExist PrevExist = "false" // the key must not exist (create)
)

// GetOptions are the parameters of a read.
type GetOptions struct {
	Recursive bool // list a directory at every depth
	Sorted    bool // children sorted by key
	Quorum    bool // quorum=true (Cairn's reads are linearizable anyway)
	Stale     bool // stale=true: the local replica (Cairn extension)
}

// SetOptions are the parameters of a PUT.
type SetOptions struct {
	PrevValue string // compare-and-swap on the value
	PrevIndex uint64 // compare-and-swap on the modifiedIndex
	PrevExist PrevExist
	// TTL is the key's time-to-live, whole seconds; 0 is none (on an
	// update or a directory update: make it permanent).
	TTL time.Duration
	// Refresh extends the TTL of an existing key without changing its
	// value or waking watchers: value is not sent.
	Refresh bool
	// Dir makes (or updates) a directory: value is not sent.
	Dir bool
}

// DeleteOptions are the parameters of a DELETE.
type DeleteOptions struct {
	PrevValue string // compare-and-delete on the value
	PrevIndex uint64 // compare-and-delete on the modifiedIndex
	Dir       bool   // the key may be an empty directory
	Recursive bool   // remove a directory and everything under it
}

// CanonicalKey is a key as it goes on the wire, as etcd's Go v2 client
// makes it: rooted and cleaned, a trailing slash kept.
func CanonicalKey(key string) string {
	if key == "" || key[0] != '/' {
		key = "/" + key
	}
	p := path.Clean(key)
	if strings.HasSuffix(key, "/") && p != "/" {
		p += "/"
	}
	return p
}

// keysURI is the request URI of key with query q.
func keysURI(key string, q url.Values) string {
	u := url.URL{Path: "/v2/keys" + CanonicalKey(key), RawQuery: q.Encode()}
	return u.RequestURI()
}

func flag(q url.Values, name string, on bool) {
	if on {
		q.Set(name, "true")
	}
}

// Get reads key.
func (c *Client) Get(ctx context.Context, key string, o GetOptions) (*store.Event, error) {
	q := url.Values{}
	flag(q, "recursive", o.Recursive)
	flag(q, "sorted", o.Sorted)
	flag(q, "quorum", o.Quorum)
	flag(q, "stale", o.Stale)
	return c.keys(ctx, Request{Method: http.MethodGet, Path: keysURI(key, q)})
}

// Set writes value at key (PUT), as etcd's Go v2 client does: value and ttl
// in the form body, the conditions in the query.
func (c *Client) Set(ctx context.Context, key, value string, o SetOptions) (*store.Event, error) {
	if o.TTL < 0 || o.TTL%time.Second != 0 {
		return nil, fmt.Errorf("v2client: TTL %v: want whole seconds", o.TTL)
	}
	q, form := url.Values{}, url.Values{}
	switch {
	case o.Dir:
		q.Set("dir", "true")
	case o.Refresh:
		q.Set("refresh", "true")
	default:
		form.Set("value", value)
	}
	if o.PrevValue != "" && !o.Dir {
		q.Set("prevValue", o.PrevValue)
	}
	if o.PrevIndex != 0 {
		q.Set("prevIndex", strconv.FormatUint(o.PrevIndex, 10))
	}
	if o.PrevExist != PrevIgnore {
		q.Set("prevExist", string(o.PrevExist))
	}
	if o.TTL > 0 {
		form.Set("ttl", strconv.FormatInt(int64(o.TTL/time.Second), 10))
	}
	// Only a refresh may be sent again: it changes no value, and fails
	// once the key is gone. A plain set sent again after a first copy was
	// applied would apply twice, and overwrite another client's write made
	// in between (a reader would see v, w, then v again: not linearizable).
	again := o.Refresh && o.PrevValue == "" && o.PrevIndex == 0
	return c.keys(ctx, Request{Method: http.MethodPut, Path: keysURI(key, q), Idempotent: again,
		Body: []byte(form.Encode()), ContentType: "application/x-www-form-urlencoded"})
}

// SetTTL writes value at key with a TTL of whole seconds (a set without
// conditions). With Refresh and CompareAndDelete it
// is what discovery.Keys, the registrar's client, asks for.
func (c *Client) SetTTL(ctx context.Context, key, value string, ttl time.Duration) (*store.Event, error) {
	return c.Set(ctx, key, value, SetOptions{TTL: ttl})
}

// Create writes value at key, which must not exist.
func (c *Client) Create(ctx context.Context, key, value string, ttl time.Duration) (*store.Event, error) {
	return c.Set(ctx, key, value, SetOptions{PrevExist: PrevNoExist, TTL: ttl})
}

// Update writes value at key, which must exist.
func (c *Client) Update(ctx context.Context, key, value string, ttl time.Duration) (*store.Event, error) {
	return c.Set(ctx, key, value, SetOptions{PrevExist: PrevExists, TTL: ttl})
}

// Refresh sets the TTL of the existing key, keeping its value and waking
// no watcher.
func (c *Client) Refresh(ctx context.Context, key string, ttl time.Duration) (*store.Event, error) {
	return c.Set(ctx, key, "", SetOptions{Refresh: true, PrevExist: PrevExists, TTL: ttl})
}

// CreateInOrder creates a key named by its index under the directory dir
// (POST). It is never sent twice.
func (c *Client) CreateInOrder(ctx context.Context, dir, value string, ttl time.Duration) (*store.Event, error) {
	if ttl < 0 || ttl%time.Second != 0 {
		return nil, fmt.Errorf("v2client: TTL %v: want whole seconds", ttl)
	}
	form := url.Values{"value": {value}}
	if ttl > 0 {
		form.Set("ttl", strconv.FormatInt(int64(ttl/time.Second), 10))
	}
	return c.keys(ctx, Request{Method: http.MethodPost, Path: keysURI(dir, nil),
		Body: []byte(form.Encode()), ContentType: "application/x-www-form-urlencoded"})
}

// Delete removes key. A delete with a condition is not sent twice; one
// without is (a second one answers 100, key not found).
func (c *Client) Delete(ctx context.Context, key string, o DeleteOptions) (*store.Event, error) {
	q := url.Values{}
	if o.PrevValue != "" {
		q.Set("prevValue", o.PrevValue)
	}
	if o.PrevIndex != 0 {
		q.Set("prevIndex", strconv.FormatUint(o.PrevIndex, 10))
	}
	flag(q, "dir", o.Dir)
	flag(q, "recursive", o.Recursive)
	// Not sent again once it may have been applied: a repeat could remove
	// a key another client created in between.
	return c.keys(ctx, Request{Method: http.MethodDelete, Path: keysURI(key, q)})
}

// CompareAndDelete removes key if it holds value. It may be sent to a
// second member after a first one failed: a repeat finds the key gone
// (error 100), which the caller reads as done.
func (c *Client) CompareAndDelete(ctx context.Context, key, value string) (*store.Event, error) {
	q := url.Values{"prevValue": {value}}
	return c.keys(ctx, Request{Method: http.MethodDelete, Path: keysURI(key, q), Idempotent: true})
}

// keys sends a /v2/keys request and decodes the answer.
func (c *Client) keys(ctx context.Context, req Request) (*store.Event, error) {
	resp, err := c.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	return decodeEvent(resp)
}

// decodeEvent is the event of a 200 or 201 answer, else the answer's error.
func decodeEvent(resp *Response) (*store.Event, error) {
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return nil, responseError(resp)
	}
	ev := new(store.Event)
	if err := json.Unmarshal(resp.Body, ev); err != nil || ev.Node == nil {
		return nil, fmt.Errorf("unexpected answer from %s (HTTP %d): %.200q", resp.Endpoint, resp.StatusCode, resp.Body)
	}
	ev.EtcdIndex = etcdIndex(resp.Header)
	return ev, nil
}

func etcdIndex(h http.Header) uint64 {
	i, _ := strconv.ParseUint(h.Get("X-Etcd-Index"), 10, 64)
	return i
}
