package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestServiceList(t *testing.T) {
	s, dev := startKVNode(t, 0) // its clock stands still: TTLs are exact
	url := s.URL
	for _, args := range [][]string{
		{"set", "--ttl", "30", "/skydns/internal/cairn/web/web-1", `{"host":"10.0.0.5","port":8080}`},
		{"set", "/skydns/internal/cairn/web/web-2", `{"host":"2001:db8::6","port":8080}`},
		{"set", "--ttl", "10", "/skydns/internal/cairn/prod/api/a1", `{"host":"api-1.example.com","port":443}`},
		{"set", "/skydns/internal/cairn/cfg/c", `{"text":"v=1"}`},
		{"set", "/skydns/org/example/db/d1", `{"host":"10.1.0.1","port":5432}`},
	} {
		putKey(t, url, dev, args...)
	}
	flags := devFlags(url, dev)
	tests := []struct {
		name, args, stdout, err string
	}{
		{name: "services", args: "service list", stdout: "" +
			"SERVICE   INSTANCES  DNS NAMES\n" +
			"api.prod  1          api.prod.cairn.internal. _api._tcp.prod.cairn.internal.\n" +
			"cfg       1          cfg.cairn.internal. _cfg._tcp.cairn.internal.\n" +
			"web       2          web.cairn.internal. _web._tcp.cairn.internal.\n"},
		{name: "instances", args: "service list web", stdout: "" +
			"INSTANCE  ADDRESS             TTL  DNS NAME\n" +
			"web-1     10.0.0.5:8080       30s  web-1.web.cairn.internal.\n" +
			"web-2     [2001:db8::6]:8080  -    web-2.web.cairn.internal.\n" +
			"\n2 instances of web, answered as web.cairn.internal. (A/AAAA, SRV) and _web._tcp.cairn.internal. (SRV)\n"},
		{name: "nested service", args: "service list api.prod", stdout: "" +
			"INSTANCE  ADDRESS                TTL  DNS NAME\n" +
			"a1        api-1.example.com:443  10s  a1.api.prod.cairn.internal.\n" +
			"\n1 instance of api.prod, answered as api.prod.cairn.internal. (A/AAAA, SRV) and _api._tcp.prod.cairn.internal. (SRV)\n"},
		{name: "another domain", args: "service list --domain example.org", stdout: "" +
			"SERVICE  INSTANCES  DNS NAMES\n" +
			"db       1          db.example.org. _db._tcp.example.org.\n"},
		{name: "another prefix", args: "service list --prefix /nothing", stdout: "SERVICE  INSTANCES  DNS NAMES\n"},
		{name: "unknown service", args: "service list mail", err: "service mail has no registration (no key /skydns/internal/cairn/mail)"},
		{name: "bad service", args: "service list a/b", err: `service "a/b": want a name relative to cairn.internal.`},
		{name: "bad output", args: "service list -o yaml", err: `unsupported output format "yaml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := runCairn(t, nil, append(strings.Fields(tt.args), flags...)...)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v; want one with %q", err, tt.err)
				}
				return
			}
			if err != nil || stderr != "" || stdout != tt.stdout {
				t.Fatalf("%v, stderr %q, stdout:\n%s\nwant:\n%s", err, stderr, stdout, tt.stdout)
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		stdout, _, err := runCairn(t, nil, append([]string{"service", "list", "web", "-o", "json"}, flags...)...)
		if err != nil {
			t.Fatal(err)
		}
		var d serviceDetail
		if err := json.Unmarshal([]byte(stdout), &d); err != nil {
			t.Fatalf("%v\n%s", err, stdout)
		}
		if d.Service != "web" || d.Instances != 2 || d.SRVName != "_web._tcp.cairn.internal." || len(d.InstanceList) != 2 ||
			d.InstanceList[0].TTL != 30 || d.InstanceList[0].Record.Port != 8080 || d.InstanceList[0].Key != "/skydns/internal/cairn/web/web-1" {
			t.Errorf("%+v", d)
		}
	})
}
