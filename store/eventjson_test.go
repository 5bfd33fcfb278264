package store

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// encodeStd is what AppendJSON must equal: etcd's (and Cairn's former)
// json.NewEncoder(w).Encode(ev).
func encodeStd(t testing.TB, ev *Event) ([]byte, error) {
	t.Helper()
	var buf bytes.Buffer
	err := json.NewEncoder(&buf).Encode(ev)
	return buf.Bytes(), err
}

func checkAppendJSON(t testing.TB, ev *Event) {
	t.Helper()
	want, wantErr := encodeStd(t, ev)
	got, err := ev.AppendJSON([]byte("prefix"))
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("AppendJSON error %v, encoding/json's %v", err, wantErr)
	}
	if err != nil {
		return
	}
	if !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[len("prefix"):], want) {
		t.Fatalf("AppendJSON:\n got %s\nwant %s", got, want)
	}
}

func strp(s string) *string { return &s }

func TestEventAppendJSON(t *testing.T) {
	exp := time.Date(2026, 12, 7, 23, 1, 2, 345678900, time.UTC)
	expWhole := time.Date(2026, 12, 7, 23, 1, 2, 0, time.UTC)
	local := time.Date(2026, 12, 7, 23, 1, 2, 5, time.FixedZone("X", 3600+30*60))
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := map[string]*Event{
		"empty":  {},
		"get":    {Action: ActionGet, Node: &NodeExtern{Key: "/a", Value: strp("v"), ModifiedIndex: 3, CreatedIndex: 2}},
		"no key": {Action: ActionSet, Node: &NodeExtern{Value: strp("")}},
		"ttl": {Action: ActionSet, Node: &NodeExtern{Key: "/t", Value: strp("x"), Expiration: &exp, TTL: 30, ModifiedIndex: 9, CreatedIndex: 9},
			PrevNode: &NodeExtern{Key: "/t", Value: strp("y"), Expiration: &expWhole, TTL: -1, ModifiedIndex: 8, CreatedIndex: 7}},
		"other zone":   {Action: ActionSet, Node: &NodeExtern{Key: "/z", Expiration: &local}},
		"year 10000":   {Action: ActionSet, Node: &NodeExtern{Key: "/z", Expiration: &far}},
		"dir":          {Action: ActionGet, Node: &NodeExtern{Key: "/d", Dir: true, Nodes: NodeExterns{{Key: "/d/a", Value: strp("1")}, nil, {Key: "/d/e", Dir: true, Nodes: NodeExterns{}}}}},
		"escaping":     {Action: "a<b>&\"\\", Node: &NodeExtern{Key: "/\u2028\u2029é\x00\x1f\x7f", Value: strp("\xff\xfe<script>\b\f\n\r\t")}},
		"delete":       {Action: ActionDelete, Node: &NodeExtern{Key: "/a", ModifiedIndex: 1<<64 - 1, CreatedIndex: 1}, PrevNode: &NodeExtern{Key: "/a", Value: strp("v")}},
		"only indexes": {Node: &NodeExtern{CreatedIndex: 4}},
	}
	for name, ev := range cases {
		t.Run(name, func(t *testing.T) { checkAppendJSON(t, ev) })
	}
}

func FuzzEventAppendJSON(f *testing.F) {
	f.Add("set", "/a/b", "value", true, int64(30), uint64(5), uint64(4), int64(1765148462345678900), "/a/b/c", "<&>")
	f.Add("", "", "", false, int64(0), uint64(0), uint64(0), int64(0), "", "")
	f.Add("get", "/\xff", "\u2028", false, int64(-1), uint64(1), uint64(1), int64(-1), "\x00", "\"\\")
	f.Fuzz(func(t *testing.T, action, key, value string, dir bool, ttl int64, mod, created uint64, expNanos int64, childKey, childValue string) {
		exp := time.Unix(0, expNanos).UTC()
		ev := &Event{Action: action, Node: &NodeExtern{Key: key, Value: &value, Dir: dir, TTL: ttl, ModifiedIndex: mod, CreatedIndex: created}}
		if expNanos != 0 {
			ev.Node.Expiration = &exp
		}
		if dir {
			ev.Node.Nodes = NodeExterns{{Key: childKey, Value: &childValue, CreatedIndex: mod}}
			ev.PrevNode = &NodeExtern{Key: childValue}
		}
		checkAppendJSON(t, ev)
	})
}

func BenchmarkEventAppendJSON(b *testing.B) {
	exp := time.Date(2026, 12, 7, 23, 1, 2, 345678900, time.UTC)
	ev := &Event{Action: ActionGet, Node: &NodeExtern{Key: "/bench/key", Value: strp(string(bytes.Repeat([]byte("v"), 100))), Expiration: &exp, TTL: 30, ModifiedIndex: 12345, CreatedIndex: 12000}}
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			buf, _ = ev.AppendJSON(buf[:0])
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			_ = json.NewEncoder(&buf).Encode(ev)
		}
	})
}
