package bootstrap_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/cmd/cairn/bootstrap"
)

// SRV records served by Cairn's own DNS: a registration of instance <m>
// of service cairn-server answers _cairn-server._tcp.<domain>.
func TestSRVFromCairnDNS(t *testing.T) {
	d := startDiscovery(t)
	ctx := context.Background()
	for i := range 3 {
		key := fmt.Sprintf("/skydns/internal/cairn/c1/cairn-server/m%d", i)
		rec := fmt.Sprintf(`{"host":"127.0.0.1","port":%d}`, 7100+i)
		if _, err := d.c.Set(ctx, key, rec, v2client.SetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	srv := bootstrap.SRV{Domain: "c1.cairn.internal", Resolver: d.DNSAddr()}
	if got := srv.Name(); got != "_cairn-server._tcp.c1.cairn.internal." {
		t.Errorf("Name() = %q", got)
	}
	peers, err := srv.Peers(ctx, member(1))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.1:7100", "127.0.0.1:7102"}; !slices.Equal(peers, want) {
		t.Errorf("peers %v, want %v", peers, want)
	}

	for _, tc := range []struct {
		name string
		srv  bootstrap.SRV
		m    bootstrap.Member
		want string
	}{
		{"not listed", srv, member(5), "is not among the SRV records"},
		{"written otherwise", srv, bootstrap.Member{ID: 1, Name: "m1", PeerAddr: "localhost:7101"}, "set --peer-addr"},
		{"no records", bootstrap.SRV{Domain: "c2.cairn.internal", Resolver: d.DNSAddr()}, member(0), "register one record per founding member"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.srv.Peers(ctx, tc.m); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Peers: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
