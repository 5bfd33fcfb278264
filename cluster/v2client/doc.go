// Package v2client is Cairn's etcd v2 client: the one every command of the
// cairn binary, the registrar's wiring, the benchmarks and the test
// harnesses speak the v2 API with.
//
// A Client holds a list of members' https endpoints and one mutual-TLS
// transport. Every member serves every request (followers forward writes),
// so any member will do: a request goes first to the member that answered
// last and fails over to the next one on a connection error, a timeout or
// a 5xx answer. Each attempt has its own timeout, connection included, and
// every answer is read through a size bound.
//
// Status is the cluster as `cairn status` reports it: each member asked at
// its own client URL for its health, raft position and served certificate.
// SaveSnapshot writes a downloaded backup to a file durably and never
// partly, as etcd's snapshot save does.
//
// Answers are the store's own types: a keys answer is a *store.Event (with
// EtcdIndex from X-Etcd-Index) and an etcd error is a *store.Error, whose
// JSON shape store owns. Other failed answers (the members, stats and auth
// endpoints' {"message":...}, or anything that is not JSON) are *Error.
//
// Invariants:
//   - A request that may have reached a member is sent to another one only
//     when a second copy cannot be seen as a second write, even with other
//     clients writing in between: reads, a refresh, a compare-and-delete
//     (a repeat finds the key gone), or a request marked Idempotent. Any
//     other request, a plain set or delete included, fails with
//     ErrMayHaveApplied instead: a set applied twice would overwrite a
//     write made between the two copies, which no linearizable history
//     allows. A request that provably never left (a refused dial), or that
//     a member answered as not applied (Cairn's X-Cairn-Not-Applied mark:
//     it reached no leader to propose it to), goes to the next member
//     whatever it is; when none is left, the error wraps ErrNotApplied.
//   - When every endpoint failed and at least one answered, the error is
//     the last answer's (a *store.Error or *Error); when none answered, it
//     wraps ErrUnavailable and says, per endpoint, why.
//   - The package imports store and the standard library only: no flags,
//     and no files but the backup SaveSnapshot writes; the caller builds the
//     *tls.Config.
package v2client
