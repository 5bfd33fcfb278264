package store

import (
	"encoding/json"
	"strconv"
	"time"
)

// AppendJSON appends e's JSON form and a newline to b: the bytes
// json.NewEncoder(w).Encode(e) writes (field order, omitempty, HTML
// escaping; TestEventAppendJSON and FuzzEventAppendJSON hold it to that),
// without reflection. Every read, write and watch answer is one, so the
// cost matters. It fails only where encoding/json would (an expiration
// outside years 0-9999), with its error.
func (e *Event) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"action":`...)
	b = appendJSONString(b, e.Action)
	var err error
	if e.Node != nil {
		b = append(b, `,"node":`...)
		if b, err = e.Node.appendJSON(b); err != nil {
			return nil, err
		}
	}
	if e.PrevNode != nil {
		b = append(b, `,"prevNode":`...)
		if b, err = e.PrevNode.appendJSON(b); err != nil {
			return nil, err
		}
	}
	return append(b, "}\n"...), nil
}

func (n *NodeExtern) appendJSON(b []byte) ([]byte, error) {
	if n == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '{')
	start := len(b)
	if n.Key != "" {
		b = appendJSONField(b, start, "key")
		b = appendJSONString(b, n.Key)
	}
	if n.Value != nil {
		b = appendJSONField(b, start, "value")
		b = appendJSONString(b, *n.Value)
	}
	if n.Dir {
		b = appendJSONField(b, start, "dir")
		b = append(b, "true"...)
	}
	if n.Expiration != nil {
		b = appendJSONField(b, start, "expiration")
		t := *n.Expiration
		if y := t.Year(); t.Location() == time.UTC && y >= 0 && y <= 9999 {
			b = append(b, '"')
			b = t.AppendFormat(b, time.RFC3339Nano)
			b = append(b, '"')
		} else {
			j, err := json.Marshal(t)
			if err != nil {
				return nil, err
			}
			b = append(b, j...)
		}
	}
	if n.TTL != 0 {
		b = appendJSONField(b, start, "ttl")
		b = strconv.AppendInt(b, n.TTL, 10)
	}
	if len(n.Nodes) > 0 {
		b = appendJSONField(b, start, "nodes")
		b = append(b, '[')
		for i, c := range n.Nodes {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = c.appendJSON(b); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	if n.ModifiedIndex != 0 {
		b = appendJSONField(b, start, "modifiedIndex")
		b = strconv.AppendUint(b, n.ModifiedIndex, 10)
	}
	if n.CreatedIndex != 0 {
		b = appendJSONField(b, start, "createdIndex")
		b = strconv.AppendUint(b, n.CreatedIndex, 10)
	}
	return append(b, '}'), nil
}

// appendJSONField appends a field's name, after a comma unless it is the
// first of the object that begins at start.
func appendJSONField(b []byte, start int, name string) []byte {
	if len(b) > start {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, `":`...)
}

// appendJSONString appends s as encoding/json writes it: printable ASCII
// but for '"', '\\', '<', '>' and '&' as it is, anything else through
// encoding/json itself (rare in keys and values, and exact).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s) // a string cannot fail
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
