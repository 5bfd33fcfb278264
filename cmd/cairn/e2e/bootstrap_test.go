package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/cmd/cairn/bootstrap"
)

// Bootstrap by discovery (docs/clustering.md): members with empty data
// dirs and no --peers find each other through a token in a one-member
// discovery cluster, or through SRV records that Cairn's own DNS serves.

// fastRaft makes the founding members elect a leader quickly.
var fastRaft = []string{"--peer-heartbeat-interval", "50ms", "--peer-election-timeout", "500ms"}

// launchFounders starts n members at once, each with the shared test PKI
// and args, and waits until each is healthy.
func launchFounders(t *testing.T, n int, args func(i int) (peerPort int, extra []string)) ([]*Server, []*CairnConfig) {
	t.Helper()
	servers := make([]*Server, n)
	cfgs := make([]*CairnConfig, n)
	for i := range n {
		port, extra := args(i)
		cfgs[i] = &CairnConfig{Bin: needCairn(t), Name: fmt.Sprintf("m%d", i), PKI: testPKI, PeerPort: port,
			Args: append(append([]string{}, fastRaft...), extra...)}
		servers[i] = LaunchCairn(t, cfgs[i])
	}
	for _, s := range servers {
		s.WaitHealthy(t)
	}
	return servers, cfgs
}

// oneCluster checks that every server lists the n members and that a write
// through the first is read through every other.
func oneCluster(t *testing.T, servers []*Server, n int) {
	t.Helper()
	for _, s := range servers {
		Poll(t, 20*time.Second, s.Name+" to list "+strconv.Itoa(n)+" members", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ms, err := s.Client(t).Members(ctx)
			if err == nil && len(ms) != n {
				err = fmt.Errorf("%d members: %+v", len(ms), ms)
			}
			return err
		})
	}
	if _, err := servers[0].SetKey(t, "/bootstrapped", servers[0].Name); err != nil {
		t.Fatal(err)
	}
	for _, s := range servers[1:] {
		ev, err := s.GetKey(t, "/bootstrapped")
		if err != nil || *ev.Node.Value != servers[0].Name {
			t.Fatalf("%s reads %+v %v, want the write made through %s", s.Name, ev, err, servers[0].Name)
		}
	}
}

func TestBootstrapToken(t *testing.T) {
	t.Parallel()
	d := StartCairn(t, &CairnConfig{Bin: needCairn(t), Name: "disc", PKI: testPKI})
	out := cairnCmd(t, append([]string{"discovery", "new", "--size", "3"}, serverConn(d)...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	u := lines[len(lines)-1]
	_, dir, err := bootstrap.ParseURL(u)
	if err != nil || !strings.HasPrefix(u, d.URL+"/v2/keys/_discovery/") {
		t.Fatalf("cairn discovery new printed %q: %v", out, err)
	}
	entries := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ev, err := d.Client(t).Get(ctx, dir, v2client.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return len(ev.Node.Nodes)
	}

	servers, cfgs := launchFounders(t, 3, func(int) (int, []string) { return 0, []string{"--discovery", u} })
	oneCluster(t, servers, 3)
	if n := entries(); n != 3 {
		t.Fatalf("%d members registered at the token, want 3", n)
	}

	// A fourth member is refused, says why and what to do, and leaves the
	// token as it was.
	fourth := LaunchCairn(t, &CairnConfig{Bin: needCairn(t), Name: "m3", PKI: testPKI, Args: []string{"--discovery", u}})
	select {
	case <-fourth.Proc.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("a fourth member did not exit; output:\n%s", fourth.Proc.Tail(4<<10))
	}
	if _, err := fourth.Proc.Exited(); err == nil {
		t.Fatalf("a fourth member exited 0:\n%s", fourth.Proc.Output())
	}
	for _, want := range []string{"is full", "--peers 127.0.0.1:", "cairn discovery new"} {
		if !strings.Contains(fourth.Proc.Output(), want) {
			t.Errorf("the fourth member's output does not say %q:\n%s", want, fourth.Proc.Tail(4<<10))
		}
	}
	if n := entries(); n != 3 {
		t.Fatalf("%d members registered after the fourth, want 3", n)
	}

	// A founding member restarted with its data dir rejoins without
	// registering again.
	if err := servers[1].Proc.Stop(syscall.SIGTERM, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	servers[1] = StartCairn(t, cfgs[1])
	oneCluster(t, []*Server{servers[1], servers[0], servers[2]}, 3)
	if n := entries(); n != 3 {
		t.Fatalf("%d members registered after a restart, want 3", n)
	}
	if !strings.Contains(servers[1].Proc.Output(), "discovery settings are ignored") {
		t.Errorf("the restarted member does not say it ignored the token:\n%s", servers[1].Proc.Tail(4<<10))
	}
}

// Three members bootstrap from SRV records _cairn-server._tcp.c1.cairn.internal
// that a Cairn member's DNS serves for their registrations.
func TestBootstrapSRV(t *testing.T) {
	t.Parallel()
	dnsAddr := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	d := StartCairn(t, &CairnConfig{Bin: needCairn(t), Name: "dns", PKI: testPKI, Args: []string{"--dns-addr", dnsAddr}})
	ports := make([]int, 3)
	for i := range ports {
		ports[i] = FreePort(t)
		rec := fmt.Sprintf(`{"host":"127.0.0.1","port":%d}`, ports[i])
		if _, err := d.SetKey(t, fmt.Sprintf("/skydns/internal/cairn/c1/cairn-server/m%d", i), rec); err != nil {
			t.Fatal(err)
		}
	}
	servers, _ := launchFounders(t, 3, func(i int) (int, []string) {
		return ports[i], []string{"--discovery-srv", "c1.cairn.internal", "--discovery-srv-resolver", dnsAddr}
	})
	oneCluster(t, servers, 3)
}

// The token may live in etcd (3.4 with the v2 API and client certificates):
// cairn discovery new and the members speak the same protocol to it.
func TestBootstrapTokenOnEtcd(t *testing.T) {
	t.Parallel()
	e := StartEtcd(t, testPKI, "disc")
	out := cairnCmd(t, append([]string{"discovery", "new", "--size", "3"}, serverConn(e)...)...)
	u := strings.TrimSpace(out)
	if !strings.HasPrefix(u, e.URL+"/v2/keys/_discovery/") {
		t.Fatalf("cairn discovery new against etcd printed %q", out)
	}
	servers, _ := launchFounders(t, 3, func(int) (int, []string) { return 0, []string{"--discovery", u} })
	oneCluster(t, servers, 3)
}
