// Package bootstrap forms a new Cairn cluster without a list of peers
// given in advance, the ways etcd 2.x did: through a discovery token kept
// in another, running cluster (etcd's v2 discovery protocol, Token), or
// from DNS SRV records (SRV). Either one only computes the peer addresses
// of a member with an empty data dir; cluster.Config.Discover hands them
// to the node, which then forms or joins the cluster exactly as with
// --peers (cluster/join.go).
//
// The discovery protocol (reference/etcd-v2.md §5.4, etcd 2.x): a token is
// a key directory <prefix>/<token> in the discovery cluster holding
// _config/size (the number of founding members, N). Each member registers
// <token>/<member ID in hex> = "<name>=https://<peer addr>" with
// prevExist=false, then waits (a recursive watch from the index of its
// last read) until N members are present. The first N by createdIndex
// form the cluster; a member beyond them is refused (FullError) and its
// entry removed again.
//
// Invariants:
//   - A member never registers twice: a member that registered and
//     restarts before the cluster formed finds its own entry (same ID,
//     same value) and goes on with it; a member whose data dir holds raft
//     state is never asked (cluster.New).
//   - Every founding member computes the same peer set: the first N
//     entries by createdIndex, each member's own advertised peer address.
//   - Requests to the discovery cluster present the member's own
//     certificate (mutual TLS); unreachable members and elections are
//     retried until the caller's context ends, refusals are not.
package bootstrap
