// Package clientflags is the connection plumbing shared by cairn's client
// commands (kv, status, member, service, snapshot, register, bench): the
// --endpoints, --cert, --key, --cacert, --data-dir and --timeout flags,
// their CAIRN_* variables, and the development PKI of a local data dir.
//
// Each setting comes from its flag, else its variable, else the
// development PKI (Flags.Resolve); the key pair is taken as a pair. The
// package only resolves and loads: it makes no request.
package clientflags
