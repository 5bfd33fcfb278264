package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDNSPerf measures DNS throughput with dnsperf against cairn and, in the
// same run, against NSD (Debian's authoritative server) serving the
// equivalent static zone: 100 services of 3 instances, queried half A of an
// instance and half SRV of a service. It is a measurement, not a check: it
// runs only with CAIRN_DNSPERF=1 and logs the rates and their ratio.
//
//	apt-get install -y dnsperf nsd
//	CAIRN_DNSPERF=1 go test -run TestDNSPerf -v ./cmd/cairn/e2e/
func TestDNSPerf(t *testing.T) {
	if os.Getenv("CAIRN_DNSPERF") != "1" {
		t.Skip("a measurement: set CAIRN_DNSPERF=1 (needs dnsperf and nsd: apt-get install -y dnsperf nsd)")
	}
	dnsperf, nsd := NeedBinary(t, "dnsperf"), NeedBinary(t, "nsd")
	dir := t.TempDir()
	const services, instances = 100, 3
	ip := func(s, i int) string { return fmt.Sprintf("10.%d.%d.%d", 1+s/250, s%250, 1+i) }

	// The query mix.
	var q strings.Builder
	for s := range services {
		for i := range instances {
			fmt.Fprintf(&q, "i%d.svc%d.cairn.internal A\n", i, s)
		}
		fmt.Fprintf(&q, "svc%d.cairn.internal SRV\n", s)
		fmt.Fprintf(&q, "svc%d.cairn.internal SRV\n", s)
		fmt.Fprintf(&q, "svc%d.cairn.internal SRV\n", s)
	}
	queries := filepath.Join(dir, "queries.txt")
	if err := os.WriteFile(queries, []byte(q.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	// Cairn with the registrations.
	cs, cairnDNS := startDNSCairn(t)
	for s := range services {
		for i := range instances {
			register(t, cs, fmt.Sprintf("svc%d", s), fmt.Sprintf("i%d", i), fmt.Sprintf(`{"host":%q,"port":%d}`, ip(s, i), 8000+i), 0)
		}
	}
	// Make sure cairn answers before measuring.
	if out := dig(t, cairnDNS, "i0.svc0.cairn.internal", "A", "+short"); strings.TrimSpace(out) != ip(0, 0) {
		t.Fatalf("cairn does not answer: %q", out)
	}

	// NSD with the equivalent zone: same names, SRV targets with their A
	// records (NSD adds them to the additional section, as cairn does).
	var z strings.Builder
	z.WriteString("$ORIGIN cairn.internal.\n$TTL 30\n@ IN SOA ns.cairn.internal. hostmaster.cairn.internal. 1 3600 600 86400 30\n@ IN NS ns\nns IN A 127.0.0.1\n")
	for s := range services {
		for i := range instances {
			fmt.Fprintf(&z, "i%d.svc%d IN A %s\n", i, s, ip(s, i))
			fmt.Fprintf(&z, "svc%d IN SRV 10 33 %d i%d.svc%d\n", s, 8000+i, i, s)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "cairn.internal.zone"), []byte(z.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	nsdPort := strconv.Itoa(FreePort(t))
	conf := fmt.Sprintf(`server:
	ip-address: 127.0.0.1
	port: %s
	server-count: 2
	username: ""
	chroot: ""
	zonesdir: %q
	pidfile: %q
	database: ""
	xfrdfile: %q
	zonelistfile: %q
	logfile: %q
	verbosity: 0
remote-control:
	control-enable: no
zone:
	name: cairn.internal
	zonefile: cairn.internal.zone
`, nsdPort, dir, filepath.Join(dir, "nsd.pid"), filepath.Join(dir, "xfrd.state"), filepath.Join(dir, "zone.list"), filepath.Join(dir, "nsd.log"))
	confFile := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	StartProc(t, "nsd", exec.Command(nsd, "-d", "-c", confFile))
	nsdAddr := "127.0.0.1:" + nsdPort
	Poll(t, 10*time.Second, "nsd answers", func() error {
		if out := dig(t, nsdAddr, "i0.svc0.cairn.internal", "A", "+short"); strings.TrimSpace(out) != ip(0, 0) {
			return fmt.Errorf("answer %q", out)
		}
		return nil
	})

	run := func(name, addr string) float64 {
		t.Helper()
		_, port, _ := strings.Cut(addr, "127.0.0.1:")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, dnsperf, "-s", "127.0.0.1", "-p", port, "-d", queries,
			"-l", "10", "-c", "8", "-T", "2", "-q", "500").CombinedOutput()
		if err != nil {
			t.Fatalf("dnsperf against %s: %v\n%s", name, err, out)
		}
		m := regexp.MustCompile(`Queries per second:\s+([0-9.]+)`).FindSubmatch(out)
		lost := regexp.MustCompile(`Queries lost:\s+(\d+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("dnsperf against %s: no rate in\n%s", name, out)
		}
		qps, _ := strconv.ParseFloat(string(m[1]), 64)
		t.Logf("%s: %.0f queries/s (lost %s)", name, qps, lost[1])
		return qps
	}
	c := run("cairn", cairnDNS)
	n := run("nsd", nsdAddr)
	t.Logf("cairn / nsd = %.2f (dnsperf -l 10 -c 8 -T 2 -q 500, 50%% A / 50%% SRV over 100 services x 3 instances)", c/n)
}
