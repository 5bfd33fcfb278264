package discovery

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	good := `{"host":"10.0.0.5","port":8080}`
	tests := []struct {
		cfg   Config
		key   string
		value string
		dir   bool
		err   string
	}{
		{Config{}, "/skydns/internal/cairn/web/w1", good, false, ""},
		{Config{}, "/skydns/internal/cairn/web/w1", `{"host":"h","port":70000}`, false,
			`discovery: record field "port": 70000 is out of range 0-65535`},
		{Config{}, "skydns//internal/cairn/./web/w1", "x", false,
			`discovery: record is not valid JSON: invalid character 'x' looking for beginning of value`},
		{Config{}, "/skydns/internal/cairn/web", "", true, ""}, // directories pass
		{Config{}, "/skydns/internal/cairn", "", false, // the apex is a name too
			`discovery: record is not valid JSON: unexpected end of JSON input`},
		{Config{}, "/skydns/internal/cairnx/w1", "x", false, ""},              // another zone
		{Config{}, "/skydns/config", `{"domain":"skydns.local."}`, false, ""}, // SkyDNS's own config
		{Config{}, "/app/config", "anything", false, ""},
		{Config{}, "/skydns/internal/cairn/web/" + strings.Repeat("a", 64), good, false,
			`discovery: key "/skydns/internal/cairn/web/` + strings.Repeat("a", 64) + `" has no DNS name: a segment is over 63 bytes or the name over 255`},
		{Config{Prefix: "/sd", Domain: "example.org"}, "/sd/org/example/web/w1", `{}`, false,
			`discovery: record field "host": is required unless "text" is set`},
		{Config{Prefix: "/sd", Domain: "example.org"}, "/skydns/internal/cairn/web/w1", `{}`, false, ""},
		// The 900 KB text that once made an empty TCP answer.
		{Config{}, "/skydns/internal/cairn/web/w1", `{"host":"10.0.0.5","text":"` + strings.Repeat("t", 900_000) + `"}`, false,
			`discovery: record field "text": is 900000 bytes, over the limit of 4096 (it must fit in a DNS TXT answer; keep larger data in a key of its own)`},
		{Config{}, "/skydns/internal/cairn/web/w1", `{"host":"10.0.0.5","text":"` + strings.Repeat("t", 4096) + `"}`, false, ""},
	}
	for _, tt := range tests {
		if got := errText(tt.cfg.Validate(tt.key, tt.value, tt.dir)); got != tt.err {
			t.Errorf("%+v.Validate(%q, %q, %v) = %q\nwant %q", tt.cfg, tt.key, tt.value, tt.dir, got, tt.err)
		}
	}
}
