package faults

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func TestStep(t *testing.T) {
	cas := func(expect, value string) Input { return Input{Kind: CAS, Key: "k", Expect: expect, Value: value} }
	for _, tc := range []struct {
		name      string
		s         state
		in        Input
		out       Output
		ok        bool
		wantState state
	}{
		{"read absent", "", Input{Kind: Read}, Output{Result: NotFound}, true, ""},
		{"read absent as a value", "", Input{Kind: Read}, Output{Result: OK, Value: "a"}, false, ""},
		{"read the value", "a", Input{Kind: Read}, Output{Result: OK, Value: "a"}, true, "a"},
		{"read another value", "a", Input{Kind: Read}, Output{Result: OK, Value: "b"}, false, "a"},
		{"read of a present key not found", "a", Input{Kind: Read}, Output{Result: NotFound}, false, "a"},
		{"read unknown", "a", Input{Kind: Read}, Output{Result: Unknown}, true, "a"},
		{"write", "a", Input{Kind: Write, Value: "b"}, Output{Result: OK}, true, "b"},
		{"write unknown applies", "", Input{Kind: Write, Value: "b"}, Output{Result: Unknown}, true, "b"},
		{"write compare failed is no answer of a write", "a", Input{Kind: Write, Value: "b"}, Output{Result: TestFailed}, false, "a"},
		{"cas matches", "a", cas("a", "b"), Output{Result: OK}, true, "b"},
		{"cas succeeded on another value", "c", cas("a", "b"), Output{Result: OK}, false, "c"},
		{"cas failed on another value", "c", cas("a", "b"), Output{Result: TestFailed}, true, "c"},
		{"cas failed on its value", "a", cas("a", "b"), Output{Result: TestFailed}, false, "a"},
		{"cas on absent key", "", cas("a", "b"), Output{Result: NotFound}, true, ""},
		{"cas not found on a present key", "a", cas("a", "b"), Output{Result: NotFound}, false, "a"},
		{"cas unknown, matching: applies", "a", cas("a", "b"), Output{Result: Unknown}, true, "b"},
		{"cas unknown, not matching: no effect", "c", cas("a", "b"), Output{Result: Unknown}, true, "c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, s := step(tc.s, tc.in, tc.out)
			if ok != tc.ok || (ok && s != tc.wantState) {
				t.Errorf("step(%q, %s) = %v, %q; want %v, %q", tc.s, describe(tc.in, tc.out), ok, s, tc.ok, tc.wantState)
			}
		})
	}
}

// hist builds a history from compact lines: client, call, return (-1:
// unknown), and the operation.
type hop struct {
	client    int
	call, ret int64
	in        Input
	out       Output
}

func ops(hs ...hop) []Op {
	var out []Op
	for _, h := range hs {
		op := Op{Client: h.client, Worker: h.client, Node: "n0", In: h.in, Out: h.out, Call: h.call, Return: h.ret}
		if h.ret < 0 {
			op.Return = Never
			op.Out.Result = Unknown
		}
		out = append(out, op)
	}
	return out
}

func rd(key string) Input             { return Input{Kind: Read, Key: key} }
func wr(key, v string) Input          { return Input{Kind: Write, Key: key, Value: v} }
func cs(key, exp, v string) Input     { return Input{Kind: CAS, Key: key, Expect: exp, Value: v} }
func got(v string, idx uint64) Output { return Output{Result: OK, Value: v, Index: idx} }
func ack(idx uint64) Output           { return Output{Result: OK, Index: idx} }

func check(t *testing.T, h []Op) Verdict {
	t.Helper()
	v, err := Check(h, []Fault{{Kind: FaultPartition, Targets: []string{"n0"}, Start: 0, End: 100}}, time.Minute, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCheckLinearizable(t *testing.T) {
	h := ops(
		hop{0, 0, 10, wr("a", "x"), ack(5)},
		hop{1, 5, 20, rd("a"), got("x", 5)}, // concurrent with the write
		hop{2, 12, 30, cs("a", "x", "y"), ack(7)},
		hop{0, 15, 25, rd("a"), got("x", 5)}, // before the CAS took effect
		hop{1, 31, 40, rd("a"), got("y", 7)},
		hop{0, 31, 40, rd("b"), Output{Result: NotFound}},
		hop{2, 41, 50, cs("b", "x", "z"), Output{Result: NotFound}},
		hop{1, 41, 50, cs("a", "x", "z"), Output{Result: TestFailed}},
	)
	if v := check(t, h); v.Result != porcupine.Ok || v.Visualization != "" {
		t.Errorf("verdict %+v; want Ok and no visualization", v)
	}
}

// TestCheckCatchesStaleRead is the broken read path the suite must catch:
// a member cut off from the majority answers a read from its own replica
// (stale=true) after the majority acknowledged a newer write.
func TestCheckCatchesStaleRead(t *testing.T) {
	h := ops(
		hop{0, 0, 10, wr("a", "old"), ack(5)},
		hop{1, 20, 30, wr("a", "new"), ack(9)}, // through the majority
		hop{2, 40, 50, rd("a"), got("old", 5)}, // the partitioned member's replica
	)
	h = append(h, ops(hop{0, 0, 10, wr("b", "x"), ack(6)}, hop{1, 20, 30, rd("b"), got("x", 6)})...)
	v := check(t, h)
	if v.Result != porcupine.Illegal || !slices.Equal(v.IllegalKeys, []string{"a"}) {
		t.Fatalf("verdict %v on %q; want Illegal on a", v.Result, v.IllegalKeys)
	}
	b, err := os.ReadFile(v.Visualization)
	if err != nil {
		t.Fatalf("visualization: %v", err)
	}
	for _, want := range []string{"get(a) -\\u003e old @5", "partition n0"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the visualization does not show %q", want)
		}
	}
	if strings.Contains(string(b), "put(b, x)") {
		t.Errorf("the visualization shows the linearizable key b too")
	}
}

func TestCheckCatchesLostWrite(t *testing.T) {
	h := ops(
		hop{0, 0, 10, wr("a", "x"), ack(5)},
		hop{1, 20, 30, cs("a", "x", "y"), ack(6)},
		hop{9, 100, 110, rd("a"), got("x", 5)}, // the final read after healing
	)
	if v := check(t, h); v.Result != porcupine.Illegal {
		t.Errorf("verdict %v; want Illegal", v.Result)
	}
	if lost := LostWrites(h, map[string]Output{"a": got("x", 5)}); len(lost) != 1 || !strings.Contains(lost[0], "lost") {
		t.Errorf("LostWrites = %q; want the CAS to y", lost)
	}
}

func TestCheckCatchesCASCompareLie(t *testing.T) {
	h := ops(
		hop{0, 0, 10, wr("a", "x"), ack(5)},
		hop{1, 20, 30, cs("a", "x", "y"), Output{Result: TestFailed}}, // nothing else wrote a
		hop{1, 40, 50, rd("a"), got("x", 5)},
	)
	if v := check(t, h); v.Result != porcupine.Illegal {
		t.Errorf("verdict %v; want Illegal", v.Result)
	}
}

// TestCheckUnknown: an operation whose outcome is unknown may take effect
// at any time after its call, or never, and a read may see it.
func TestCheckUnknown(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    []Op
		want porcupine.CheckResult
	}{
		{"seen long after", ops(
			hop{0, 0, -1, wr("a", "x"), Output{}},
			hop{1, 50, 60, rd("a"), Output{Result: NotFound}},
			hop{1, 70, 80, rd("a"), got("x", 3)},
		), porcupine.Ok},
		{"never seen", ops(
			hop{0, 0, -1, wr("a", "x"), Output{}},
			hop{1, 50, 60, wr("a", "y"), ack(4)},
			hop{1, 70, 80, rd("a"), got("y", 4)},
		), porcupine.Ok},
		{"seen before it was called", ops(
			hop{1, 0, 10, rd("a"), got("x", 3)},
			hop{0, 20, -1, wr("a", "x"), Output{}},
		), porcupine.Illegal},
		{"unknown cas that could not apply, seen", ops(
			hop{0, 0, 10, wr("a", "x"), ack(3)},
			hop{1, 20, 30, wr("a", "y"), ack(4)},
			hop{2, 40, -1, cs("a", "x", "z"), Output{}},
			hop{1, 50, 60, rd("a"), got("z", 5)},
		), porcupine.Illegal},
		{"unknown reads, many, pending to the end", ops(
			hop{0, 0, 10, wr("a", "x"), ack(3)},
			hop{1, 5, -1, rd("a"), Output{}},
			hop{2, 6, -1, rd("a"), Output{}},
			hop{3, 7, -1, rd("a"), Output{}},
			hop{0, 20, 30, rd("a"), got("x", 3)},
		), porcupine.Ok},
		{"unknown reads do not hide a stale read", ops(
			hop{0, 0, 10, wr("a", "x"), ack(3)},
			hop{1, 5, -1, rd("a"), Output{}},
			hop{0, 20, 30, wr("a", "y"), ack(4)},
			hop{2, 40, 50, rd("a"), got("x", 3)},
		), porcupine.Illegal},
		// Dropping the unknown write, which no read saw, makes this
		// illegal (the CAS failed because of it): Check must not.
		{"unseen unknown write that failed a CAS", ops(
			hop{0, 0, 10, wr("a", "w"), ack(3)},
			hop{1, 20, -1, wr("a", "v"), Output{}},
			hop{2, 40, 50, cs("a", "w", "z"), Output{Result: TestFailed}},
			hop{0, 60, 70, wr("a", "y"), ack(6)},
			hop{0, 80, 90, rd("a"), got("y", 6)},
		), porcupine.Ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if v := check(t, tc.h); v.Result != tc.want {
				t.Errorf("verdict %v; want %v", v.Result, tc.want)
			}
		})
	}
}

func TestIndexConflicts(t *testing.T) {
	clean := ops(
		hop{0, 0, 10, wr("a", "x"), ack(5)},
		hop{1, 20, 30, rd("a"), got("x", 5)},
		hop{1, 20, 30, wr("b", "x"), ack(6)}, // another key may hold the same value
	)
	if c := IndexConflicts(clean); len(c) != 0 {
		t.Errorf("IndexConflicts(clean) = %q", c)
	}
	twice := ops(
		hop{0, 0, 10, wr("a", "x"), ack(5)},
		hop{1, 20, 30, rd("a"), got("x", 8)}, // applied again
	)
	if c := IndexConflicts(twice); len(c) != 1 {
		t.Errorf("IndexConflicts(a value with two indexes) = %q; want one", c)
	}
	mixed := ops(
		hop{0, 0, 10, wr("a", "x"), ack(5)},
		hop{1, 20, 30, wr("a", "y"), ack(5)},
	)
	if c := IndexConflicts(mixed); len(c) != 1 {
		t.Errorf("IndexConflicts(two values at one index) = %q; want one", c)
	}
}

func TestLostWrites(t *testing.T) {
	h := ops(
		hop{0, 0, 10, wr("a", "x"), ack(5)},
		hop{1, 5, 30, wr("a", "y"), ack(6)}, // concurrent: either may win
		hop{2, 0, 10, wr("b", "z"), ack(7)},
		hop{2, 20, -1, wr("c", "u"), Output{}},
	)
	for _, tc := range []struct {
		name  string
		final map[string]Output
		lost  int
	}{
		{"x won", map[string]Output{"a": got("x", 5), "b": got("z", 7), "c": {Result: NotFound}}, 0},
		{"y won, unknown applied", map[string]Output{"a": got("y", 6), "b": got("z", 7), "c": got("u", 8)}, 0},
		{"b gone", map[string]Output{"a": got("y", 6), "b": {Result: NotFound}}, 1},
		{"never written", map[string]Output{"a": got("q", 9)}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if lost := LostWrites(h, tc.final); len(lost) != tc.lost {
				t.Errorf("LostWrites = %q; want %d", lost, tc.lost)
			}
		})
	}
}

func TestStats(t *testing.T) {
	h := NewHistory()
	c := h.NewClient()
	h.Add(Op{Client: c, Node: "n0", In: wr("a", "x"), Out: Output{Result: Unknown}, Call: 1, Return: 2})
	h.Add(Op{Client: c, Node: "n1", In: rd("a"), Out: got("x", 1), Call: 3, Return: 4})
	h.Refused()
	h.AddFault(Fault{Kind: FaultKill})
	s := h.Stats()
	if s.Ops != 2 || s.Unknown != 1 || s.Refused != 1 || s.Faults[FaultKill] != 1 || s.ByKind["read ok"] != 1 {
		t.Errorf("Stats = %+v", s)
	}
	if got := h.Ops()[0].Return; got != Never {
		t.Errorf("an unknown outcome returned at %d; want Never", got)
	}
	if !strings.Contains(s.String(), "faults: kill 1") {
		t.Errorf("Stats.String() = %q", s)
	}
}
