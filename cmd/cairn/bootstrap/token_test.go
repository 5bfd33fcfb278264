package bootstrap_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/cmd/cairn/bootstrap"
	"github.com/cairnkv/cairn/cmd/cairn/server/servertest"
	"github.com/cairnkv/cairn/tlsauth/tlsconf"
)

// discoveryCluster is a one-member discovery cluster and a client of it.
type discoveryCluster struct {
	*servertest.Server
	tls *tls.Config
	c   *v2client.Client
}

func startDiscovery(t *testing.T) *discoveryCluster {
	t.Helper()
	s := servertest.Start(t, nil)
	tc, err := tlsconf.ClientConfigFromFiles(s.ClientFiles)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v2client.New(v2client.Config{Endpoints: []string{s.URL}, TLS: tc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &discoveryCluster{Server: s, tls: tc, c: c}
}

func (d *discoveryCluster) newToken(t *testing.T, size int) string {
	t.Helper()
	u, err := bootstrap.NewToken(context.Background(), d.c, bootstrap.DefaultPrefix, size)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// entries lists the members registered at the token u.
func (d *discoveryCluster) entries(t *testing.T, u string) []string {
	t.Helper()
	_, dir, err := bootstrap.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := d.c.Get(context.Background(), dir, v2client.GetOptions{Sorted: true})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range ev.Node.Nodes {
		out = append(out, path.Base(n.Key)+"="+*n.Value)
	}
	return out
}

func (d *discoveryCluster) token(u string) bootstrap.Token {
	return bootstrap.Token{URL: u, TLS: d.tls, Retry: 10 * time.Millisecond}
}

func member(i int) bootstrap.Member {
	return bootstrap.Member{ID: uint64(0xa0 + i), Name: fmt.Sprintf("m%d", i), PeerAddr: fmt.Sprintf("127.0.0.1:%d", 7100+i)}
}

func TestNewTokenURL(t *testing.T) {
	d := startDiscovery(t)
	u := d.newToken(t, 3)
	prefix := d.URL + "/v2/keys" + bootstrap.DefaultPrefix + "/"
	if !strings.HasPrefix(u, prefix) || len(strings.TrimPrefix(u, prefix)) != 32 {
		t.Fatalf("token URL %q: want %s<32 hex digits>", u, prefix)
	}
	_, dir, _ := bootstrap.ParseURL(u)
	ev, err := d.c.Get(context.Background(), dir+"/_config/size", v2client.GetOptions{})
	if err != nil || *ev.Node.Value != "3" {
		t.Fatalf("size key: %v %+v", err, ev)
	}
	for _, size := range []int{0, -1} {
		if _, err := bootstrap.NewToken(context.Background(), d.c, bootstrap.DefaultPrefix, size); err == nil {
			t.Errorf("NewToken(size %d) succeeded", size)
		}
	}
}

// Three members at once: each gets the two others; a fourth is refused
// without registering.
func TestTokenThreeAtOnce(t *testing.T) {
	d := startDiscovery(t)
	u := d.newToken(t, 3)
	got := make([][]string, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			got[i], errs[i] = d.token(u).Peers(ctx, member(i))
		})
	}
	wg.Wait()
	for i := range 3 {
		if errs[i] != nil {
			t.Fatalf("member %d: %v", i, errs[i])
		}
		var want []string
		for j := range 3 {
			if j != i {
				want = append(want, member(j).PeerAddr)
			}
		}
		slices.Sort(got[i])
		if !slices.Equal(got[i], want) {
			t.Errorf("member %d: peers %v, want %v", i, got[i], want)
		}
	}
	want := []string{"a0=m0=https://127.0.0.1:7100", "a1=m1=https://127.0.0.1:7101", "a2=m2=https://127.0.0.1:7102"}
	if e := d.entries(t, u); !slices.Equal(e, want) {
		t.Fatalf("entries %v, want %v", e, want)
	}

	_, err := d.token(u).Peers(context.Background(), member(3))
	var full *bootstrap.FullError
	if !errors.As(err, &full) || full.Size != 3 || len(full.Members) != 3 {
		t.Fatalf("fourth member: %v, want a FullError of 3 members", err)
	}
	for _, s := range []string{"is full", "--peers 127.0.0.1:710", "cairn discovery new"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("the refusal %q does not say %q", err, s)
		}
	}
	if e := d.entries(t, u); len(e) != 3 {
		t.Fatalf("the refused member registered: %v", e)
	}

	// A founding member asking again (it restarted before the cluster
	// formed) gets the same peers and registers nothing.
	again, err := d.token(u).Peers(context.Background(), member(1))
	slices.Sort(again)
	if err != nil || !slices.Equal(again, []string{member(0).PeerAddr, member(2).PeerAddr}) {
		t.Fatalf("member 1 again: %v %v", again, err)
	}
	if e := d.entries(t, u); len(e) != 3 {
		t.Fatalf("entries after a second run: %v", e)
	}
}

// Two members racing for a token of one: exactly one founds the cluster,
// the other is refused and its entry removed.
func TestTokenRace(t *testing.T) {
	d := startDiscovery(t)
	for round := range 3 {
		u := d.newToken(t, 1)
		errs := make([]error, 2)
		peers := make([][]string, 2)
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() { peers[i], errs[i] = d.token(u).Peers(context.Background(), member(i)) })
		}
		wg.Wait()
		var won, full int
		for i, err := range errs {
			var fe *bootstrap.FullError
			switch {
			case err == nil && len(peers[i]) == 0:
				won++
			case errors.As(err, &fe):
				full++
			default:
				t.Fatalf("round %d member %d: %v %v", round, i, peers[i], err)
			}
		}
		if won != 1 || full != 1 {
			t.Fatalf("round %d: %d founded, %d refused; want 1 and 1", round, won, full)
		}
		if e := d.entries(t, u); len(e) != 1 {
			t.Fatalf("round %d: entries %v, want one", round, e)
		}
	}
}

func TestTokenErrors(t *testing.T) {
	d := startDiscovery(t)
	ctx := context.Background()

	missing := d.URL + "/v2/keys/_discovery/nosuchtoken"
	if _, err := d.token(missing).Peers(ctx, member(0)); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing token: %v", err)
	}

	u := d.newToken(t, 2)
	_, dir, _ := bootstrap.ParseURL(u)
	if _, err := d.c.Set(ctx, dir+"/a0", "someone=https://127.0.0.1:9", v2client.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.token(u).Peers(ctx, member(0)); err == nil || !strings.Contains(err.Error(), "another member has this ID") {
		t.Errorf("ID taken: %v", err)
	}

	bad := d.newToken(t, 2)
	_, dir, _ = bootstrap.ParseURL(bad)
	if _, err := d.c.Set(ctx, dir+"/_config/size", "three", v2client.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.token(bad).Peers(ctx, member(0)); err == nil || !strings.Contains(err.Error(), "not a number") {
		t.Errorf("bad size: %v", err)
	}

	// Waiting for members that never come ends with the context.
	wait := d.newToken(t, 2)
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := d.token(wait).Peers(cctx, member(0)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting past the deadline: %v", err)
	}
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct{ in, ep, dir string }{
		{"https://127.0.0.1:4001/v2/keys/_discovery/abc", "https://127.0.0.1:4001", "/_discovery/abc"},
		{"https://d.example.com/v2/keys/_discovery/abc/", "https://d.example.com:443", "/_discovery/abc"},
		{"http://127.0.0.1:4001/v2/keys/_discovery/abc", "", ""},
		{"https://127.0.0.1:4001/v2/keys/", "", ""},
		{"https://127.0.0.1:4001/_discovery/abc", "", ""},
		{"https://127.0.0.1:4001/v2/keys/a?x=1", "", ""},
		{"127.0.0.1:4001", "", ""},
	} {
		ep, dir, err := bootstrap.ParseURL(tc.in)
		if tc.ep == "" {
			if err == nil {
				t.Errorf("ParseURL(%q) = %q %q, want an error", tc.in, ep, dir)
			}
			continue
		}
		if err != nil || ep != tc.ep || dir != tc.dir {
			t.Errorf("ParseURL(%q) = %q %q %v, want %q %q", tc.in, ep, dir, err, tc.ep, tc.dir)
		}
	}
}
