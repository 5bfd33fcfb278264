//go:build linux

package clustertest

import (
	"bufio"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
)

// echoNode is a plain TCP echo server standing in for a node's peer port,
// with the proxy of faultNet in front of it.
type echoNode struct {
	ip       string
	proxy    string // the address peers dial
	received atomic.Int64
}

// startEchoNet starts n echo servers on their own loopback IPs and a
// faultNet proxying to them.
func startEchoNet(t *testing.T, n int) (*faultNet, []*echoNode) {
	t.Helper()
	fn := newFaultNet()
	t.Cleanup(fn.close)
	prefix := fmt.Sprintf("127.%d.%d.", 1+os.Getpid()%250, 1+procIPBlock.Add(1)%250)
	var nodes []*echoNode
	for i := range n {
		e := &echoNode{ip: prefix + fmt.Sprint(10+i)}
		ln, err := net.Listen("tcp", net.JoinHostPort(e.ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					buf := make([]byte, 4096)
					for {
						n, err := c.Read(buf)
						e.received.Add(int64(n))
						if n > 0 {
							if _, err := c.Write(buf[:n]); err != nil {
								return
							}
						}
						if err != nil {
							return
						}
					}
				}()
			}
		}()
		px, err := fn.listen(i, e.ip, net.JoinHostPort(e.ip, "0"), ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		e.proxy = px.addr()
		nodes = append(nodes, e)
	}
	return fn, nodes
}

// dial connects from node a's IP (a < 0: from 127.0.0.1 without binding)
// to node b's proxy.
func dial(t *testing.T, nodes []*echoNode, a, b int) (net.Conn, error) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if a >= 0 {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(nodes[a].ip)}
	}
	c, err := d.Dial("tcp", nodes[b].proxy)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// echo sends a line on c and reads it back within 5 s.
func echo(c net.Conn, line string) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got != line+"\n" {
		return fmt.Errorf("echo %q: got %q", line, got)
	}
	return nil
}

// reachable dials a -> b and echoes a line.
func reachable(t *testing.T, nodes []*echoNode, a, b int) error {
	t.Helper()
	c, err := dial(t, nodes, a, b)
	if err != nil {
		return err
	}
	defer c.Close()
	return echo(c, fmt.Sprintf("%d->%d", a, b))
}

// closedByPeer checks that c was closed from the other side: a read ends
// with an error that is not the 5-second deadline.
func closedByPeer(c net.Conn) error {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	switch {
	case err == nil:
		return errors.New("read data from a connection that should be closed")
	case errors.As(err, &ne) && ne.Timeout():
		return errors.New("connection still open after 5 s")
	}
	return nil
}

func TestProxyPartitionHeal(t *testing.T) {
	t.Parallel()
	fn, nodes := startEchoNet(t, 3)
	for a := range 3 {
		for b := range 3 {
			if err := reachable(t, nodes, a, b); err != nil {
				t.Fatalf("before any partition, %d -> %d: %v", a, b, err)
			}
		}
	}
	c01, _ := dial(t, nodes, 0, 1)
	c02, _ := dial(t, nodes, 0, 2)
	c21, _ := dial(t, nodes, 2, 1)
	for _, c := range []net.Conn{c01, c02, c21} {
		if err := echo(c, "open"); err != nil {
			t.Fatal(err)
		}
	}

	fn.partition([]int{1}, false)
	if !fn.isolated(1) || fn.isolated(0) {
		t.Errorf("isolated(1), isolated(0) = %v, %v; want true, false", fn.isolated(1), fn.isolated(0))
	}
	for name, c := range map[string]net.Conn{"0->1": c01, "2->1": c21} {
		if err := closedByPeer(c); err != nil {
			t.Errorf("open connection %s across the partition: %v", name, err)
		}
	}
	if err := echo(c02, "still"); err != nil {
		t.Errorf("open connection 0->2 on the majority side: %v", err)
	}
	for _, l := range [][2]int{{0, 1}, {1, 0}, {1, 2}, {2, 1}, {-1, 0}} {
		if err := reachable(t, nodes, l[0], l[1]); err == nil {
			t.Errorf("%d -> %d crossed the partition", l[0], l[1])
		}
	}
	for _, l := range [][2]int{{0, 2}, {2, 0}, {1, 1}} {
		if err := reachable(t, nodes, l[0], l[1]); err != nil {
			t.Errorf("%d -> %d on one side of the partition: %v", l[0], l[1], err)
		}
	}
	if s := fn.strayConns(); len(s) != 1 || !strings.HasPrefix(s[0], "127.0.0.1:") {
		t.Errorf("stray connections = %v; want the one dial from 127.0.0.1", s)
	}

	// Moving the partition: now 0 is alone, 1 and 2 together.
	fn.partition([]int{0}, false)
	if err := reachable(t, nodes, 1, 2); err != nil {
		t.Errorf("1 -> 2 after the partition moved: %v", err)
	}
	if err := reachable(t, nodes, 2, 0); err == nil {
		t.Errorf("2 -> 0 crossed the moved partition")
	}

	fn.heal()
	if fn.isolated(0) {
		t.Error("isolated(0) after heal")
	}
	for a := -1; a < 3; a++ {
		for b := range 3 {
			if err := reachable(t, nodes, a, b); err != nil {
				t.Errorf("after heal, %d -> %d: %v", a, b, err)
			}
		}
	}
}

func TestProxyBlackhole(t *testing.T) {
	t.Parallel()
	fn, nodes := startEchoNet(t, 2)
	c01, _ := dial(t, nodes, 0, 1)
	if err := echo(c01, "open"); err != nil {
		t.Fatal(err)
	}
	before := nodes[1].received.Load()

	fn.partition([]int{1}, true)
	// A new connection is accepted, and what it sends disappears.
	n01, err := dial(t, nodes, 0, 1)
	if err != nil {
		t.Fatalf("dial across a blackhole: %v; want the connection accepted", err)
	}
	for _, c := range []net.Conn{c01, n01} {
		if _, err := io.WriteString(c, "lost\n"); err != nil {
			t.Fatal(err)
		}
	}
	err = poll.Check(5*time.Second, func() error {
		if n := fn.discarded.Load(); n < 10 {
			return fmt.Errorf("blackhole swallowed %d bytes; want 10", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := nodes[1].received.Load(); got != before {
		t.Errorf("node 1 received %d bytes through the blackhole", got-before)
	}

	fn.heal()
	for name, c := range map[string]net.Conn{"open before": c01, "opened during": n01} {
		if err := closedByPeer(c); err != nil {
			t.Errorf("blackholed connection %s, after heal: %v", name, err)
		}
	}
	if err := reachable(t, nodes, 0, 1); err != nil {
		t.Errorf("after heal: %v", err)
	}
}

// TestProcsSetup checks the PKI, addresses and command lines of a cluster
// without running cairn.
func TestProcsSetup(t *testing.T) {
	t.Parallel()
	p := newProcs(t, "/nonexistent/cairn", 3, ProcOptions{SnapshotCount: 100})
	seen := map[string]bool{}
	for i := range p.Len() {
		pr := p.Proc(i)
		host, _, err := net.SplitHostPort(pr.PeerAddr)
		if err != nil || host != pr.IP {
			t.Errorf("%s: peer address %q not on its IP %s", pr.Name, pr.PeerAddr, pr.IP)
		}
		if seen[pr.IP] || !strings.HasPrefix(pr.IP, "127.") {
			t.Errorf("%s: IP %s reused or not loopback", pr.Name, pr.IP)
		}
		seen[pr.IP] = true
		if pr.PeerAddr == pr.PeerBindAddr {
			t.Errorf("%s: the peer port is not behind its proxy", pr.Name)
		}

		b, err := os.ReadFile(pr.CertFile)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if want := "spiffe://" + ProcTrustDomain + "/node/" + pr.Name; len(cert.URIs) != 1 || cert.URIs[0].String() != want {
			t.Errorf("%s: URI SANs %v; want %s", pr.Name, cert.URIs, want)
		}
		var ips []string
		for _, ip := range cert.IPAddresses {
			ips = append(ips, ip.String())
		}
		if !slices.Contains(ips, pr.IP) || !slices.Contains(ips, "127.0.0.1") {
			t.Errorf("%s: IP SANs %v; want %s and 127.0.0.1", pr.Name, ips, pr.IP)
		}

		argv, err := p.Args(i, p.others(i)...)
		if err != nil {
			t.Fatal(err)
		}
		args := strings.Join(argv, " ")
		var peers []string
		for _, j := range p.others(i) {
			peers = append(peers, p.Proc(j).PeerAddr)
		}
		for _, want := range []string{
			"--peer-addr " + pr.PeerAddr, "--peer-bind-addr " + pr.PeerBindAddr,
			"--addr " + strings.TrimPrefix(pr.ClientURL, "https://"),
			"--peers " + strings.Join(peers, ","), "--snapshot-count 100",
			"--peer-election-timeout 1s", "--peer-heartbeat-interval 100ms",
			"--cert-file " + pr.CertFile, "--ca-file " + p.CAFile,
		} {
			if !strings.Contains(args, want) {
				t.Errorf("%s: args %q lack %q", pr.Name, args, want)
			}
		}
	}
	if argv, _ := p.Args(0); strings.Contains(strings.Join(argv, " "), "--peers") {
		t.Error("a node started with no peers gets --peers")
	}
	p.opts.PeersFile = true
	argv, err := p.Args(0, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if k := slices.Index(argv, "--peers-file"); k < 0 || slices.Contains(argv, "--peers") {
		t.Errorf("with PeersFile: args %q; want --peers-file and no --peers", argv)
	} else if b, err := os.ReadFile(argv[k+1]); err != nil || string(b) != p.Proc(1).PeerAddr+"\n"+p.Proc(2).PeerAddr+"\n" {
		t.Errorf("peers file: %q, %v", b, err)
	}
	if err := p.Start(0); err == nil {
		t.Error("Start with a missing binary succeeded")
	}
	if p.Running(0) {
		t.Error("Running after a failed start")
	}
	p.Kill(0) // never started: a no-op
	if err := p.Pause(0); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("Pause of a node never started: %v; want not running", err)
	}
	if err := p.Stop(0); err != nil {
		t.Errorf("Stop of a node never started: %v", err)
	}
	if got, want := p.RequestTimeout(), 7*time.Second; got != want {
		t.Errorf("RequestTimeout = %v, want %v", got, want)
	}
}
