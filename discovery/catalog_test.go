package discovery_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/discovery"
	"github.com/cairnkv/cairn/store"
)

// catalogTree is a recursive read of /skydns/internal/cairn: api.prod with
// one instance, web with two and one that DNS ignores.
func catalogTree() *store.NodeExtern {
	v := func(s string) *string { return &s }
	return &store.NodeExtern{Key: "/skydns/internal/cairn", Dir: true, Nodes: store.NodeExterns{
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
}

func TestCatalog(t *testing.T) {
	got := discovery.Config{}.Catalog(catalogTree())
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

func TestServiceCatalog(t *testing.T) {
	dc := discovery.Config{}
	var keys []string
	for _, e := range dc.ServiceCatalog(catalogTree().Nodes[1], "Web.") {
		keys = append(keys, e.Key)
	}
	if got := strings.Join(keys, " "); got != "/skydns/internal/cairn/web/Web-1 /skydns/internal/cairn/web/web-2 /skydns/internal/cairn/web/bad" {
		t.Errorf("web: %s", got)
	}
	// prod holds no instance of its own, only those of api.prod.
	if got := dc.ServiceCatalog(catalogTree().Nodes[0], "prod"); len(got) != 0 {
		t.Errorf("prod: %+v", got)
	}
	if got := dc.ServiceCatalog(catalogTree(), ""); len(got) != 4 {
		t.Errorf("all: %d entries", len(got))
	}

	for _, tt := range []struct{ service, dir, err string }{
		{"", "/skydns/internal/cairn", ""},
		{"web", "/skydns/internal/cairn/web", ""},
		{"api.prod.", "/skydns/internal/cairn/prod/api", ""},
		{"a/b", "", `service "a/b": want a name relative to cairn.internal., such as web or api.prod`},
	} {
		dir, err := dc.ServiceDir(tt.service)
		if dir != tt.dir || (err == nil) != (tt.err == "") || err != nil && err.Error() != tt.err {
			t.Errorf("ServiceDir(%q) = %q, %v; want %q, %q", tt.service, dir, err, tt.dir, tt.err)
		}
	}
}

func TestServices(t *testing.T) {
	dc := discovery.Config{}
	got := dc.Services(dc.Catalog(catalogTree()))
	want := []discovery.ServiceSummary{
		{Service: "api.prod", Instances: 1, Name: "api.prod.cairn.internal.", SRVName: "_api._tcp.prod.cairn.internal."},
		{Service: "web", Instances: 2, Name: "web.cairn.internal.", SRVName: "_web._tcp.cairn.internal."},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("%+v\nwant %+v", got, want)
	}
}
