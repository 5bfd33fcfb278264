package server

import (
	"context"
	"net"
	"strings"

	"github.com/cairnkv/cairn/cmd/cairn/bootstrap"
)

// Bootstrap by discovery (docs/clustering.md): a member with an empty data
// dir finds its peers through a discovery token or DNS SRV records
// (package bootstrap) instead of --peers.

// checkDiscovery checks the discovery settings against each other and
// against peers; bad records each problem.
func (c *Config) checkDiscovery(bad func(string, ...any)) {
	if c.DiscoveryURL != "" {
		if _, _, err := bootstrap.ParseURL(c.DiscoveryURL); err != nil {
			bad("discovery.url: %v", err)
		}
	}
	ways := 0
	var named []string
	for _, w := range []struct {
		set  bool
		name string
	}{
		{len(c.Peers) > 0, "peers (--peers, --peers-file)"},
		{c.DiscoveryURL != "", "discovery.url (--discovery)"},
		{c.DiscoverySRV != "", "discovery.srv (--discovery-srv)"},
	} {
		if w.set {
			ways++
			named = append(named, w.name)
		}
	}
	if ways > 1 {
		bad("%s each say how to find the other members: give one of them (a discovery token or SRV records for a new cluster, --peers to join an existing one)", strings.Join(named, " and "))
	}
	if c.DiscoverySRVResolver != "" {
		if _, _, err := net.SplitHostPort(c.DiscoverySRVResolver); err != nil {
			bad("discovery.srv_resolver: %q is not host:port", c.DiscoverySRVResolver)
		}
		if c.DiscoverySRV == "" {
			bad("discovery.srv_resolver is set without discovery.srv (--discovery-srv DOMAIN): it only says where to look the SRV records up")
		}
	}
}

// discover is the node's cluster.Config.Discover for the discovery
// settings, nil without any. It blocks New until the founding members
// are known, or the context of WithContext ends.
func (s *Server) discover(t tlsSetup) func(id uint64) ([]string, error) {
	cfg := s.cfg
	ctx := s.opts.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	member := func(id uint64) bootstrap.Member {
		return bootstrap.Member{ID: id, Name: cfg.Name, PeerAddr: s.peerAddr}
	}
	switch {
	case cfg.DiscoveryURL != "":
		tok := bootstrap.Token{URL: cfg.DiscoveryURL, TLS: t.material.ClientConfig(t.opts), Logger: s.log}
		return func(id uint64) ([]string, error) { return tok.Peers(ctx, member(id)) }
	case cfg.DiscoverySRV != "":
		srv := bootstrap.SRV{Domain: cfg.DiscoverySRV, Resolver: cfg.DiscoverySRVResolver, Logger: s.log}
		return func(id uint64) ([]string, error) { return srv.Peers(ctx, member(id)) }
	}
	return nil
}
