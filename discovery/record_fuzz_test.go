package discovery

import (
	"encoding/json"
	"net/netip"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/cairnkv/cairn/store"
)

// recordSeeds are values as registrators, SkyDNS tooling and careless
// operators write them.
var recordSeeds = []string{
	`{"host":"10.0.0.5","port":8080}`,
	`{"host":"2001:db8::5","port":443,"priority":10,"weight":20,"ttl":30}`,
	`{"host":"lb.example.com.","port":443,"targetstrip":1,"group":"blue"}`,
	`{"text":"v=spf1 -all"}`,
	`{"host":"10.0.0.1","text":"` + strings.Repeat("t", 300) + `","mail":true}`,
	`{"Host":"10.0.0.1","HOST":"10.0.0.2","port":null}`,
	` {"host":"_sip._udp.example.com","port":5060}`,
	`{"host":"10.0.0.300","port":80}`,
	`{"host":"fe80::1%eth0"}`,
	`{"host":"10.0.0.1","port":65536}`,
	`{"host":"10.0.0.1","port":1e3}`,
	`{"host":"10.0.0.1","port":"80"}`,
	`{"host":"10.0.0.1","port":-0}`,
	`{"host":"a..b"}`,
	`{"host":"-a.example"}`,
	`{"host":"10.0.0.1"} trailing`,
	`{"host":"\u00e9xample.com"}`,
	`{"host":"10.0.0.1","group":"` + strings.Repeat("g", 300) + `"}`,
	`{"text":"` + strings.Repeat("x", MaxTextBytes+1) + `"}`,
	`[]`, `null`, `"x"`, ``, `{`,
}

// FuzzRecord: ParseRecord and parseStored (the index's reader of stored
// values) never panic and say "discovery:" when they refuse. A record
// either accepts is valid, within every bound that keeps its DNS answers
// valid (a host of DNS labels or an IP, text and group within their
// limits), and survives a JSON round trip unchanged; parseStored accepts
// everything ParseRecord does, with the same result, and beyond it only
// values whose text or group it cuts to size.
func FuzzRecord(f *testing.F) {
	for _, s := range recordSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		r, err := ParseRecord(value)
		sr, serr := parseStored(value)
		if err != nil && !strings.HasPrefix(err.Error(), "discovery: ") {
			t.Fatalf("error %q does not say where it comes from", err)
		}
		if serr != nil {
			if err == nil {
				t.Fatalf("parseStored refuses what ParseRecord accepts: %v", serr)
			}
			return
		}
		checkRecord(t, sr)
		if err != nil {
			// Only the size bounds differ.
			if !strings.Contains(err.Error(), `"text"`) && !strings.Contains(err.Error(), `"group"`) {
				t.Fatalf("parseStored accepts what ParseRecord refuses for %v", err)
			}
			return
		}
		if r != sr {
			t.Fatalf("ParseRecord %+v, parseStored %+v", r, sr)
		}
		j, jerr := json.Marshal(r)
		if jerr != nil {
			t.Fatalf("marshal %+v: %v", r, jerr)
		}
		r2, err := ParseRecord(string(j))
		if err != nil || r2 != r {
			t.Fatalf("round trip through %s: %+v, %v; want %+v", j, r2, err, r)
		}
	})
}

// checkRecord checks what an accepted record promises DNS.
func checkRecord(t *testing.T, r Record) {
	t.Helper()
	if err := r.Validate(); err != nil {
		t.Fatalf("accepted record %+v does not validate: %v", r, err)
	}
	if len(r.Text) > MaxTextBytes || len(r.Group) > maxGroup {
		t.Fatalf("text of %d or group of %d bytes", len(r.Text), len(r.Group))
	}
	for _, v := range []int{r.Port, r.Priority, r.Weight} {
		if v < 0 || v > maxUint16 {
			t.Fatalf("port, priority or weight %d out of uint16", v)
		}
	}
	if r.Host == "" {
		if r.Text == "" {
			t.Fatalf("record with neither host nor text")
		}
		return
	}
	if a, err := netip.ParseAddr(r.Host); err == nil {
		if a.Zone() != "" {
			t.Fatalf("host %q has a zone", r.Host)
		}
		return
	}
	h := strings.TrimSuffix(r.Host, ".")
	if len(h) > maxHostname {
		t.Fatalf("host of %d bytes", len(h))
	}
	for _, lab := range strings.Split(h, ".") {
		if lab == "" || len(lab) > maxLabel {
			t.Fatalf("host %q has an empty or long label", r.Host)
		}
		for i := 0; i < len(lab); i++ {
			if c := lower(lab[i]); !('a' <= c && c <= 'z' || isDigit(c) || c == '-' || c == '_') {
				t.Fatalf("host %q has byte %q", r.Host, c)
			}
		}
	}
}

// FuzzValidate: a write Config.Validate lets through under the zone is at
// a key with a DNS name that maps back to the key (letter case aside) and
// holds a valid record; written to a store, the index answers that name
// with exactly that record.
func FuzzValidate(f *testing.F) {
	keys := []string{"/skydns/internal/cairn/web/web-1", "/skydns/internal/cairn/Web/_tcp/x", "/skydns/internal/cairn",
		"/skydns/internal/cairn/a.b/c", "/skydns/internal/cairn/" + strings.Repeat("l", 64), "/skydns/config", "/other/x",
		"skydns/internal/cairn//web/../api/i1", "/skydns/internal/cairn/\\065/\x00"}
	for i, s := range recordSeeds {
		f.Add(keys[i%len(keys)], s, i%7 == 3)
	}
	cfg := Config{}
	f.Fuzz(func(t *testing.T, key, value string, dir bool) {
		if err := cfg.Validate(key, value, dir); err != nil || dir {
			return
		}
		key = path.Clean("/" + key)
		if !cfg.Contains(key) {
			return
		}
		name, ok := cfg.Name(key)
		if !ok {
			t.Fatalf("accepted key %q has no DNS name", key)
		}
		back, ok := cfg.Key(name)
		if !ok || back != lowerKey(key) {
			t.Fatalf("key %q -> name %q -> key %q, %v", key, name, back, ok)
		}
		r, err := ParseRecord(value)
		if err != nil {
			t.Fatalf("accepted value does not parse: %v", err)
		}
		checkRecord(t, r)
		if key == cfg.Dir() {
			return // the zone's own key: the apex, answered with SOA and NS
		}

		st := store.New(store.Config{HistorySize: 16})
		now := time.Unix(1_700_000_000, 0)
		if _, err := st.Apply(&store.Request{Method: store.MethodPut, Path: key, Value: value}, now); err != nil {
			return // the store refuses it (a key below a file, say)
		}
		x := NewIndex(st, cfg, func() time.Time { return now })
		found := false
		for _, in := range x.Lookup(name) {
			if in.Key == key {
				found = in.Record == r && in.Name == name
			}
		}
		if !found || !x.Exists(name) {
			t.Fatalf("index has no instance %q for %q with %+v: %+v", name, key, r, x.Lookup(name))
		}
	})
}

// lowerKey lowercases the ASCII letters of a key's segments below the
// prefix, as names do.
func lowerKey(key string) string {
	dir := Config{}.Dir()
	return dir + lowerSeg(key[len(dir):])
}
