// Package modcli is `cairn lock` and `cairn elect`: the command-line
// clients of the lock and leader modules (/mod/v2/lock/<name>,
// /mod/v2/leader/<name>), as `consul lock` is Consul's. The cobra wiring
// lives in package main; this package holds the flags, the requests and the
// life of a held lock: acquire, run the command, renew, release.
//
// Invariants:
//   - The command runs only while the lock (or the leadership) is held: it
//     starts after the acquisition and one renewal have succeeded, and it is
//     terminated (SIGTERM to its process group, SIGKILL after --grace) as
//     soon as a renewal finds the entry gone, or when no renewal has
//     succeeded for a whole TTL (counted from when the last successful
//     renewal was sent, so never later than the member's own expiry).
//   - The lock is released only after the command has exited: a signal to
//     cairn is forwarded to the command, and the release waits for it.
//   - A member that fails (a connection error, a 5xx answer that is not the
//     module's verdict) is left for the next one; the acquisition sends a
//     value unique to this process, so that a POST repeated on another
//     member rejoins its own queue entry instead of queueing twice (and
//     renews that entry by value first, so that it outlives the member it
//     waited on).
//   - The exit status is the command's (128+N when a signal N ended it);
//     125 when cairn itself failed (the lock was lost, could not be had in
//     time, or no member answered); 126 and 127 when the command could not
//     be run or found, as env(1) and timeout(1) do.
package modcli
