package bootstrap

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
)

// SRVService is the service of the SRV records a member bootstraps from:
// _cairn-server._tcp.<domain> (etcd 2.x's is _etcd-server._tcp).
const SRVService = "cairn-server"

// SRV finds the founding members in the DNS SRV records
// _cairn-server._tcp.<Domain>: one record per member, target and port
// its peer address.
type SRV struct {
	// Domain is the domain the records are below.
	Domain string
	// Resolver is a DNS server (host:port) asked instead of the system's
	// resolver, e.g. a Cairn member's DNS port. Target names are then
	// resolved through it too, and the peers are IP:port.
	Resolver string
	// Logger receives progress (nil: discarded).
	Logger *slog.Logger
}

// Name is the DNS name looked up: _cairn-server._tcp.<Domain>.
func (s SRV) Name() string {
	return "_" + SRVService + "._tcp." + strings.TrimSuffix(s.Domain, ".") + "."
}

// Peers looks the records up and returns the peer addresses of the other
// members. Each one is target:port with the system's resolver (as etcd
// does; members then advertise their host names), IP:port with Resolver.
// m's own record must be there, written as m advertises its peer address:
// every member must see the same addresses for the lowest one to be the
// one that bootstraps (cluster/join.go).
func (s SRV) Peers(ctx context.Context, m Member) ([]string, error) {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	r, at := net.DefaultResolver, "the system's resolver"
	if s.Resolver != "" {
		server := s.Resolver
		r = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		}}
		at = s.Resolver
	}
	_, srvs, err := r.LookupSRV(ctx, "", "", s.Name())
	if err != nil {
		return nil, fmt.Errorf("discovery-srv: look up %s SRV at %s: %w; register one record per founding member (target and port: its peer address)", s.Name(), at, err)
	}
	if len(srvs) == 0 {
		return nil, fmt.Errorf("discovery-srv: %s has no SRV records at %s; register one per founding member (target and port: its peer address)", s.Name(), at)
	}
	var addrs []string
	for _, rec := range srvs {
		host := strings.TrimSuffix(rec.Target, ".")
		if s.Resolver != "" {
			ips, err := r.LookupIPAddr(ctx, rec.Target)
			if err != nil || len(ips) == 0 {
				return nil, fmt.Errorf("discovery-srv: resolve %s, the target of an SRV record of %s, at %s: %v", rec.Target, s.Name(), at, err)
			}
			host = ips[0].IP.String()
		}
		a := net.JoinHostPort(host, strconv.Itoa(int(rec.Port)))
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	slices.Sort(addrs)
	if !slices.Contains(addrs, m.PeerAddr) {
		return nil, fmt.Errorf("discovery-srv: this member's peer address %s is not among the SRV records of %s at %s (%s): add a record for it, or set --peer-addr to the address its record names",
			m.PeerAddr, s.Name(), at, strings.Join(addrs, ", "))
	}
	s.Logger.Info("discovery-srv: found the founding members", "name", s.Name(), "resolver", at, "peers", addrs)
	return slices.DeleteFunc(addrs, func(a string) bool { return a == m.PeerAddr }), nil
}
