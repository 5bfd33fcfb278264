#!/usr/bin/env bash
# Loads KEYS distinct keys into a 3-member Debian etcd 3.4 cluster (v2 API
# on) and then into a 3-member Cairn cluster (MEMBERS=1: one member each),
# one cluster at a time, on loopback with the same mutual-TLS PKI (made
# with cairn ca init / cairn cert issue), and measures for each: the load
# rate; per member, resident memory, data dir size and raft index; and the
# restart: one follower stopped (SIGTERM) and started again, time to its
# first local read of the last key stored and to /health true; the whole
# cluster stopped and started at once, time to the first linearizable read.
# Prints the machine and Markdown tables, and stops every process it
# started.
#
#   deploy/bench/scale.sh                   # from the repository root
#   KEYS=100000 deploy/bench/scale.sh
#
# Settings (environment): KEYS (1000000), VALUE_SIZE in bytes (100),
# CLIENTS loading (128), MEMBERS per cluster (3; 1 to 9), SYSTEMS (both,
# cairn or etcd), SETTLE seconds between the load and the memory reading
# (10), PORT_BASE (24000, below the ephemeral range: ports PORT_BASE+1 to
# +49 are used), BENCH_CAIRN (default: built from this checkout), BENCH_ETCD
# (default: etcd in PATH), LOG_STORE (Cairn's log_store: boltdb or wal;
# empty: the default), KEEP=1 keeps the scratch directory (data dirs,
# logs; without it each cluster's data dirs go when it is measured).
# CAIRN_* and ETCD* variables are unset: cairn serve refuses unknown ones,
# and both servers would take their settings from them.
#
# Timing: from just before the exec to the first answer of a curl loop
# (20 ms apart at most, plus curl's own start and TLS handshake), taken with
# date +%s.%N.
set -euo pipefail
cd "$(dirname "$0")/../.."

NAME=scale.sh
KEYS=${KEYS:-1000000}
VALUE_SIZE=${VALUE_SIZE:-100}
CLIENTS=${CLIENTS:-128}
MEMBERS=${MEMBERS:-3}
SETTLE=${SETTLE:-10}
PORT_BASE=${PORT_BASE:-24000}
case ${SYSTEMS:=both} in
both) systems="etcd cairn" ;;
etcd | cairn) systems=$SYSTEMS ;;
*) echo "$NAME: SYSTEMS=$SYSTEMS: use both, etcd or cairn" >&2; exit 1 ;;
esac
# shellcheck source=deploy/bench/lib.sh
. deploy/bench/lib.sh
bench_init

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'; }
ep() { if [ "$1" = etcd ]; then etcd_ep "$2"; else cairn_ep "$2"; fi; }
start() { if [ "$1" = etcd ]; then start_etcd "$2"; else start_cairn "$2"; fi; }
pidof_member() { echo "${pid[${1:0:1}$2]}"; }
stop() { stop_member "${1:0:1}$2"; }
# header url name: the value of the response header name of a GET
header() {
	curl "${curlflags[@]}" -D - -o /dev/null "$1" | tr -d '\r' | awk -v h="$2" 'tolower($1) == tolower(h) ":" {print $2}'
}
# poll what url [health]: GET url until it answers 200 (with health: until
# its /health is true), 20 ms apart, for at most 10 minutes.
poll() {
	local deadline=$((SECONDS + 600))
	until if [ -n "${3:-}" ]; then healthy "$2"; else curl "${curlflags[@]}" -f -o /dev/null --max-time 10 "$2"; fi; do
		[ $SECONDS -lt $deadline ] || { echo "$NAME: $1: $2 did not answer in 10 minutes; logs in $tmp" >&2; KEEP=1; exit 1; }
		sleep 0.02
	done
}
# The last key written, read locally (etcd's default; Cairn's stale=true)
# or linearizably (etcd's quorum=true; Cairn's default).
local_read() { if [ "$1" = etcd ]; then echo "$(ep "$1" "$2")/v2/keys/bench/k$last"; else echo "$(ep "$1" "$2")/v2/keys/bench/k$last?stale=true"; fi; }
lin_read() { if [ "$1" = etcd ]; then echo "$(ep "$1" "$2")/v2/keys/bench/k$last?quorum=true"; else echo "$(ep "$1" "$2")/v2/keys/bench/k$last"; fi; }

echo "## Machine"
echo
machine
echo "- members per cluster: $MEMBERS; $KEYS keys of $VALUE_SIZE bytes written once each by $CLIENTS clients (cairn bench put over all members); one cluster at a time; cairn log_store: ${LOG_STORE:-default}; memory read ${SETTLE}s after the load"
echo

declare -A res
members_table=""
for s in $systems; do
	for i in $(seq "$MEMBERS"); do start "$s" "$i"; done
	eps=""
	for i in $(seq "$MEMBERS"); do eps+="${eps:+ }$(ep "$s" "$i")"; done
	# shellcheck disable=SC2086 # eps is a list
	wait_healthy $eps
	for i in $(seq "$MEMBERS"); do poll "$s ready" "$(ep "$s" "$i")/v2/keys/?stale=true"; done
	idx0=$(header "$(ep "$s" 1)/v2/keys/?quorum=true" X-Etcd-Index)

	echo "loading $KEYS keys into $s..." >&2
	cairn bench put --endpoints "${eps// /,}" "${tlsflags[@]}" --timeout 30s --progress --json \
		--keys "$KEYS" --requests "$KEYS" --clients "$CLIENTS" --value-size "$VALUE_SIZE" >"$tmp/load-$s.json"
	read -r reqs errs rate < <(jq -r '"\(.requests) \(.errors) \(.rate)"' "$tmp/load-$s.json")
	idx1=$(header "$(ep "$s" 1)/v2/keys/?quorum=true" X-Etcd-Index)
	# Each key at most once: the bench sends each key's write once and
	# retries nothing, and every request was answered (a success or an
	# error); the store index (one per applied write) moved by at least the
	# successes and at most KEYS. A failed write (etcd's "request timed
	# out" under this load) may or may not have been applied: the keys
	# stored are the index's move.
	if [ $((reqs + errs)) != "$KEYS" ] || [ $((idx1 - idx0)) -lt "$reqs" ] || [ $((idx1 - idx0)) -gt "$KEYS" ]; then
		echo "$NAME: $s: $reqs writes answered, $errs errors, store index $idx0 -> $idx1: not $KEYS keys written at most once each; see $tmp/load-$s.json" >&2
		KEEP=1
		exit 1
	fi
	[ "$errs" = 0 ] || echo "$NAME: $s: $errs writes failed, $((idx1 - idx0 - reqs)) of them applied: $(jq -c .error_kinds "$tmp/load-$s.json")" >&2
	res[$s.keys]=$((idx1 - idx0))
	# The last key written: the highest one stored.
	last=$((KEYS - 1))
	until curl "${curlflags[@]}" -f -o /dev/null "$(ep "$s" 1)/v2/keys/bench/k$last?quorum=true"; do last=$((last - 1)); done
	res[$s.rate]=$rate

	sleep "$SETTLE"
	rss_max=0 du_max=0 follower=""
	for i in $(seq "$MEMBERS"); do
		p=$(pidof_member "$s" "$i")
		rss=$(($(awk '/^VmRSS:/ {print $2}' "/proc/$p/status") * 1024))
		du=$(du -sb "$tmp/$s$i" | cut -f1)
		raft=$(header "$(ep "$s" "$i")/v2/keys/?stale=true" X-Raft-Index)
		state=$(curl "${curlflags[@]}" "$(ep "$s" "$i")/v2/stats/self" | jq -r .state)
		[ -n "$follower" ] || [ "$state" != StateFollower ] || follower=$i
		[ "$rss" -le "$rss_max" ] || rss_max=$rss
		[ "$du" -le "$du_max" ] || du_max=$du
		members_table+=$(printf '| %s | %s%d | %s | %.0f MB | %.0f MB | %s |' "$s" "${s:0:1}" "$i" "${state#State}" "$(awk -v b="$rss" 'BEGIN {print b / 1e6}')" "$(awk -v b="$du" 'BEGIN {print b / 1e6}')" "$raft")$'\n'
	done
	res[$s.rss]=$rss_max res[$s.du]=$du_max

	# (a) One follower (the only member when MEMBERS=1) stopped and started.
	f=${follower:-1}
	echo "restarting $s member $f..." >&2
	stop "$s" "$f"
	t0=$(now)
	start "$s" "$f"
	poll "$s member $f restart" "$(local_read "$s" "$f")"
	res[$s.read]=$(since "$t0")
	poll "$s member $f restart" "$(ep "$s" "$f")" health
	res[$s.health]=$(since "$t0")

	# (b) The whole cluster stopped, then all started at once.
	echo "restarting the whole $s cluster..." >&2
	for i in $(seq "$MEMBERS"); do kill -TERM "$(pidof_member "$s" "$i")" 2>/dev/null || true; done
	for i in $(seq "$MEMBERS"); do stop "$s" "$i"; done
	t0=$(now)
	for i in $(seq "$MEMBERS"); do start "$s" "$i"; done
	poll "$s cluster restart" "$(lin_read "$s" 1)"
	res[$s.lin]=$(since "$t0")
	# shellcheck disable=SC2086 # eps is a list
	wait_healthy $eps
	res[$s.all]=$(since "$t0")

	for i in $(seq "$MEMBERS"); do stop "$s" "$i"; done
	[ "${KEEP:-}" = 1 ] || for i in $(seq "$MEMBERS"); do rm -rf "${tmp:?}/$s$i"; done
done

# cell system key format scale: one figure, or - when not measured
cell() {
	local v=${res[$1.$2]:-}
	if [ -z "$v" ]; then echo -; else awk -v v="$v" -v s="$4" "BEGIN {printf \"$3\", v / s}"; fi
}
ratio() {
	local e=${res[etcd.$1]:-} c=${res[cairn.$1]:-}
	if [ -z "$e" ] || [ -z "$c" ]; then echo -; else awk -v e="$e" -v c="$c" 'BEGIN {printf "%.2f", c / e}'; fi
}
row() { # label key format scale
	echo "| $1 | $(cell etcd "$2" "$3" "$4") | $(cell cairn "$2" "$3" "$4") | $(ratio "$2") |"
}
echo "## Result"
echo
echo "| $KEYS keys, $MEMBERS members | etcd | Cairn | Cairn / etcd |"
echo "|---|---|---|---|"
row "keys stored (of $KEYS written; a failed write is not retried)" keys "%.0f" 1
row "load, $CLIENTS clients (higher is better)" rate "%.0f/s" 1
row "resident memory, largest member (after ${SETTLE}s)" rss "%.2f GB" 1e9
row "data dir, largest member" du "%.0f MB" 1e6
row "follower restart: first local read" read "%.2f s" 1
row "follower restart: /health true" health "%.2f s" 1
row "cluster restart: first linearizable read" lin "%.2f s" 1
row "cluster restart: every member healthy" all "%.2f s" 1
echo
echo "| system | member | role | resident | data dir | raft index |"
echo "|---|---|---|---|---|---|"
printf '%s' "$members_table"
echo
echo "- load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
