#!/usr/bin/env bash
# The heartbeat scale test: starts 3 Cairn members on loopback (mutual TLS,
# a PKI made with cairn ca init / cairn cert issue), writes KEYS
# registrations with a TTL and heartbeats each once every INTERVAL, spread
# over time and over the members, for DURATION (cairn bench refresh
# --interval). Meanwhile `cairn register` keeps one real registration alive
# and dig asks every member's DNS for it every DNS_EVERY, counting the
# answers that are missing. Prints the machine, the bench report (rate
# achieved, heartbeats late, registrations lost, each member's CPU and
# memory, raft entries per heartbeat), the DNS tally and the load average
# after, and stops every process it started. ETCD=1 then runs the same load
# against a 3-member Debian etcd 3.4 (v2 API on) for comparison (no DNS
# there). The cluster start, PKI and machine lines are deploy/bench/lib.sh's.
#
#   deploy/bench/heartbeat-scale.sh                     # from the repository root
#   KEYS=10000 DURATION=30s deploy/bench/heartbeat-scale.sh
#
# Settings (environment): KEYS (100000), TTL (30s), INTERVAL (10s),
# DURATION (5m), CLIENTS (heartbeats in flight at most; empty: the bench's
# default), DNS_EVERY (2), ETCD (0; 1 adds the etcd run), PORT_BASE (ports
# PORT_BASE+1 to +43 are used; default: the first of 24000, 24100, ...,
# 25900 whose ports are all free, below the ephemeral range),
# BENCH_CAIRN (default: built from this checkout), BENCH_ETCD (default:
# etcd in PATH), LOG_STORE (Cairn's log_store: boltdb or wal; empty: the
# default), JSON=file also writes each bench report as JSON (file.cairn,
# file.etcd), KEEP=1 keeps the scratch directory (data dirs, logs).
# CAIRN_* and ETCD* variables are unset (ETCD is read first): cairn serve
# refuses unknown ones, and both servers would take their settings from them.
set -euo pipefail
cd "$(dirname "$0")/../.."

NAME=heartbeat-scale.sh
KEYS=${KEYS:-100000}
TTL=${TTL:-30s}
INTERVAL=${INTERVAL:-10s}
DURATION=${DURATION:-5m}
CLIENTS=${CLIENTS:-}
DNS_EVERY=${DNS_EVERY:-2}
with_etcd=${ETCD:-0} # before bench_init, which unsets every ETCD* variable
if [ "$with_etcd" = 1 ]; then BENCH_NO_ETCD=0; else BENCH_NO_ETCD=1; fi
PORT_BASE=${PORT_BASE:-}
MEMBERS=3
command -v dig >/dev/null || { echo "$NAME: dig is missing (apt-get install bind9-dnsutils)" >&2; exit 1; }
# shellcheck source=deploy/bench/lib.sh
. deploy/bench/lib.sh
bench_port_base 24000 25900
bench_init

for i in $(seq "$MEMBERS"); do start_cairn "$i"; done
# shellcheck disable=SC2086 # a list of URLs
wait_healthy ${cairn_eps//,/ }
cairn status --endpoints "$cairn_eps" "${tlsflags[@]}" >/dev/null

echo "## Machine"
echo
machine
echo "- load: $KEYS registrations, ttl $TTL, a heartbeat each every $INTERVAL, for $DURATION, over $MEMBERS members (generator and members on this machine); cairn log_store: ${LOG_STORE:-default}"
echo

# One real registration, kept alive by cairn register, that DNS must
# answer on every member all along.
"$BENCH_CAIRN" register --endpoints "$cairn_eps" "${tlsflags[@]}" --service probe --instance probe-1 \
	--host 10.9.9.9 --port 80 --ttl 10s >"$tmp/register.log" 2>&1 &
pid[register]=$!
probe() { # one round: every member's DNS; prints ok or the failing member
	local i a
	for i in $(seq "$MEMBERS"); do
		a=$(port $((40 + i)))
		if [ "$(dig @127.0.0.1 -p "$a" +time=2 +tries=1 +short probe-1.probe.cairn.internal A 2>/dev/null)" = 10.9.9.9 ]; then echo ok; else echo "fail $a $(date -u +%T)"; fi
	done
}
for _ in $(seq 100); do [ "$(probe | grep -c ok)" = "$MEMBERS" ] && break; sleep 0.1; done

bench() { # name endpoints
	local out=()
	[ -n "${JSON:-}" ] && out=(--json)
	# shellcheck disable=SC2086 # CLIENTS is one optional argument
	cairn bench refresh --endpoints "$2" "${tlsflags[@]}" --keys "$KEYS" --ttl "$TTL" \
		--interval "$INTERVAL" --duration "$DURATION" --prefix /bench-heartbeat ${CLIENTS:+--clients $CLIENTS} \
		--progress "${out[@]}" 2>"$tmp/bench-$1.progress" >"$tmp/bench-$1.out" || {
		echo "$NAME: cairn bench refresh on $1 failed:" >&2
		tail -5 "$tmp/bench-$1.progress" >&2
		return 1
	}
	grep '^setup' "$tmp/bench-$1.progress" | sed 's/^/    /' || true
	if [ -n "${JSON:-}" ]; then cp "$tmp/bench-$1.out" "$JSON.$1"; echo "(JSON in $JSON.$1)"; else cat "$tmp/bench-$1.out"; fi
}

echo "## Cairn"
echo
: >"$tmp/dns"
(while :; do probe >>"$tmp/dns"; sleep "$DNS_EVERY"; done) &
pid[dns]=$!
bench cairn "$cairn_eps"
stop_member dns
probe >>"$tmp/dns"
ok=$(grep -c '^ok' "$tmp/dns" || true)
bad=$(grep -c '^fail' "$tmp/dns" || true)
echo
echo "DNS: $((ok + bad)) queries of probe-1.probe.cairn.internal over the run (every ${DNS_EVERY}s, each member), $bad without the answer"
grep '^fail' "$tmp/dns" | head -5 | sed 's/^/    /' || true
echo "cairn register: $(grep -c 'heartbeat failed' "$tmp/register.log" || true) heartbeats failed, $(grep -c 'msg=registered' "$tmp/register.log" || true) (re)registrations"
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$with_etcd" = 1 ]; then
	# Stop Cairn first (all at once): the two clusters share the machine.
	for k in "${!pid[@]}"; do [ -z "${pid[$k]}" ] || kill -TERM "${pid[$k]}" 2>/dev/null || true; done
	for k in "${!pid[@]}"; do stop_member "$k"; done
	for i in $(seq "$MEMBERS"); do start_etcd "$i"; done
	# shellcheck disable=SC2086 # a list of URLs
	wait_healthy ${etcd_eps//,/ }
	echo
	echo "## etcd (the same load; no DNS)"
	echo
	bench etcd "$etcd_eps"
fi
