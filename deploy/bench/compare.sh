#!/usr/bin/env bash
# Starts a 3-member Debian etcd 3.4 cluster (v2 API on) and a 3-member
# Cairn cluster (MEMBERS=1: one member each) on loopback, both with the
# same mutual-TLS PKI (made with cairn ca init / cairn cert issue; etcd's
# peers use it too), runs `cairn bench compare` over the rows of
# docs/performance.md, prints the machine and the Markdown table, and stops
# every process it started.
#
#   deploy/bench/compare.sh                 # from the repository root
#   DURATION=5s ROUNDS=1 deploy/bench/compare.sh
#   BASELINE=/tmp/cairn-before WORKLOADS="put,clients=64" deploy/bench/compare.sh
#
# Settings (environment): MEMBERS per cluster (3; 1 to 9), DURATION of
# each run (10s), ROUNDS per workload
# and cluster (3), PORT_BASE (23000, below the ephemeral range: ports PORT_BASE+1 to +43 are used),
# WORKLOADS (the table's rows, as cairn bench compare arguments), BENCH_CAIRN
# (default: built from this checkout), BENCH_ETCD (default: etcd in PATH),
# LOG_STORE (Cairn's log_store: boltdb or wal; empty: the default),
# BASELINE (another cairn binary: its cluster takes etcd's place, as
# "cairn-baseline", to measure a change against the build before it; its
# members use ports PORT_BASE+51 to +79), SERVER_CPUS and BENCH_CPUS
# (taskset CPU lists for every member and for the load generator:
# SERVER_CPUS=0 BENCH_CPUS=1 gives the generator a core of its own), KEEP=1 keeps the scratch directory (data dirs, logs). CAIRN_* and ETCD*
# variables are unset: cairn serve refuses unknown ones, and both servers
# would take their settings from them.
set -euo pipefail
cd "$(dirname "$0")/../.."

NAME=compare.sh
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
MEMBERS=${MEMBERS:-3}
PORT_BASE=${PORT_BASE:-23000}
WORKLOADS=${WORKLOADS:-"put,clients=1 put,clients=64 put,clients=256 get,clients=64 get,clients=64,stale refresh,clients=64,keys=10000"}
# shellcheck source=deploy/bench/lib.sh
. deploy/bench/lib.sh
[ -z "${BASELINE:-}" ] || BENCH_NO_ETCD=1
bench_init

if [ -n "${BASELINE:-}" ]; then
	[ -x "$BASELINE" ] || { echo "$NAME: BASELINE=$BASELINE is not an executable cairn binary" >&2; exit 1; }
	a_name=cairn-baseline a_eps=""
	for i in $(seq "$MEMBERS"); do
		start_cairn "$i" "$BASELINE" 50 b
		a_eps+="${a_eps:+,}https://127.0.0.1:$(port $((50 + i)))"
	done
else
	a_name=etcd a_eps=$etcd_eps
	for i in $(seq "$MEMBERS"); do start_etcd "$i"; done
fi
for i in $(seq "$MEMBERS"); do start_cairn "$i"; done
# shellcheck disable=SC2086 # lists of URLs
wait_healthy ${a_eps//,/ } ${cairn_eps//,/ }
cairn status --endpoints "$cairn_eps" "${tlsflags[@]}" >/dev/null

echo "## Machine"
echo
machine
[ -z "${BASELINE:-}" ] || echo "- cairn-baseline: $BASELINE ($("$BASELINE" --version | awk '{print $NF}'))"
echo "- members per cluster: $MEMBERS; $DURATION per run, $ROUNDS rounds per workload and cluster, alternated $a_name, cairn, $a_name, cairn, ...; cairn log_store: ${LOG_STORE:-default}"
echo
echo "## Result"
echo
# shellcheck disable=SC2086 # WORKLOADS is a list of arguments
"${bench_pin[@]}" "$BENCH_CAIRN" bench compare --a-name "$a_name" --a "$a_eps" --b-name cairn --b "$cairn_eps" "${tlsflags[@]}" \
	--duration "$DURATION" --rounds "$ROUNDS" --markdown --progress $WORKLOADS
