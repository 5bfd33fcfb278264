package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// Forming a cluster, the etcd 0.4 way:
//
//   - a node with an empty data dir and no peers bootstraps a new cluster;
//   - a node with an empty data dir and peers joins through any of them,
//     retrying with backoff until one answers;
//   - nodes started together, each listing the others, form one cluster: the
//     one whose peer address sorts lowest among itself and its peers
//     bootstraps, once a majority of that set (itself included) is up and
//     not yet in a cluster; every other node joins;
//   - a node with raft state rejoins from it and ignores its peers.
//
// Whatever way a node came in, it then announces its name and client URLs
// to the leader until the replicated metadata has them.

const (
	joinBackoffMin = 100 * time.Millisecond
	joinBackoffMax = 5 * time.Second
)

// joinLoop runs on a node that started without raft state and with peers.
func (n *Node) joinLoop(peers []string) {
	defer n.wg.Done()
	backoff := joinBackoffMin
	bootstrapper := len(peers) == 0 || n.cfg.PeerAddr < peers[0]
	for {
		if n.hasConfiguration() {
			break
		}
		// Each attempt under the join state's lock: once Withdraw has
		// begun, no attempt starts, and Withdraw knows whether one joined.
		var uninitialized int
		var err error
		done := false
		if !n.join.attempt(func() {
			if uninitialized, err = n.tryJoin(peers); err == nil {
				n.join.joined, done = true, true
				return
			}
			if bootstrapper && 2*(uninitialized+1) > len(peers)+1 {
				conf := raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(hexID(n.id)), Address: raft.ServerAddress(n.cfg.PeerAddr)}}}
				if err := n.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
					n.cfg.Logger.Error("bootstrap failed", "err", err)
				} else {
					n.join.bootstrapped = true
					n.cfg.Logger.Info("bootstrapped a new cluster as the lowest peer address", "peers", peers, "uninitialized", uninitialized)
				}
				done = true
			}
		}) {
			return
		}
		if done {
			break
		}
		n.cfg.Logger.Info("waiting to join a cluster", "peers", peers, "err", err, "retry_in", backoff)
		if !n.sleep(jitter(backoff)) {
			return
		}
		backoff = min(2*backoff, joinBackoffMax)
	}
	n.announceLoop()
}

// tryJoin asks each peer in turn to admit this node. It returns nil once
// one did, else how many peers answered that they are in no cluster yet.
func (n *Node) tryJoin(peers []string) (uninitialized int, err error) {
	req, _ := json.Marshal(n.joinRequest())
	err = errors.New("no peer answered")
	for _, p := range peers {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
		ans, cerr := n.net.Call(ctx, p, append([]byte{opJoin, 0}, req...))
		cancel()
		if cerr == nil {
			_, cerr = decodeAnswer(ans)
		}
		switch {
		case cerr == nil:
			n.cfg.Logger.Info("joined the cluster", "via", p)
			return uninitialized, nil
		case errors.Is(cerr, ErrUninitialized):
			uninitialized++
		default:
			var me *MemberError
			if errors.As(cerr, &me) {
				n.cfg.Logger.Error("the cluster refused this member", "via", p, "err", cerr)
			}
			err = cerr
		}
	}
	return uninitialized, err
}

func (n *Node) joinRequest() joinRequest {
	return joinRequest{ID: n.id, Name: n.cfg.Name, PeerAddr: n.cfg.PeerAddr, ClientURLs: n.cfg.ClientURLs, ClusterID: n.clusterID, Features: ownFeatures}
}

// announceLoop makes the replicated metadata carry this node's name, peer
// address and client URLs, retrying until the leader has taken them.
func (n *Node) announceLoop() {
	backoff := joinBackoffMin
	want := n.joinRequest()
	for {
		if info, ok := n.fsm.member(n.id); ok && info.Name == want.Name && info.Features == want.Features &&
			slices.Equal(info.ClientURLs, want.ClientURLs) && slices.Equal(info.PeerURLs, []string{"https://" + want.PeerAddr}) {
			return
		}
		if n.fsm.isRemoved(n.id) {
			n.cfg.Logger.Error("this member was removed from the cluster; it serves nothing until its data dir is emptied and it joins again with --peers")
			return
		}
		if n.hasConfiguration() {
			b, _ := json.Marshal(want)
			ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
			_, err := n.callLeader(ctx, opJoin, 0, b)
			cancel()
			if err == nil {
				n.sleep(20 * time.Millisecond) // applied here soon; check again
				continue
			}
			n.cfg.Logger.Debug("announce to leader failed", "err", err)
		}
		if !n.sleep(jitter(backoff)) {
			return
		}
		backoff = min(2*backoff, joinBackoffMax)
	}
}

// sleep waits d or until the node stops; it reports whether to go on.
func (n *Node) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-n.stop:
		return false
	}
}

// jitter spreads retries of nodes started together: d ± 25%.
func jitter(d time.Duration) time.Duration {
	return d*3/4 + rand.N(d/2+1)
}
