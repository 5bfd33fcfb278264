package discovery

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

func TestParseRecord(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  Record
		err   string // exact error text; "" for success
	}{
		{name: "registrator", value: `{"host":"10.0.0.5","port":8080}`,
			want: Record{Host: "10.0.0.5", Port: 8080}},
		{name: "every field", value: `{"host":"web.example.com.","port":443,"priority":10,"weight":20,"text":"v=1","ttl":30,"targetstrip":1,"group":"g"}`,
			want: Record{Host: "web.example.com.", Port: 443, Priority: 10, Weight: 20, Text: "v=1", TTL: 30, TargetStrip: 1, Group: "g"}},
		{name: "ipv6", value: `{"host":"2001:db8::1"}`, want: Record{Host: "2001:db8::1"}},
		{name: "txt only", value: `{"text":"hello"}`, want: Record{Text: "hello"}},
		{name: "field names are case-insensitive, as encoding/json", value: `{"Host":"h1","PORT":1}`, want: Record{Host: "h1", Port: 1}},
		{name: "last duplicate wins", value: `{"port":1,"port":2,"host":"h"}`, want: Record{Host: "h", Port: 2}},
		{name: "unknown names are ignored whatever their type", value: `{"host":"h","mail":true,"creationDate":"x","meta":{"a":[1]}}`, want: Record{Host: "h"}},
		{name: "null is absent", value: `{"host":"h","port":null,"text":null}`, want: Record{Host: "h"}},
		{name: "whitespace", value: " \n{ \"host\" : \"h\" , \"port\" : 0 }\n", want: Record{Host: "h"}},
		{name: "limits", value: `{"host":"h","port":65535,"priority":65535,"weight":65535,"ttl":4294967295,"targetstrip":127}`,
			want: Record{Host: "h", Port: 65535, Priority: 65535, Weight: 65535, TTL: 4294967295, TargetStrip: 127}},
		{name: "negative zero", value: `{"host":"h","port":-0}`, want: Record{Host: "h"}},
		{name: "underscore labels", value: `{"host":"_sip._tcp.example.com"}`, want: Record{Host: "_sip._tcp.example.com"}},
		{name: "ipv4-mapped", value: `{"host":"::ffff:10.0.0.1"}`, want: Record{Host: "::ffff:10.0.0.1"}},

		{name: "port out of range", value: `{"host":"h","port":70000}`,
			err: `discovery: record field "port": 70000 is out of range 0-65535`},
		{name: "negative port", value: `{"host":"h","port":-1}`,
			err: `discovery: record field "port": -1 is out of range 0-65535`},
		{name: "huge port", value: `{"host":"h","port":99999999999999999999999}`,
			err: `discovery: record field "port": 99999999999999999999999 is out of range 0-65535`},
		{name: "fractional port", value: `{"host":"h","port":80.5}`,
			err: `discovery: record field "port": 80.5 is not an integer`},
		{name: "exponent port", value: `{"host":"h","port":8e1}`,
			err: `discovery: record field "port": 8e1 is not an integer`},
		{name: "port as string", value: `{"host":"h","port":"80"}`,
			err: `discovery: record field "port": want a number, got a string`},
		{name: "priority", value: `{"host":"h","priority":65536}`,
			err: `discovery: record field "priority": 65536 is out of range 0-65535`},
		{name: "weight as bool", value: `{"host":"h","weight":true}`,
			err: `discovery: record field "weight": want a number, got a boolean`},
		{name: "negative ttl", value: `{"host":"h","ttl":-5}`,
			err: `discovery: record field "ttl": -5 is out of range 0-4294967295`},
		{name: "ttl too big", value: `{"host":"h","ttl":4294967296}`,
			err: `discovery: record field "ttl": 4294967296 is out of range 0-4294967295`},
		{name: "targetstrip", value: `{"host":"h","targetstrip":128}`,
			err: `discovery: record field "targetstrip": 128 is out of range 0-127`},
		{name: "host as number", value: `{"host":10}`,
			err: `discovery: record field "host": want a string, got a number`},
		{name: "host as array", value: `{"host":["a"]}`,
			err: `discovery: record field "host": want a string, got an array`},
		{name: "text as object", value: `{"host":"h","text":{}}`,
			err: `discovery: record field "text": want a string, got an object`},
		{name: "group as number", value: `{"host":"h","group":1}`,
			err: `discovery: record field "group": want a string, got a number`},
		{name: "bad ip", value: `{"host":"10.0.0.300"}`,
			err: `discovery: record field "host": "10.0.0.300" is neither an IP address nor a hostname`},
		{name: "numeric name", value: `{"host":"1234"}`,
			err: `discovery: record field "host": "1234" is neither an IP address nor a hostname`},
		{name: "space in host", value: `{"host":"a b"}`,
			err: `discovery: record field "host": "a b" is neither an IP address nor a hostname`},
		{name: "zone", value: `{"host":"fe80::1%eth0"}`,
			err: `discovery: record field "host": "fe80::1%eth0" is neither an IP address nor a hostname`},
		{name: "empty label", value: `{"host":"a..b"}`,
			err: `discovery: record field "host": "a..b" is neither an IP address nor a hostname`},
		{name: "leading hyphen", value: `{"host":"-a.b"}`,
			err: `discovery: record field "host": "-a.b" is neither an IP address nor a hostname`},
		{name: "long label", value: `{"host":"` + strings.Repeat("a", 64) + `.b"}`,
			err: `discovery: record field "host": "` + strings.Repeat("a", 64) + `.b" is neither an IP address nor a hostname`},
		{name: "no host, no text", value: `{"port":80}`,
			err: `discovery: record field "host": is required unless "text" is set`},
		{name: "empty object", value: `{}`,
			err: `discovery: record field "host": is required unless "text" is set`},
		{name: "empty value", value: ``,
			err: `discovery: record is not valid JSON: unexpected end of JSON input`},
		{name: "not json", value: `hello`,
			err: `discovery: record is not valid JSON: invalid character 'h' looking for beginning of value`},
		{name: "array", value: `[1]`, err: `discovery: record is an array, not a JSON object`},
		{name: "null", value: `null`, err: `discovery: record is null, not a JSON object`},
		{name: "string", value: `"10.0.0.1"`, err: `discovery: record is a string, not a JSON object`},
		{name: "trailing data", value: `{"host":"h"} {}`,
			err: `discovery: record is not valid JSON: invalid character '{' after top-level value`},
		{name: "truncated", value: `{"host":"h"`,
			err: `discovery: record is not valid JSON: unexpected end of JSON input`},
		{name: "longest text", value: `{"text":"` + strings.Repeat("t", MaxTextBytes) + `"}`,
			want: Record{Text: strings.Repeat("t", MaxTextBytes)}},
		{name: "text over the limit", value: `{"host":"h","text":"` + strings.Repeat("t", MaxTextBytes+1) + `"}`,
			err: `discovery: record field "text": is 4097 bytes, over the limit of 4096 (it must fit in a DNS TXT answer; keep larger data in a key of its own)`},
		{name: "text counted in bytes, unescaped", value: `{"text":"` + strings.Repeat(`\u00e9`, MaxTextBytes/2) + `x"}`,
			err: `discovery: record field "text": is 4097 bytes, over the limit of 4096 (it must fit in a DNS TXT answer; keep larger data in a key of its own)`},
		{name: "group over the limit", value: `{"host":"h","group":"` + strings.Repeat("g", 256) + `"}`,
			err: `discovery: record field "group": is 256 bytes, over the limit of 255`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRecord(tt.value)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("ParseRecord(%s) = %+v, %v\nwant error %s", tt.value, got, err, tt.err)
				}
				if got != (Record{}) {
					t.Fatalf("record %+v returned with an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseRecord(%s) = %+v, %v; want %+v", tt.value, got, err, tt.want)
			}
		})
	}
}

// TestRecordJSON: a record marshals with SkyDNS's names, omitting zero
// fields as msg.Service does, and parses back.
func TestRecordJSON(t *testing.T) {
	tests := []struct {
		r    Record
		want string
	}{
		{Record{Host: "10.0.0.5", Port: 8080}, `{"host":"10.0.0.5","port":8080}`},
		{Record{Host: "h", Port: 1, Priority: 2, Weight: 3, Text: "t", TTL: 4, TargetStrip: 5, Group: "g"},
			`{"host":"h","port":1,"priority":2,"weight":3,"text":"t","ttl":4,"targetstrip":5,"group":"g"}`},
		{Record{Text: "only"}, `{"text":"only"}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.r)
		if err != nil || string(b) != tt.want {
			t.Errorf("Marshal(%+v) = %s, %v; want %s", tt.r, b, err, tt.want)
		}
		if back, err := ParseRecord(string(b)); err != nil || back != tt.r {
			t.Errorf("ParseRecord(%s) = %+v, %v; want %+v", b, back, err, tt.r)
		}
	}
}

func TestRecordValidate(t *testing.T) {
	tests := []struct {
		r   Record
		err string
	}{
		{Record{Host: "h", Port: 65535}, ""},
		{Record{Host: "h", Port: 65536}, `discovery: record field "port": 65536 is out of range 0-65535`},
		{Record{Host: "h", Weight: -1}, `discovery: record field "weight": -1 is out of range 0-65535`},
		{Record{Host: "h", TargetStrip: -1}, `discovery: record field "targetstrip": -1 is out of range 0-127`},
		{Record{Host: "bad host"}, `discovery: record field "host": "bad host" is neither an IP address nor a hostname`},
		{Record{}, `discovery: record field "host": is required unless "text" is set`},
		{Record{Text: strings.Repeat("t", MaxTextBytes)}, ""},
		{Record{Host: "h", Text: strings.Repeat("t", MaxTextBytes+1)},
			`discovery: record field "text": is 4097 bytes, over the limit of 4096 (it must fit in a DNS TXT answer; keep larger data in a key of its own)`},
		{Record{Text: strings.Repeat("t", 900_000)},
			`discovery: record field "text": is 900000 bytes, over the limit of 4096 (it must fit in a DNS TXT answer; keep larger data in a key of its own)`},
		{Record{Host: "h", Group: strings.Repeat("g", 255)}, ""},
		{Record{Host: "h", Group: strings.Repeat("g", 256)}, `discovery: record field "group": is 256 bytes, over the limit of 255`},
		{Record{Host: strings.Repeat("a.", 125) + "bcd."}, ""}, // 253 bytes and the final dot
		{Record{Host: strings.Repeat("a.", 125) + "bcde"},
			`discovery: record field "host": "` + strings.Repeat("a.", 125) + `bcde" is neither an IP address nor a hostname`},
	}
	for _, tt := range tests {
		err := tt.r.Validate()
		if got := errText(err); got != tt.err {
			t.Errorf("%+v.Validate() = %q, want %q", tt.r, got, tt.err)
		}
	}
}

func TestRecordAddr(t *testing.T) {
	tests := []struct {
		host string
		want string // "" for none
	}{
		{"10.0.0.1", "10.0.0.1"},
		{"::ffff:10.0.0.1", "10.0.0.1"},
		{"2001:db8::1", "2001:db8::1"},
		{"web.example.com", ""},
		{"", ""},
	}
	for _, tt := range tests {
		r := Record{Host: tt.host}
		a, ok := r.addr()
		if got := map[bool]string{true: a.String(), false: ""}[ok]; got != tt.want {
			t.Errorf("addr(%q) = %q, want %q", tt.host, got, tt.want)
		}
		if ok && a != netip.MustParseAddr(tt.want) {
			t.Errorf("addr(%q) = %v", tt.host, a)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestRecordHostPort(t *testing.T) {
	for _, tt := range []struct {
		r    Record
		want string
	}{
		{Record{Host: "10.0.0.5", Port: 8080}, "10.0.0.5:8080"},
		{Record{Host: "2001:db8::6", Port: 8080}, "[2001:db8::6]:8080"},
		{Record{Host: "api-1.example.com"}, "api-1.example.com"},
		{Record{Text: "v=1"}, "-"},
	} {
		if got := tt.r.HostPort(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.r, got, tt.want)
		}
	}
}
