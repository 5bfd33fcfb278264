package v2client_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/cmd/cairn/server"
	"github.com/cairnkv/cairn/cmd/cairn/server/servertest"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// statusClient is a client of endpoints with the certificate files f and
// the per-request timeout timeout.
func statusClient(t *testing.T, f tlsconf.Files, timeout time.Duration, endpoints ...string) *v2client.Client {
	t.Helper()
	tc, err := tlsconf.ClientConfigFromFiles(f)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v2client.New(v2client.Config{Endpoints: endpoints, TLS: tc, Timeout: timeout, CertFile: f.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestStatus(t *testing.T) {
	srvs := servertest.StartCluster(t, 3, nil)
	var urls []string
	for _, s := range srvs {
		urls = append(urls, s.URL)
	}
	lead := -1
	poll.Until(t, 20*time.Second, "a leader every member agrees on", func() bool {
		lead = -1
		for i, s := range srvs {
			if s.Node().Status().State == "StateLeader" {
				lead = i
			}
		}
		if lead < 0 {
			return false
		}
		for _, s := range srvs {
			if s.Node().Status().LeaderID != srvs[lead].Node().ID() {
				return false
			}
		}
		return true
	})
	files := srvs[0].ClientFiles
	c := statusClient(t, files, 2*time.Second, urls...)
	ctx := context.Background()

	t.Run("healthy", func(t *testing.T) {
		s, err := c.Status(ctx, v2client.StatusOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !s.Healthy || len(s.Problems) != 0 || len(s.Warnings) != 0 || len(s.Members) != 3 ||
			s.Leader != fmt.Sprintf("%x", srvs[lead].Node().ID()) || s.LeaderName != fmt.Sprintf("n%d", lead) {
			t.Errorf("status %+v", s)
		}
		for _, m := range s.Members {
			if !m.Reachable || !m.Healthy || m.RaftTerm == 0 || m.RaftIndex == 0 || m.Certificate == nil ||
				!strings.HasPrefix(m.Certificate.Subject, "spiffe://cairn.internal/node/") || m.Error != "" ||
				m.IsLeader != (m.Name == s.LeaderName) || (m.State == "StateLeader") != m.IsLeader || !contains(urls, m.Endpoint) {
				t.Errorf("member %+v", m)
			}
		}
		ci := s.ClientCertificate
		if ci.File != files.CertFile || ci.Subject != "spiffe://cairn.internal/client/root" || ci.Expired || ci.DaysLeft < 1 {
			t.Errorf("client certificate %+v", ci)
		}
	})

	t.Run("certificate warnings", func(t *testing.T) {
		within := func(time.Time, time.Time) time.Duration { return 9000 * time.Hour }
		s, err := c.Status(ctx, v2client.StatusOptions{WarnWithin: within})
		if err != nil {
			t.Fatal(err)
		}
		var members, client int
		for _, w := range s.Warnings {
			switch {
			case strings.HasPrefix(w, "the certificate of member n"):
				members++
			case strings.HasPrefix(w, fmt.Sprintf("the client certificate %s (spiffe://cairn.internal/client/root) expires ", files.CertFile)):
				client++
			}
		}
		if members != 3 || client != 1 || !s.Healthy {
			t.Errorf("warnings %q, healthy %v", s.Warnings, s.Healthy)
		}
	})

	t.Run("no member answers", func(t *testing.T) {
		_, err := statusClient(t, files, time.Second, refused(t)).Status(ctx, v2client.StatusOptions{})
		if err == nil || !strings.HasPrefix(err.Error(), "list the members: no endpoint answered") {
			t.Errorf("error %v", err)
		}
	})

	// Last: these break the cluster.
	t.Run("unstarted member", func(t *testing.T) {
		added, err := srvs[lead].Node().AddMember(ctx, []string{refused(t)})
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.Status(ctx, v2client.StatusOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("member %x is unreachable: no client URL: the member has not started", added.ID)
		if s.Healthy || !contains(s.Problems, want) {
			t.Errorf("problems %q; want %q", s.Problems, want)
		}
	})
	follower, other := (lead+1)%3, (lead+2)%3
	t.Run("unreachable member", func(t *testing.T) {
		srvs[follower].Close()
		s, err := c.Status(ctx, v2client.StatusOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("member n%d is unreachable: dial tcp %s: connect: connection refused",
			follower, strings.TrimPrefix(urls[follower], "https://"))
		if s.Healthy || !contains(s.Problems, want) {
			t.Errorf("problems %q; want %q", s.Problems, want)
		}
	})
	t.Run("unhealthy member", func(t *testing.T) {
		// Alone, a member loses its leader: /health says 503, but it
		// still answers for its own state.
		srvs[lead].Close()
		want := fmt.Sprintf("member n%d is unhealthy: health: HTTP 503", other)
		var s *v2client.Status
		poll.Until(t, 20*time.Second, "the member left alone to report unhealthy", func() bool {
			var err error
			s, err = c.Status(ctx, v2client.StatusOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range s.Problems {
				if strings.HasPrefix(p, want) {
					return true
				}
			}
			return false
		})
		m := s.Members[0]
		for _, x := range s.Members {
			if x.Name == fmt.Sprintf("n%d", other) {
				m = x
			}
		}
		if s.Healthy || !m.Reachable || m.Healthy || m.RaftTerm == 0 || m.Certificate == nil {
			t.Errorf("status %+v, member %+v", s, m)
		}
	})
}

// TestStatusFreshNode: on a node that has just started, before its first
// election, Status waits for the leader and reports a healthy cluster.
func TestStatusFreshNode(t *testing.T) {
	cfg := servertest.Config(t)
	// A slow election: Status starts long before the node leads.
	cfg.HeartbeatInterval, cfg.ElectionTimeout = 100*time.Millisecond, 2*time.Second
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	if srv.Node().Status().LeaderID != 0 {
		t.Fatal("the node leads already: the test needs an election in progress")
	}
	c := statusClient(t, tlsconf.DevClientFiles(*srv.DevPKI()), 8*time.Second, srv.ClientURL())
	s, err := c.Status(context.Background(), v2client.StatusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Healthy || len(s.Members) != 1 || !s.Members[0].IsLeader || !s.Members[0].Healthy || s.Members[0].Endpoint != srv.ClientURL() {
		t.Errorf("status %+v", s)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
