package faults

import (
	"fmt"
	"sort"

	"github.com/anishathalye/porcupine"
)

// Kind is what an operation does.
type Kind uint8

// The operations of the workload.
const (
	Read  Kind = iota // GET, linearizable
	Write             // PUT without conditions
	CAS               // PUT with prevValue or prevIndex
)

func (k Kind) String() string {
	switch k {
	case Read:
		return "read"
	case Write:
		return "write"
	case CAS:
		return "cas"
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Input is an operation as called.
type Input struct {
	Kind  Kind
	Key   string
	Value string // Write, CAS: the new value (unique in a run)
	// Expect is the value a CAS compares with. A CAS on prevIndex sends
	// ExpectIndex and sets Expect to the value seen with that index: with
	// unique values the two compares agree.
	Expect      string
	ExpectIndex uint64 // 0: the CAS sent prevValue=Expect
}

// Result is how an operation ended.
type Result uint8

// The outcomes an operation can have.
const (
	OK         Result = iota // done: a read's value, a write or CAS applied
	NotFound                 // etcd error 100: the key does not exist (read, CAS)
	TestFailed               // etcd error 101: the CAS compare failed
	Unknown                  // no definite answer: may take effect later, or never
)

func (r Result) String() string {
	switch r {
	case OK:
		return "ok"
	case NotFound:
		return "not found"
	case TestFailed:
		return "compare failed"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("Result(%d)", r)
}

// Output is an operation's answer.
type Output struct {
	Result Result
	Value  string // a read's value, when OK
	Index  uint64 // the node's modifiedIndex, when OK
	Err    string // why the outcome is unknown, for the visualization
}

// state is one key's register: its value, "" when the key does not exist
// (no operation writes "").
type state = string

// step is the sequential specification of one key.
func step(s state, in Input, out Output) (bool, state) {
	switch in.Kind {
	case Read:
		switch out.Result {
		case OK:
			return s != "" && s == out.Value, s
		case NotFound:
			return s == "", s
		case Unknown:
			return true, s
		}
	case Write:
		// A write either succeeds or its outcome is unknown; both apply
		// at the point they are linearized (an unknown write that never
		// happened is linearized after everything else).
		return out.Result == OK || out.Result == Unknown, in.Value
	case CAS:
		switch out.Result {
		case OK:
			return s != "" && s == in.Expect, in.Value
		case NotFound:
			return s == "", s
		case TestFailed:
			return s != "" && s != in.Expect, s
		case Unknown:
			if s != "" && s == in.Expect {
				return true, in.Value
			}
			return true, s
		}
	}
	return false, s
}

// Model is the porcupine model of the workload: a register with CAS per
// key, the history partitioned by key.
var Model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(Input).Key
			byKey[k] = append(byKey[k], op)
		}
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return state("") },
	Step: func(s, in, out any) (bool, any) {
		return step(s.(state), in.(Input), out.(Output))
	},
	Equal: func(a, b any) bool { return a.(state) == b.(state) },
	DescribeOperation: func(in, out any) string {
		return describe(in.(Input), out.(Output))
	},
	DescribeState: func(s any) string {
		if s.(state) == "" {
			return "(absent)"
		}
		return s.(state)
	},
	DescribeOperationMetadata: func(info any) string {
		if info == nil {
			return ""
		}
		return fmt.Sprint(info)
	},
}

// describe is one operation as the visualization shows it.
func describe(in Input, out Output) string {
	var call string
	switch in.Kind {
	case Read:
		call = "get(" + in.Key + ")"
	case Write:
		call = fmt.Sprintf("put(%s, %s)", in.Key, in.Value)
	case CAS:
		if in.ExpectIndex != 0 {
			call = fmt.Sprintf("cas(%s, prevIndex=%d [%s], %s)", in.Key, in.ExpectIndex, in.Expect, in.Value)
		} else {
			call = fmt.Sprintf("cas(%s, prevValue=%s, %s)", in.Key, in.Expect, in.Value)
		}
	}
	switch {
	case out.Result == Unknown:
		return call + " -> unknown"
	case in.Kind == Read && out.Result == OK:
		return fmt.Sprintf("%s -> %s @%d", call, out.Value, out.Index)
	case out.Result == OK:
		return fmt.Sprintf("%s -> ok @%d", call, out.Index)
	}
	return call + " -> " + out.Result.String()
}
