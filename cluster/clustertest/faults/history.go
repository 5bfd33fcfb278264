package faults

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Never is the return time of an operation whose outcome is unknown:
// porcupine's infinity, after every other event.
const Never int64 = math.MaxInt64

// Op is one recorded operation. Times are nanoseconds since the history
// began.
type Op struct {
	Client int // porcupine client: a worker until its first unknown outcome
	Worker int
	Node   string // the member asked
	In     Input
	Out    Output
	Call   int64
	Return int64 // Never when Out.Result is Unknown
}

// The fault kinds. A partition cuts the peer links of a minority off from
// the rest, refusing connections; a blackhole does the same by swallowing
// the bytes. Both count as partitions for Config.MinRounds.
const (
	FaultKill      = "kill"      // SIGKILL, then a restart on the same data dir
	FaultPause     = "pause"     // SIGSTOP, then SIGCONT
	FaultPartition = "partition" // peer links refused
	FaultBlackhole = "blackhole" // peer links swallow traffic
)

// Fault is one injected fault, for the report and the visualization.
type Fault struct {
	Kind    string // kill, pause, partition, blackhole
	Targets []string
	Start   int64
	End     int64
}

// History records operations and faults from many goroutines.
type History struct {
	start time.Time

	mu      sync.Mutex
	ops     []Op
	faults  []Fault
	clients int
	refused int // requests that never left the client
}

// NewHistory starts a history now.
func NewHistory() *History { return &History{start: time.Now()} }

// Now is the current time of the history.
func (h *History) Now() int64 { return int64(time.Since(h.start)) }

// NewClient numbers a new porcupine client.
func (h *History) NewClient() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clients++
	return h.clients - 1
}

// Add records op; an unknown outcome gets Return = Never.
func (h *History) Add(op Op) {
	if op.Out.Result == Unknown {
		op.Return = Never
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
}

// Refused counts a request that never left the client (its dial was
// refused): it had no effect, so it is not part of the history.
func (h *History) Refused() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refused++
}

// AddFault records a fault injected from start to end.
func (h *History) AddFault(f Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = append(h.faults, f)
}

// Ops is a copy of the operations recorded so far.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}

// Faults is a copy of the faults recorded so far.
func (h *History) Faults() []Fault {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Fault(nil), h.faults...)
}

// Stats counts a history's operations.
type Stats struct {
	Ops      int            // in the history
	ByKind   map[string]int // "read ok", "cas compare failed", ...
	Unknown  int            // outcomes unknown (Return = Never)
	Refused  int            // never sent (not in the history)
	Faults   map[string]int // by kind
	Duration time.Duration  // of the history so far
	PerNode  map[string]int // operations per member asked
	Clients  int            // porcupine clients used
	_        struct{}
}

// Stats counts the history.
func (h *History) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Stats{Ops: len(h.ops), ByKind: map[string]int{}, Faults: map[string]int{}, PerNode: map[string]int{},
		Refused: h.refused, Duration: time.Since(h.start), Clients: h.clients}
	for _, op := range h.ops {
		s.ByKind[op.In.Kind.String()+" "+op.Out.Result.String()]++
		s.PerNode[op.Node]++
		if op.Out.Result == Unknown {
			s.Unknown++
		}
	}
	for _, f := range h.faults {
		s.Faults[f.Kind]++
	}
	return s
}

// String is the counts on one line, kinds sorted.
func (s Stats) String() string {
	return fmt.Sprintf("%d operations (%s; %d unknown, %d never sent), faults: %s, in %v",
		s.Ops, countList(s.ByKind), s.Unknown, s.Refused, countList(s.Faults), s.Duration.Round(time.Second))
}

func countList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// operations turns ops into porcupine's form.
func operations(ops []Op) []porcupine.Operation {
	out := make([]porcupine.Operation, len(ops))
	for i, op := range ops {
		meta := op.Node
		if op.Out.Err != "" {
			meta += ": " + op.Out.Err
		}
		out[i] = porcupine.Operation{ClientId: op.Client, Input: op.In, Output: op.Out,
			Call: op.Call, Return: op.Return, Metadata: fmt.Sprintf("worker %d, %s", op.Worker, meta)}
	}
	return out
}

// checkable is ops without the reads whose outcome is unknown: they
// constrain nothing, yet each stays pending to the end of the history
// (Return = Never) and multiplies porcupine's search.
func checkable(ops []Op) []Op {
	out := make([]Op, 0, len(ops))
	for _, op := range ops {
		if op.Out.Result != Unknown || op.In.Kind != Read {
			out = append(out, op)
		}
	}
	return out
}

// observedOnly is ops without the unknown writes and CASes whose value no
// read saw and no CAS compared with. Such an operation can always be
// linearized after everything else, so if ops without it is linearizable,
// ops is too: a cheaper first check (the reverse does not hold, so an
// Illegal verdict is only given on the whole history).
func observedOnly(ops []Op) []Op {
	seen := map[[2]string]bool{}
	for _, op := range ops {
		if op.In.Kind == Read && op.Out.Result == OK {
			seen[[2]string{op.In.Key, op.Out.Value}] = true
		}
		if op.In.Kind == CAS {
			seen[[2]string{op.In.Key, op.In.Expect}] = true
		}
	}
	out := make([]Op, 0, len(ops))
	for _, op := range ops {
		if op.Out.Result == Unknown && !seen[[2]string{op.In.Key, op.In.Value}] {
			continue
		}
		out = append(out, op)
	}
	return out
}

// Verdict is the outcome of Check.
type Verdict struct {
	Result porcupine.CheckResult
	// IllegalKeys are the keys whose own history is not linearizable.
	IllegalKeys []string
	// Visualization is the file porcupine's visualization of an Illegal
	// history was written to ("" otherwise).
	Visualization string
	Took          time.Duration
}

// Check checks the history with porcupine within timeout. An Illegal
// history's visualization, with the faults drawn in, is written to a new
// file in dir (made if missing).
//
// Only a history found Illegal is checked again in porcupine's verbose
// mode, and only the operations on its illegal keys: the verbose mode
// keeps every partial linearization, and on a whole history that the
// quick check could not decide in time it grew past 20 GB.
func Check(ops []Op, faults []Fault, timeout time.Duration, dir string) (Verdict, error) {
	began := time.Now()
	ops = checkable(ops)
	res := porcupine.CheckOperationsTimeout(Model, operations(observedOnly(ops)), timeout)
	if res == porcupine.Illegal {
		res = porcupine.CheckOperationsTimeout(Model, operations(ops), timeout)
	}
	v := Verdict{Result: res, Took: time.Since(began)}
	if res != porcupine.Illegal {
		return v, nil
	}
	v.IllegalKeys = illegalKeys(ops, timeout)
	var shown []Op
	for _, op := range ops {
		if slices.Contains(v.IllegalKeys, op.In.Key) {
			shown = append(shown, op)
		}
	}
	_, info := porcupine.CheckOperationsVerbose(Model, operations(shown), timeout)
	info.AddAnnotations(annotations(faults))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return v, fmt.Errorf("faults: directory for the visualization: %w", err)
	}
	f, err := os.CreateTemp(dir, "linearizability-*.html")
	if err != nil {
		return v, fmt.Errorf("faults: file for the visualization: %w", err)
	}
	defer f.Close()
	if err := porcupine.Visualize(Model, info, f); err != nil {
		return v, fmt.Errorf("faults: writing the visualization %s: %w", f.Name(), err)
	}
	v.Visualization, err = filepath.Abs(f.Name())
	return v, err
}

// illegalKeys checks each key's history alone and lists those that are
// Illegal.
func illegalKeys(ops []Op, timeout time.Duration) []string {
	byKey := map[string][]Op{}
	for _, op := range ops {
		byKey[op.In.Key] = append(byKey[op.In.Key], op)
	}
	var out []string
	for key, kops := range byKey {
		if porcupine.CheckOperationsTimeout(Model, operations(kops), timeout) == porcupine.Illegal {
			out = append(out, key)
		}
	}
	sort.Strings(out)
	return out
}

// annotations draw the faults on the visualization's "nemesis" line.
func annotations(faults []Fault) []porcupine.Annotation {
	var out []porcupine.Annotation
	for _, f := range faults {
		out = append(out, porcupine.Annotation{Tag: "nemesis", Start: f.Start, End: f.End,
			Description:     f.Kind + " " + strings.Join(f.Targets, ","),
			Details:         fmt.Sprintf("%s of %v from %v to %v", f.Kind, f.Targets, time.Duration(f.Start), time.Duration(f.End)),
			BackgroundColor: "#fbe3c0"})
	}
	return out
}

// IndexConflicts lists the values seen with more than one modifiedIndex,
// and the indexes of one key given to more than one value: each write
// writes a new value once, so either means a write applied twice or an
// answer that mixed up writes.
func IndexConflicts(ops []Op) []string {
	type kv = [2]string
	byValue := map[kv]uint64{}
	byIndex := map[string]map[uint64]string{}
	var out []string
	note := func(key, value string, idx uint64, what string) {
		if value == "" || idx == 0 {
			return
		}
		if prev, ok := byValue[kv{key, value}]; ok && prev != idx {
			out = append(out, fmt.Sprintf("%s=%s seen with modifiedIndex %d and %d (%s)", key, value, prev, idx, what))
		}
		byValue[kv{key, value}] = idx
		if byIndex[key] == nil {
			byIndex[key] = map[uint64]string{}
		}
		if prev, ok := byIndex[key][idx]; ok && prev != value {
			out = append(out, fmt.Sprintf("%s: modifiedIndex %d given to %s and %s (%s)", key, idx, prev, value, what))
		}
		byIndex[key][idx] = value
	}
	for _, op := range ops {
		if op.Out.Result != OK {
			continue
		}
		switch op.In.Kind {
		case Read:
			note(op.In.Key, op.Out.Value, op.Out.Index, describe(op.In, op.Out))
		case Write, CAS:
			note(op.In.Key, op.In.Value, op.Out.Index, describe(op.In, op.Out))
		}
	}
	return out
}

// LostWrites compares the final value of each key (from reads made after
// the cluster healed, all faults over) with the acknowledged writes: the
// final value must come from a write or CAS that no acknowledged write or
// CAS of the key began after the end of, and a key some write was
// acknowledged on must exist. It lists every violation.
func LostWrites(ops []Op, final map[string]Output) []string {
	var out []string
	keys := make([]string, 0, len(final))
	for k := range final {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		fin := final[key]
		var acked []Op
		var writer *Op
		for i, op := range ops {
			if op.In.Key != key || op.In.Kind == Read {
				continue
			}
			if op.Out.Result == OK {
				acked = append(acked, op)
			}
			if fin.Result == OK && op.In.Value == fin.Value {
				writer = &ops[i]
			}
		}
		switch {
		case fin.Result == NotFound && len(acked) > 0:
			out = append(out, fmt.Sprintf("%s: absent at the end, but %d writes to it were acknowledged (the last one to return: %s)",
				key, len(acked), describe(latest(acked).In, latest(acked).Out)))
		case fin.Result == OK && writer == nil:
			out = append(out, fmt.Sprintf("%s: final value %q was never written", key, fin.Value))
		case fin.Result == OK:
			for _, a := range acked {
				if a.Call > writer.Return {
					out = append(out, fmt.Sprintf("%s: final value %q, written by %s (returned at %v), but %s began later (%v) and was acknowledged: lost",
						key, fin.Value, describe(writer.In, writer.Out), time.Duration(writer.Return), describe(a.In, a.Out), time.Duration(a.Call)))
					break
				}
			}
		}
	}
	return out
}

func latest(ops []Op) Op {
	l := ops[0]
	for _, op := range ops[1:] {
		if op.Return > l.Return {
			l = op
		}
	}
	return l
}
