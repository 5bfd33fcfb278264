package discovery_test

import (
	"errors"
	"testing"

	"github.com/cairnkv/cairn/discovery"
	"github.com/cairnkv/cairn/store"
)

func TestCatalog(t *testing.T) {
	v := func(s string) *string { return &s }
	tree := &store.NodeExtern{Key: "/skydns/internal/cairn", Dir: true, Nodes: store.NodeExterns{
		{Key: "/skydns/internal/cairn/prod", Dir: true, TTL: 5, Nodes: store.NodeExterns{
			{Key: "/skydns/internal/cairn/prod/api", Dir: true, Nodes: store.NodeExterns{
				{Key: "/skydns/internal/cairn/prod/api/a1", Value: v(`{"host":"::1","port":443}`), TTL: 9},
			}},
		}},
		{Key: "/skydns/internal/cairn/web", Dir: true, Nodes: store.NodeExterns{
			{Key: "/skydns/internal/cairn/web/Web-1", Value: v(`{"host":"10.0.0.5","port":8080}`), TTL: 7},
			{Key: "/skydns/internal/cairn/web/web-2", Value: v(`{"host":"10.0.0.6"}`)},
			{Key: "/skydns/internal/cairn/web/bad", Value: v(`{"port":99999}`)},
		}},
	}}
	got := discovery.Config{}.Catalog(tree)
	want := []discovery.Entry{
		{Key: "/skydns/internal/cairn/prod/api/a1", Name: "a1.api.prod.cairn.internal.", Service: "api.prod", Instance: "a1",
			Record: discovery.Record{Host: "::1", Port: 443}, TTL: 5},
		{Key: "/skydns/internal/cairn/web/Web-1", Name: "web-1.web.cairn.internal.", Service: "web", Instance: "web-1",
			Record: discovery.Record{Host: "10.0.0.5", Port: 8080}, TTL: 7},
		{Key: "/skydns/internal/cairn/web/web-2", Name: "web-2.web.cairn.internal.", Service: "web", Instance: "web-2",
			Record: discovery.Record{Host: "10.0.0.6"}},
		{Key: "/skydns/internal/cairn/web/bad", Name: "bad.web.cairn.internal.", Service: "web", Instance: "bad"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries: %+v", len(got), got)
	}
	for i := range want {
		g := got[i]
		if (g.Err != nil) != (i == 3) {
			t.Errorf("%s: error %v", g.Key, g.Err)
		}
		g.Err = nil
		if i == 3 {
			g.Record = discovery.Record{}
		}
		if g != want[i] {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i, g, want[i])
		}
	}
	var re interface{ Error() string }
	if !errors.As(got[3].Err, &re) {
		t.Error("no error for an invalid record")
	}
}

func TestServiceNames(t *testing.T) {
	tests := []struct {
		cfg                discovery.Config
		service, name, srv string
	}{
		{discovery.Config{}, "web", "web.cairn.internal.", "_web._tcp.cairn.internal."},
		{discovery.Config{}, "API.prod", "api.prod.cairn.internal.", "_api._tcp.prod.cairn.internal."},
		{discovery.Config{Domain: "example.org"}, "db", "db.example.org.", "_db._tcp.example.org."},
	}
	for _, tt := range tests {
		name, srv, ok := tt.cfg.ServiceNames(tt.service)
		if !ok || name != tt.name || srv != tt.srv {
			t.Errorf("%s: %q, %q, %v; want %q, %q", tt.service, name, srv, ok, tt.name, tt.srv)
		}
	}
	if _, _, ok := (discovery.Config{}).ServiceNames("a/b"); ok {
		t.Error("a service with a slash makes a name")
	}
}
