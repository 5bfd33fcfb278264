package e2e

// Authorization through the real HTTPS API, with one client certificate
// per identity: the per-service registration policy of
// docs/authorization.md (a service may register only below its own
// /skydns/internal/cairn/<service>/ prefix), watch filtering, the auth and
// members APIs needing root, and the Go v2 client's auth API against
// Cairn's JSON.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/store"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
	client "go.etcd.io/etcd/client/v2"
)

// authClient is one identity talking to a server.
type authClient struct {
	id    string
	s     *Server
	files tlsconf.Files
	http  *http.Client
}

// newAuthClient issues a client certificate for name ("client/<name>")
// and returns a client using it.
func newAuthClient(t *testing.T, s *Server, name string) *authClient {
	t.Helper()
	dir := t.TempDir()
	cert, key, err := testPKI.IssueClient(TrustDomain, name, filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	f := tlsconf.Files{CAFile: testPKI.CAFile, CertFile: cert, KeyFile: key}
	c, err := NewHTTPClient(f)
	if err != nil {
		t.Fatal(err)
	}
	return &authClient{id: "client/" + name, s: s, files: f, http: c}
}

// do sends one request; a body starting with '{' is JSON, any other a
// form. It returns the status, the body and the X-Etcd-Index header.
func (c *authClient) do(t *testing.T, method, path, body string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case strings.HasPrefix(body, "{"):
		req.Header.Set("Content-Type", "application/json")
	case body != "":
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s %s: %v", c.id, method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s %s: %v", c.id, method, path, err)
	}
	return resp.StatusCode, string(b), resp.Header.Get("X-Etcd-Index")
}

// must checks the status of a request.
func (c *authClient) must(t *testing.T, method, path, body string, code int) string {
	t.Helper()
	got, b, _ := c.do(t, method, path, body)
	if got != code {
		t.Fatalf("%s %s %s: %d %s, want %d", c.id, method, path, got, b, code)
	}
	return b
}

// refused checks that a /v2/keys request is etcd's 110 and that the store
// index did not move (nothing changed), reading the index as root.
func (c *authClient) refused(t *testing.T, root *authClient, method, path, body string) {
	t.Helper()
	before := root.index(t)
	code, b, _ := c.do(t, method, path, body)
	var e store.Error
	if code != http.StatusUnauthorized || json.Unmarshal([]byte(b), &e) != nil || e.ErrorCode != 110 ||
		e.Message != "The request requires user authentication" || e.Cause != "Insufficient credentials" {
		t.Errorf("%s %s %s: %d %s; want 401 with etcd error 110", c.id, method, path, code, b)
	}
	if after := root.index(t); after != before {
		t.Errorf("%s %s %s was refused, yet the store index moved %s -> %s", c.id, method, path, before, after)
	}
}

// index is the store index (X-Etcd-Index of a read).
func (c *authClient) index(t *testing.T) string {
	t.Helper()
	_, _, idx := c.do(t, "GET", "/v2/keys/", "")
	return idx
}

const (
	cairnDir   = "/skydns/internal/cairn"
	webRecord  = `value={"host":"10.0.0.1","port":8080}`
	dbRecord   = `value={"host":"10.0.0.2","port":5432}`
	svcWebRole = `{"role":"svc-web","permissions":{"kv":{"read":[],"write":["/skydns/internal/cairn/web/*"]}}}`
)

func TestAuthServicePolicy(t *testing.T) {
	t.Parallel()
	s := startCairn(t)
	root := &authClient{id: "client/root", s: s, files: s.Files, http: s.HTTP}
	web := newAuthClient(t, s, "web")
	db := newAuthClient(t, s, "db")
	mon := newAuthClient(t, s, "webmon")
	stranger := newAuthClient(t, s, "stranger")

	// The policy of docs/authorization.md, made with the API as root
	// (authorization is off, so anyone could).
	for _, step := range []struct{ path, body string }{
		{"/v2/auth/users/client/root", `{"user":"client/root","roles":["root"]}`},
		{"/v2/auth/roles/svc-web", svcWebRole},
		{"/v2/auth/roles/svc-db", `{"role":"svc-db","permissions":{"kv":{"write":["/skydns/internal/cairn/db/*"]}}}`},
		{"/v2/auth/roles/web-reader", `{"role":"web-reader","permissions":{"kv":{"read":["/skydns/internal/cairn/web/*"]}}}`},
		{"/v2/auth/roles/guest", `{"role":"guest","permissions":{"kv":{"read":["/skydns/*"]}}}`},
		{"/v2/auth/users/client/web", `{"user":"client/web","roles":["svc-web"]}`},
		{"/v2/auth/users/client/db", `{"user":"client/db","roles":["svc-db"]}`},
		{"/v2/auth/users/client/webmon", `{"user":"client/webmon","roles":["web-reader"]}`},
	} {
		root.must(t, "PUT", step.path, step.body, http.StatusCreated)
	}
	// Before enabling, anyone may write anywhere.
	stranger.must(t, "PUT", "/v2/keys/before", "value=1", http.StatusCreated)
	root.must(t, "PUT", "/v2/auth/enable", "", http.StatusOK)
	if b := stranger.must(t, "GET", "/v2/auth/enable", "", http.StatusOK); b != `{"enabled":true}`+"\n" {
		t.Errorf("GET /v2/auth/enable: %q", b)
	}

	// A watcher allowed to read only the web service's prefix watches the
	// whole tree: it must see web's events and nothing else.
	events := watchStream(t, mon, "/v2/keys/?wait=true&recursive=true&stream=true")

	// web registers, heartbeats and deregisters below its own prefix.
	web.must(t, "PUT", "/v2/keys"+cairnDir+"/web/i-1?ttl=30", webRecord, http.StatusCreated)
	web.must(t, "PUT", "/v2/keys"+cairnDir+"/web/i-1?refresh=true&prevExist=true&ttl=30", "", http.StatusOK)
	web.must(t, "PUT", "/v2/keys"+cairnDir+"/web/i-2", webRecord, http.StatusCreated)
	db.must(t, "PUT", "/v2/keys"+cairnDir+"/db/d-1", dbRecord, http.StatusCreated)

	// Everywhere else web gets 110, and nothing changes.
	for _, rq := range []struct{ method, path, body string }{
		{"PUT", "/v2/keys" + cairnDir + "/db/d-1", webRecord},                             // another service's record
		{"DELETE", "/v2/keys" + cairnDir + "/db/d-1", ""},                                 // deregister another service
		{"PUT", "/v2/keys" + cairnDir + "/db/d-1?refresh=true&prevExist=true&ttl=30", ""}, // keep another's record alive
		{"PUT", "/v2/keys" + cairnDir + "/webapp/i-1", webRecord},                         // a name that merely starts with "web"
		{"DELETE", "/v2/keys" + cairnDir + "?recursive=true", ""},                         // the parent
		{"PUT", "/v2/keys/other", "value=x"},                                              // outside discovery
		{"GET", "/v2/keys" + cairnDir + "/web/i-1", ""},                                   // svc-web is write-only
		{"GET", "/v2/keys/_cairn/auth/policy", ""},                                        // the policy itself
	} {
		web.refused(t, root, rq.method, rq.path, rq.body)
	}
	db.refused(t, root, "DELETE", "/v2/keys"+cairnDir+"/web/i-2", "")
	stranger.refused(t, root, "PUT", "/v2/keys"+cairnDir+"/web/i-3", webRecord)
	// The guest (any identity without a user entry) may read discovery.
	stranger.must(t, "GET", "/v2/keys/skydns?recursive=true", "", http.StatusOK)
	stranger.refused(t, root, "GET", "/v2/keys/before", "")

	// The auth and members APIs need root.
	for _, c := range []*authClient{web, stranger} {
		for _, rq := range []struct{ method, path, body string }{
			{"GET", "/v2/auth/users", ""},
			{"PUT", "/v2/auth/users/client/web", `{"user":"client/web","grant":["root"]}`},
			{"PUT", "/v2/auth/roles/svc-web", `{"role":"svc-web","grant":{"kv":{"write":["/*"]}}}`},
			{"DELETE", "/v2/auth/enable", ""},
			{"POST", "/v2/members", `{"peerURLs":["https://127.0.0.1:1"]}`},
		} {
			if code, b, _ := c.do(t, rq.method, rq.path, rq.body); code != http.StatusUnauthorized || b != `{"message":"Insufficient credentials"}` {
				t.Errorf("%s %s %s: %d %s; want 401 Insufficient credentials", c.id, rq.method, rq.path, code, b)
			}
		}
	}
	// The records are as their owners left them.
	if b := root.must(t, "GET", "/v2/keys"+cairnDir+"/db/d-1", "", http.StatusOK); !strings.Contains(b, `10.0.0.2`) {
		t.Errorf("db's record: %s", b)
	}
	web.must(t, "DELETE", "/v2/keys"+cairnDir+"/web/i-1", "", http.StatusOK)
	root.must(t, "GET", "/v2/keys"+cairnDir+"/web/i-1", "", http.StatusNotFound)

	// The watcher saw web's events (not the heartbeat: refreshes reach no
	// watcher, as in etcd), none of db's, and none of the refused ones.
	root.must(t, "PUT", "/v2/keys/other", "value=invisible", http.StatusCreated)
	root.must(t, "PUT", "/v2/keys"+cairnDir+"/web/last", webRecord, http.StatusCreated)
	want := []string{"set web/i-1", "set web/i-2", "delete web/i-1", "set web/last"}
	var got []string
	for range want {
		select {
		case ev := <-events:
			got = append(got, ev)
		case <-time.After(10 * time.Second):
			t.Fatalf("watch: got %v, want %v", got, want)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("the web watcher saw %v, want %v", got, want)
	}

	// The Go v2 client's auth API reads Cairn's answers.
	c, err := client.New(client.Config{Endpoints: []string{s.URL}, Transport: transportFor(t, root.files), HeaderTimeoutPerRequest: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	users, err := client.NewAuthUserAPI(c).ListUsers(ctx)
	if err != nil || !slices.Equal(users, []string{"client/db", "client/root", "client/web", "client/webmon"}) {
		t.Errorf("ListUsers: %v %v", users, err)
	}
	// GetUser first decodes the roles as strings, fails on etcd 2.3's role
	// objects and appends their names to what it got: ["", "svc-web"],
	// against etcd as against Cairn.
	u, err := client.NewAuthUserAPI(c).GetUser(ctx, "client/web")
	if err != nil || u.User != "client/web" || !slices.Contains(u.Roles, "svc-web") {
		t.Errorf("GetUser: %+v %v", u, err)
	}
	role, err := client.NewAuthRoleAPI(c).GetRole(ctx, "svc-web")
	if err != nil || !slices.Equal(role.Permissions.KV.Write, []string{cairnDir + "/web/*"}) {
		t.Errorf("GetRole: %+v %v", role, err)
	}
	if err := client.NewAuthUserAPI(c).AddUser(ctx, "client/x", "secret"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("AddUser with a password: %v, want the refusal explaining certificates", err)
	}

	root.must(t, "DELETE", "/v2/auth/enable", "", http.StatusOK)
	stranger.must(t, "PUT", "/v2/keys/after", "value=1", http.StatusCreated)
}

// TestAuthRegisterSidecar: `cairn register` with the web service's own
// certificate registers and deregisters under the per-service policy.
func TestAuthRegisterSidecar(t *testing.T) {
	t.Parallel()
	s := startCairn(t)
	root := &authClient{id: "client/root", s: s, files: s.Files, http: s.HTTP}
	web := newAuthClient(t, s, "web")
	root.must(t, "PUT", "/v2/auth/users/client/root", `{"user":"client/root","roles":["root"]}`, http.StatusCreated)
	root.must(t, "PUT", "/v2/auth/roles/svc-web", svcWebRole, http.StatusCreated)
	root.must(t, "PUT", "/v2/auth/users/client/web", `{"user":"client/web","roles":["svc-web"]}`, http.StatusCreated)
	root.must(t, "PUT", "/v2/auth/enable", "", http.StatusOK)

	cmd := exec.Command(needCairn(t), "register", "--instance", "side-1", "--service", "web", "--host", "10.0.0.5", "--port", "8080",
		"--ttl", "10s", "--endpoints", s.URL, "--cacert", web.files.CAFile, "--cert", web.files.CertFile, "--key", web.files.KeyFile)
	cmd.Env = cleanEnv("CAIRN_")
	reg := StartProc(t, "cairn register side-1", cmd)
	Poll(t, 20*time.Second, "the registration", func() error {
		if done, err := reg.Exited(); done {
			t.Fatalf("cairn register exited: %v\n%s", err, reg.Tail(4<<10))
		}
		if code, b, _ := root.do(t, "GET", "/v2/keys"+cairnDir+"/web/side-1", ""); code != http.StatusOK {
			return fmt.Errorf("%d %s", code, b)
		}
		return nil
	})
	if err := reg.Stop(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("cairn register: %v\n%s", err, reg.Tail(4<<10))
	}
	root.must(t, "GET", "/v2/keys"+cairnDir+"/web/side-1", "", http.StatusNotFound)
}

// watchStream opens a stream watch as c and returns its events as
// "<action> <key below /skydns/internal/cairn/>".
func watchStream(t *testing.T, c *authClient, path string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", c.s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch: %d", resp.StatusCode)
	}
	out := make(chan string, 64)
	go func() {
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadBytes('\n')
			if err != nil {
				return
			}
			var ev struct {
				Action string `json:"action"`
				Node   struct {
					Key string `json:"key"`
				} `json:"node"`
			}
			s := "bad " + string(line)
			if json.Unmarshal(line, &ev) == nil {
				s = ev.Action + " " + strings.TrimPrefix(ev.Node.Key, cairnDir+"/")
			}
			select {
			case out <- s:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// transportFor is an HTTP transport with the TLS material of f.
func transportFor(t *testing.T, f tlsconf.Files) *http.Transport {
	t.Helper()
	cfg, err := tlsconf.ClientConfigFromFiles(f)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Transport{TLSClientConfig: cfg}
}
