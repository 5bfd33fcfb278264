package cluster

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/store"
)

// logBuffer is an io.Writer safe for the node's concurrent logging.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestTransferLeadership: a follower asked to move the leadership to the
// other follower passes it to the leader, which hands it over; a write
// sent at once is served by the new leader; asking for an unknown member
// is a 404 that changes nothing.
func TestTransferLeadership(t *testing.T) {
	nodes, li := startThree(t, newFakeClock())
	leader := nodes[li]
	var asker, target *Node
	for i, n := range nodes {
		if i == li {
			continue
		}
		if asker == nil {
			asker = n
		} else {
			target = n
		}
	}
	ctx := context.Background()
	if _, err := asker.TransferLeadership(ctx, 0xdead); !isMemberStatus(err, 404) {
		t.Fatalf("transfer to an unknown member: %v, want a 404 MemberError", err)
	}
	if !leader.isLeader() {
		t.Fatal("a refused transfer moved the leadership")
	}
	got, err := asker.TransferLeadership(ctx, target.ID())
	if err != nil {
		t.Fatalf("transfer: %v", err)
	}
	if got != target.ID() {
		t.Fatalf("transfer answered leader %x, want %x", got, target.ID())
	}
	poll.Until(t, waitTimeout, "the target to lead", target.isLeader)
	if _, err := asker.Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/after", Value: "v"}); err != nil {
		t.Fatalf("write after the transfer: %v", err)
	}
}

func isMemberStatus(err error, status int) bool {
	var me *MemberError
	return errors.As(err, &me) && me.Status == status
}

// TestShutdownHandsLeadershipOver: a leader that stops hands the
// leadership to a follower first, and says so; the others lead on
// without waiting for an election timeout.
func TestShutdownHandsLeadershipOver(t *testing.T) {
	var logs logBuffer
	nodes, li := startThreeLogged(t, newFakeClock(), &logs)
	if err := nodes[li].Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if !strings.Contains(logs.String(), "leadership handed over before stopping") {
		t.Fatalf("the leader stopped without handing the leadership over; its log:\n%s", logs.String())
	}
	poll.Until(t, waitTimeout, "a survivor to lead", func() bool {
		for i, n := range nodes {
			if i != li && n.isLeader() {
				return true
			}
		}
		return false
	})
}

// startThreeLogged is startThree with every member logging to w.
func startThreeLogged(t *testing.T, clk *fakeClock, w *logBuffer) ([]*Node, int) {
	t.Helper()
	return startThreeWith(t, clk, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(w, nil)).With("member", c.Name) })
}

// TestCutOffMemberRefuses: a member cut off from the others refuses a
// write as not proposed once it has heard from no leader for the election
// timeout, instead of holding it for the whole request timeout (here a
// minute: the call would otherwise end in ErrTimeout).
func TestCutOffMemberRefuses(t *testing.T) {
	hub := NewInmemHub()
	var nodes []*Node
	addr := func(i int) string { return "10.0.0." + itoa(i+1) + ":7001" }
	for i := range 3 {
		cfg := Config{Name: "n" + itoa(i+1), DataDir: t.TempDir(), PeerAddr: addr(i), Network: hub.Network(addr(i)),
			ElectionTimeout: 300 * time.Millisecond, HeartbeatInterval: 30 * time.Millisecond, RequestTimeout: time.Minute}
		if i > 0 {
			cfg.Peers = []string{addr(0)}
		}
		nodes = append(nodes, startNodeTimed(t, cfg))
	}
	poll.Until(t, waitTimeout, "three members", func() bool { return len(nodes[0].Members()) == 3 && nodes[0].isLeader() })
	hub.Isolate(addr(2))
	_, err := nodes[2].Propose(context.Background(), &store.Request{Method: store.MethodPut, Path: "/x", Value: "v"})
	if !errors.Is(err, ErrNotLeader) || !strings.Contains(err.Error(), "cut off") {
		t.Fatalf("write through a cut-off member: %v, want ErrNotLeader saying it is cut off", err)
	}
	hub.Heal()
}

// TestRestartedCutOffMemberWaits: a member that has heard from no leader
// since it started is not refused at once as cut off (raft starts a fresh
// member's first election, or a single member's election of itself, one
// to two election timeouts in): it waits for a leader, and refuses as cut
// off once three election timeouts have passed since its start without
// one.
func TestRestartedCutOffMemberWaits(t *testing.T) {
	hub := NewInmemHub()
	var nodes []*Node
	var cfgs []Config
	addr := func(i int) string { return "10.0.1." + itoa(i+1) + ":7001" }
	for i := range 3 {
		cfg := Config{Name: "n" + itoa(i+1), DataDir: t.TempDir(), PeerAddr: addr(i), Network: hub.Network(addr(i)),
			ElectionTimeout: 300 * time.Millisecond, HeartbeatInterval: 30 * time.Millisecond, RequestTimeout: time.Minute}
		if i > 0 {
			cfg.Peers = []string{addr(0)}
		}
		cfgs = append(cfgs, cfg)
		nodes = append(nodes, startNodeTimed(t, cfg))
	}
	poll.Until(t, waitTimeout, "three members", func() bool { return len(nodes[0].Members()) == 3 && nodes[0].isLeader() })
	if err := nodes[2].Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	hub.Isolate(addr(2))
	cfg := cfgs[2]
	cfg.Network = hub.Network(addr(2))
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	_, err = n.Propose(context.Background(), &store.Request{Method: store.MethodPut, Path: "/x", Value: "v"})
	if !errors.Is(err, ErrNotLeader) || !strings.Contains(err.Error(), "cut off") {
		t.Fatalf("write through a restarted, cut-off member: %v, want ErrNotLeader (cut off) after waiting for a leader", err)
	}
	hub.Heal()
}

// TestFreshMemberWaitsForItsElection: a single member's first write, sent
// before it has elected itself, waits for that election instead of being
// refused as cut off (raft's LastContact is zero until a leader is heard).
func TestFreshMemberWaitsForItsElection(t *testing.T) {
	hub := NewInmemHub()
	n, err := New(Config{Name: "n1", DataDir: t.TempDir(), PeerAddr: "10.0.2.1:7001", Network: hub.Network("10.0.2.1:7001"),
		ElectionTimeout: 300 * time.Millisecond, HeartbeatInterval: 30 * time.Millisecond, RequestTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	if _, err := n.Propose(context.Background(), &store.Request{Method: store.MethodPut, Path: "/x", Value: "v"}); err != nil {
		t.Fatalf("first write on a fresh single member: %v", err)
	}
}
