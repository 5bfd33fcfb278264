package server_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/cluster/disk"
	"github.com/cairnkv/cairn/cmd/cairn/server"
	"github.com/cairnkv/cairn/cmd/cairn/server/servertest"
)

// The data-dir fixtures: a member's data dir written by Cairn as it was
// when the on-disk format was 1, one per log store, and what it served
// then. TestDataDirFixture opens a copy of each with today's code; it must
// keep passing after every change (docs/upgrading.md's promise). A new
// format adds new fixtures beside these; these are never rewritten.
//
//	go test ./cmd/cairn/server -run TestWriteDataDirFixture -update-fixture
//
// wrote them (at the commit that added them, before the format file
// existed: a data dir without one, as every member deployed until then).
var updateFixture = flag.Bool("update-fixture", false, "rewrite testdata/datadir-v1-*.tar.gz and .json.gz (only with the code of that format)")

var fixtureStores = []string{"boltdb", "wal"}

func fixturePath(store, ext string) string {
	return filepath.Join("testdata", "datadir-v1-"+store+ext)
}

// fixtureKeys is the number of keys of each kind (plain, dirs, TTL,
// in-order, hidden): enough to span a snapshot and log entries after it,
// few enough to keep the fixtures small.
const fixtureKeys = 100

// farTTL is a TTL that outlives the fixture (about 95 years).
const farTTL = "3000000000"

// fixture is what a fixture's member served: each read's answer (node
// JSON, with "ttl" replaced by true since it counts down) and the DNS
// answers of the registered services.
type fixture struct {
	EtcdIndex uint64                     `json:"etcdIndex"`
	Reads     map[string]json.RawMessage `json:"reads"` // path?query -> body
	DNS       map[string][]string        `json:"dns"`   // "name type" -> answers, TTL 0, sorted
}

// fixtureReads are the reads a fixture records: the whole visible tree,
// and the hidden keys, which listings leave out.
func fixtureReads() []string {
	reads := []string{
		"/v2/keys/?recursive=true&sorted=true",
		"/v2/keys/_hidden?recursive=true&sorted=true",
		"/v2/keys/_mod?recursive=true&sorted=true",
		"/v2/auth/enable",
		"/v2/auth/users",
		"/v2/auth/users/client/app",
		"/v2/auth/roles",
		"/v2/auth/roles/app",
	}
	for i := range 20 {
		reads = append(reads, fmt.Sprintf("/v2/keys/plain/_secret%02d", i))
	}
	return reads
}

var fixtureDNS = []string{"web.cairn.internal. SRV", "db.cairn.internal. SRV", "web-3.web.cairn.internal. A"}

// fixtureClient writes and reads a member for the generator and the test.
type fixtureClient struct {
	t testing.TB
	s *servertest.Server
}

func (c fixtureClient) do(method, path string, form url.Values, body string) (int, http.Header, []byte) {
	c.t.Helper()
	u := c.s.URL + path
	var rd io.Reader
	ctype := ""
	switch {
	case body != "":
		rd, ctype = strings.NewReader(body), "application/json"
	case form != nil:
		rd, ctype = strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.s.Client.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// ok is do that fails the test unless the answer is 2xx.
func (c fixtureClient) ok(method, path string, form url.Values, body string) []byte {
	c.t.Helper()
	code, _, b := c.do(method, path, form, body)
	if code/100 != 2 {
		c.t.Fatalf("%s %s %v %s: %d %s", method, path, form, body, code, b)
	}
	return b
}

func vals(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// record reads what a fixture records.
func (c fixtureClient) record() fixture {
	c.t.Helper()
	f := fixture{Reads: map[string]json.RawMessage{}, DNS: map[string][]string{}}
	for _, r := range fixtureReads() {
		code, h, b := c.do(http.MethodGet, r, nil, "")
		if code != http.StatusOK {
			c.t.Fatalf("GET %s: %d %s", r, code, b)
		}
		if idx, err := strconv.ParseUint(h.Get("X-Etcd-Index"), 10, 64); err == nil {
			f.EtcdIndex = max(f.EtcdIndex, idx)
		}
		f.Reads[r] = normalizeTTL(c.t, b)
	}
	for _, q := range fixtureDNS {
		f.DNS[q] = queryDNS(c.t, c.s.DNSAddr(), q)
	}
	return f
}

// normalizeTTL re-encodes a JSON answer with every "ttl" (seconds left,
// which count down) replaced by true when it is positive.
func normalizeTTL(t testing.TB, b []byte) json.RawMessage {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("answer %s: %v", b, err)
	}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if n, ok := e.(float64); ok && k == "ttl" {
					x[k] = n > 0
					continue
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	out, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// queryDNS asks the member's DNS over TCP ("name type") and returns the
// answers with their TTL zeroed, sorted.
func queryDNS(t testing.TB, addr, q string) []string {
	t.Helper()
	name, typ, _ := strings.Cut(q, " ")
	m := new(dns.Msg)
	m.SetQuestion(name, dns.StringToType[typ])
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("DNS %s: %v", q, err)
	}
	var out []string
	for _, rr := range r.Answer {
		rr.Header().Ttl = 0
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

func fixtureConfig(store, dir string) func(*server.Config) {
	return func(c *server.Config) {
		c.Name = "fixture"
		c.DataDir = dir
		c.LogStore = store
	}
}

// TestWriteDataDirFixture writes the fixtures (with -update-fixture): a
// member with a few hundred keys of each kind, a snapshot, and log entries
// after it, batches among them.
func TestWriteDataDirFixture(t *testing.T) {
	if !*updateFixture {
		t.Skip("rewrites the fixtures only with -update-fixture")
	}
	for _, store := range fixtureStores {
		t.Run(store, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			edit := fixtureConfig(store, dir)
			s := servertest.Start(t, func(c *server.Config) {
				edit(c)
				c.SnapshotCount = 300
				c.HistorySize = 100 // a history, kept small
			})
			c := fixtureClient{t, s}
			writeFixtureKeys(c)
			// A snapshot, then entries after it.
			poll.Until(t, 60*time.Second, "a snapshot", func() bool { return hasSnapshot(dir) })
			writeFixtureBatches(t, c)
			f := c.record()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := servertest.ArchiveDataDir(dir, &buf); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(fixturePath(store, ".tar.gz"), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			j, err := json.MarshalIndent(f, "", " ")
			if err != nil {
				t.Fatal(err)
			}
			var zj bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&zj, gzip.BestCompression)
			zw.Write(append(j, '\n'))
			zw.Close()
			if err := os.WriteFile(fixturePath(store, ".json.gz"), zj.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d bytes, etcd index %d", fixturePath(store, ".tar.gz"), buf.Len(), f.EtcdIndex)
		})
	}
}

func hasSnapshot(dir string) bool {
	entries, _ := os.ReadDir(filepath.Join(dir, "snapshots"))
	for _, e := range entries {
		if e.IsDir() && !strings.HasSuffix(e.Name(), ".tmp") {
			return true
		}
	}
	return false
}

// writeFixtureKeys writes every kind of key the fixture holds.
func writeFixtureKeys(c fixtureClient) {
	const n = fixtureKeys
	for i := range n {
		k := fmt.Sprintf("/v2/keys/plain/k%03d", i)
		c.ok(http.MethodPut, k, vals("value", fmt.Sprintf("v%d", i)), "")
		switch i % 50 {
		case 10, 20:
			c.ok(http.MethodPut, k, vals("value", fmt.Sprintf("v%d-2", i)), "")
		case 30:
			c.ok(http.MethodPut, k, vals("value", "cas", "prevValue", fmt.Sprintf("v%d", i)), "")
		case 49:
			c.ok(http.MethodDelete, k, nil, "")
		}
		c.ok(http.MethodPut, fmt.Sprintf("/v2/keys/dirs/d%03d", i), vals("dir", "true"), "")
		c.ok(http.MethodPut, fmt.Sprintf("/v2/keys/ttl/t%03d", i), vals("value", fmt.Sprintf("t%d", i), "ttl", farTTL), "")
		c.ok(http.MethodPost, "/v2/keys/queue", vals("value", fmt.Sprintf("q%d", i)), "")
		c.ok(http.MethodPut, fmt.Sprintf("/v2/keys/_hidden/h%03d", i), vals("value", fmt.Sprintf("h%d", i)), "")
	}
	for i := range 50 {
		c.ok(http.MethodPut, fmt.Sprintf("/v2/keys/dirs/tree/a%02d/b/c", i), vals("value", "deep"), "")
	}
	for i := range 20 {
		c.ok(http.MethodPut, fmt.Sprintf("/v2/keys/plain/_secret%02d", i), vals("value", "hidden in a listed dir"), "")
	}
	c.ok(http.MethodPut, "/v2/keys/ttldir", vals("dir", "true", "ttl", farTTL), "")
	c.ok(http.MethodPut, "/v2/keys/ttldir/inside", vals("value", "x"), "")
	c.ok(http.MethodPut, "/v2/keys/plain/created", vals("value", "c", "prevExist", "false"), "")

	// Service registrations (SkyDNS records).
	for i := range 20 {
		c.ok(http.MethodPut, fmt.Sprintf("/v2/keys/skydns/internal/cairn/web/web-%d", i),
			vals("value", fmt.Sprintf(`{"host":"10.0.0.%d","port":8080}`, i+1), "ttl", farTTL), "")
	}
	for i := range 3 {
		c.ok(http.MethodPut, fmt.Sprintf("/v2/keys/skydns/internal/cairn/db/db-%d", i),
			vals("value", fmt.Sprintf(`{"host":"10.0.1.%d","port":5432,"priority":%d}`, i+1, 10*i)), "")
	}

	// A lock held through the module, and waiters queued behind it; a
	// leader elected.
	c.ok(http.MethodPost, "/mod/v2/lock/x?ttl="+farTTL+"&value=holder", nil, "")
	for i := range 3 {
		c.ok(http.MethodPost, "/v2/keys/_mod/lock/x", vals("value", fmt.Sprintf("waiter%d", i), "ttl", farTTL), "")
	}
	c.ok(http.MethodPut, "/mod/v2/leader/svc?name=n1&ttl="+farTTL, nil, "")

	// Authorization: a role, a user, root, enabled.
	c.ok(http.MethodPut, "/v2/auth/roles/app", nil,
		`{"role":"app","permissions":{"kv":{"read":["/plain/*"],"write":["/app/*"]}}}`)
	c.ok(http.MethodPut, "/v2/auth/users/client/app", nil, `{"user":"client/app","roles":["app"]}`)
	c.ok(http.MethodPut, "/v2/auth/users/client/root", nil, `{"user":"client/root","roles":["root"]}`)
	c.ok(http.MethodPut, "/v2/auth/enable", nil, "")
}

// writeFixtureBatches refreshes the TTL keys from many clients at once,
// so that the leader writes batch entries (cluster/batch.go), and checks
// that it did.
func writeFixtureBatches(t *testing.T, c fixtureClient) {
	for round := 0; ; round++ {
		var wg sync.WaitGroup
		for w := range 32 {
			wg.Go(func() {
				for i := w; i < fixtureKeys; i += 32 {
					c.ok(http.MethodPut, fmt.Sprintf("/v2/keys/ttl/t%03d", i),
						vals("refresh", "true", "prevExist", "true", "ttl", farTTL), "")
				}
			})
		}
		wg.Wait()
		received, entries := metricValue(t, c.s, "cairn_heartbeats_received_total"), metricValue(t, c.s, "cairn_heartbeat_raft_entries_total")
		if entries < received {
			t.Logf("%v heartbeats in %v raft entries", received, entries)
			return
		}
		if round == 10 {
			t.Fatalf("no batch entry after %v heartbeats", received)
		}
	}
}

func metricValue(t *testing.T, s *servertest.Server, name string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(metric(t, s, name), 64)
	if err != nil {
		t.Fatalf("metric %s: %v", name, err)
	}
	return v
}

// TestDataDirFixture opens a copy of each fixture with today's code and
// checks that it serves what it served when it was written: every key
// (value, TTL, indexes), the hidden ones, the lock queue, the users and
// roles, the DNS answers; and that it takes writes after them.
func TestDataDirFixture(t *testing.T) {
	for _, store := range fixtureStores {
		t.Run(store, func(t *testing.T) {
			want := readFixture(t, store)
			dir := filepath.Join(t.TempDir(), "data")
			servertest.ExtractDataDir(t, fixturePath(store, ".tar.gz"), dir)
			edit := fixtureConfig(store, dir)
			s := servertest.Start(t, func(c *server.Config) { edit(c); c.LogStore = "" })
			c := fixtureClient{t, s}
			got := c.record()
			for _, r := range fixtureReads() {
				if !bytes.Equal(got.Reads[r], want.Reads[r]) {
					t.Errorf("GET %s:\n%s\nwant\n%s", r, got.Reads[r], want.Reads[r])
				}
			}
			for q, w := range want.DNS {
				if !slices.Equal(got.DNS[q], w) {
					t.Errorf("DNS %s: %q, want %q", q, got.DNS[q], w)
				}
			}
			if got.EtcdIndex < want.EtcdIndex {
				t.Errorf("X-Etcd-Index %d, want at least %d", got.EtcdIndex, want.EtcdIndex)
			}
			var ev struct{ Node struct{ CreatedIndex uint64 } }
			if err := json.Unmarshal(c.ok(http.MethodPut, "/v2/keys/after-upgrade", vals("value", "x"), ""), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Node.CreatedIndex <= want.EtcdIndex {
				t.Errorf("a write after the upgrade got index %d, want more than %d", ev.Node.CreatedIndex, want.EtcdIndex)
			}
			// The data dir, written before format.json existed, now records
			// its format.
			if f, err := disk.CheckFormat(dir); f != 1 || err != nil {
				t.Errorf("format after the start: %d, %v", f, err)
			}
			if _, err := os.Stat(filepath.Join(dir, disk.FormatFile)); err != nil {
				t.Errorf("no %s after the start: %v", disk.FormatFile, err)
			}
		})
	}
}

func readFixture(t *testing.T, store string) fixture {
	t.Helper()
	p := fixturePath(store, ".json.gz")
	fz, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer fz.Close()
	zr, err := gzip.NewReader(fz)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	var f fixture
	if err := json.NewDecoder(zr).Decode(&f); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	for r, body := range f.Reads {
		f.Reads[r] = normalizeTTL(t, body)
	}
	return f
}

// A member given a data dir of a newer format refuses it at start, saying
// which format it has, which this binary supports and what to do, and
// changes nothing in it.
func TestNewerFormatRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	servertest.ExtractDataDir(t, fixturePath("wal", ".tar.gz"), dir)
	if err := os.WriteFile(filepath.Join(dir, disk.FormatFile), []byte(`{"format":2,"minVersion":"9.1.0"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	before := readTree(t, dir)
	cfg := servertest.Config(t)
	fixtureConfig("", dir)(&cfg)
	s, err := server.New(cfg)
	if err == nil {
		s.Close()
		t.Fatal("server.New accepted a data dir of format 2")
	}
	for _, w := range []string{dir + " has on-disk format 2", "this binary supports data dir formats 1 to 1", "Cairn 9.1.0 or later", "cairn snapshot restore", "docs/upgrading.md"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if !errors.Is(err, disk.ErrNewerFormat) {
		t.Errorf("error %v is not disk.ErrNewerFormat", err)
	}
	if after := readTree(t, dir); !maps.Equal(before, after) {
		for p, v := range after {
			if before[p] != v {
				t.Errorf("%s changed", p)
			}
		}
		t.Errorf("the data dir changed: %d paths before, %d after", len(before), len(after))
	}
}

// readTree maps each path under dir to its mode, time and content.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String() + " " + fi.ModTime().String()
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(b)
		}
		m[p] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
