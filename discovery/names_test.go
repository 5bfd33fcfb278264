package discovery

import (
	"strings"
	"testing"
)

func TestConfigLayout(t *testing.T) {
	tests := []struct {
		cfg       Config
		dir, zone string
	}{
		{Config{}, "/skydns/internal/cairn", "cairn.internal."},
		{Config{Prefix: "/skydns/", Domain: "Cairn.Internal"}, "/skydns/internal/cairn", "cairn.internal."},
		{Config{Prefix: "sd", Domain: "skydns.local."}, "/sd/local/skydns", "skydns.local."},
		{Config{Prefix: "/", Domain: "example."}, "/example", "example."},
		{Config{Domain: "."}, "/skydns", "."},
	}
	for _, tt := range tests {
		if d, z := tt.cfg.Dir(), tt.cfg.Zone(); d != tt.dir || z != tt.zone {
			t.Errorf("%+v: Dir %q Zone %q, want %q %q", tt.cfg, d, z, tt.dir, tt.zone)
		}
	}
}

func TestNameAndKey(t *testing.T) {
	def := Config{}
	long63 := strings.Repeat("a", 63)
	tests := []struct {
		cfg  Config
		key  string
		name string // "" when the key has no name
		back string // Key(name) when it is not key
	}{
		{def, "/skydns/internal/cairn/web/web-1", "web-1.web.cairn.internal.", ""},
		{def, "/skydns/internal/cairn/web", "web.cairn.internal.", ""},
		{def, "/skydns/internal/cairn", "cairn.internal.", ""},
		{def, "/skydns/internal/cairn/prod/web/10", "10.web.prod.cairn.internal.", ""},
		{def, "/skydns/internal/cairn/Web/Web-1", "web-1.web.cairn.internal.", "/skydns/internal/cairn/web/web-1"},
		{def, "/skydns/internal/cairn/_tcp/_web/x", "x._web._tcp.cairn.internal.", ""},
		{def, "/skydns/internal/cairn/web/host:my.app:80", `host:my\.app:80.web.cairn.internal.`, ""},
		{def, "/skydns/internal/cairn/web/a b\"(\x01\xff", `a\ b\"\(\001\255.web.cairn.internal.`, ""},
		{def, "/skydns/internal/cairn/" + long63, long63 + ".cairn.internal.", ""},
		{def, "/skydns/internal/cairn/" + long63 + "a", "", ""},
		{def, "/skydns/internal/cairn/" + strings.Repeat(long63+"/", 3) + strings.Repeat("b", 47), "", ""}, // 256 bytes on the wire
		{def, "/skydns/internal/cairn/" + strings.Repeat(long63+"/", 3) + strings.Repeat("b", 46), // 255: the limit
			strings.Repeat("b", 46) + strings.Repeat("."+long63, 3) + ".cairn.internal.", ""},
		{def, "/skydns/internal/cairnx/web", "", ""},
		{def, "/skydns/internal", "", ""},
		{def, "/skydns/config", "", ""},
		{def, "/other", "", ""},
		{Config{Prefix: "/", Domain: "."}, "/web/web-1", "web-1.web.", ""},
		{Config{Prefix: "/", Domain: "."}, "/", ".", ""},
		{Config{Domain: "."}, "/skydns/web", "web.", ""},
	}
	for _, tt := range tests {
		name, ok := tt.cfg.Name(tt.key)
		if name != tt.name || ok != (tt.name != "") {
			t.Errorf("Name(%q) = %q, %v; want %q", tt.key, name, ok, tt.name)
			continue
		}
		if contains := tt.cfg.Contains(tt.key); contains != (ok || strings.Contains(tt.key, long63)) {
			t.Errorf("Contains(%q) = %v", tt.key, contains)
		}
		if !ok {
			continue
		}
		want := tt.back
		if want == "" {
			want = tt.key
		}
		if key, ok := tt.cfg.Key(name); key != want || !ok {
			t.Errorf("Key(%q) = %q, %v; want %q", name, key, ok, want)
		}
	}
}

func TestKey(t *testing.T) {
	def := Config{}
	tests := []struct {
		name string
		key  string // "" when the name has no key
	}{
		{"web-1.web.cairn.internal.", "/skydns/internal/cairn/web/web-1"},
		{"WEB-1.Web.CAIRN.internal.", "/skydns/internal/cairn/web/web-1"},
		{"web-1.web", "/skydns/internal/cairn/web/web-1"}, // relative to the zone
		{"", "/skydns/internal/cairn"},
		{"cairn.internal.", "/skydns/internal/cairn"},
		{`a\.b.web.cairn.internal.`, "/skydns/internal/cairn/web/a.b"},
		{`\065.cairn.internal.`, "/skydns/internal/cairn/a"},
		{"*.web.cairn.internal.", "/skydns/internal/cairn/web/*"},
		{"web.other.", ""},
		{"xcairn.internal.", ""},
		{"internal.", ""},
		{"a..cairn.internal.", ""},
		{`a\/b.cairn.internal.`, ""},
		{`\..cairn.internal.`, ""},
		{`\.\..cairn.internal.`, ""},
		{`\256.cairn.internal.`, ""},
		{`a\`, ""},
		{strings.Repeat("a", 64) + ".cairn.internal.", ""},
	}
	for _, tt := range tests {
		key, ok := def.Key(tt.name)
		if key != tt.key || ok != (tt.key != "") {
			t.Errorf("Key(%q) = %q, %v; want %q", tt.name, key, ok, tt.key)
		}
	}
}
