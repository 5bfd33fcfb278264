package v2http

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/store"
)

// TestKeysDispatch runs reference §1.2.3's rows and §1.2.5's byte-exact
// examples in order on one fresh store (index 0), so every index is known.
func TestKeysDispatch(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	steps := []struct {
		name      string
		method    string
		target    string
		body      string
		code      int
		want      string // without the trailing newline
		etcdIndex uint64
		barriers  int64 // read barriers the request takes
	}{
		// §1.2.5 examples (indexes from a fresh store).
		{"set new", "PUT", "/v2/keys/foo/bar", "value=bar", 201,
			`{"action":"set","node":{"key":"/foo/bar","value":"bar","modifiedIndex":1,"createdIndex":1}}`, 1, 0},
		{"set dir", "PUT", "/v2/keys/foodir?dir=true", "", 201,
			`{"action":"set","node":{"key":"/foodir","dir":true,"modifiedIndex":2,"createdIndex":2}}`, 2, 0},
		{"set empty value", "PUT", "/v2/keys/fooempty", "value=", 201,
			`{"action":"set","node":{"key":"/fooempty","value":"","modifiedIndex":3,"createdIndex":3}}`, 3, 0},
		{"noValueOnSuccess", "PUT", "/v2/keys/foo/novalue", "value=bar&noValueOnSuccess=true", 201,
			`{"action":"set"}`, 4, 0},
		{"set for cas", "PUT", "/v2/keys/cas/foo", "value=XXX", 201,
			`{"action":"set","node":{"key":"/cas/foo","value":"XXX","modifiedIndex":5,"createdIndex":5}}`, 5, 0},
		{"cas fails", "PUT", "/v2/keys/cas/foo", "value=YYY&prevIndex=10", 412,
			`{"errorCode":101,"message":"Compare failed","cause":"[10 != 5]","index":5}`, 5, 0},
		{"post in-order", "POST", "/v2/keys/foo", "value=XXX", 201,
			`{"action":"create","node":{"key":"/foo/00000000000000000006","value":"XXX","modifiedIndex":6,"createdIndex":6}}`, 6, 0},
		{"mkdir", "PUT", "/v2/keys/emptydir?dir=true", "", 201,
			`{"action":"set","node":{"key":"/emptydir","dir":true,"modifiedIndex":7,"createdIndex":7}}`, 7, 0},
		{"delete dir without dir", "DELETE", "/v2/keys/emptydir", "", 403,
			`{"errorCode":102,"message":"Not a file","cause":"/emptydir","index":7}`, 7, 0},
		{"fill foodir", "PUT", "/v2/keys/foodir/child", "value=x", 201,
			`{"action":"set","node":{"key":"/foodir/child","value":"x","modifiedIndex":8,"createdIndex":8}}`, 8, 0},
		{"delete non-empty dir", "DELETE", "/v2/keys/foodir?dir=true", "", 403,
			`{"errorCode":108,"message":"Directory not empty","cause":"/foodir","index":8}`, 8, 0},
		{"empty prevValue", "DELETE", "/v2/keys/foovalue?prevValue=", "", 400,
			`{"errorCode":201,"message":"PrevValue is Required in POST form","cause":"\"prevValue\" cannot be empty","index":0}`, 0, 0},

		// §1.2.3 rows.
		{"get", "GET", "/v2/keys/foo/bar", "", 200,
			`{"action":"get","node":{"key":"/foo/bar","value":"bar","modifiedIndex":1,"createdIndex":1}}`, 8, 1},
		{"get quorum", "GET", "/v2/keys/foo/bar?quorum=true", "", 200,
			`{"action":"get","node":{"key":"/foo/bar","value":"bar","modifiedIndex":1,"createdIndex":1}}`, 8, 1},
		{"get stale", "GET", "/v2/keys/foo/bar?stale=true", "", 200,
			`{"action":"get","node":{"key":"/foo/bar","value":"bar","modifiedIndex":1,"createdIndex":1}}`, 8, 0},
		{"get stale and quorum", "GET", "/v2/keys/foo/bar?stale=true&quorum=true", "", 200,
			`{"action":"get","node":{"key":"/foo/bar","value":"bar","modifiedIndex":1,"createdIndex":1}}`, 8, 1},
		{"head", "HEAD", "/v2/keys/foo/bar", "", 200, ``, 8, 1},
		{"head missing", "HEAD", "/v2/keys/nothere", "", 404, ``, 8, 1},
		{"update", "PUT", "/v2/keys/foo/bar?prevExist=true", "value=b2", 200,
			`{"action":"update","node":{"key":"/foo/bar","value":"b2","modifiedIndex":9,"createdIndex":1},"prevNode":{"key":"/foo/bar","value":"bar","modifiedIndex":1,"createdIndex":1}}`, 9, 0},
		{"prevExist=true with prevIndex is cas", "PUT", "/v2/keys/foo/bar?prevExist=true&prevIndex=9", "value=b3", 200,
			`{"action":"compareAndSwap","node":{"key":"/foo/bar","value":"b3","modifiedIndex":10,"createdIndex":1},"prevNode":{"key":"/foo/bar","value":"b2","modifiedIndex":9,"createdIndex":1}}`, 10, 0},
		{"prevExist=false ignores prevValue", "PUT", "/v2/keys/new?prevExist=false&prevValue=zzz", "value=n", 201,
			`{"action":"create","node":{"key":"/new","value":"n","modifiedIndex":11,"createdIndex":11}}`, 11, 0},
		{"create existing", "PUT", "/v2/keys/new?prevExist=false", "value=n", 412,
			`{"errorCode":105,"message":"Key already exists","cause":"/new","index":11}`, 11, 0},
		{"prevValue is cas", "PUT", "/v2/keys/new?prevValue=n", "value=m", 200,
			`{"action":"compareAndSwap","node":{"key":"/new","value":"m","modifiedIndex":12,"createdIndex":11},"prevNode":{"key":"/new","value":"n","modifiedIndex":11,"createdIndex":11}}`, 12, 0},
		{"set replaces", "PUT", "/v2/keys/new", "value=o", 200,
			`{"action":"set","node":{"key":"/new","value":"o","modifiedIndex":13,"createdIndex":13},"prevNode":{"key":"/new","value":"m","modifiedIndex":12,"createdIndex":11}}`, 13, 0},
		{"compareAndDelete", "DELETE", "/v2/keys/new?prevIndex=13", "", 200,
			`{"action":"compareAndDelete","node":{"key":"/new","modifiedIndex":14,"createdIndex":13},"prevNode":{"key":"/new","value":"o","modifiedIndex":13,"createdIndex":13}}`, 14, 0},
		{"delete", "DELETE", "/v2/keys/fooempty", "", 200,
			`{"action":"delete","node":{"key":"/fooempty","modifiedIndex":15,"createdIndex":3},"prevNode":{"key":"/fooempty","value":"","modifiedIndex":3,"createdIndex":3}}`, 15, 0},
		{"delete dir recursive", "DELETE", "/v2/keys/foodir?recursive=true", "", 200,
			`{"action":"delete","node":{"key":"/foodir","dir":true,"modifiedIndex":16,"createdIndex":2},"prevNode":{"key":"/foodir","dir":true,"modifiedIndex":2,"createdIndex":2}}`, 16, 0},
		{"write root", "PUT", "/v2/keys/", "value=x", 400,
			`{"errorCode":107,"message":"Root is read only","cause":"/","index":16}`, 16, 0},
		{"delete root", "DELETE", "/v2/keys?recursive=true", "", 400,
			`{"errorCode":107,"message":"Root is read only","cause":"/","index":16}`, 16, 0},
		{"get missing", "GET", "/v2/keys/missing/deeper", "", 404,
			`{"errorCode":100,"message":"Key not found","cause":"/missing","index":16}`, 16, 1},
		{"get through a file", "GET", "/v2/keys/foo/bar/baz", "", 400,
			`{"errorCode":104,"message":"Not a directory","cause":"/foo/bar","index":16}`, 16, 1},
		{"set with ttl", "PUT", "/v2/keys/ttl", "value=t&ttl=5", 201,
			`{"action":"set","node":{"key":"/ttl","value":"t","expiration":"2025-01-02T03:04:10Z","ttl":5,"modifiedIndex":17,"createdIndex":17}}`, 17, 0},
		{"refresh keeps value", "PUT", "/v2/keys/ttl?refresh=true&prevExist=true", "ttl=9", 200,
			`{"action":"update","node":{"key":"/ttl","value":"t","expiration":"2025-01-02T03:04:14Z","ttl":9,"modifiedIndex":18,"createdIndex":17},"prevNode":{"key":"/ttl","value":"t","expiration":"2025-01-02T03:04:10Z","ttl":5,"modifiedIndex":17,"createdIndex":17}}`, 18, 0},
		{"html escaped", "PUT", "/v2/keys/html", "value=%3Ca%26b%3E", 201,
			`{"action":"set","node":{"key":"/html","value":"\u003ca\u0026b\u003e","modifiedIndex":19,"createdIndex":19}}`, 19, 0},
		{"trailing slash addresses the key", "GET", "/v2/keys/foo/bar/", "", 200,
			`{"action":"get","node":{"key":"/foo/bar","value":"b3","modifiedIndex":10,"createdIndex":1}}`, 19, 1},
		{"sorted recursive dir", "GET", "/v2/keys/foo?recursive=true&sorted=true", "", 200,
			`{"action":"get","node":{"key":"/foo","dir":true,"nodes":[{"key":"/foo/00000000000000000006","value":"XXX","modifiedIndex":6,"createdIndex":6},{"key":"/foo/bar","value":"b3","modifiedIndex":10,"createdIndex":1},{"key":"/foo/novalue","value":"bar","modifiedIndex":4,"createdIndex":4}],"modifiedIndex":1,"createdIndex":1}}`, 19, 1},
		{"empty dir has no nodes", "GET", "/v2/keys/emptydir", "", 200,
			`{"action":"get","node":{"key":"/emptydir","dir":true,"modifiedIndex":7,"createdIndex":7}}`, 19, 1},
		{"root", "GET", "/v2/keys/?sorted=true", "", 200,
			`{"action":"get","node":{"dir":true,"nodes":[{"key":"/cas","dir":true,"modifiedIndex":5,"createdIndex":5},{"key":"/emptydir","dir":true,"modifiedIndex":7,"createdIndex":7},{"key":"/foo","dir":true,"modifiedIndex":1,"createdIndex":1},{"key":"/html","value":"\u003ca\u0026b\u003e","modifiedIndex":19,"createdIndex":19},{"key":"/ttl","value":"t","expiration":"2025-01-02T03:04:14Z","ttl":9,"modifiedIndex":18,"createdIndex":17}]}}`, 19, 1},
	}
	for _, s := range steps {
		before := fc.barriers.Load()
		w := do(h, s.method, s.target, s.body)
		want := s.want
		if s.method != "HEAD" {
			want += "\n"
		}
		if w.Code != s.code || w.Body.String() != want {
			t.Fatalf("%s: %s %s\ngot  %d %s\nwant %d %s", s.name, s.method, s.target, w.Code, w.Body, s.code, want)
		}
		if got := w.Header().Get("X-Etcd-Index"); got != strconv.FormatUint(s.etcdIndex, 10) {
			t.Errorf("%s: X-Etcd-Index %q, want %d", s.name, got, s.etcdIndex)
		}
		if got := fc.barriers.Load() - before; got != s.barriers {
			t.Errorf("%s: %d read barriers, want %d", s.name, got, s.barriers)
		}
	}
}

func TestKeysHeaders(t *testing.T) {
	h, _ := newTestHandler(t, store.Config{}, nil)
	tests := []struct {
		name, method, target, body string
		code                       int
		raft                       bool // X-Raft-* expected (not on errors)
	}{
		{"write", "PUT", "/v2/keys/a", "value=1", 201, true},
		{"read", "GET", "/v2/keys/a", "", 200, true},
		{"head", "HEAD", "/v2/keys/a", "", 200, true},
		{"store error", "GET", "/v2/keys/b", "", 404, false},
		{"parse error", "GET", "/v2/keys/a?recursive=x", "", 400, false},
		{"405", "PATCH", "/v2/keys/a", "", 405, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(h, tt.method, tt.target, tt.body)
			if w.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			hd := w.Header()
			if tt.code == 405 { // etcd sets the ID after its method check
				if got := hd.Get("X-Etcd-Cluster-ID"); got != "" {
					t.Errorf("405 has X-Etcd-Cluster-ID %q, etcd sends none", got)
				}
				return
			}
			if got := hd.Get("X-Etcd-Cluster-ID"); got != testClusterID {
				t.Errorf("X-Etcd-Cluster-ID %q", got)
			}
			if got := hd.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			if hd.Get("X-Etcd-Index") == "" {
				t.Errorf("no X-Etcd-Index")
			}
			ri, rt := hd.Get("X-Raft-Index"), hd.Get("X-Raft-Term")
			if tt.raft && (ri != "42" || rt != "7") {
				t.Errorf("X-Raft-Index %q X-Raft-Term %q, want 42 and 7", ri, rt)
			}
			if !tt.raft && (ri != "" || rt != "") {
				t.Errorf("error carries X-Raft-Index %q X-Raft-Term %q", ri, rt)
			}
		})
	}
}

func TestHeadMatchesGet(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	fc.put(t, "/k", "some value")
	for _, target := range []string{"/v2/keys/k", "/v2/keys/missing"} {
		g := do(h, "GET", target, "")
		hd := do(h, "HEAD", target, "")
		if hd.Code != g.Code || hd.Body.Len() != 0 {
			t.Errorf("HEAD %s: %d with %d body bytes; GET %d", target, hd.Code, hd.Body.Len(), g.Code)
		}
		if got, want := hd.Header().Get("Content-Length"), strconv.Itoa(g.Body.Len()); got != want {
			t.Errorf("HEAD %s: Content-Length %s, want %s", target, got, want)
		}
		if hd.Header().Get("X-Etcd-Index") != g.Header().Get("X-Etcd-Index") {
			t.Errorf("HEAD %s: X-Etcd-Index differs", target)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	h, _ := newTestHandler(t, store.Config{}, nil)
	tests := []struct{ method, target, allow string }{
		{"PATCH", "/v2/keys/foo", "HEAD,GET,PUT,POST,DELETE"},
		{"OPTIONS", "/v2/keys", "HEAD,GET,PUT,POST,DELETE"},
		{"PATCH", "/v2/members", "GET,POST,DELETE,PUT"},
		{"HEAD", "/v2/members", "GET,POST,DELETE,PUT"},
		{"POST", "/v2/machines", "GET,HEAD"},
		{"POST", "/v2/stats/self", "GET"},
		{"PUT", "/v2/stats/store", "GET"},
		{"DELETE", "/v2/stats/leader", "GET"},
		{"POST", "/version", "GET"},
		{"HEAD", "/health", "GET"},
	}
	for _, tt := range tests {
		w := do(h, tt.method, tt.target, "")
		body := "Method Not Allowed\n"
		if tt.method == "HEAD" {
			body = w.Body.String() // a server drops it; the recorder keeps it
		}
		if w.Code != 405 || w.Header().Get("Allow") != tt.allow || w.Body.String() != body {
			t.Errorf("%s %s: %d Allow %q body %q; want 405 Allow %q", tt.method, tt.target, w.Code, w.Header().Get("Allow"), w.Body, tt.allow)
		}
	}
}

func TestCleanPathRedirect(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	fc.put(t, "/foo", "bar")
	tests := []struct {
		method, target string
		code           int
		location       string
	}{
		{"GET", "/v2/keys//foo", 301, "/v2/keys/foo"},
		{"GET", "/v2/keys/a/../foo?wait=true&waitIndex=3", 301, "/v2/keys/foo?wait=true&waitIndex=3"},
		{"HEAD", "/v2/keys/./foo", 301, "/v2/keys/foo"},
		{"GET", "//v2/machines", 301, "/v2/machines"},
		{"PUT", "/v2/keys//foo", 307, "/v2/keys/foo"},
		{"DELETE", "/v2/keys/x/../foo", 307, "/v2/keys/foo"},
	}
	for _, tt := range tests {
		w := do(h, tt.method, tt.target, "")
		if w.Code != tt.code || w.Header().Get("Location") != tt.location {
			t.Errorf("%s %s: %d Location %q; want %d %q", tt.method, tt.target, w.Code, w.Header().Get("Location"), tt.code, tt.location)
		}
	}
	if ev, _ := fc.st.Get("/foo", false, false, testNow); *ev.Node.Value != "bar" {
		t.Errorf("a redirected write changed the store")
	}
}

func TestNotFound(t *testing.T) {
	h, _ := newTestHandler(t, store.Config{}, nil)
	for _, target := range []string{"/", "/v2", "/v2/keysfoo", "/v2/stats", "/v2/machines/", "/v2/leader", "/v1/keys/foo"} {
		w := do(h, "GET", target, "")
		checkResponse(t, w, 404, "404 page not found\n")
	}
}

func TestClusterErrors(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	fc.put(t, "/k", "v")
	fc.set(func(f *fakeCluster) {
		f.proposeErr = errors.New("cluster: request timed out")
		f.barrierErr = errors.New("cluster: not leader anymore")
	})
	tests := []struct {
		name, method, target, body string
		code                       int
		want                       string
	}{
		{"propose", "PUT", "/v2/keys/k", "value=w", 500, errBody(300, "cluster: request timed out", 0)},
		{"post", "POST", "/v2/keys/q", "", 500, errBody(300, "cluster: request timed out", 0)},
		{"delete", "DELETE", "/v2/keys/k", "", 500, errBody(300, "cluster: request timed out", 0)},
		{"barrier", "GET", "/v2/keys/k", "", 500, errBody(300, "cluster: not leader anymore", 0)},
		{"quorum", "GET", "/v2/keys/k?quorum=true", "", 500, errBody(300, "cluster: not leader anymore", 0)},
		{"stale skips the barrier", "GET", "/v2/keys/k?stale=true", "", 200,
			`{"action":"get","node":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}` + "\n"},
	}
	for _, tt := range tests {
		w := do(h, tt.method, tt.target, tt.body)
		if w.Code != tt.code || w.Body.String() != tt.want {
			t.Errorf("%s: got %d %q, want %d %q", tt.name, w.Code, w.Body, tt.code, tt.want)
		}
		if tt.code == 500 && (w.Header().Get("X-Etcd-Index") != "0" || w.Header().Get("X-Raft-Index") != "" || w.Header().Get(NotAppliedHeader) != "") {
			t.Errorf("%s: headers %v", tt.name, w.Header())
		}
	}
	// Only a write no leader was reached for is marked as not applied.
	fc.set(func(f *fakeCluster) { f.proposeErr = fmt.Errorf("%w (raft)", cluster.ErrNotLeader) })
	if w := do(h, "PUT", "/v2/keys/k", "value=w"); w.Code != 500 || w.Header().Get(NotAppliedHeader) != "true" {
		t.Errorf("a write without a leader: %d %v; want 500 with %s: true", w.Code, w.Header(), NotAppliedHeader)
	}
	fc.set(func(f *fakeCluster) { f.proposeErr = fmt.Errorf("%w on member n1", cluster.ErrDiskFull) })
	if w := do(h, "PUT", "/v2/keys/k", "value=w"); w.Code != 500 || w.Header().Get(NotAppliedHeader) != "true" {
		t.Errorf("a write refused for a full disk: %d %v; want 500 with %s: true", w.Code, w.Header(), NotAppliedHeader)
	}
}

// A Propose that wraps a store error still answers the store's error.
func TestWrappedStoreError(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	fc.set(func(f *fakeCluster) {
		f.proposeErr = errors.Join(errors.New("applying"), store.NewError(store.EcodeNodeExist, "/x", 9))
	})
	w := do(h, "PUT", "/v2/keys/x?prevExist=false", "value=1")
	checkResponse(t, w, http.StatusPreconditionFailed, errBody(105, "/x", 9))
}

// TestNoValueOnSuccess: set, create, update and compareAndSwap drop node and
// prevNode; other actions and errors are unchanged; history keeps the node.
func TestNoValueOnSuccess(t *testing.T) {
	h, _ := newTestHandler(t, store.Config{}, nil)
	steps := []struct {
		method, target, body string
		code                 int
		want                 string
	}{
		{"PUT", "/v2/keys/k?noValueOnSuccess=true", "value=1", 201, `{"action":"set"}`},
		{"PUT", "/v2/keys/k?noValueOnSuccess=true", "value=2", 200, `{"action":"set"}`},
		{"POST", "/v2/keys/q?noValueOnSuccess=true", "value=1", 201, `{"action":"create"}`},
		{"PUT", "/v2/keys/k?prevExist=true&noValueOnSuccess=true", "value=3", 200, `{"action":"update"}`},
		{"PUT", "/v2/keys/k?prevValue=3&noValueOnSuccess=true", "value=4", 200, `{"action":"compareAndSwap"}`},
		{"PUT", "/v2/keys/k?prevValue=nope&noValueOnSuccess=true", "value=5", 412,
			`{"errorCode":101,"message":"Compare failed","cause":"[nope != 4]","index":5}`},
		{"DELETE", "/v2/keys/k?noValueOnSuccess=true", "", 200,
			`{"action":"delete","node":{"key":"/k","modifiedIndex":6,"createdIndex":2},"prevNode":{"key":"/k","value":"4","modifiedIndex":5,"createdIndex":2}}`},
		{"GET", "/v2/keys/k?wait=true&waitIndex=1", "", 200,
			`{"action":"set","node":{"key":"/k","value":"1","modifiedIndex":1,"createdIndex":1}}`},
	}
	for _, s := range steps {
		w := do(h, s.method, s.target, s.body)
		if w.Code != s.code || w.Body.String() != s.want+"\n" {
			t.Errorf("%s %s: got %d %s, want %d %s", s.method, s.target, w.Code, w.Body, s.code, s.want)
		}
	}
}
