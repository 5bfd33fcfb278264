package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/clustertest"
	"github.com/cairnkv/cairn/cluster/clustertest/poll"
	"github.com/cairnkv/cairn/store"
)

func put(key, value string) *store.Request {
	return &store.Request{Method: store.MethodPut, Path: key, Value: value}
}

func propose(t *testing.T, n *cluster.Node, r *store.Request) *store.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := n.Propose(ctx, r)
	if err != nil {
		t.Fatalf("propose %s %s on %s: %v", r.Method, r.Path, n.Status().Name, err)
	}
	return ev
}

// linearGet reads key linearizably through n.
func linearGet(n *cluster.Node, key string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.ReadBarrier(ctx); err != nil {
		return "", err
	}
	ev, err := n.Store().Get(key, false, false, time.Now())
	if err != nil {
		return "", err
	}
	return *ev.Node.Value, nil
}

func TestFormWriteAnywhereReadAnywhere(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.Leader()
	ids := map[uint64]bool{}
	for i := range c.Len() {
		st := c.Node(i).Status()
		ids[st.ID] = true
		if got := c.Node(i).Members(); len(got) != 3 {
			t.Fatalf("member %d lists %d members", i, len(got))
		}
	}
	if len(ids) != 3 {
		t.Fatalf("member IDs not distinct: %v", ids)
	}
	for i := range c.Len() {
		if a, b := c.Node(i).ClusterID(), c.Node(0).ClusterID(); a != b {
			t.Fatalf("member %d has cluster ID %x, member 0 %x", i, a, b)
		}
	}
	// A write through each member (two of them forwarded), then every
	// member reads every write linearizably, without waiting.
	for i := range c.Len() {
		ev := propose(t, c.Node(i), put(fmt.Sprintf("/k%d", i), fmt.Sprint(i)))
		if ev.Action != store.ActionSet || ev.EtcdIndex == 0 {
			t.Fatalf("write through member %d: %+v", i, ev)
		}
	}
	for i := range c.Len() {
		for j := range c.Len() {
			v, err := linearGet(c.Node(i), fmt.Sprintf("/k%d", j))
			if err != nil || v != fmt.Sprint(j) {
				t.Fatalf("member %d reads /k%d = %q, %v", i, j, v, err)
			}
		}
	}
	// A business failure forwarded from a follower keeps its etcd code.
	follower := (leader + 1) % 3
	_, err := c.Node(follower).Propose(context.Background(), &store.Request{Method: store.MethodPut, Path: "/k0", Value: "x", PrevExist: store.PrevExistFalse})
	var se *store.Error
	if !errors.As(err, &se) || se.ErrorCode != store.EcodeNodeExist {
		t.Fatalf("forwarded create of an existing key: %v, want error 105", err)
	}
}

func TestPartitionedMemberRefusesThenCatchesUp(t *testing.T) {
	c := clustertest.New(t, 3)
	old := c.Leader()
	propose(t, c.Node(old), put("/before", "1"))
	c.Partition(old)

	// The isolated old leader answers writes and linearizable reads with an
	// error within its request timeout, never hanging.
	start := time.Now()
	_, err := c.Node(old).Propose(context.Background(), put("/lost", "x"))
	if err == nil {
		t.Fatal("a write on the isolated member succeeded")
	}
	if err := c.Node(old).ReadBarrier(context.Background()); err == nil {
		t.Fatal("a linearizable read on the isolated member succeeded")
	}
	t.Logf("isolated member refused a write and a read in %v: %v", time.Since(start).Round(time.Millisecond), err)
	// Stale reads still work there.
	if _, err := c.Node(old).Store().Get("/before", false, false, time.Now()); err != nil {
		t.Fatalf("stale read on the isolated member: %v", err)
	}

	// The majority elects a leader and keeps working.
	var other int
	for i := range c.Len() {
		if i != old {
			other = i
			break
		}
	}
	propose(t, c.Node(other), put("/during", "2"))

	c.Heal()
	if v, err := waitValue(t, c.Node(old), "/during"); err != nil || v != "2" {
		t.Fatalf("healed member reads /during = %q, %v", v, err)
	}
	if _, err := c.Node(old).Store().Get("/lost", false, false, time.Now()); err == nil {
		t.Fatal("the refused write was applied after all")
	}
}

// waitValue retries a linearizable read until the member has a leader again.
func waitValue(t *testing.T, n *cluster.Node, key string) (string, error) {
	t.Helper()
	var v string
	var err error
	poll.Until(t, 10*time.Second, "a linearizable read of "+key, func() bool {
		v, err = linearGet(n, key)
		return err == nil
	})
	return v, err
}

func TestLaggingMemberCatchesUpBySnapshot(t *testing.T) {
	c := clustertest.New(t, 3, clustertest.Options{SnapshotCount: 50})
	leader := c.Leader()
	lag := (leader + 1) % 3
	c.Stop(lag)
	for i := range 500 {
		propose(t, c.Node(leader), put(fmt.Sprintf("/bulk/%03d", i), fmt.Sprint(i)))
	}
	c.Restart(lag)
	want := c.Node(leader).Store().Index()
	poll.Until(t, 20*time.Second, "the lagging member to catch up", func() bool {
		return c.Node(lag).Store().Index() >= want
	})
	ev, err := c.Node(lag).Store().Get("/bulk", true, true, time.Now())
	if err != nil || len(ev.Node.Nodes) != 500 {
		t.Fatalf("lagging member has %v keys under /bulk (%v), want 500", ev, err)
	}
	c.WaitMembers(3) // member names survive the snapshot
}

func TestRemoveAndAddBack(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.Leader()
	victim := (leader + 1) % 3
	id := c.Node(victim).Status().ID
	if err := c.Node(leader).RemoveMember(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if err := c.Node(leader).RemoveMember(context.Background(), id); err == nil {
		t.Fatal("removing a removed member succeeded")
	} else if me := (*cluster.MemberError)(nil); !errors.As(err, &me) || me.Status != 410 {
		t.Fatalf("removing a removed member: %v, want 410", err)
	}
	c.Restart(victim) // a removed member that restarts does not disturb
	for i := range 20 {
		propose(t, c.Node(leader), put("/after-remove", fmt.Sprint(i)))
	}
	if got := len(c.Node(leader).Members()); got != 2 {
		t.Fatalf("%d members after remove, want 2", got)
	}
	if l := c.Leader(); l == victim {
		t.Fatal("the removed member became leader")
	}
	// Back with an empty data dir: it joins as a new member.
	c.Wipe(victim)
	c.Restart(victim)
	c.WaitMembers(3)
	if v, err := waitValue(t, c.Node(victim), "/after-remove"); err != nil || v != "19" {
		t.Fatalf("re-added member reads %q, %v", v, err)
	}
}

func TestExpiryAcrossLeaderChange(t *testing.T) {
	var ns atomic.Int64
	ns.Store(time.Unix(1_800_000_000, 0).UnixNano())
	now := func() time.Time { return time.Unix(0, ns.Load()) }
	advance := func(d time.Duration) { ns.Add(int64(d)) }

	c := clustertest.New(t, 3, clustertest.Options{Now: now})
	leader := c.Leader()
	propose(t, c.Node(leader), &store.Request{Method: store.MethodPut, Path: "/ttl", Value: "v", HasTTL: true, TTL: 10})
	advance(5 * time.Second)
	c.Stop(leader)
	next := c.Leader()
	// Five seconds left: the new leader must not expire it. The clock is
	// frozen, so no expiry tick of the new leader may remove it, however
	// many have run by now.
	if _, err := linearGet(c.Node(next), "/ttl"); err != nil {
		t.Fatalf("key expired early after the leader changed: %v", err)
	}
	advance(6 * time.Second)
	poll.Until(t, 10*time.Second, "the key to expire under the new leader", func() bool {
		_, err := linearGet(c.Node(next), "/ttl")
		var se *store.Error
		return errors.As(err, &se) && se.ErrorCode == store.EcodeKeyNotFound
	})
}

func TestLeaderStats(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.Leader()
	if _, ok := c.Node((leader + 1) % 3).LeaderStats(); ok {
		t.Fatal("a follower reports leader stats")
	}
	poll.Until(t, 10*time.Second, "both followers probed", func() bool {
		fs, ok := c.Node(leader).LeaderStats()
		if !ok || len(fs) != 2 {
			t.Fatalf("leader stats %+v (ok %v), want 2 followers", fs, ok)
		}
		probed := 0
		for _, s := range fs {
			if s.Success > 0 && s.Min <= s.Average && s.Average <= s.Max {
				probed++
			}
		}
		return probed == 2
	})
}

func TestAddMemberThenStartIt(t *testing.T) {
	c := clustertest.New(t, 1)
	n0 := c.Node(0)
	m, err := n0.AddMember(context.Background(), []string{"https://10.0.0.9:7001"})
	if err != nil {
		t.Fatalf("add member to a one-member cluster: %v", err)
	}
	// Not running yet, and the cluster still writes: it has no vote.
	propose(t, n0, put("/a", "1"))
	if _, err := n0.AddMember(context.Background(), []string{"https://10.0.0.9:7001"}); err == nil {
		t.Fatal("adding the same peer URL twice succeeded")
	}
	ms := n0.Members()
	if len(ms) != 2 {
		t.Fatalf("members %+v, want 2", ms)
	}
	if err := n0.RemoveMember(context.Background(), m.ID); err != nil {
		t.Fatalf("remove the unstarted member: %v", err)
	}
	if got := len(n0.Members()); got != 1 {
		t.Fatalf("%d members after remove, want 1", got)
	}
}

func TestRecoverFromOneSurvivor(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.Leader()
	for i := range 50 {
		propose(t, c.Node(leader), put(fmt.Sprintf("/dr/%02d", i), fmt.Sprint(i)))
	}
	survivor := (leader + 1) % 3
	want := c.Node(leader).Store().Index()
	poll.Until(t, 10*time.Second, "the survivor to apply every write", func() bool {
		return c.Node(survivor).Store().Index() >= want
	})
	// Two members are lost for good: the survivor alone has no quorum
	// until it is forced into a new one-member cluster.
	c.RecoverAlone(survivor)
	if got := c.Leader(); got != survivor {
		t.Fatalf("leader %d, want the survivor %d", got, survivor)
	}
	n := c.Node(survivor)
	if len(n.Members()) != 1 {
		t.Fatalf("members after recovery: %+v", n.Members())
	}
	if v, err := linearGet(n, "/dr/49"); err != nil || v != "49" {
		t.Fatalf("recovered member reads /dr/49 = %q, %v", v, err)
	}
	if got := n.Store().Index(); got != want {
		t.Fatalf("store index %d after recovery, want %d", got, want)
	}
	propose(t, n, put("/dr/after", "x"))
}
