package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// TestWriteBench measures puts on 3-member clusters of real processes on
// loopback: writes/s, p50 and p99 for 1, 64 and 256 concurrent clients
// aimed at the leader and at a follower. It is a measurement, not a test:
// it asserts nothing about timing and runs only when CAIRN_WRITE_BENCH=1.
//
//	CAIRN_WRITE_BENCH=1 go test ./cmd/cairn/e2e -run TestWriteBench -v -timeout 30m
//
// CAIRN_WRITE_BENCH_DUR is the length of one run (default 5s),
// CAIRN_WRITE_BENCH_CLIENTS the client counts (default 1,64,256),
// CAIRN_WRITE_BENCH_REPS how many times each row runs (default 3, rows
// alternating), and CAIRN_WRITE_BENCH_ETCD=1 adds a 3-member Debian etcd
// (v2 API, client mTLS, plain-HTTP peers on loopback) measured by the same
// generator. CAIRN_WRITE_BENCH_BASE_BIN adds a 3-member cluster of another
// cairn binary (a baseline build), measured alternately with the others;
// CAIRN_WRITE_BENCH_BOLT=1 adds a cairn cluster on --log-store boltdb
// (the default is wal).
// CAIRN_WRITE_BENCH_IDLE=10s first reports each member's CPU use while idle.
func TestWriteBench(t *testing.T) {
	if os.Getenv("CAIRN_WRITE_BENCH") != "1" {
		t.Skip("a measurement: set CAIRN_WRITE_BENCH=1 to run it")
	}
	dur := 5 * time.Second
	if s := os.Getenv("CAIRN_WRITE_BENCH_DUR"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		dur = d
	}
	clients := []int{1, 64, 256}
	if s := os.Getenv("CAIRN_WRITE_BENCH_CLIENTS"); s != "" {
		clients = nil
		for _, f := range strings.Split(s, ",") {
			c, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			clients = append(clients, c)
		}
	}
	reps := 3
	if s := os.Getenv("CAIRN_WRITE_BENCH_REPS"); s != "" {
		var err error
		if reps, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}

	type system struct {
		name    string
		members []*Server
	}
	var systems []system
	if base := os.Getenv("CAIRN_WRITE_BENCH_BASE_BIN"); base != "" {
		systems = append(systems, system{name: "base", members: startCairn3(t, base)})
	}
	systems = append(systems, system{name: "cairn", members: startCairn3(t, needCairn(t))})
	if os.Getenv("CAIRN_WRITE_BENCH_BOLT") == "1" {
		systems = append(systems, system{name: "cairn-boltdb", members: startCairn3(t, needCairn(t), "--log-store", "boltdb")})
	}
	if os.Getenv("CAIRN_WRITE_BENCH_ETCD") == "1" {
		systems = append(systems, system{name: "etcd", members: startEtcd3(t)})
	}

	if s := os.Getenv("CAIRN_WRITE_BENCH_IDLE"); s != "" {
		idle, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, sys := range systems {
			before := cpuTimes(t, sys.members)
			time.Sleep(idle) // a measurement of an idle cluster: nothing to wait for
			after := cpuTimes(t, sys.members)
			for i := range after {
				t.Logf("%s member %d idle: %.1f%% of a core over %v", sys.name, i, 100*(after[i]-before[i]).Seconds()/idle.Seconds(), idle)
			}
		}
	}

	type row struct {
		system, target string
		clients        int
	}
	results := map[row][]benchResult{}
	var order []row
	for rep := range reps {
		for _, sys := range systems {
			leader := findLeader(t, sys.members)
			follower := sys.members[(leader+1)%len(sys.members)]
			for _, c := range clients {
				for _, tg := range []struct {
					name string
					s    *Server
				}{{"leader", sys.members[leader]}, {"follower", follower}} {
					r := row{sys.name, tg.name, c}
					if rep == 0 {
						order = append(order, r)
					}
					res := runPuts(t, tg.s, c, dur, fmt.Sprintf("%s-%s-%d-%d", sys.name, tg.name, c, rep))
					t.Logf("%-6s %-8s %4d clients: %8.0f writes/s  p50 %7.2f ms  p99 %7.2f ms  errors %d",
						sys.name, tg.name, c, res.rate, wbMS(res.p50), wbMS(res.p99), res.errors)
					results[r] = append(results[r], res)
				}
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| system | target | clients | writes/s (median; runs) | p50 ms (median) | p99 ms (median; runs) |\n|---|---|---|---|---|---|\n")
	for _, r := range order {
		rs := results[r]
		rates, p50s, p99s := make([]float64, len(rs)), make([]float64, len(rs)), make([]float64, len(rs))
		for i, x := range rs {
			rates[i], p50s[i], p99s[i] = x.rate, wbMS(x.p50), wbMS(x.p99)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.0f (%s) | %.2f | %.2f (%s) |\n", r.system, r.target, r.clients,
			wbMedian(rates), wbJoin(rates, "%.0f"), wbMedian(p50s), wbMedian(p99s), wbJoin(p99s, "%.1f"))
	}
	t.Log(b.String())
}

type benchResult struct {
	rate     float64
	p50, p99 time.Duration
	errors   int
}

func wbMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func wbMedian(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func wbJoin(xs []float64, f string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf(f, x)
	}
	return strings.Join(parts, ", ")
}

// runPuts runs clients workers, each putting a 100-byte value to its own
// 100 keys in a loop, for dur after a short warm-up.
func runPuts(t *testing.T, s *Server, clients int, dur time.Duration, prefix string) benchResult {
	tc, err := tlsconf.ClientConfigFromFiles(s.Files)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: clients, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	form := "value=" + strings.Repeat("x", 100)
	warm := time.Now().Add(500 * time.Millisecond)
	end := warm.Add(dur)
	lat := make([][]time.Duration, clients)
	errs := make([]int, clients)
	var firstErr sync.Once
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			for i := 0; ; i++ {
				start := time.Now()
				if !start.Before(end) {
					return
				}
				u := fmt.Sprintf("%s/v2/keys/bench/%s/%d/%d", s.URL, prefix, w, i%100)
				req, _ := http.NewRequest(http.MethodPut, u, strings.NewReader(form))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := hc.Do(req)
				ok := err == nil
				var body []byte
				if err == nil {
					body, _ = io.ReadAll(resp.Body)
					resp.Body.Close()
					ok = resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated
					if !ok {
						err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
					}
				}
				if err != nil {
					firstErr.Do(func() { t.Logf("%s: first error: %v", s, err) })
				}
				if start.Before(warm) {
					continue
				}
				if !ok {
					errs[w]++
					continue
				}
				lat[w] = append(lat[w], time.Since(start))
			}
		})
	}
	wg.Wait()
	var all []time.Duration
	nerr := 0
	for w := range clients {
		all = append(all, lat[w]...)
		nerr += errs[w]
	}
	if len(all) == 0 {
		t.Fatalf("%s: no successful write (%d errors)", s, nerr)
	}
	slices.Sort(all)
	return benchResult{
		rate:   float64(len(all)) / dur.Seconds(),
		p50:    all[len(all)/2],
		p99:    all[len(all)*99/100],
		errors: nerr,
	}
}

// findLeader returns the index of the member whose /v2/stats/self says it
// leads (etcd and cairn answer the same shape).
func findLeader(t *testing.T, ms []*Server) int {
	t.Helper()
	leader := -1
	Poll(t, 30*time.Second, "a leader", func() error {
		for i, s := range ms {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, body, err := s.Do(ctx, http.MethodGet, "/v2/stats/self", "", "")
			cancel()
			if err != nil {
				continue
			}
			var st struct {
				State string `json:"state"`
			}
			if json.Unmarshal(body, &st) == nil && st.State == "StateLeader" {
				leader = i
				return nil
			}
		}
		return errNotYet
	})
	return leader
}

// startCairn3 starts three cairn members the incremental way (the first
// alone, each next one joining through the ones before it), peer port on
// loopback, all with the shared test PKI.
func startCairn3(t *testing.T, bin string, args ...string) []*Server {
	var ms []*Server
	var peers []string
	for i := range 3 {
		cfg := &CairnConfig{Bin: bin, Name: "b" + strconv.Itoa(i), PKI: testPKI, PeerPort: FreePort(t)}
		cfg.Args = slices.Clone(args)
		if len(peers) > 0 {
			cfg.Args = append(cfg.Args, "--peers", strings.Join(peers, ","))
		}
		ms = append(ms, StartCairn(t, cfg))
		peers = append(peers, "127.0.0.1:"+strconv.Itoa(cfg.PeerPort))
	}
	waitMembers(t, ms, 3)
	return ms
}

func waitMembers(t *testing.T, ms []*Server, n int) {
	for _, s := range ms {
		Poll(t, 60*time.Second, s.String()+" to list every member", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, body, err := s.Do(ctx, http.MethodGet, "/v2/members", "", "")
			if err != nil {
				return err
			}
			var m struct {
				Members []struct {
					ClientURLs []string `json:"clientURLs"`
				} `json:"members"`
			}
			if err := json.Unmarshal(body, &m); err != nil {
				return err
			}
			if len(m.Members) != n {
				return fmt.Errorf("%d members", len(m.Members))
			}
			for _, x := range m.Members {
				if len(x.ClientURLs) == 0 {
					return fmt.Errorf("a member without client URLs yet")
				}
			}
			return nil
		})
	}
}

// startEtcd3 starts a 3-member Debian etcd with the v2 API, client mTLS
// with the shared test PKI and plain-HTTP peers on loopback.
func startEtcd3(t *testing.T) []*Server {
	bin := NeedBinary(t, "etcd")
	type m struct{ name, client, peer, dir string }
	var mem []m
	var initial []string
	for i := range 3 {
		x := m{name: "e" + strconv.Itoa(i), dir: t.TempDir(),
			client: "https://127.0.0.1:" + strconv.Itoa(FreePort(t)),
			peer:   "http://127.0.0.1:" + strconv.Itoa(FreePort(t))}
		mem = append(mem, x)
		initial = append(initial, x.name+"="+x.peer)
	}
	c, err := NewHTTPClient(testPKI.ClientFiles())
	if err != nil {
		t.Fatal(err)
	}
	var ms []*Server
	for _, x := range mem {
		cmd := exec.Command(bin,
			"--name", x.name, "--data-dir", filepath.Join(x.dir, "data"),
			"--enable-v2=true",
			"--listen-client-urls", x.client, "--advertise-client-urls", x.client,
			"--listen-peer-urls", x.peer, "--initial-advertise-peer-urls", x.peer,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--cert-file", testPKI.NodeCert, "--key-file", testPKI.NodeKey,
			"--trusted-ca-file", testPKI.CAFile, "--client-cert-auth",
		)
		cmd.Env = cleanEnv("ETCD_")
		s := &Server{Kind: KindEtcd, Name: x.name, URL: x.client, DataDir: x.dir, Files: testPKI.ClientFiles(), HTTP: c}
		s.Proc = StartProc(t, "etcd "+x.name, cmd)
		ms = append(ms, s)
	}
	for _, s := range ms {
		s.waitReady(t, s.Healthy)
	}
	return ms
}

// cpuTimes reads the user+system CPU time of each member's process
// (Linux /proc; clock ticks at 100 Hz).
func cpuTimes(t *testing.T, ms []*Server) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, s := range ms {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.Proc.Cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[i] = time.Duration(ut+st) * 10 * time.Millisecond
	}
	return out
}
