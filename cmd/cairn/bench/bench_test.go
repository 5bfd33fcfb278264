package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cmd/cairn/bench"
	"github.com/cairnkv/cairn/cmd/cairn/e2e"
	"github.com/cairnkv/cairn/cmd/cairn/server/servertest"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

func target(t *testing.T, files tlsconf.Files, urls ...string) bench.Target {
	t.Helper()
	tc, err := tlsconf.ClientConfigFromFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	return bench.Target{Endpoints: urls, TLS: tc}
}

// cairnTarget is an in-process member (one: the fast raft timers of
// servertest lose leadership under load on a busy machine, and the test
// counts errors).
func cairnTarget(t *testing.T) (bench.Target, string) {
	s := servertest.Start(t, nil)
	return target(t, s.ClientFiles, s.URL), s.DNSAddr()
}

// etcdTarget is Debian's etcd 3.4 with the v2 API, one member.
func etcdTarget(t *testing.T) bench.Target {
	e2e.NeedBinary(t, "etcd")
	p, err := e2e.NewPKI(filepath.Join(t.TempDir(), "pki"), "cairn.internal")
	if err != nil {
		t.Fatal(err)
	}
	s := e2e.StartEtcd(t, p, "e1")
	return target(t, s.Files, s.URL)
}

// workloads are tiny runs of every workload: counts, not timings.
func workloads(dnsAddr string) []bench.Config {
	ws := []bench.Config{
		{Workload: "put", Clients: 4, Requests: 40, Keys: 10},
		{Workload: "get", Clients: 4, Requests: 40, Keys: 10},
		{Workload: "get", Clients: 4, Requests: 40, Keys: 10, Stale: true},
		{Workload: "refresh", Clients: 4, Requests: 40, Keys: 10},
		{Workload: "watch", Clients: 3, Requests: 5},
	}
	if dnsAddr != "" {
		ws = append(ws,
			bench.Config{Workload: "dns", Clients: 2, Requests: 20, DNSAddr: dnsAddr},
			bench.Config{Workload: "dns", Clients: 2, Requests: 20, DNSAddr: dnsAddr, DNSType: "SRV"})
	}
	return ws
}

func checkResult(t *testing.T, c bench.Config, r *bench.Result) {
	t.Helper()
	want := uint64(c.Requests)
	if c.Workload == "watch" {
		want *= uint64(c.Clients)
		if r.Writes != uint64(c.Requests) {
			t.Errorf("%s: %d writes, want %d", r.Label, r.Writes, c.Requests)
		}
	}
	if r.Requests != want || r.Errors != 0 || r.Histogram().Count() != want {
		t.Errorf("%s: %d requests (histogram %d), %d errors (%v, first %q); want %d and none", r.Label, r.Requests, r.Histogram().Count(), r.Errors, r.ErrorKinds, r.FirstError, want)
	}
	l := r.Latency
	if !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) || r.Rate <= 0 {
		t.Errorf("%s: latencies %+v rate %v", r.Label, l, r.Rate)
	}
}

func runAll(t *testing.T, tg bench.Target, dnsAddr string) {
	for _, c := range workloads(dnsAddr) {
		t.Run(c.Workload+map[bool]string{true: "-stale"}[c.Stale]+c.DNSType, func(t *testing.T) {
			r, err := bench.Run(context.Background(), tg, c, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, c, r)
		})
	}
}

func TestWorkloadsCairn(t *testing.T) {
	tg, dnsAddr := cairnTarget(t)
	runAll(t, tg, dnsAddr)
}

func TestWorkloadsEtcd(t *testing.T) {
	runAll(t, etcdTarget(t), "")
}

// TestResultJSON: the JSON shape scripts read.
func TestResultJSON(t *testing.T) {
	s := servertest.Start(t, nil)
	tg := target(t, s.ClientFiles, s.URL)
	r, err := bench.Run(context.Background(), tg, bench.Config{Workload: "put", Clients: 2, Requests: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := bench.WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"workload", "label", "endpoints", "clients", "keys", "value_size", "requests", "errors", "seconds", "rate", "latency_ms"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %s", k, b.String())
		}
	}
	lat, _ := m["latency_ms"].(map[string]any)
	for _, k := range []string{"mean", "p50", "p90", "p99", "p999", "max"} {
		if _, ok := lat[k].(float64); !ok {
			t.Errorf("no latency_ms.%s in %s", k, b.String())
		}
	}
	cpu, _ := m["cpu_us_per_request"].(map[string]any)
	for _, k := range []string{"members", "generator"} {
		if v, ok := cpu[k].(float64); !ok || v <= 0 {
			t.Errorf("no cpu_us_per_request.%s in %s", k, b.String())
		}
	}
	b.Reset()
	if err := bench.WriteTable(&b, r); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(b.String()), "\n"); len(lines) != 2 || !strings.Contains(lines[0], "p99.9 ms") || !strings.HasPrefix(strings.TrimSpace(lines[1]), "put") {
		t.Errorf("table:\n%s", b.String())
	}
}

// TestErrorsAreCounted: failed requests are in the result, by kind.
func TestErrorsAreCounted(t *testing.T) {
	s := servertest.Start(t, nil)
	tg := target(t, s.ClientFiles, s.URL)
	// refresh of keys that were never written: etcd error 100, 404.
	r, err := bench.Run(context.Background(), tg, bench.Config{Workload: "refresh", Clients: 2, Requests: 6, Prefix: "/none", SkipSetup: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 0 || r.Errors != 6 || r.ErrorKinds["status 404"] != 6 || !strings.Contains(r.FirstError, "Key not found") {
		t.Errorf("%d requests, %d errors %v, first %q", r.Requests, r.Errors, r.ErrorKinds, r.FirstError)
	}
}

// TestCompare alternates a Cairn cluster and etcd and reports ratios.
func TestCompare(t *testing.T) {
	a := etcdTarget(t)
	b, _ := cairnTarget(t)
	ws := []bench.Config{{Workload: "put", Clients: 2, Requests: 10}, {Workload: "get", Clients: 2, Requests: 10, Keys: 5, Stale: true}}
	var progress bytes.Buffer
	cmp, err := bench.Compare(context.Background(), bench.CompareConfig{A: a, B: b, NameA: "etcd", NameB: "cairn", Workloads: ws, Rounds: 2}, &bench.Progress{W: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if len(cmp.Rows) != 2 || cmp.Rounds != 2 {
		t.Fatalf("%+v", cmp)
	}
	for _, row := range cmp.Rows {
		for _, s := range []bench.Side{row.A, row.B} {
			if len(s.Runs) != 2 || s.Errors != 0 || s.Rate <= 0 || s.P99 <= 0 {
				t.Errorf("%s: side %+v", row.Label, s)
			}
		}
		if row.RateRatio != row.B.Rate/row.A.Rate || row.P99Ratio != row.B.P99/row.A.P99 {
			t.Errorf("%s: ratios %v %v", row.Label, row.RateRatio, row.P99Ratio)
		}
		// Both etcd and Cairn expose process_cpu_seconds_total, so every
		// run measured it. It counts in clock ticks (10 ms), which a run of
		// 10 requests may not fill: a run's CPU may be 0, never missing.
		for _, s := range []bench.Side{row.A, row.B} {
			for _, r := range s.Runs {
				if r.CPU == nil || r.CPU.Members == nil || *r.CPU.Members < 0 {
					t.Errorf("%s: a run without the members' CPU: %+v", row.Label, r.CPU)
				}
			}
		}
		if want := row.B.CPU / row.A.CPU; row.A.CPU == 0 && row.CPURatio != 0 || row.A.CPU > 0 && row.CPURatio != want {
			t.Errorf("%s: CPU per request %v and %v, ratio %v", row.Label, row.A.CPU, row.B.CPU, row.CPURatio)
		}
	}
	// A, B, A, B: the order of the runs.
	var order []string
	for _, l := range strings.Split(progress.String(), "\n") {
		if i := strings.LastIndex(l, " on "); i >= 0 && strings.Contains(l, "round") {
			order = append(order, l[i+4:])
		}
	}
	if want := []string{"etcd", "cairn", "etcd", "cairn", "etcd", "cairn", "etcd", "cairn"}; !slices.Equal(order, want) {
		t.Errorf("runs in order %v, want %v", order, want)
	}
	var b2 bytes.Buffer
	if err := cmp.WriteTable(&b2, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b2.String(), "| workload | clients | etcd rate/s | cairn rate/s | cairn/etcd rate |") ||
		!strings.Contains(b2.String(), " | etcd CPU µs/req | cairn CPU µs/req | cairn/etcd CPU | ") || !strings.Contains(b2.String(), "| get stale (5 keys) | 2 |") {
		t.Errorf("markdown:\n%s", b2.String())
	}
}

// TestPacedRefresh: a short paced refresh on Cairn and on etcd reports
// the members' CPU and memory and the raft entries per heartbeat, and
// loses no registration. Counts, not timings.
func TestPacedRefresh(t *testing.T) {
	for _, side := range []struct {
		name string
		tg   func(*testing.T) bench.Target
	}{
		{"cairn", func(t *testing.T) bench.Target { tg, _ := cairnTarget(t); return tg }},
		{"etcd", etcdTarget},
	} {
		t.Run(side.name, func(t *testing.T) {
			tg := side.tg(t)
			c := bench.Config{Workload: "refresh", Keys: 20, Requests: 40, Interval: time.Second, TTL: 5 * time.Second, Clients: 4}
			r, err := bench.Run(context.Background(), tg, c, nil)
			if err != nil {
				t.Fatal(err)
			}
			p := r.Paced
			if p == nil || r.Label != "refresh paced" {
				t.Fatalf("%s: no paced report", r.Label)
			}
			if p.Sent != 40 || p.Due != 40 || r.Requests+r.Errors != 40 || p.Lost != 0 || p.TargetRate != 20 {
				t.Errorf("sent %d of %d due, %d answered, %d errors (%v), %d lost, target %v/s", p.Sent, p.Due, r.Requests, r.Errors, r.ErrorKinds, p.Lost, p.TargetRate)
			}
			if len(p.Members) != 1 {
				t.Fatalf("members %+v", p.Members)
			}
			m := p.Members[0]
			if m.CPUSeconds == nil || m.RSSEnd == nil || *m.RSSEnd <= 0 || len(m.NotExposed) != 0 {
				t.Errorf("member usage %+v", m)
			}
			// Today each heartbeat is a raft entry on both.
			if p.RaftEntries == nil || p.EntriesPerHeartbeat == nil || *p.RaftEntries == 0 {
				t.Errorf("raft entries %v, per heartbeat %v", p.RaftEntries, p.EntriesPerHeartbeat)
			}
			var b bytes.Buffer
			if err := bench.WriteTable(&b, r); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"paced refresh: 20 keys heartbeating every 1s", "registrations lost", "per heartbeat", "% of a core"} {
				if !strings.Contains(b.String(), want) {
					t.Errorf("no %q in the table:\n%s", want, b.String())
				}
			}
			t.Logf("\n%s", b.String())
			b.Reset()
			if err := bench.WriteJSON(&b, r); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{`"paced"`, `"target_rate"`, `"answered_rate"`, `"late"`, `"lost"`, `"raft_entries_per_heartbeat"`, `"cpu_percent_of_a_core"`, `"rss_bytes_end"`} {
				if !strings.Contains(b.String(), want) {
					t.Errorf("no %s in the JSON:\n%s", want, b.String())
				}
			}
		})
	}
}
