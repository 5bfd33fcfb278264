package v2http

import (
	"strings"
	"testing"

	"github.com/cairnkv/cairn/store"
)

// TestParseErrors is etcd's TestBadParseRequest matrix plus Cairn's limits:
// every parse error has etcd's code and cause, HTTP 400 and index 0.
func TestParseErrors(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, func(c *Config) {
		c.MaxRequestBytes = 64
		c.MaxValueBytes = 8
		c.MaxKeyBytes = 16
		c.MaxKeyDepth = 3
	})
	tests := []struct {
		name        string
		method      string
		target      string
		body        string
		contentType string
		code        int
		cause       string
	}{
		{"bad query escape", "GET", "/v2/keys/foo?a=%zz", "", "", 210, `invalid URL escape "%zz"`},
		{"body too large", "PUT", "/v2/keys/foo", "value=" + strings.Repeat("x", 64), "", 210, "http: request body too large"},
		{"bad content type", "PUT", "/v2/keys/foo", "value=x", "application/x-www-form-urlencoded; =", 210, "mime: invalid media parameter"},
		{"bad body escape", "POST", "/v2/keys/foo", "value=%zz", "", 210, `invalid URL escape "%zz"`},

		{"prevIndex NaN", "PUT", "/v2/keys/foo?prevIndex=abc", "", "", 203, `invalid value for "prevIndex"`},
		{"prevIndex empty", "DELETE", "/v2/keys/foo?prevIndex=", "", "", 203, `invalid value for "prevIndex"`},
		{"prevIndex negative", "PUT", "/v2/keys/foo", "prevIndex=-1", "", 203, `invalid value for "prevIndex"`},
		{"waitIndex NaN", "GET", "/v2/keys/foo?wait=true&waitIndex=x", "", "", 203, `invalid value for "waitIndex"`},
		{"prevIndex before waitIndex", "GET", "/v2/keys/foo?waitIndex=x&prevIndex=y", "", "", 203, `invalid value for "prevIndex"`},

		{"recursive", "GET", "/v2/keys/foo?recursive=yes", "", "", 209, `invalid value for "recursive"`},
		{"recursive empty", "GET", "/v2/keys/foo?recursive=", "", "", 209, `invalid value for "recursive"`},
		{"sorted", "GET", "/v2/keys/foo?sorted=2", "", "", 209, `invalid value for "sorted"`},
		{"wait", "GET", "/v2/keys/foo?wait=please", "", "", 209, `invalid value for "wait"`},
		{"dir", "PUT", "/v2/keys/foo?dir=maybe", "", "", 209, `invalid value for "dir"`},
		{"quorum", "GET", "/v2/keys/foo?quorum=x", "", "", 209, `invalid value for "quorum"`},
		{"stream", "GET", "/v2/keys/foo?wait=true&stream=x", "", "", 209, `invalid value for "stream"`},
		{"stale", "GET", "/v2/keys/foo?stale=x", "", "", 209, `invalid value for "stale"`},
		{"recursive before sorted", "GET", "/v2/keys/foo?sorted=x&recursive=x", "", "", 209, `invalid value for "recursive"`},
		{"wait on PUT", "PUT", "/v2/keys/foo?wait=true", "", "", 209, `"wait" can only be used with GET requests`},
		{"wait on HEAD", "HEAD", "/v2/keys/foo?wait=true", "", "", 209, `"wait" can only be used with GET requests`},
		{"wait on DELETE", "DELETE", "/v2/keys/foo?wait=true", "", "", 209, `"wait" can only be used with GET requests`},
		{"wait on POST body", "POST", "/v2/keys/foo", "wait=true", "", 209, `"wait" can only be used with GET requests`},
		{"noValueOnSuccess", "PUT", "/v2/keys/foo?noValueOnSuccess=x", "", "", 209, `invalid value for "noValueOnSuccess"`},
		{"prevExist", "PUT", "/v2/keys/foo?prevExist=x", "", "", 209, "invalid value for prevExist"},
		{"prevExist empty", "PUT", "/v2/keys/foo?prevExist=", "", "", 209, "invalid value for prevExist"},
		{"refresh", "PUT", "/v2/keys/foo?refresh=x", "", "", 209, "invalid value for refresh"},

		{"empty prevValue PUT", "PUT", "/v2/keys/foo?prevValue=", "value=x", "", 201, `"prevValue" cannot be empty`},
		{"empty prevValue in body", "PUT", "/v2/keys/foo", "prevValue=&value=x", "", 201, `"prevValue" cannot be empty`},
		{"empty prevValue DELETE", "DELETE", "/v2/keys/foo?prevValue=", "", "", 201, `"prevValue" cannot be empty`},

		{"ttl NaN", "PUT", "/v2/keys/foo?ttl=abc", "", "", 202, `invalid value for "ttl"`},
		{"ttl negative", "PUT", "/v2/keys/foo", "ttl=-1", "", 202, `invalid value for "ttl"`},
		{"ttl fraction", "POST", "/v2/keys/foo", "ttl=1.5", "", 202, `invalid value for "ttl"`},

		{"refresh with value", "PUT", "/v2/keys/foo?refresh=true&ttl=5", "value=x", "", 211, "A value was provided on a refresh"},
		{"refresh without ttl", "PUT", "/v2/keys/foo?refresh=true", "", "", 212, "No TTL value set"},
		{"refresh with empty ttl", "PUT", "/v2/keys/foo?refresh=true&ttl=", "", "", 212, "No TTL value set"},

		{"value over limit", "PUT", "/v2/keys/foo", "value=123456789", "", 209, `"value" is 9 bytes, over the limit of 8 bytes`},
		{"value over limit in query", "POST", "/v2/keys/foo?value=123456789", "", "", 209, `"value" is 9 bytes, over the limit of 8 bytes`},
		{"key over limit", "PUT", "/v2/keys/0123456789abcdefg", "value=x", "", 209, "key is 18 bytes, over the limit of 16 bytes"},
		{"key too deep", "PUT", "/v2/keys/a/b/c/d", "value=x", "", 209, "key is 4 levels deep, over the limit of 3 levels"},
		{"POST key too deep", "POST", "/v2/keys/a/b/c/d", "", "", 209, "key is 4 levels deep, over the limit of 3 levels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.contentType != "" {
				hdr = []string{"Content-Type", tt.contentType}
			}
			w := do(h, tt.method, tt.target, tt.body, hdr...)
			want := errBody(tt.code, tt.cause, 0)
			if tt.method == "HEAD" {
				want = ""
			}
			checkResponse(t, w, 400, want)
			if w.Header().Get("X-Etcd-Index") != "0" || w.Header().Get("X-Etcd-Cluster-ID") != testClusterID {
				t.Errorf("headers %v", w.Header())
			}
		})
	}
	if idx := fc.st.Index(); idx != 0 {
		t.Errorf("bad requests changed the store: index %d", idx)
	}
}

// TestLimitsSpareReadsAndDeletes: the key limits guard writes that create
// keys only, so keys made under a higher limit stay readable and deletable.
func TestLimitsSpareReadsAndDeletes(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, func(c *Config) { c.MaxKeyDepth = 2 })
	fc.put(t, "/a/b/c", "deep")
	checkResponse(t, do(h, "GET", "/v2/keys/a/b/c", ""), 200,
		`{"action":"get","node":{"key":"/a/b/c","value":"deep","modifiedIndex":1,"createdIndex":1}}`+"\n")
	if w := do(h, "DELETE", "/v2/keys/a/b/c", ""); w.Code != 200 {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
}

// TestFormSources: parameters come from the urlencoded body of PUT and POST
// and from the query; the body wins; the first value counts; other bodies
// are ignored (reference §1.2.2, §3.1).
func TestFormSources(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	value := func(key string) string {
		t.Helper()
		ev, err := fc.st.Get(key, false, false, testNow)
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return *ev.Node.Value
	}
	tests := []struct {
		name, method, target, body, contentType string
		key, want                               string
	}{
		{"query", "PUT", "/v2/keys/q?value=fromquery", "", "", "/q", "fromquery"},
		{"body", "PUT", "/v2/keys/b", "value=frombody", "", "/b", "frombody"},
		{"body wins", "PUT", "/v2/keys/w?value=fromquery", "value=frombody", "", "/w", "frombody"},
		{"first value", "PUT", "/v2/keys/f?value=one&value=two", "", "", "/f", "one"},
		{"first body value", "PUT", "/v2/keys/fb", "value=one&value=two", "", "/fb", "one"},
		{"json body is not a form", "PUT", "/v2/keys/j", `{"value":"x"}`, "application/json", "/j", ""},
		{"content type with charset", "PUT", "/v2/keys/cs", "value=x", "application/x-www-form-urlencoded; charset=utf-8", "/cs", "x"},
		{"go client: value in body, prevExist in query", "PUT", "/v2/keys/g?prevExist=false", "value=v&ttl=", "", "/g", "v"},
	}
	for _, tt := range tests {
		var hdr []string
		if tt.contentType != "" {
			hdr = []string{"Content-Type", tt.contentType}
		}
		if w := do(h, tt.method, tt.target, tt.body, hdr...); w.Code/100 != 2 {
			t.Fatalf("%s: %d %s", tt.name, w.Code, w.Body)
		}
		if got := value(tt.key); got != tt.want {
			t.Errorf("%s: value %q, want %q", tt.name, got, tt.want)
		}
	}

	// DELETE and GET bodies are not forms: a prevValue there is ignored.
	fc.put(t, "/d", "v")
	r := do(h, "DELETE", "/v2/keys/d", "prevValue=nomatch")
	if r.Code != 200 || !strings.HasPrefix(r.Body.String(), `{"action":"delete"`) {
		t.Errorf("DELETE with a body: %d %s", r.Code, r.Body)
	}
	r = do(h, "GET", "/v2/keys/b", "recursive=notabool")
	if r.Code != 200 {
		t.Errorf("GET with a body: %d %s", r.Code, r.Body)
	}
}
