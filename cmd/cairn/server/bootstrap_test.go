package server_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/cmd/cairn/bootstrap"
	"github.com/cairnkv/cairn/cmd/cairn/server"
	"github.com/cairnkv/cairn/cmd/cairn/server/servertest"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// Three members started at once from one discovery token form one
// cluster; a fourth is refused; a founding member restarted with its data
// dir does not register again.
func TestDiscoveryToken(t *testing.T) {
	d := servertest.Start(t, func(c *server.Config) { c.Name = "disc" })
	tc, err := tlsconf.ClientConfigFromFiles(d.ClientFiles)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := v2client.New(v2client.Config{Endpoints: []string{d.URL}, TLS: tc})
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	ctx := context.Background()
	u, err := bootstrap.NewToken(ctx, dc, bootstrap.DefaultPrefix, 3)
	if err != nil {
		t.Fatal(err)
	}
	_, dir, _ := bootstrap.ParseURL(u)
	registered := func() int {
		ev, err := dc.Get(ctx, dir, v2client.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return len(ev.Node.Nodes)
	}

	cfgs := make([]server.Config, 4)
	for i := range cfgs {
		cfgs[i] = servertest.Config(t)
		cfgs[i].Name = fmt.Sprintf("m%d", i)
		cfgs[i].CAFile = d.DevPKI().CAFile // node certificates from the discovery cluster's CA
		cfgs[i].DiscoveryURL = u
	}
	members := make([]*server.Server, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			members[i], errs[i] = server.New(cfgs[i], server.WithContext(nctx))
		})
	}
	wg.Wait()
	for i, s := range members {
		if errs[i] != nil {
			t.Fatalf("member %d: %v", i, errs[i])
		}
		run(t, s)
	}
	poll.Until(t, 30*time.Second, "one cluster of 3", func() bool {
		for _, s := range members {
			if len(s.Node().Members()) != 3 || s.Node().Status().LeaderID == 0 {
				return false
			}
		}
		return true
	})
	if n := registered(); n != 3 {
		t.Fatalf("%d entries at the token, want 3", n)
	}

	_, err = server.New(cfgs[3])
	var full *bootstrap.FullError
	if !errors.As(err, &full) || !strings.Contains(err.Error(), "is full") {
		t.Fatalf("fourth member: %v, want the token full", err)
	}

	// Restart member 1 from its data dir: the token is not asked again.
	members[1].Close()
	cfgs[1].DiscoveryURL = "https://127.0.0.1:1/v2/keys/_discovery/unreachable"
	again, err := server.New(cfgs[1])
	if err != nil {
		t.Fatalf("restart with a data dir: %v", err)
	}
	run(t, again)
	if n := registered(); n != 3 {
		t.Fatalf("%d entries at the token after a restart, want 3", n)
	}
}

// run serves s until the test ends.
func run(t *testing.T, s *server.Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}
