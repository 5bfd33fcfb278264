package v2http

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/discovery"
	"github.com/cairnkv/cairn/store"
)

// TestValidateWrite: Config.ValidateWrite sees every PUT and POST but
// refreshes, after the size limits; its error is a 400 with etcd error 209
// and nothing is stored.
func TestValidateWrite(t *testing.T) {
	var calls []string
	h, fc := newTestHandler(t, store.Config{}, func(c *Config) {
		c.MaxValueBytes = 16
		c.ValidateWrite = func(key, value string, dir bool) error {
			calls = append(calls, fmt.Sprintf("%s %q dir=%v", key, value, dir))
			if strings.HasPrefix(value, "bad") {
				return errors.New(`fake: record field "x": ` + value)
			}
			return nil
		}
	})
	fc.put(t, "/ttl", "v") // @1
	steps := []struct {
		name, method, target, body string
		code                       int
		want                       string // body without the trailing newline
		call                       string // the validator's call; "" for none
	}{
		{"put refused", "PUT", "/v2/keys/a/b", "value=bad1", 400,
			`{"errorCode":209,"message":"Invalid field","cause":"fake: record field \"x\": bad1","index":0}`, `/a/b "bad1" dir=false`},
		{"put accepted", "PUT", "/v2/keys/a/b", "value=good", 201,
			`{"action":"set","node":{"key":"/a/b","value":"good","modifiedIndex":2,"createdIndex":2}}`, `/a/b "good" dir=false`},
		{"clean key", "PUT", "/v2/keys/a/./c/", "value=bad2", 307, "", ""},
		{"post refused", "POST", "/v2/keys/q", "value=bad3", 400,
			`{"errorCode":209,"message":"Invalid field","cause":"fake: record field \"x\": bad3","index":0}`, `/q "bad3" dir=false`},
		{"post accepted", "POST", "/v2/keys/q", "value=ok", 201,
			`{"action":"create","node":{"key":"/q/00000000000000000003","value":"ok","modifiedIndex":3,"createdIndex":3}}`, `/q "ok" dir=false`},
		{"dir", "PUT", "/v2/keys/d?dir=true", "", 201,
			`{"action":"set","node":{"key":"/d","dir":true,"modifiedIndex":4,"createdIndex":4}}`, `/d "" dir=true`},
		{"cas refused", "PUT", "/v2/keys/a/b?prevValue=good", "value=bad4", 400,
			`{"errorCode":209,"message":"Invalid field","cause":"fake: record field \"x\": bad4","index":0}`, `/a/b "bad4" dir=false`},
		{"refresh not checked", "PUT", "/v2/keys/ttl?refresh=true&prevExist=true&ttl=5", "", 200,
			`{"action":"update","node":{"key":"/ttl","value":"v","expiration":"2025-01-02T03:04:10Z","ttl":5,"modifiedIndex":5,"createdIndex":1},"prevNode":{"key":"/ttl","value":"v","modifiedIndex":1,"createdIndex":1}}`, ""},
		{"limits first", "PUT", "/v2/keys/a/b", "value=bad-and-far-too-long", 400,
			`{"errorCode":209,"message":"Invalid field","cause":"\"value\" is 20 bytes, over the limit of 16 bytes","index":0}`, ""},
		{"delete not checked", "DELETE", "/v2/keys/a/b", "", 200,
			`{"action":"delete","node":{"key":"/a/b","modifiedIndex":6,"createdIndex":2},"prevNode":{"key":"/a/b","value":"good","modifiedIndex":2,"createdIndex":2}}`, ""},
		{"get not checked", "GET", "/v2/keys/d", "", 200,
			`{"action":"get","node":{"key":"/d","dir":true,"modifiedIndex":4,"createdIndex":4}}`, ""},
	}
	for _, s := range steps {
		calls = nil
		w := do(h, s.method, s.target, s.body)
		if s.want != "" {
			checkResponse(t, w, s.code, s.want+"\n")
		} else if w.Code != s.code {
			t.Fatalf("%s: %d %s, want %d", s.name, w.Code, w.Body, s.code)
		}
		var want []string
		if s.call != "" {
			want = []string{s.call}
		}
		if !slices.Equal(calls, want) {
			t.Fatalf("%s: validator calls %q, want %q", s.name, calls, want)
		}
	}
	if got := fc.st.Index(); got != 6 {
		t.Fatalf("store index %d, want 6: a refused write changed the store", got)
	}
}

// TestValidateWriteDiscovery wires discovery's validator as cmd does: a bad
// record under the prefix is refused with a cause naming the field.
func TestValidateWriteDiscovery(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, func(c *Config) { c.ValidateWrite = discovery.Config{}.Validate })
	form := func(v string) string { return "value=" + url.QueryEscape(v) }
	tests := []struct {
		name, target, body string
		code               int
		cause              string
	}{
		{"valid", "/v2/keys/skydns/internal/cairn/web/w1?ttl=10", form(`{"host":"10.0.0.5","port":8080}`), 201, ""},
		{"port", "/v2/keys/skydns/internal/cairn/web/w2", form(`{"host":"10.0.0.5","port":70000}`), 400,
			`discovery: record field "port": 70000 is out of range 0-65535`},
		{"host", "/v2/keys/skydns/internal/cairn/web/w2", form(`{"host":"10.0.0.300"}`), 400,
			`discovery: record field "host": "10.0.0.300" is neither an IP address nor a hostname`},
		{"json", "/v2/keys/skydns/internal/cairn/web/w2", form(`{"host":`), 400,
			`discovery: record is not valid JSON: unexpected end of JSON input`},
		{"directory", "/v2/keys/skydns/internal/cairn/db?dir=true", "", 201, ""},
		{"outside the zone", "/v2/keys/skydns/config", form(`{"domain":"x."}`), 201, ""},
		{"elsewhere", "/v2/keys/app/config", form(`not a record`), 201, ""},
		{"heartbeat", "/v2/keys/skydns/internal/cairn/web/w1?refresh=true&prevExist=true&ttl=10", "", 200, ""},
	}
	for _, tt := range tests {
		w := do(h, "PUT", tt.target, tt.body)
		if tt.cause != "" {
			checkResponse(t, w, tt.code, errBody(store.EcodeInvalidField, tt.cause, 0))
			continue
		}
		if w.Code != tt.code {
			t.Errorf("%s: %d %s, want %d", tt.name, w.Code, w.Body, tt.code)
		}
	}
	if _, err := fc.st.Get("/skydns/internal/cairn/web/w2", false, false, testNow); err == nil {
		t.Error("a refused record was stored")
	}
}
