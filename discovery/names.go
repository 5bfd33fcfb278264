package discovery

import (
	"fmt"
	"path"
	"strings"
)

// Defaults of Config.
const (
	DefaultPrefix = "/skydns"
	DefaultDomain = "cairn.internal."
)

// Config says where registrations live: under Prefix, at the domain's labels
// reversed (SkyDNS's layout). The zero value is the default layout,
// /skydns/internal/cairn for cairn.internal.
type Config struct {
	// Prefix is the key directory of all SkyDNS data; default DefaultPrefix.
	Prefix string
	// Domain is the DNS zone registrations are answered in; default
	// DefaultDomain. Letter case and the trailing dot do not matter.
	Domain string
}

// layout is a Config with its defaults applied and its parts precomputed.
type layout struct {
	dir   string   // key directory of the zone, e.g. /skydns/internal/cairn
	zone  string   // lowercase FQDN, e.g. cairn.internal.
	zlabs []string // the zone's labels, most specific first
	zwire int      // the zone's length in wire format, root byte included
}

func (c Config) layout() layout {
	prefix := c.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	domain := c.Domain
	if domain == "" {
		domain = DefaultDomain
	}
	var l layout
	for _, lab := range strings.Split(strings.ToLower(domain), ".") {
		if lab != "" {
			l.zlabs = append(l.zlabs, lab)
		}
	}
	l.zwire = 1
	var rev []string
	for i := len(l.zlabs) - 1; i >= 0; i-- {
		rev = append(rev, l.zlabs[i])
		l.zwire += len(l.zlabs[i]) + 1
	}
	l.dir = path.Clean("/" + prefix + "/" + strings.Join(rev, "/"))
	l.zone = strings.Join(l.zlabs, ".") + "."
	return l
}

// Dir is the key directory holding the zone's registrations, e.g.
// /skydns/internal/cairn.
func (c Config) Dir() string { return c.layout().dir }

// Zone is the domain as a lowercase fully qualified name, e.g.
// cairn.internal.
func (c Config) Zone() string { return c.layout().zone }

// Contains reports whether the clean key is Dir or lies below it.
func (c Config) Contains(key string) bool {
	l := c.layout()
	_, ok := l.rel(key)
	return ok
}

// Name is the DNS name of the clean key, SkyDNS style: the segments below
// Dir reversed, then the zone, e.g. /skydns/internal/cairn/web/web-1 is
// web-1.web.cairn.internal. Names are lowercase and in presentation format
// (a segment's dots and special characters are \-escaped, as miekg/dns
// prints them). ok is false for a key outside Dir or one whose segments make
// no DNS name (a segment over 63 bytes, a name over 255).
func (c Config) Name(key string) (name string, ok bool) {
	l := c.layout()
	return l.name(key)
}

// Key is the key of a DNS name in the zone: the inverse of Name. A name
// without a trailing dot is relative to the zone (web-1.web stands for
// web-1.web.cairn.internal.). ok is false for a name outside the zone or one
// with a label that cannot be a key segment (one containing '/', or "..").
func (c Config) Key(name string) (key string, ok bool) {
	l := c.layout()
	switch {
	case name == "":
		name = l.zone
	case !strings.HasSuffix(name, "."):
		name += "."
		if l.zone != "." {
			name += l.zone
		}
	}
	labs, ok := l.below(nil, name)
	if !ok {
		return "", false
	}
	var b strings.Builder
	b.WriteString(l.dir)
	for _, lab := range labs {
		if strings.IndexByte(lab, '/') >= 0 || lab == "." || lab == ".." {
			return "", false
		}
		if b.Len() > 1 {
			b.WriteByte('/')
		}
		b.WriteString(lab)
	}
	return b.String(), true
}

// rel is the part of key below dir: "" for dir itself, ok false outside it.
func (l *layout) rel(key string) (string, bool) {
	switch {
	case key == l.dir:
		return "", true
	case l.dir == "/":
		return key[1:], len(key) > 1 && key[0] == '/'
	case len(key) > len(l.dir) && key[len(l.dir)] == '/' && strings.HasPrefix(key, l.dir):
		return key[len(l.dir)+1:], true
	}
	return "", false
}

// name implements Config.Name.
func (l *layout) name(key string) (string, bool) {
	rel, ok := l.rel(key)
	if !ok {
		return "", false
	}
	var segs []string
	if rel != "" {
		segs = strings.Split(rel, "/")
	}
	wire := l.zwire
	b := make([]byte, 0, len(rel)+1+len(l.zone))
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		if s == "" || len(s) > maxLabel {
			return "", false
		}
		wire += len(s) + 1
		b = appendLabel(b, s)
		b = append(b, '.')
	}
	if wire > maxName {
		return "", false
	}
	if len(segs) == 0 && l.zone == "." {
		return ".", true
	}
	if l.zone != "." {
		b = append(b, l.zone...)
	}
	return string(b), true
}

// below parses name (presentation format, fully qualified) into its
// lowercase labels and returns, appended to buf, those below the zone in key
// order (the label next to the zone first). ok is false for a malformed
// name or one outside the zone.
func (l *layout) below(buf []string, name string) ([]string, bool) {
	labs, ok := parseName(buf, name)
	if !ok || len(labs) < len(buf)+len(l.zlabs) {
		return nil, false
	}
	n := len(labs) - len(l.zlabs)
	for i, z := range l.zlabs {
		if labs[n+i] != z {
			return nil, false
		}
	}
	labs = labs[:n]
	rel := labs[len(buf):]
	for i, j := 0, len(rel)-1; i < j; i, j = i+1, j-1 {
		rel[i], rel[j] = rel[j], rel[i]
	}
	return labs, true
}

// DNS limits (RFC 1035 §2.3.4), in wire-format bytes.
const (
	maxLabel = 63
	maxName  = 255
)

// parseName appends to buf the raw labels of a fully qualified name in
// presentation format (\X and \DDD escapes), lowercased, most specific
// first. The root "." has no labels. Labels are substrings of name when it
// needs neither unescaping nor lowercasing.
func parseName(buf []string, name string) ([]string, bool) {
	if name == "." {
		return buf, true
	}
	if !strings.HasSuffix(name, ".") {
		return nil, false
	}
	wire := 1
	for start := 0; start < len(name); {
		// Find the end of the label: the first unescaped dot.
		end, plain := start, true
		for end < len(name) && name[end] != '.' {
			c := name[end]
			if c == '\\' {
				plain = false
				end++
			} else if 'A' <= c && c <= 'Z' {
				plain = false
			}
			end++
		}
		if end >= len(name) || end == start {
			return nil, false // an escaped final dot or an empty label
		}
		lab := name[start:end]
		if !plain {
			var ok bool
			if lab, ok = unescapeLabel(lab); !ok {
				return nil, false
			}
		}
		if len(lab) == 0 || len(lab) > maxLabel {
			return nil, false
		}
		wire += len(lab) + 1
		buf = append(buf, lab)
		start = end + 1
	}
	if wire > maxName {
		return nil, false
	}
	return buf, true
}

// unescapeLabel resolves \X and \DDD escapes and lowercases ASCII letters.
func unescapeLabel(s string) (string, bool) {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' {
			switch {
			case i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]):
				v := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
				if v > 255 {
					return "", false
				}
				c = byte(v)
				i += 3
			case i+1 < len(s):
				c = s[i+1]
				i++
			default:
				return "", false
			}
		}
		b = append(b, lower(c))
	}
	return string(b), true
}

// appendLabel appends the raw label s in presentation format, lowercased,
// escaped exactly as miekg/dns prints names.
func appendLabel(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := lower(s[i])
		switch {
		case c == '.' || c == ' ' || c == '\'' || c == '@' || c == ';' || c == '(' || c == ')' || c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < ' ' || c > '~':
			b = append(b, '\\', '0'+c/100, '0'+c/10%10, '0'+c%10)
		default:
			b = append(b, c)
		}
	}
	return b
}

// lowerSeg is a key segment as a label: ASCII letters lowercased.
func lowerSeg(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = lower(b[j])
			}
			return string(b)
		}
	}
	return s
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// InstanceKey is the key that instance (one DNS label) of service (one or
// more dot-separated labels) registers at, e.g.
// /skydns/internal/cairn/web/web-1 for web-1 of web: Key of
// instance.service. Unlike Key, which maps any name, it takes only RFC 1123
// labels (letters, digits and '-', not at either end, at most 63 bytes):
// names that every DNS client and tool can ask for.
func (c Config) InstanceKey(service, instance string) (string, error) {
	for lab := range strings.SplitSeq(service, ".") {
		if !isHostLabel(lab) {
			return "", fmt.Errorf("discovery: service %q: want DNS labels (letters, digits and '-', at most 63 each, separated by dots)", service)
		}
	}
	if !isHostLabel(instance) {
		return "", fmt.Errorf("discovery: instance %q: want a DNS label (letters, digits and '-', at most 63)", instance)
	}
	key, ok := c.Key(instance + "." + service)
	if !ok {
		return "", fmt.Errorf("discovery: domain %q: want a DNS domain such as %s", c.Domain, DefaultDomain)
	}
	return key, nil
}

// isHostLabel reports whether s is an RFC 1123 label.
func isHostLabel(s string) bool {
	if s == "" || len(s) > maxLabel || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := lower(s[i]); !('a' <= c && c <= 'z' || isDigit(c) || c == '-') {
			return false
		}
	}
	return true
}
