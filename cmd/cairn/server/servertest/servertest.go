// Package servertest starts a real Cairn member (server.Server) for a
// test in one line: every port on 127.0.0.1 with port 0, a development PKI
// in a temporary data dir, fast raft timers, stopped when the test ends.
//
//	s := servertest.Start(t, nil)
//	resp, err := s.Client.Get(s.URL + "/v2/keys/x")
//
// StartCluster starts members that form one cluster.
package servertest

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/cmd/cairn/server"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// Server is a running member and a client that reaches it.
type Server struct {
	*server.Server
	// URL is the client URL, https://127.0.0.1:<port>.
	URL string
	// Client presents the development PKI's root client certificate and
	// trusts its CA.
	Client *http.Client
	// ClientFiles are that certificate's files, for clients made otherwise
	// (etcd's Go client, cairn's client commands, curl).
	ClientFiles tlsconf.Files
}

// Config is the configuration Start uses before edit: the defaults with
// every address on 127.0.0.1 port 0 (DNS and the metrics port included),
// the data dir in t.TempDir(), and raft timers fit for tests.
func Config(t testing.TB) server.Config {
	c := server.Default()
	c.Name = "test"
	c.DataDir = t.TempDir()
	c.Addr, c.BindAddr = "127.0.0.1:0", "127.0.0.1:0"
	c.PeerAddr, c.PeerBindAddr = "127.0.0.1:0", "127.0.0.1:0"
	c.DNSAddr = "127.0.0.1:0"
	c.MetricsAddr = "127.0.0.1:0"
	c.HeartbeatInterval = 20 * time.Millisecond
	c.ElectionTimeout = 400 * time.Millisecond
	return c
}

// Start starts a member with Config(t), changed by edit when it is not
// nil, and returns once it has a leader and its client port answers.
// The member is closed when the test ends, and Run's error fails the test.
// A member joining others (c.Peers) is returned once it answers, leader
// or not known yet.
func Start(t testing.TB, edit func(*server.Config), opts ...server.Option) *Server {
	t.Helper()
	cfg := Config(t)
	if edit != nil {
		edit(&cfg)
	}
	s, err := server.New(cfg, opts...)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("servertest: Run: %v", err)
		}
	})
	ts := &Server{Server: s, URL: s.ClientURL()}
	if dev := s.DevPKI(); dev != nil {
		ts.ClientFiles = tlsconf.DevClientFiles(*dev)
		tc, err := tlsconf.ClientConfigFromFiles(ts.ClientFiles)
		if err != nil {
			t.Fatalf("servertest: client certificate: %v", err)
		}
		ts.Client = &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		t.Cleanup(ts.Client.CloseIdleConnections)
	}
	if len(cfg.Peers) == 0 {
		poll.Until(t, 20*time.Second, "a leader", func() bool { return s.Node().Status().LeaderID != 0 })
	}
	return ts
}

// StartCluster starts n members, n0 to n<n-1>, that form one cluster: the
// first alone, the others joining through it with node certificates from
// its development CA. edit, when not nil, changes member i's configuration.
// Every member's Client and ClientFiles are the first's root client (one
// CA), and StartCluster returns once every member knows all n by name and
// a leader.
func StartCluster(t testing.TB, n int, edit func(i int, c *server.Config), opts ...server.Option) []*Server {
	t.Helper()
	out := make([]*Server, n)
	for i := range n {
		out[i] = Start(t, func(c *server.Config) {
			c.Name = fmt.Sprintf("n%d", i)
			if i > 0 {
				c.Peers = []string{out[0].PeerAddr()}
				c.CAFile = out[0].DevPKI().CAFile
			}
			if edit != nil {
				edit(i, c)
			}
		}, opts...)
		if i > 0 {
			out[i].Client, out[i].ClientFiles = out[0].Client, out[0].ClientFiles
		}
	}
	poll.Until(t, 30*time.Second, fmt.Sprintf("%d named members and a leader", n), func() bool {
		for _, s := range out {
			ms := s.Node().Members()
			if len(ms) != n || s.Node().Status().LeaderID == 0 {
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
	return out
}
