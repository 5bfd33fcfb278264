package cluster

import (
	"time"

	"github.com/hashicorp/raft"
)

// Raft settings of the write path (measured: cluster/bench_test.go and
// cmd/cairn/e2e/writebench_test.go).
const (
	// maxCommitTimeout bounds raft's CommitTimeout: how long an idle leader
	// waits before it sends followers an AppendEntries that carries only
	// its commit index. hashicorp/raft sends the commit index with new
	// entries or after a random [CommitTimeout, 2×CommitTimeout] wait,
	// never when the index moves; a follower would therefore learn of a
	// write that no other write followed only then, had the leader not
	// told it 1 ms after (commitnotice.go); what is left to this timeout
	// is a notice refused or lost past its retries. Idle, each
	// follower gets one empty AppendEntries per 1.5 × CommitTimeout on
	// average. Measured idle on the loaded 2-core machine (3 members,
	// TestWriteBench with CAIRN_WRITE_BENCH_IDLE): 50 ms (HeartbeatInterval/2,
	// before) costs the leader 3% of a core and each follower 0.8%; 10 ms
	// 6% and 1.9%; 5 ms 11% and 3.6%.
	maxCommitTimeout = 10 * time.Millisecond
	// maxAppendEntries is both how many proposals the leader writes to its
	// log in one batch (one fsync) and how many entries one AppendEntries
	// and one FSM batch carry; raft's default is 64, its limit 1024. Raft
	// preallocates a batch of this many pointers per commit on every
	// member, so it is not larger than the 256 clients measured: at a few
	// thousand writes/s and fsyncs of 1-2 ms a batch holds about 10.
	maxAppendEntries = 256
)

// tuneRaft sets the raft options that shape write throughput and latency:
// batches of up to maxAppendEntries and a short commit timeout.
//
// Group commit needs no BatchApplyCh: the leader loop takes one proposal
// from the apply channel, then every proposal already waiting on it, and
// writes them as one batch, so proposals that arrive during an fsync are
// written together by the next. BatchApplyCh (a buffered apply channel)
// stays off: a proposal still in that buffer when raft shuts down is never
// answered (hashicorp/raft#498), so its Apply waited forever (seen as a
// goroutine leak in CI), and Apply's enqueue timeout no longer applies.
// Its cost, measured in-process (go test ./cluster/clustertest -run - -bench
// 'Propose3/(leader|follower)/64' -benchtime=2000x -count=3, loaded
// machine): leader 120-130 µs per write off, 121-158 on; through a follower
// 168-178 off, 134-148 on.
func tuneRaft(rc *raft.Config, cfg Config) {
	rc.CommitTimeout = max(min(cfg.HeartbeatInterval/2, maxCommitTimeout), time.Millisecond)
	rc.MaxAppendEntries = maxAppendEntries
	rc.BatchApplyCh = false
}
