package discovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Record is a SkyDNS service record, the JSON value of a registration key
// (msg.Service of SkyDNS and CoreDNS, field for field, minus the MX-only
// "mail"). A Host that is an IP address gives A or AAAA records; a hostname
// gives a CNAME, or the target of SRV records; Text gives a TXT record, and a
// record with Text and no Host is TXT only.
type Record struct {
	Host     string `json:"host,omitempty"`
	Port     int    `json:"port,omitempty"`
	Priority int    `json:"priority,omitempty"`
	Weight   int    `json:"weight,omitempty"`
	Text     string `json:"text,omitempty"`
	// TTL caps the DNS TTL of the record's answers, in seconds; 0: no cap
	// of its own.
	TTL uint32 `json:"ttl,omitempty"`
	// TargetStrip is how many leftmost labels to strip from the instance's
	// name when it becomes the synthesized SRV target of an IP host.
	TargetStrip int    `json:"targetstrip,omitempty"`
	Group       string `json:"group,omitempty"`
}

// Ranges of the integer fields: the uint16 of SRV for port, priority and
// weight; at most the 127 labels a name can have for targetstrip.
const (
	maxUint16      = math.MaxUint16
	maxTargetStrip = 127
	maxHostname    = 253
	// maxGroup bounds Group, which is never answered but is held in
	// memory by every member's index: a DNS name's length is plenty.
	maxGroup = 255
)

// MaxTextBytes bounds Text. Text is answered as one TXT record, split into
// 255-byte character-strings (RFC 1035 §3.3.14), so its RDATA is at most
// 4096 + 17 bytes and the whole record, owner name included, at most about
// 4.4 KB: far under the 65,535 bytes an RR and a TCP message can hold, with
// room for the TXT records of a dozen instances in one TCP answer. Longer
// data belongs in the key space, not in DNS.
const MaxTextBytes = 4096

// Validate checks the record: Host empty (only with Text), an IP address
// without zone, or a hostname; Port, Priority and Weight within 0-65535;
// TargetStrip within 0-127; Text at most MaxTextBytes and Group at most 255
// bytes. These bounds keep every answer made from the record a valid DNS
// message. The error names the field.
func (r Record) Validate() error {
	for _, f := range []struct {
		name string
		v    int
		max  int
	}{
		{"port", r.Port, maxUint16},
		{"priority", r.Priority, maxUint16},
		{"weight", r.Weight, maxUint16},
		{"targetstrip", r.TargetStrip, maxTargetStrip},
	} {
		if f.v < 0 || f.v > f.max {
			return fieldError(f.name, "%d is out of range 0-%d", f.v, f.max)
		}
	}
	switch {
	case r.Host == "":
		if r.Text == "" {
			return fieldError("host", `is required unless "text" is set`)
		}
	case !validHost(r.Host):
		return fieldError("host", "%q is neither an IP address nor a hostname", r.Host)
	}
	if n := len(r.Text); n > MaxTextBytes {
		return fieldError("text", "is %d bytes, over the limit of %d (it must fit in a DNS TXT answer; keep larger data in a key of its own)", n, MaxTextBytes)
	}
	if n := len(r.Group); n > maxGroup {
		return fieldError("group", "is %d bytes, over the limit of %d", n, maxGroup)
	}
	return nil
}

// HostPort is where the record sends clients: host:port ([host]:port for
// IPv6), the host alone without a port, "-" without a host (TXT only).
func (r Record) HostPort() string {
	switch {
	case r.Host == "":
		return "-"
	case r.Port == 0:
		return r.Host
	}
	return net.JoinHostPort(r.Host, strconv.Itoa(r.Port))
}

// addr is the host's address when the host is an IP (IPv4-mapped IPv6
// unmapped, as net.ParseIP's To4 sees it).
func (r *Record) addr() (netip.Addr, bool) {
	a, err := netip.ParseAddr(r.Host)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// validHost reports whether h is an IP address without zone or a hostname:
// dot-separated labels of letters, digits, '-' and '_' (seen in SRV-style
// names), no label starting or ending with '-', at most 253 bytes plus an
// optional final dot, and a last label that is not all digits (so that a
// mistyped address such as 10.0.0.300 is not taken for a name).
func validHost(h string) bool {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Zone() == ""
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > maxHostname {
		return false
	}
	numeric := false
	for lab := range strings.SplitSeq(h, ".") {
		if lab == "" || len(lab) > maxLabel || lab[0] == '-' || lab[len(lab)-1] == '-' {
			return false
		}
		numeric = true
		for i := 0; i < len(lab); i++ {
			c := lower(lab[i])
			switch {
			case isDigit(c):
			case 'a' <= c && c <= 'z', c == '-', c == '_':
				numeric = false
			default:
				return false
			}
		}
	}
	return !numeric
}

// ParseRecord decodes and validates a record from its stored JSON value.
//
// Field names match as encoding/json matches them, which is how SkyDNS and
// CoreDNS read records: case-insensitively, the last of duplicates winning.
// Names it does not know ("mail", anything a tool adds) are accepted and
// ignored, as CoreDNS ignores them; a known field of the wrong JSON type, a
// number that is not an integer or out of range, or an invalid host is an
// error naming the field. null counts as absent. The value must be one JSON
// object and nothing else.
func ParseRecord(value string) (Record, error) {
	r, err := decodeRecord(value)
	if err != nil {
		return Record{}, err
	}
	if err := r.Validate(); err != nil {
		return Record{}, err
	}
	return r, nil
}

// parseStored is ParseRecord for a value already in the store, which may
// predate the size bounds of Validate: a Text or Group over its bound is
// cut to it rather than making the instance vanish from DNS after an
// upgrade (the API refuses such values on every new write).
func parseStored(value string) (Record, error) {
	r, err := decodeRecord(value)
	if err != nil {
		return Record{}, err
	}
	r.Text = r.Text[:min(len(r.Text), MaxTextBytes)]
	r.Group = r.Group[:min(len(r.Group), maxGroup)]
	if err := r.Validate(); err != nil {
		return Record{}, err
	}
	return r, nil
}

// decodeRecord decodes a record's JSON, checking each field's type and
// range as ParseRecord documents, but not the record as a whole.
func decodeRecord(value string) (Record, error) {
	var r Record
	v := bytes.TrimLeft([]byte(value), " \t\r\n")
	if len(v) == 0 || v[0] != '{' {
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			return r, fmt.Errorf("discovery: record is not valid JSON: %w", err)
		}
		return r, fmt.Errorf("discovery: record is %s, not a JSON object", describe(v))
	}
	var raw struct {
		Host        json.RawMessage `json:"host"`
		Port        json.RawMessage `json:"port"`
		Priority    json.RawMessage `json:"priority"`
		Weight      json.RawMessage `json:"weight"`
		Text        json.RawMessage `json:"text"`
		TTL         json.RawMessage `json:"ttl"`
		TargetStrip json.RawMessage `json:"targetstrip"`
		Group       json.RawMessage `json:"group"`
	}
	if err := json.Unmarshal(v, &raw); err != nil {
		return r, fmt.Errorf("discovery: record is not valid JSON: %w", err)
	}
	var err error
	str := func(name string, m json.RawMessage, dst *string) {
		if err == nil && !isNull(m) {
			if m[0] != '"' {
				err = fieldError(name, "want a string, got %s", describe(m))
			} else if e := json.Unmarshal(m, dst); e != nil {
				err = fieldError(name, "%v", e)
			}
		}
	}
	num := func(name string, m json.RawMessage, max int64, dst func(int64)) {
		if err != nil || isNull(m) {
			return
		}
		if m[0] != '-' && !isDigit(m[0]) {
			err = fieldError(name, "want a number, got %s", describe(m))
			return
		}
		n, e := strconv.ParseInt(string(m), 10, 64)
		switch {
		case errors.Is(e, strconv.ErrRange) || e == nil && (n < 0 || n > max):
			err = fieldError(name, "%s is out of range 0-%d", m, max)
		case e != nil:
			err = fieldError(name, "%s is not an integer", m)
		default:
			dst(n)
		}
	}
	str("host", raw.Host, &r.Host)
	num("port", raw.Port, maxUint16, func(n int64) { r.Port = int(n) })
	num("priority", raw.Priority, maxUint16, func(n int64) { r.Priority = int(n) })
	num("weight", raw.Weight, maxUint16, func(n int64) { r.Weight = int(n) })
	str("text", raw.Text, &r.Text)
	num("ttl", raw.TTL, math.MaxUint32, func(n int64) { r.TTL = uint32(n) })
	num("targetstrip", raw.TargetStrip, maxTargetStrip, func(n int64) { r.TargetStrip = int(n) })
	str("group", raw.Group, &r.Group)
	if err != nil {
		return Record{}, err
	}
	return r, nil
}

func fieldError(name, format string, args ...any) error {
	return fmt.Errorf("discovery: record field %q: "+format, append([]any{name}, args...)...)
}

func isNull(m json.RawMessage) bool { return m == nil || string(m) == "null" }

// describe names the JSON type of a value for an error message.
func describe(m []byte) string {
	switch m[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}
