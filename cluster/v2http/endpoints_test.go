package v2http

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/store"
)

func TestVersion(t *testing.T) {
	tests := []struct {
		version string
		want    string
	}{
		{"", `{"etcdserver":"2.3.8","etcdcluster":"2.3.0"}`},
		{"3.4.23", `{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}`},
		{"dev", `{"etcdserver":"dev","etcdcluster":"not_decided"}`},
	}
	for _, tt := range tests {
		h, _ := newTestHandler(t, store.Config{}, func(c *Config) { c.Version = tt.version })
		w := do(h, "GET", "/version", "")
		checkResponse(t, w, 200, tt.want)
		if w.Header().Get("X-Cairn-Version") != "test-1" || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("headers %v", w.Header())
		}
	}
}

func TestHealth(t *testing.T) {
	tests := []struct {
		name string
		mod  func(f *fakeCluster)
		code int
		body string
	}{
		{"healthy", func(f *fakeCluster) {}, 200, `{"health":"true"}`},
		{"no leader", func(f *fakeCluster) { f.status.LeaderID = 0 }, 503, `{"health":"false"}`},
		{"no quorum", func(f *fakeCluster) { f.barrierErr = context.DeadlineExceeded }, 503, `{"health":"false"}`},
		{"corrupt log", func(f *fakeCluster) { f.status.Fault = "cluster: raft log entry 7 is corrupt" }, 503,
			`{"health":"false","reason":"cluster: raft log entry 7 is corrupt"}`},
	}
	for _, tt := range tests {
		h, fc := newTestHandler(t, store.Config{}, nil)
		fc.set(tt.mod)
		w := do(h, "GET", "/health", "")
		checkResponse(t, w, tt.code, tt.body)
		if w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: headers %v", tt.name, w.Header())
		}
	}
}

func TestStats(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	fc.set(func(f *fakeCluster) { f.status.RecvAppendRequestCnt, f.status.SendAppendRequestCnt = 3, 4 })
	fc.put(t, "/a", "1")
	do(h, "GET", "/v2/keys/a", "")
	do(h, "GET", "/v2/keys/nope", "")

	w := do(h, "GET", "/v2/stats/self", "")
	checkResponse(t, w, 200, `{"name":"node1","id":"1","state":"StateLeader","startTime":"2025-01-02T03:00:00Z",`+
		`"leaderInfo":{"leader":"1","uptime":"4m5s","startTime":"2025-01-02T03:00:00Z"},`+
		`"recvAppendRequestCnt":3,"sendAppendRequestCnt":4}`)

	w = do(h, "GET", "/v2/stats/store", "")
	checkResponse(t, w, 200, `{"getsSuccess":1,"getsFail":1,"setsSuccess":1,"setsFail":0,"deleteSuccess":0,"deleteFail":0,`+
		`"updateSuccess":0,"updateFail":0,"createSuccess":0,"createFail":0,"compareAndSwapSuccess":0,"compareAndSwapFail":0,`+
		`"compareAndDeleteSuccess":0,"compareAndDeleteFail":0,"expireCount":0,"watchers":0}`)

	w = do(h, "GET", "/v2/stats/leader", "")
	checkResponse(t, w, 200, `{"leader":"1","followers":{}}`)

	for _, tt := range []struct {
		name string
		mod  func(f *fakeCluster)
	}{
		{"follower", func(f *fakeCluster) { f.status.State, f.status.LeaderID = "StateFollower", 2 }},
		{"no leader", func(f *fakeCluster) { f.status.State, f.status.LeaderID = "StateCandidate", 0 }},
	} {
		fc.set(tt.mod)
		w = do(h, "GET", "/v2/stats/leader", "")
		checkResponse(t, w, 403, `{"message":"not current leader"}`)
		if w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: headers %v", tt.name, w.Header())
		}
	}
	fc.set(func(f *fakeCluster) { f.status.LeaderStartTime = testNow.Add(-90 * 1e9) })
	w = do(h, "GET", "/v2/stats/self", "")
	checkResponse(t, w, 200, `{"name":"node1","id":"1","state":"StateCandidate","startTime":"2025-01-02T03:00:00Z",`+
		`"leaderInfo":{"leader":"","uptime":"1m30s","startTime":"2025-01-02T03:02:35Z"},`+
		`"recvAppendRequestCnt":3,"sendAppendRequestCnt":4}`)
}

func TestMachines(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	fc.set(func(f *fakeCluster) {
		f.members = []cluster.Member{
			{ID: 3, ClientURLs: []string{"https://10.0.0.3:4001"}},
			{ID: 1, ClientURLs: []string{"https://10.0.0.1:4001", "https://[::1]:4001"}},
			{ID: 2},
		}
	})
	for _, m := range []string{"GET", "HEAD"} {
		w := do(h, m, "/v2/machines", "")
		want := "https://10.0.0.1:4001, https://10.0.0.3:4001, https://[::1]:4001"
		if m == "HEAD" {
			want = ""
		}
		checkResponse(t, w, 200, want)
		if w.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("headers %v", w.Header())
		}
	}
}

func TestMembersRead(t *testing.T) {
	h, fc := newTestHandler(t, store.Config{}, nil)
	tests := []struct {
		name, method, target string
		mod                  func(f *fakeCluster)
		code                 int
		body                 string
	}{
		{"list", "GET", "/v2/members", nil, 200,
			`{"members":[{"id":"1","name":"node1","peerURLs":["https://10.0.0.1:7001"],"clientURLs":["https://10.0.0.1:4001"]},` +
				`{"id":"2","name":"","peerURLs":["https://10.0.0.2:7001"],"clientURLs":[]}]}` + "\n"},
		{"list with slash", "GET", "/v2/members/", nil, 200,
			`{"members":[{"id":"1","name":"node1","peerURLs":["https://10.0.0.1:7001"],"clientURLs":["https://10.0.0.1:4001"]},` +
				`{"id":"2","name":"","peerURLs":["https://10.0.0.2:7001"],"clientURLs":[]}]}` + "\n"},
		{"leader", "GET", "/v2/members/leader", nil, 200,
			`{"id":"1","name":"node1","peerURLs":["https://10.0.0.1:7001"],"clientURLs":["https://10.0.0.1:4001"]}` + "\n"},
		{"unknown", "GET", "/v2/members/1", nil, 404, `{"message":"Not found"}`},
		{"no admin", "POST", "/v2/members", nil, 501, `{"message":"membership changes are not supported by this server"}`},
		{"no admin delete", "DELETE", "/v2/members/2", nil, 501, `{"message":"membership changes are not supported by this server"}`},
		{"during election", "GET", "/v2/members/leader", func(f *fakeCluster) { f.status.LeaderID = 0 }, 503, `{"message":"During election"}`},
		{"empty", "GET", "/v2/members", func(f *fakeCluster) { f.members = nil }, 200, `{"members":[]}` + "\n"},
	}
	for _, tt := range tests {
		if tt.mod != nil {
			fc.set(tt.mod)
		}
		w := do(h, tt.method, tt.target, "")
		if w.Code != tt.code || w.Body.String() != tt.body {
			t.Errorf("%s: got %d %q, want %d %q", tt.name, w.Code, w.Body, tt.code, tt.body)
		}
		if w.Header().Get("X-Etcd-Cluster-ID") != testClusterID || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: headers %v", tt.name, w.Header())
		}
	}
}

// adminCluster adds MemberAdmin to the fake.
type adminCluster struct {
	*fakeCluster
	err   error
	calls []string
}

type statusErr int

func (e statusErr) Error() string   { return "membership: status " + http.StatusText(int(e)) }
func (e statusErr) StatusCode() int { return int(e) }

func (a *adminCluster) AddMember(ctx context.Context, peerURLs []string) (cluster.Member, error) {
	a.calls = append(a.calls, "add "+peerURLs[0])
	return cluster.Member{ID: 0xa, PeerURLs: peerURLs}, a.err
}

func (a *adminCluster) UpdateMember(ctx context.Context, id uint64, peerURLs []string) error {
	a.calls = append(a.calls, "update "+hexID(id)+" "+peerURLs[0])
	return a.err
}

func (a *adminCluster) RemoveMember(ctx context.Context, id uint64) error {
	a.calls = append(a.calls, "remove "+hexID(id))
	return a.err
}

func TestMembersAdmin(t *testing.T) {
	ac := &adminCluster{fakeCluster: newFakeCluster(store.Config{})}
	h, err := New(Config{Cluster: ac})
	if err != nil {
		t.Fatal(err)
	}
	const jsonCT = "application/json"
	tests := []struct {
		name, method, target, body, ct string
		err                            error
		code                           int
		want                           string
		call                           string
	}{
		{"add", "POST", "/v2/members", `{"peerURLs":["https://10.0.0.9:7001","https://10.0.0.8:7001"]}`, jsonCT, nil, 201,
			`{"id":"a","name":"","peerURLs":["https://10.0.0.8:7001","https://10.0.0.9:7001"],"clientURLs":[]}` + "\n", "add https://10.0.0.8:7001"},
		{"add with charset", "POST", "/v2/members", `{"peerURLs":["https://h:1"]}`, "application/json; charset=utf-8", nil, 201,
			`{"id":"a","name":"","peerURLs":["https://h:1"],"clientURLs":[]}` + "\n", "add https://h:1"},
		{"wrong content type", "POST", "/v2/members", `{"peerURLs":["https://h:1"]}`, "text/plain", nil, 415,
			`{"message":"Bad Content-Type text/plain, accept application/json"}`, ""},
		{"bad json", "POST", "/v2/members", `{"peerURLs":`, jsonCT, nil, 400, `{"message":"unexpected end of JSON input"}`, ""},
		{"no urls", "POST", "/v2/members", `{}`, jsonCT, nil, 400, `{"message":"no valid URLs given"}`, ""},
		{"plain http", "POST", "/v2/members", `{"peerURLs":["http://h:1"]}`, jsonCT, nil, 400, `{"message":"URL scheme must be https: http://h:1"}`, ""},
		{"no port", "POST", "/v2/members", `{"peerURLs":["https://h"]}`, jsonCT, nil, 400, `{"message":"URL address does not have the form \"host:port\": https://h"}`, ""},
		{"path", "POST", "/v2/members", `{"peerURLs":["https://h:1/x"]}`, jsonCT, nil, 400, `{"message":"URL must not contain a path: https://h:1/x"}`, ""},
		{"add conflict", "POST", "/v2/members", `{"peerURLs":["https://h:1"]}`, jsonCT, statusErr(409), 409, `{"message":"membership: status Conflict"}`, "add https://h:1"},
		{"update", "PUT", "/v2/members/1f", `{"peerURLs":["https://h:2"]}`, jsonCT, nil, 204, "", "update 1f https://h:2"},
		{"update unknown", "PUT", "/v2/members/1f", `{"peerURLs":["https://h:2"]}`, jsonCT, statusErr(404), 404, `{"message":"No such member: 1f"}`, "update 1f https://h:2"},
		{"update without id", "PUT", "/v2/members", `{"peerURLs":["https://h:2"]}`, jsonCT, nil, 405, "Method Not Allowed\n", ""},
		{"remove", "DELETE", "/v2/members/2", "", "", nil, 204, "", "remove 2"},
		{"remove bad id", "DELETE", "/v2/members/xyz", "", "", nil, 404, `{"message":"No such member: xyz"}`, ""},
		{"remove removed", "DELETE", "/v2/members/2", "", "", statusErr(410), 410, `{"message":"Member permanently removed: 2"}`, "remove 2"},
		{"remove fails", "DELETE", "/v2/members/2", "", "", errors.New("raft: timeout"), 500, `{"message":"Internal Server Error"}`, "remove 2"},
	}
	for _, tt := range tests {
		ac.err, ac.calls = tt.err, nil
		var hdr []string
		if tt.ct != "" {
			hdr = []string{"Content-Type", tt.ct}
		}
		w := do(h, tt.method, tt.target, tt.body, hdr...)
		if w.Code != tt.code || w.Body.String() != tt.want {
			t.Errorf("%s: got %d %q, want %d %q", tt.name, w.Code, w.Body, tt.code, tt.want)
		}
		call := ""
		if len(ac.calls) > 0 {
			call = ac.calls[0]
		}
		if call != tt.call {
			t.Errorf("%s: call %q, want %q", tt.name, call, tt.call)
		}
	}
}
