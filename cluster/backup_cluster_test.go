package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/clustertest"
	"github.com/cairnkv/cairn/store"
)

// A backup taken on a follower holds every write acknowledged before it,
// wherever it was made; a member cut off from the majority refuses to take
// one rather than hand out a stale copy.
func TestBackupOnFollower(t *testing.T) {
	c := clustertest.New(t, 3)
	leader := c.Leader()
	follower := (leader + 1) % 3
	ctx := context.Background()
	var last uint64
	for i := range 50 {
		ev, err := c.Node(leader).Propose(ctx, &store.Request{Method: store.MethodPut, Path: "/k", Value: string(rune('a' + i%26))})
		if err != nil {
			t.Fatal(err)
		}
		last = ev.Node.ModifiedIndex
	}
	b, err := c.Node(follower).Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info := b.Info(); info.StoreIndex < last || info.MemberID != c.Node(follower).ID() {
		t.Fatalf("follower's backup %+v; want store index >= %d, taken on %x", info, last, c.Node(follower).ID())
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "b.snap")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	sum, err := cluster.VerifyBackup(file)
	if err != nil || sum.Keys != 1 || sum.StoreIndex != b.Info().StoreIndex {
		t.Fatalf("verify: %+v, %v", sum, err)
	}

	c.Partition(follower)
	defer c.Heal()
	ctx2, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := c.Node(follower).Backup(ctx2); !errors.Is(err, cluster.ErrTimeout) && !errors.Is(err, cluster.ErrNotLeader) {
		t.Fatalf("backup on a partitioned member: %v; want a timeout or no leader", err)
	}
}
