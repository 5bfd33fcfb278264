package cluster

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/raft"

	"github.com/cairnkv/cairn/cluster/disk"
	"github.com/cairnkv/cairn/store"
)

// FuzzCommandRoundTrip builds a command from the fuzzer's fields and checks
// the log encoding: decode(encode(c)) is c, framed and unframed (an older
// binary's entry); and any one byte of a framed entry changed is detected,
// as a checksum error, by decodeCommand (forwarding) and by the log check
// (disk.CheckEntry: the log store and the FSM), whether or not the log had
// a framed entry before: a damaged entry is never applied as another
// command, and never makes the FSM panic on an undecodable one.
func FuzzCommandRoundTrip(f *testing.F) {
	// typ, now, flags, prevExist, method, path, value, prevValue,
	// prevIndex, ttl, member name, member ID, URLs (space-separated), the
	// byte to change and its XOR mask.
	f.Add(cmdRequest, int64(1733500000123456789), byte(flagHasTTL), byte(store.PrevExistUnset), "PUT",
		"/skydns/internal/cairn/web/web-1", `{"host":"10.0.0.5","port":8080}`, "", uint64(0), uint64(30), "", uint64(0), "", uint(7), byte(0x01))
	f.Add(cmdRequest, int64(1), byte(flagRefresh|flagHasTTL), byte(store.PrevExistTrue), "PUT",
		"/a", "", "", uint64(0), uint64(5), "", uint64(0), "", uint(0), byte(0xcb)) // frame byte → a cmdRequest type byte
	f.Add(cmdRequest, int64(-5), byte(flagDir|flagRecursive), byte(store.PrevExistFalse), "DELETE",
		"/dir", "", "old", uint64(41), uint64(0), "", uint64(0), "", uint(3), byte(0x80))
	f.Add(cmdRequest, int64(0), byte(0), byte(0), "POST", "/queue", strings.Repeat("x", 300), "", uint64(1)<<63, uint64(1)<<63, "", uint64(0), "", uint(20), byte(0xff))
	f.Add(cmdExpire, int64(1733500000000000000), byte(0), byte(0), "", "", "", "", uint64(0), uint64(0), "", uint64(0), "", uint(1), byte(0x10))
	f.Add(cmdNoop, int64(7), byte(0), byte(0), "", "", "", "", uint64(0), uint64(0), "", uint64(0), "", uint(5), byte(0x01))
	f.Add(cmdMember, int64(9), byte(0), byte(0), "", "", "", "", uint64(0), uint64(0), "node-2", uint64(0x8e9e05c52164694d),
		"https://10.0.0.2:7001 https://[fd00::2]:7001", uint(12), byte(0x04))
	f.Add(cmdMember, int64(9), byte(1), byte(0), "", "", "", "", uint64(0), uint64(0), "", uint64(2), "", uint(2), byte(0x40)) // remove
	f.Fuzz(func(t *testing.T, typ byte, ns int64, flags, prevExist byte, method, path, value, prevValue string,
		prevIndex, ttl uint64, name string, id uint64, urls string, at uint, mask byte) {
		c := command{typ: typ, now: time.Unix(0, ns)}
		switch typ {
		case cmdRequest:
			c.req = &store.Request{
				Method: method, Path: path, Value: value, PrevValue: prevValue,
				Dir: flags&flagDir != 0, HasTTL: flags&flagHasTTL != 0,
				Refresh: flags&flagRefresh != 0, Recursive: flags&flagRecursive != 0,
				PrevExist: store.PrevExist(prevExist), PrevIndex: prevIndex, TTL: ttl,
			}
		case cmdMember:
			// Member metadata is JSON: strings are UTF-8 (names and URLs
			// are checked before they are proposed).
			if !utf8.ValidString(name) || !utf8.ValidString(urls) {
				t.Skip()
			}
			c.member = &memberCmd{Remove: flags&1 != 0, ID: id, Name: name}
			if u := strings.Fields(urls); len(u) > 0 {
				c.member.PeerURLs = u
			}
			if flags&2 != 0 {
				c.member.ClientURLs, c.member.PeerURLs = c.member.PeerURLs, nil
			}
		case cmdExpire, cmdNoop:
		default:
			t.Skip() // an unknown type is refused when decoded (FuzzCommandDecode)
		}

		enc := c.encode()
		got, err := decodeCommand(enc)
		if err != nil {
			t.Fatalf("decode(encode(%+v)): %v", c, err)
		}
		sameCommand(t, "framed", &c, got)
		if got, err = decodeCommand(c.encodeBody(nil)); err != nil {
			t.Fatalf("decode an unframed (older) entry: %v", err)
		}
		sameCommand(t, "unframed", &c, got)
		if body, framed, err := disk.CheckEntry(&raft.Log{Index: 3, Type: raft.LogCommand, Data: enc}, false); err != nil || !framed {
			t.Fatalf("CheckEntry of a sound entry: framed %v, %v", framed, err)
		} else if got, err = decodeBody(body); err != nil {
			t.Fatalf("decodeBody of the checked body: %v", err)
		} else {
			sameCommand(t, "checked", &c, got)
		}

		if mask == 0 {
			return
		}
		bad := append([]byte(nil), enc...)
		i := int(at % uint(len(bad)))
		bad[i] ^= mask
		if d, err := decodeCommand(bad); err == nil {
			t.Fatalf("byte %d of %d changed (^%#02x) and the entry still decodes, as %+v", i, len(bad), mask, d)
		} else if !errors.Is(err, disk.ErrChecksum) {
			t.Fatalf("byte %d changed: %v, want a checksum error", i, err)
		}
		for _, sawFramed := range []bool{false, true} {
			if _, _, err := disk.CheckEntry(&raft.Log{Index: 3, Type: raft.LogCommand, Data: bad}, sawFramed); err == nil {
				t.Fatalf("byte %d changed: the log check passes it (sawFramed %v)", i, sawFramed)
			} else if err != nil && !errors.Is(err, disk.ErrLogCorrupt) {
				t.Fatalf("byte %d changed: %v does not match ErrLogCorrupt", i, err)
			}
		}
	})
}

// sameCommand fails unless got is want as the log carries it.
func sameCommand(t *testing.T, what string, want, got *command) {
	t.Helper()
	if got.typ != want.typ || got.now.UnixNano() != want.now.UnixNano() ||
		!reflect.DeepEqual(got.req, want.req) || !reflect.DeepEqual(got.member, want.member) {
		t.Fatalf("%s round trip: got %+v (req %+v, member %+v), want %+v (req %+v, member %+v)",
			what, got, got.req, got.member, want, want.req, want.member)
	}
}
