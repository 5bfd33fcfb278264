package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/v2http"
	"github.com/cairnkv/cairn/tlsauth/pki"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// statusCluster is an in-process cluster whose members serve their v2
// API over mutual TLS on loopback, at the client URLs they advertise.
type statusCluster struct {
	hub     *cluster.InmemHub
	nodes   []*cluster.Node
	servers []*http.Server
	urls    []string
}

func peerAddr(i int) string { return fmt.Sprintf("10.0.0.%d:7001", i+1) }

// startStatusCluster starts n members with the node certificate of dev
// and waits until they form one cluster with a leader.
func startStatusCluster(t *testing.T, dev pki.Dev, n int) *statusCluster {
	t.Helper()
	m, err := tlsconf.LoadMaterial(tlsconf.DevFiles(dev))
	if err != nil {
		t.Fatal(err)
	}
	sc := &statusCluster{hub: cluster.NewInmemHub()}
	lns := make([]net.Listener, n)
	for i := range n {
		if lns[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		sc.urls = append(sc.urls, "https://"+lns[i].Addr().String())
	}
	for i := range n {
		var peers []string
		for j := range n {
			if j != i {
				peers = append(peers, peerAddr(j))
			}
		}
		node, err := cluster.New(cluster.Config{
			Name: fmt.Sprintf("n%d", i), DataDir: filepath.Join(t.TempDir(), "n"), PeerAddr: peerAddr(i),
			ClientURLs: []string{sc.urls[i]}, Network: sc.hub.Network(peerAddr(i)), Peers: peers,
			HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 400 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = node.Shutdown(ctx)
		})
		h, err := v2http.New(v2http.Config{Cluster: node})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.Serve(newTLSListener(lns[i], m.ServerConfig(tlsconf.Options{})))
		}()
		t.Cleanup(func() {
			_ = srv.Close()
			<-done
		})
		sc.nodes = append(sc.nodes, node)
		sc.servers = append(sc.servers, srv)
	}
	poll(t, fmt.Sprintf("%d named members and a leader", n), func() bool {
		for _, node := range sc.nodes {
			ms := node.Members()
			if len(ms) != n || node.Status().LeaderID == 0 {
				return false
			}
			for _, m := range ms {
				if m.Name == "" {
					return false
				}
			}
		}
		return true
	})
	return sc
}

// leader is the index of the member that leads.
func (sc *statusCluster) leader() int {
	for i, n := range sc.nodes {
		if n.Status().State == "StateLeader" {
			return i
		}
	}
	return -1
}

func runStatus(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runCairn(t, nil, append([]string{"status"}, args...)...)
}

func TestStatus(t *testing.T) {
	dataDir, dev := newDevPKI(t)
	sc := startStatusCluster(t, dev, 3)
	var lead int
	poll(t, "a leader every member agrees on", func() bool {
		lead = sc.leader()
		if lead < 0 {
			return false
		}
		for _, n := range sc.nodes {
			if n.Status().LeaderID != sc.nodes[lead].ID() {
				return false
			}
		}
		return true
	})
	client, err := tlsconf.LoadMaterial(tlsconf.DevClientFiles(dev))
	if err != nil {
		t.Fatal(err)
	}
	notAfter := client.Certificate().Leaf.NotAfter.UTC()
	days := int(time.Until(notAfter).Hours() / 24)
	expires := fmt.Sprintf("%s (%d days)", notAfter.Format("2006-01-02"), days)
	flags := []string{"--data-dir", dataDir, "--endpoints", strings.Join(sc.urls, ",")}

	t.Run("table", func(t *testing.T) {
		stdout, stderr, err := runStatus(t, flags...)
		if err != nil || stderr != "" {
			t.Fatalf("%v, stderr %q\n%s", err, stderr, stdout)
		}
		lines := strings.Split(stdout, "\n")
		header := regexp.MustCompile(`^NAME +ID +CLIENT URL +LEADER +HEALTH +RAFT TERM +RAFT INDEX +ETCD INDEX +CERTIFICATE EXPIRES$`)
		if !header.MatchString(lines[0]) {
			t.Errorf("header %q", lines[0])
		}
		for i := range 3 {
			mark := " "
			if i == lead {
				mark = `\*`
			}
			re := regexp.MustCompile(fmt.Sprintf(`(?m)^n%d +%x +%s +%s +healthy +[1-9]\d* +[1-9]\d* +\d+ +%s$`,
				i, sc.nodes[i].ID(), regexp.QuoteMeta(sc.urls[i]), mark, regexp.QuoteMeta(expires)))
			if !re.MatchString(stdout) {
				t.Errorf("no row like %s in\n%s", re, stdout)
			}
		}
		for _, want := range []string{
			fmt.Sprintf("\nleader:             n%d (%x)\n", lead, sc.nodes[lead].ID()),
			fmt.Sprintf("\nclient certificate: %s (spiffe://cairn.internal/client/root) expires %s\n", dev.ClientCertFile, expires),
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("no %q in\n%s", want, stdout)
			}
		}
	})

	t.Run("json", func(t *testing.T) {
		stdout, _, err := runStatus(t, append(flags, "-o", "json")...)
		if err != nil {
			t.Fatal(err)
		}
		var r statusReport
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatalf("%v\n%s", err, stdout)
		}
		if !r.Healthy || len(r.Problems) != 0 || len(r.Warnings) != 0 || len(r.Members) != 3 ||
			r.Leader != fmt.Sprintf("%x", sc.nodes[lead].ID()) || r.LeaderName != fmt.Sprintf("n%d", lead) {
			t.Errorf("report %+v", r)
		}
		for _, m := range r.Members {
			if !m.Reachable || !m.Healthy || m.RaftTerm == 0 || m.RaftIndex == 0 || m.Certificate == nil ||
				m.Certificate.Subject != "spiffe://cairn.internal/node/node1" || m.Error != "" ||
				m.IsLeader != (m.Name == r.LeaderName) || (m.State == "StateLeader") != m.IsLeader {
				t.Errorf("member %+v", m)
			}
		}
		if c := r.ClientCertificate; c.File != dev.ClientCertFile || !c.NotAfter.Equal(notAfter) || c.DaysLeft != days || c.Expired {
			t.Errorf("client certificate %+v", c)
		}
	})

	t.Run("certificate warnings", func(t *testing.T) {
		stdout, stderr, err := runStatus(t, append(flags, "--cert-warning", "9000h")...)
		if err != nil {
			t.Fatalf("%v\n%s", err, stdout)
		}
		if got := strings.Count(stderr, "warning: the certificate of member n"); got != 3 {
			t.Errorf("%d member warnings:\n%s", got, stderr)
		}
		want := fmt.Sprintf("warning: the client certificate %s (spiffe://cairn.internal/client/root) expires %s\n", dev.ClientCertFile, expires)
		if !strings.Contains(stderr, want) {
			t.Errorf("no %q in\n%s", want, stderr)
		}
	})

	t.Run("bad output", func(t *testing.T) {
		_, _, err := runStatus(t, append(flags, "-o", "yaml")...)
		if err == nil || err.Error() != `unsupported output format "yaml": use table or json` {
			t.Errorf("error %v", err)
		}
	})

	t.Run("no member answers", func(t *testing.T) {
		_, _, err := runStatus(t, "--data-dir", dataDir, "--endpoints", refusedEndpoint(t))
		if err == nil || !strings.HasPrefix(err.Error(), "list the members: no endpoint answered") {
			t.Errorf("error %v", err)
		}
	})

	// Last: these break the cluster.
	follower := (lead + 1) % 3
	t.Run("unhealthy member", func(t *testing.T) {
		// Cut off, a follower loses its leader: /health says 503, but
		// it still answers for its own state.
		sc.hub.Isolate(peerAddr(follower))
		var stdout string
		var err error
		poll(t, "the isolated member to report unhealthy", func() bool {
			stdout, _, err = runStatus(t, flags...)
			return err != nil && strings.Contains(err.Error(), fmt.Sprintf("member n%d is unhealthy: health: HTTP 503", follower))
		})
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^n%d +\S+ +\S+ +unhealthy +\d+ +\d+ +\d+ +\d{4}-`, follower)).MatchString(stdout) {
			t.Errorf("no unhealthy row for n%d:\n%s", follower, stdout)
		}
		if !strings.Contains(stdout, "\nproblem:            member n") {
			t.Errorf("no problem line:\n%s", stdout)
		}
		sc.hub.Heal()
	})
	t.Run("unreachable member", func(t *testing.T) {
		_ = sc.servers[follower].Close()
		stdout, _, err := runStatus(t, flags...)
		want := fmt.Sprintf("the cluster is not healthy: member n%d is unreachable: dial tcp %s: connect: connection refused",
			follower, strings.TrimPrefix(sc.urls[follower], "https://"))
		if err == nil || err.Error() != want {
			t.Errorf("error %v\nwant %s", err, want)
		}
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^n%d +\S+ +\S+ +unreachable +- +- +- +-$`, follower)).MatchString(stdout) {
			t.Errorf("no unreachable row for n%d:\n%s", follower, stdout)
		}
	})
	t.Run("unstarted member", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		added, err := sc.nodes[lead].AddMember(ctx, []string{"https://10.0.0.9:7001"})
		if err != nil {
			t.Fatal(err)
		}
		stdout, _, err := runStatus(t, flags...)
		want := fmt.Sprintf("member %x is unreachable: no client URL: the member has not started", added.ID)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant one with %s", err, want)
		}
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^\(unstarted\) +%x +- +unreachable`, added.ID)).MatchString(stdout) {
			t.Errorf("no unstarted row:\n%s", stdout)
		}
	})
}

// TestStatusFreshNode: on a node that has just started, before its first
// election, status waits for the leader and reports a healthy cluster.
func TestStatusFreshNode(t *testing.T) {
	dataDir, dev := newDevPKI(t)
	m, err := tlsconf.LoadMaterial(tlsconf.DevFiles(dev))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + ln.Addr().String()
	// A slow election: status starts long before the node leads.
	node, err := cluster.New(cluster.Config{Name: "fresh", DataDir: t.TempDir(), ClientURLs: []string{url},
		HeartbeatInterval: 100 * time.Millisecond, ElectionTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = node.Shutdown(ctx)
	})
	h, err := v2http.New(v2http.Config{Cluster: node})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(newTLSListener(ln, m.ServerConfig(tlsconf.Options{})))
	}()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	if node.Status().LeaderID != 0 {
		t.Fatal("the node leads already: the test needs an election in progress")
	}

	stdout, stderr, err := runStatus(t, "--data-dir", dataDir, "--endpoints", url, "--timeout", "8s")
	if err != nil || stderr != "" {
		t.Fatalf("%v, stderr %q\n%s", err, stderr, stdout)
	}
	if !regexp.MustCompile(`(?m)^fresh +\S+ +` + regexp.QuoteMeta(url) + ` +\* +healthy `).MatchString(stdout) {
		t.Errorf("no healthy leader row:\n%s", stdout)
	}
}

func TestCertWarnWithin(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	cert := func(life, left time.Duration) *certInfo {
		return &certInfo{NotBefore: now.Add(left - life), NotAfter: now.Add(left)}
	}
	tests := []struct {
		name     string
		ci       *certInfo
		override time.Duration
		warn     bool
	}{
		{"managed 7-day, fresh", cert(7*day, 7*day), 0, false},
		{"managed 7-day, 3 days left: before its renewal point", cert(7*day, 3*day), 0, false},
		{"managed 7-day, 2 days left: past its renewal point", cert(7*day, 2*day), 0, true},
		{"1-year, 40 days left", cert(365*day, 40*day), 0, false},
		{"1-year, 29 days left", cert(365*day, 29*day), 0, true},
		{"60-day, 25 days left", cert(60*day, 25*day), 0, false},
		{"60-day, 19 days left", cert(60*day, 19*day), 0, true},
		{"--cert-warning over a fresh 7-day one", cert(7*day, 7*day), 8 * day, true},
		{"expired", cert(7*day, -time.Hour), 0, true},
	}
	for _, tt := range tests {
		got := tt.ci.NotAfter.Sub(now) < certWarnWithin(tt.ci, tt.override)
		if got != tt.warn {
			t.Errorf("%s: warn %v, want %v (threshold %v)", tt.name, got, tt.warn, certWarnWithin(tt.ci, tt.override))
		}
	}
}
