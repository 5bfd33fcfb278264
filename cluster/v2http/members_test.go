package v2http

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/store"
)

// codeErr is a MemberAdmin error with a status and a message of its own, as
// the cluster's membership errors are.
type codeErr struct {
	code int
	msg  string
}

func (e codeErr) Error() string   { return e.msg }
func (e codeErr) StatusCode() int { return e.code }

// TestMembersConformance pins etcd 2.3.8's membersHandler (reference §1.6)
// beyond the basic cases of TestMembersAdmin: status codes, bodies and
// headers of every error path, in etcd's order of checks.
func TestMembersConformance(t *testing.T) {
	ac := &adminCluster{fakeCluster: newFakeCluster(store.Config{})}
	h, err := New(Config{Cluster: ac, MaxRequestBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	const jsonCT = "application/json"
	tests := []struct {
		name, method, target, body, ct string
		err                            error
		code                           int
		want                           string // exact body; "json: …" for a prefix
		call                           string
		clusterID                      bool // X-Etcd-Cluster-ID expected
	}{
		// GET
		{"leader with slash", "GET", "/v2/members/leader/", "", "", nil, 404, `{"message":"Not found"}`, "", true},
		{"HEAD", "HEAD", "/v2/members", "", "", nil, 405, "", "", false},

		// POST
		{"add on a sub-path", "POST", "/v2/members/whatever", `{"peerURLs":["https://h:1"]}`, jsonCT, nil, 201,
			`{"id":"a","name":"","peerURLs":["https://h:1"],"clientURLs":[]}` + "\n", "add https://h:1", true},
		{"add trims urls", "POST", "/v2/members", `{"peerURLs":[" https://h:1 "]}`, jsonCT, nil, 201,
			`{"id":"a","name":"","peerURLs":["https://h:1"],"clientURLs":[]}` + "\n", "add https://h:1", true},
		{"add id exists", "POST", "/v2/members", `{"peerURLs":["https://h:1"]}`, jsonCT, codeErr{409, "membership: ID exists"}, 409,
			`{"message":"membership: ID exists"}`, "add https://h:1", true},
		{"add peer url exists, wrapped", "POST", "/v2/members", `{"peerURLs":["https://h:1"]}`, jsonCT,
			fmt.Errorf("add: %w", codeErr{409, "membership: peerURL exists"}), 409, `{"message":"add: membership: peerURL exists"}`, "add https://h:1", true},
		{"add times out", "POST", "/v2/members", `{"peerURLs":["https://h:1"]}`, jsonCT, context.DeadlineExceeded, 500,
			`{"message":"Internal Server Error"}`, "add https://h:1", true},
		{"add no content type", "POST", "/v2/members", `{"peerURLs":["https://h:1"]}`, "", nil, 415,
			`{"message":"Bad Content-Type , accept application/json"}`, "", true},
		{"add form content type", "POST", "/v2/members", `peerURLs=https://h:1`, "application/x-www-form-urlencoded", nil, 415,
			`{"message":"Bad Content-Type application/x-www-form-urlencoded, accept application/json"}`, "", true},
		{"add empty body", "POST", "/v2/members", "", jsonCT, nil, 400, `{"message":"unexpected end of JSON input"}`, "", true},
		{"add null", "POST", "/v2/members", "null", jsonCT, nil, 400, `{"message":"no valid URLs given"}`, "", true},
		{"add empty list", "POST", "/v2/members", `{"peerURLs":[]}`, jsonCT, nil, 400, `{"message":"no valid URLs given"}`, "", true},
		{"add wrong type", "POST", "/v2/members", `{"peerURLs":"https://h:1"}`, jsonCT, nil, 400, `json: `, "", true},
		{"add one bad url", "POST", "/v2/members", `{"peerURLs":["https://h:1","unix://x"]}`, jsonCT, nil, 400,
			`{"message":"URL scheme must be https: unix://x"}`, "", true},
		{"add body too large", "POST", "/v2/members", `{"peerURLs":["https://` + strings.Repeat("h", 64) + `:1"]}`, jsonCT, nil, 400,
			`{"message":"http: request body too large"}`, "", true},

		// PUT
		{"update peer url exists", "PUT", "/v2/members/2", `{"peerURLs":["https://h:2"]}`, jsonCT, codeErr{409, "membership: peerURL exists"}, 409,
			`{"message":"membership: peerURL exists"}`, "update 2 https://h:2", true},
		{"update wrong content type", "PUT", "/v2/members/2", `{"peerURLs":["https://h:2"]}`, "text/plain", nil, 415,
			`{"message":"Bad Content-Type text/plain, accept application/json"}`, "", true},
		{"update bad url", "PUT", "/v2/members/2", `{"peerURLs":["https://h:2/p"]}`, jsonCT, nil, 400,
			`{"message":"URL must not contain a path: https://h:2/p"}`, "", true},
		{"update bad id first", "PUT", "/v2/members/zz", `not json`, "text/plain", nil, 404, `{"message":"No such member: zz"}`, "", true},
		{"update removed", "PUT", "/v2/members/2", `{"peerURLs":["https://h:2"]}`, jsonCT, codeErr{410, "membership: ID removed"}, 410,
			`{"message":"Member permanently removed: 2"}`, "update 2 https://h:2", true},
		{"update fails", "PUT", "/v2/members/2", `{"peerURLs":["https://h:2"]}`, jsonCT, errors.New("raft: leadership lost"), 500,
			`{"message":"Internal Server Error"}`, "update 2 https://h:2", true},

		// DELETE
		{"remove canonical id", "DELETE", "/v2/members/0A", "", "", codeErr{404, "membership: ID not found"}, 404,
			`{"message":"No such member: a"}`, "remove a", true},
		{"remove leader path", "DELETE", "/v2/members/leader", "", "", nil, 404, `{"message":"No such member: leader"}`, "", true},
		{"remove without id", "DELETE", "/v2/members", "", "", nil, 405, "Method Not Allowed\n", "", true},
		{"remove with slash only", "DELETE", "/v2/members/", "", "", nil, 405, "Method Not Allowed\n", "", true},
		{"remove bad request", "DELETE", "/v2/members/2", "", "", codeErr{400, "membership: cannot remove the last member"}, 400,
			`{"message":"membership: cannot remove the last member"}`, "remove 2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ac.err, ac.calls = tt.err, nil
			var hdr []string
			if tt.ct != "" {
				hdr = []string{"Content-Type", tt.ct}
			}
			var w *result
			if tt.body != "" && tt.ct == "" {
				// do sends a body as a form unless told otherwise; this
				// case is about a missing Content-Type.
				w = serve(h, httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body)))
			} else {
				w = do(h, tt.method, tt.target, tt.body, hdr...)
			}
			got := w.Body.String()
			switch {
			case tt.method == "HEAD":
			case strings.HasPrefix(tt.want, "json: "):
				if !strings.HasPrefix(got, `{"message":"json: `) {
					t.Errorf("body %q, want a JSON decoding error", got)
				}
			case got != tt.want:
				t.Errorf("body %q, want %q", got, tt.want)
			}
			if w.Code != tt.code {
				t.Errorf("status %d, want %d", w.Code, tt.code)
			}
			if got := w.Header().Get("X-Etcd-Cluster-ID"); (got == testClusterID) != tt.clusterID {
				t.Errorf("X-Etcd-Cluster-ID %q, want it: %v", got, tt.clusterID)
			}
			if ct := w.Header().Get("Content-Type"); strings.HasPrefix(tt.want, "{") && ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tt.code == 405 && tt.method == "DELETE" && w.Header().Get("Allow") != "" {
				t.Errorf("405 for a missing ID has Allow %q; etcd sends none", w.Header().Get("Allow"))
			}
			call := ""
			if len(ac.calls) > 0 {
				call = ac.calls[0]
			}
			if call != tt.call {
				t.Errorf("call %q, want %q", call, tt.call)
			}
		})
	}
}

func TestMembersNoContent(t *testing.T) {
	ac := &adminCluster{fakeCluster: newFakeCluster(store.Config{})}
	h, err := New(Config{Cluster: ac})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ method, body string }{
		{"DELETE", ""},
		{"PUT", `{"peerURLs":["https://h:2"]}`},
	} {
		w := do(h, tt.method, "/v2/members/2", tt.body, "Content-Type", "application/json")
		if w.Code != 204 || w.Body.Len() != 0 || w.Header().Get("X-Etcd-Cluster-ID") != testClusterID {
			t.Errorf("%s: %d %q %v; want 204, no body, the cluster ID", tt.method, w.Code, w.Body, w.Header())
		}
	}
}

func TestMembersLeaderUnknown(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	// A leader this node has not yet learnt the member record of.
	fc.set(func(f *fakeCluster) { f.status.LeaderID = 9 })
	w := do(h, "GET", "/v2/members/leader", "")
	checkResponse(t, w, 503, `{"message":"During election"}`)
}
