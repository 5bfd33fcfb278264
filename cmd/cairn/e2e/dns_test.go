package e2e

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest"
	"github.com/cairnkv/cairn/cluster/v2client"
)

// dig runs dig against the DNS server at addr and returns its output.
func dig(t *testing.T, addr string, args ...string) string {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	all := append([]string{"@" + host, "-p", port, "+time=2", "+tries=1"}, args...)
	out, err := exec.CommandContext(ctx, NeedBinary(t, "dig"), all...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(all, " "), err, out)
	}
	return string(out)
}

// digStatus is the status of dig's answer header ("NOERROR", "NXDOMAIN"...).
func digStatus(out string) string {
	_, rest, ok := strings.Cut(out, "status: ")
	if !ok {
		return ""
	}
	st, _, _ := strings.Cut(rest, ",")
	return st
}

// startDNSCairn starts a one-node cairn whose DNS listens on a free port.
func startDNSCairn(t *testing.T) (*Server, string) {
	t.Helper()
	dnsAddr := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	s := startCairn(t, "--dns-addr", dnsAddr)
	return s, dnsAddr
}

func register(t *testing.T, s *Server, service, instance, value string, ttl int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o := v2client.SetOptions{TTL: time.Duration(ttl) * time.Second}
	if _, err := s.Client(t).Set(ctx, "/skydns/internal/cairn/"+service+"/"+instance, value, o); err != nil {
		t.Fatalf("register %s/%s: %v", service, instance, err)
	}
}

func TestDNSWithDig(t *testing.T) {
	t.Parallel()
	s, dnsAddr := startDNSCairn(t)
	register(t, s, "web", "web-1", `{"host":"10.0.0.5","port":8080}`, 0)

	t.Run("A", func(t *testing.T) {
		out := dig(t, dnsAddr, "web-1.web.cairn.internal", "A", "+short")
		if strings.TrimSpace(out) != "10.0.0.5" {
			t.Fatalf("dig A: %q", out)
		}
	})
	t.Run("SRV", func(t *testing.T) {
		out := dig(t, dnsAddr, "web.cairn.internal", "SRV")
		if digStatus(out) != "NOERROR" || !strings.Contains(out, " 8080 ") || !strings.Contains(out, "10.0.0.5") {
			t.Fatalf("dig SRV: want port 8080 and the A of 10.0.0.5 in the additional section:\n%s", out)
		}
	})
	t.Run("RFC 2782", func(t *testing.T) {
		out := dig(t, dnsAddr, "_web._tcp.cairn.internal", "SRV", "+short")
		if !strings.Contains(out, " 8080 ") {
			t.Fatalf("dig _web._tcp SRV: %q", out)
		}
	})
	t.Run("out of zone is REFUSED", func(t *testing.T) {
		if st := digStatus(dig(t, dnsAddr, "example.com", "A")); st != "REFUSED" {
			t.Fatalf("status %q, want REFUSED", st)
		}
	})
	t.Run("unknown name is NXDOMAIN with the SOA", func(t *testing.T) {
		out := dig(t, dnsAddr, "nope.cairn.internal", "A")
		if digStatus(out) != "NXDOMAIN" || !strings.Contains(out, "SOA") {
			t.Fatalf("want NXDOMAIN and the SOA:\n%s", out)
		}
	})
	t.Run("60 instances: TC over UDP, all over TCP", func(t *testing.T) {
		for i := range 60 {
			register(t, s, "big", fmt.Sprintf("i%02d", i), fmt.Sprintf(`{"host":"10.1.0.%d","port":%d}`, i+1, 9000+i), 0)
		}
		udp := dig(t, dnsAddr, "big.cairn.internal", "SRV", "+ignore", "+noedns")
		if !strings.Contains(udp, " tc") && !strings.Contains(udp, "tc ") {
			t.Fatalf("UDP answer for 60 SRV records is not truncated:\n%s", udp)
		}
		tcp := dig(t, dnsAddr, "big.cairn.internal", "SRV", "+tcp", "+short")
		if n := len(strings.Split(strings.TrimSpace(tcp), "\n")); n != 60 {
			t.Fatalf("TCP answer has %d SRV records, want 60:\n%s", n, tcp)
		}
	})
}

func TestDNSRecordExpires(t *testing.T) {
	t.Parallel()
	s, dnsAddr := startDNSCairn(t)
	register(t, s, "api", "api-1", `{"host":"10.0.0.9","port":80}`, 2)
	if out := dig(t, dnsAddr, "api-1.api.cairn.internal", "A", "+short"); strings.TrimSpace(out) != "10.0.0.9" {
		t.Fatalf("registered record not answered: %q", out)
	}
	// No heartbeat: the key expires after 2 s (up to ~0.5 s late) and the
	// name with it.
	Poll(t, 6*time.Second, "NXDOMAIN after the TTL", func() error {
		if st := digStatus(dig(t, dnsAddr, "api-1.api.cairn.internal", "A")); st != "NXDOMAIN" {
			return fmt.Errorf("status %s", st)
		}
		return nil
	})
}

func TestDNSInvalidRecordRefused(t *testing.T) {
	t.Parallel()
	s, _ := startDNSCairn(t)
	_, err := s.SetKey(t, "/skydns/internal/cairn/web/bad", `{"host":"10.0.0.5","port":70000}`)
	if v2client.StatusCode(err) != 400 || !strings.Contains(err.Error(), "port") {
		t.Fatalf("invalid record: %v, want 400 naming the port", err)
	}
	if _, err := s.GetKey(t, "/skydns/internal/cairn/web/bad"); v2client.StatusCode(err) != 404 {
		t.Fatalf("invalid record was stored: %v", err)
	}
}

// TestDNSFollowsTheStoreOnEveryNode: a registration written through one
// member is answered by every member's DNS within a second, and so is its
// removal.
func TestDNSFollowsTheStoreOnEveryNode(t *testing.T) {
	t.Parallel()
	c := clustertest.StartProcs(t, needCairn(t), 3, clustertest.ProcOptions{DNS: true})
	c.Leader(t)
	resp, body, err := c.Do(0, "PUT", "/v2/keys/skydns/internal/cairn/db/db-1", "", `value={"host":"10.0.0.7","port":5432}`)
	if err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("register through n0: %v %s", err, body)
	}
	written := time.Now()
	for i := 1; i < 3; i++ {
		Poll(t, time.Second, fmt.Sprintf("n%d's DNS answers the registration", i), func() error {
			if out := dig(t, c.Proc(i).DNSAddr, "db-1.db.cairn.internal", "A", "+short"); strings.TrimSpace(out) != "10.0.0.7" {
				return fmt.Errorf("answer %q", out)
			}
			return nil
		})
	}
	t.Logf("registration answered by every member's DNS %v after the write", time.Since(written).Round(time.Millisecond))
	if resp, body, err := c.Do(1, "DELETE", "/v2/keys/skydns/internal/cairn/db/db-1", "", ""); err != nil || resp.StatusCode != 200 {
		t.Fatalf("deregister through n1: %v %s", err, body)
	}
	for i := range 3 {
		Poll(t, time.Second, fmt.Sprintf("n%d's DNS drops the registration", i), func() error {
			if st := digStatus(dig(t, c.Proc(i).DNSAddr, "db-1.db.cairn.internal", "A")); st != "NXDOMAIN" {
				return fmt.Errorf("status %s", st)
			}
			return nil
		})
	}
}
