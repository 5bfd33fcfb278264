package server

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTOML writes c as a TOML file that Load reads back into c: top-level
// keys, then one table per dotted prefix ([peer], [tls], [tls.acme], ...),
// lists as arrays, numbers and booleans bare, durations as strings. Each
// line ends with a comment saying where the value came from (src; a key
// missing from it is said to be a default).
func WriteTOML(w io.Writer, c Config, src Sources) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	table := ""
	for _, s := range settings {
		t, name := "", s.key
		if i := strings.LastIndex(s.key, "."); i >= 0 {
			t, name = s.key[:i], s.key[i+1:]
		}
		if t != table {
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(w, "\n[%s]\n", t)
			table = t
		}
		from := src[s.key]
		if from == "" {
			from = "default"
		}
		fmt.Fprintf(tw, "%s\t= %s\t# %s\n", name, tomlValue(s.field(&c)), from)
	}
	return tw.Flush()
}

// tomlValue renders the field p points to as a TOML value.
func tomlValue(p any) string {
	switch v := p.(type) {
	case *string:
		return tomlString(*v)
	case *[]string:
		q := make([]string, len(*v))
		for i, s := range *v {
			q[i] = tomlString(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	case *time.Duration:
		return tomlString(v.String())
	case *bool:
		return strconv.FormatBool(*v)
	case *int:
		return strconv.Itoa(*v)
	case *int64:
		return strconv.FormatInt(*v, 10)
	case *uint64:
		return strconv.FormatUint(*v, 10)
	}
	panic(fmt.Sprintf("server: no TOML form for %T", p))
}

// tomlString quotes s as a TOML basic string (Go's %q escapes, such as \x,
// are not all TOML's).
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
