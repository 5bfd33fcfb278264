package bench

import (
	"strings"
	"testing"
	"time"
)

func TestParseSpec(t *testing.T) {
	base := Config{Duration: 5 * time.Second}
	tests := []struct {
		spec string
		want func(c Config) bool
		err  string
	}{
		{"put", func(c Config) bool {
			return c.Workload == "put" && c.Clients == Defaults.Clients && c.Duration == 5*time.Second && c.Keys == Defaults.Keys && c.Label() == "put"
		}, ""},
		{"get,clients=64,stale", func(c Config) bool { return c.Clients == 64 && c.Stale && c.Label() == "get stale" }, ""},
		{"get,stale=false", func(c Config) bool { return !c.Stale && c.Label() == "get" }, ""},
		{"refresh,clients=64,keys=10000,ttl=30s", func(c Config) bool { return c.Keys == 10000 && c.TTL == 30*time.Second }, ""},
		{"put,requests=10", func(c Config) bool { return c.Requests == 10 && c.Duration == 0 }, ""},
		{"dns,dns-type=srv,dns-name=web.cairn.internal", func(c Config) bool { return c.DNSType == "SRV" && c.Label() == "dns SRV" }, ""},
		{"put,prefix=x/", func(c Config) bool { return c.Prefix == "/x" }, ""},
		{"del", nil, `unknown workload "del"`},
		{"put,clients=many", nil, "clients"},
		{"put,color=red", nil, `unknown setting "color"`},
		{"refresh,ttl=10ms", nil, "at least 1s"},
		{"dns,dns-type=MX", nil, "use A or SRV"},
		{"put,prefix=/", nil, "cannot be the root"},
		{"put,clients=-1", nil, "negative"},
	}
	for _, tt := range tests {
		c, err := ParseSpec(base, tt.spec)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want one containing %q", tt.spec, err, tt.err)
			}
			continue
		}
		if err != nil || !tt.want(c) {
			t.Errorf("%q: %+v, %v", tt.spec, c, err)
		}
	}
}

func TestMedian(t *testing.T) {
	rs := func(v ...float64) []*Result {
		var out []*Result
		for _, x := range v {
			out = append(out, &Result{Rate: x})
		}
		return out
	}
	rate := func(r *Result) float64 { return r.Rate }
	for _, tt := range []struct {
		runs []*Result
		want float64
	}{{nil, 0}, {rs(3), 3}, {rs(5, 1, 3), 3}, {rs(4, 1, 3, 10), 3.5}} {
		if got := median(tt.runs, rate); got != tt.want {
			t.Errorf("median = %v, want %v", got, tt.want)
		}
	}
}
