#!/usr/bin/env bash
# The figures of docs/tuning.md, measured on this machine:
#
# 1. Failover time against the election timeout. For each election timeout
#    in ELECTION_TIMEOUTS, a new 3-member cluster (mutual TLS, a PKI made
#    with cairn ca init / cairn cert issue, all on loopback) is started with
#    --peer-election-timeout set to it; then KILLS times: find the leader
#    (/v2/stats/self), SIGKILL it, and time until the first write through a
#    survivor is acknowledged. Writes are attempted every 50 ms, each a new
#    curl with its own key, alternating between the two survivors, so that
#    one stuck on the dead leader does not delay the measure; the time is
#    from just before the kill to the end of the first curl that got a 2xx,
#    TLS handshake and process start included. The killed member is then
#    restarted and the next round waits until all three are healthy.
#    Before the kills the cluster idles for IDLE: the elections that start
#    meanwhile, with no member down, are the cost of a short timeout on a
#    busy machine. Prints each setting's median, p90 and max, the raft terms
#    per kill (1 is one election; more are split votes or elections that
#    failed), the idle elections, and the load average before and after.
# 2. Memory against the history size. For each history_size in
#    HISTORY_SIZES (each "size" or "size:history_bytes"), a new one-member
#    cluster takes the same write load (cairn bench put: WRITES writes of
#    VALUE_SIZE-byte values over KEYS keys, 16 clients), then its RSS and
#    Go heap in use are read (/proc and /metrics) once the load has ended.
#
# Both parts run on a machine that may be shared: the load average is
# printed next to every figure. Not run by CI; docs/tuning.md has the figures
# of a run and the command.
#
#   deploy/bench/tuning.sh                               # 11-12 minutes (loaded 2-core machine)
#   KILLS=5 ELECTION_TIMEOUTS="1s" HISTORY_SIZES=1000 deploy/bench/tuning.sh
#
# Settings (environment): KILLS (20), ELECTION_TIMEOUTS ("500ms 1s 2s"), IDLE (30s),
# HEARTBEAT (the default heartbeat interval when empty), HISTORY_SIZES
# ("1000 10000 100000 100000:16777216"), WRITES (100000), KEYS (1000),
# VALUE_SIZE (100), PARTS ("failover memory"), PORT_BASE (ports
# PORT_BASE+1 to +43; default: the first free block of 26000, 26100, ...,
# 27900), BENCH_CAIRN (default: built from this checkout), LOG_STORE, KEEP=1
# keeps the scratch directory. CAIRN_* and ETCD* variables are unset.
set -euo pipefail
cd "$(dirname "$0")/../.."

NAME=tuning.sh
KILLS=${KILLS:-20}
IDLE=${IDLE:-30s}
ELECTION_TIMEOUTS=${ELECTION_TIMEOUTS:-500ms 1s 2s}
HEARTBEAT=${HEARTBEAT:-}
HISTORY_SIZES=${HISTORY_SIZES:-1000 10000 100000 100000:16777216}
WRITES=${WRITES:-100000}
KEYS=${KEYS:-1000}
VALUE_SIZE=${VALUE_SIZE:-100}
PARTS=${PARTS:-failover memory}
PORT_BASE=${PORT_BASE:-}
BENCH_NO_ETCD=1
MEMBERS=3
# shellcheck source=deploy/bench/lib.sh
. deploy/bench/lib.sh
bench_port_base 26000 27900
bench_init

load() { cut -d' ' -f1-3 /proc/loadavg; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# stats prints "median p90 max" (ms) of the numbers on stdin, nearest rank.
stats() {
	sort -n | awk '{a[NR] = $1} END {
		if (NR == 0) { print "- - -"; exit }
		m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		p = int(0.9 * NR + 0.999999); if (p < 1) p = 1
		printf "%d %d %d\n", m, a[p], a[NR] }'
}

stop_all() {
	local k
	for k in "${!pid[@]}"; do [ -z "${pid[$k]}" ] || kill -TERM "${pid[$k]}" 2>/dev/null || true; done
	for k in "${!pid[@]}"; do stop_member "$k"; done
	rm -rf "$tmp"/cairn[0-9]*
}

# healthy_all: every member answers /health true within 60 s (by the
# clock, whatever the machine's load), or the run ends with each member's
# answer and the scratch directory kept.
healthy_all() {
	local i j ep start deadline
	start=$(now_ms)
	deadline=$((start + 60000))
	for i in $(seq "$MEMBERS"); do
		ep=$(cairn_ep "$i")
		until curl "${curlflags[@]}" --max-time 5 "$ep/health" 2>/dev/null | grep -q '"health": *"true"'; do
			if [ "$(now_ms)" -gt "$deadline" ]; then
				echo "$NAME: members not all healthy $(($(now_ms) - start)) ms after a restart; logs in $tmp" >&2
				for j in $(seq "$MEMBERS"); do
					echo "  n$j (pid ${pid[c$j]:-none}): $(curl "${curlflags[@]}" --max-time 5 "$(cairn_ep "$j")/health" 2>&1 || true)" >&2
				done
				KEEP=1
				exit 1
			fi
			sleep 0.1
		done
	done
}

# term prints the highest raft term the running members report.
term() {
	local i t best=0
	for i in $(seq "$MEMBERS"); do
		[ -n "${pid[c$i]:-}" ] || continue
		t=$(curl "${curlflags[@]}" --max-time 2 "$(cairn_ep "$i")/metrics" 2>/dev/null | awk '/^cairn_raft_term / {printf "%d", $2}')
		[ -z "$t" ] || [ "$t" -le "$best" ] || best=$t
	done
	echo "$best"
}

# leader prints the number of the member whose /v2/stats/self says it leads.
leader() {
	local i
	for _ in $(seq 300); do
		for i in $(seq "$MEMBERS"); do
			[ -n "${pid[c$i]:-}" ] || continue
			if curl "${curlflags[@]}" --max-time 2 "$(cairn_ep "$i")/v2/stats/self" 2>/dev/null | grep -q '"state":"StateLeader"'; then
				echo "$i"
				return 0
			fi
		done
		sleep 0.1
	done
	echo "$NAME: no leader within 30s; logs in $tmp" >&2
	KEEP=1
	exit 1
}

# failover_round r: kill the leader, set round_ms to the ms until the first
# write through a survivor is acknowledged and round_killed to the member
# killed, and restart it. (Not in a $(...) subshell: pid[] must see the
# restart.)
failover_round() {
	local r=$1 l s=() i k=0 start ok first limit
	l=$(leader)
	for i in $(seq "$MEMBERS"); do [ "$i" = "$l" ] || s+=("$i"); done
	ok=$tmp/ok.$r
	: >"$ok"
	start=$(now_ms)
	# (braces: bash reports the killed job on the group's stderr)
	{ kill -KILL "${pid[c$l]}" && wait "${pid[c$l]}"; } 2>/dev/null || true
	pid[c$l]=""
	limit=$((start + 30000))
	local attempts=()
	while [ ! -s "$ok" ] && [ "$(now_ms)" -lt "$limit" ]; do
		i=${s[$((k % ${#s[@]}))]}
		(curl "${curlflags[@]}" -f --max-time 10 -XPUT "$(cairn_ep "$i")/v2/keys/tuning/r$r-$k" -d value=x >/dev/null 2>&1 &&
			now_ms >>"$ok") &
		attempts+=($!)
		k=$((k + 1))
		sleep 0.05
	done
	for i in "${attempts[@]}"; do wait "$i" 2>/dev/null || true; done
	[ -s "$ok" ] || { echo "$NAME: round $r: no write acknowledged within 30s of the kill; logs in $tmp" >&2; KEEP=1; exit 1; }
	first=$(sort -n "$ok" | sed -n 1p)
	round_ms=$((first - start)) round_killed=$l
	start_cairn "$l"
}

failover() {
	echo "## Failover: SIGKILL of the leader -> first acknowledged write through a survivor"
	echo
	echo "3 members, heartbeat interval ${HEARTBEAT:-default}, $KILLS kills per setting; times in ms (median / p90 / max)."
	echo
	echo "| election timeout | median | p90 | max | all (ms) | raft terms per kill | elections in $IDLE idle | load average before -> after |"
	echo "|---|---|---|---|---|---|---|---|"
	local et r before times med p90 mx t0 t1 t2
	for et in $ELECTION_TIMEOUTS; do
		serve_flags=(--peer-election-timeout "$et" ${HEARTBEAT:+--peer-heartbeat-interval "$HEARTBEAT"})
		for i in $(seq "$MEMBERS"); do start_cairn "$i"; done
		# shellcheck disable=SC2086 # a list of URLs
		wait_healthy ${cairn_eps//,/ }
		before=$(load)
		t0=$(term)
		sleep "$IDLE"
		t1=$(term)
		times=()
		for r in $(seq "$KILLS"); do
			failover_round "$r"
			times+=("$round_ms")
			echo "  $et round $r: killed n$round_killed, first write after $round_ms ms (load $(load))" >&2
			healthy_all
		done
		t2=$(term)
		read -r med p90 mx < <(printf '%s\n' "${times[@]}" | stats)
		echo "| $et | $med | $p90 | $mx | $(printf '%s\n' "${times[@]}" | sort -n | tr '\n' ' ' | sed 's/ $//') | $(awk -v a="$t1" -v b="$t2" -v k="$KILLS" 'BEGIN {printf "%.2f", (b - a) / k}') | $((t1 - t0)) | $before -> $(load) |"
		stop_all
	done
	echo
}

memory() {
	echo "## Memory against history size"
	echo
	echo "1 member; the same load each time: $WRITES writes of $VALUE_SIZE-byte values over $KEYS keys (cairn bench put, 16 clients); read after the load."
	echo
	echo "| history_size | history_bytes | RSS (MiB) | Go heap in use (MiB) | writes/s | load average before -> after |"
	echo "|---|---|---|---|---|---|"
	local h size bytes before rss heap rate ep
	for h in $HISTORY_SIZES; do
		size=${h%%:*} bytes=""
		[ "$h" = "$size" ] || bytes=${h#*:}
		MEMBERS=1
		serve_flags=(--history-size "$size" ${bytes:+--history-bytes "$bytes"})
		start_cairn 1
		MEMBERS=3
		ep=$(cairn_ep 1)
		wait_healthy "$ep"
		before=$(load)
		cairn bench put --endpoints "$ep" "${tlsflags[@]}" --requests "$WRITES" --keys "$KEYS" \
			--value-size "$VALUE_SIZE" --clients 16 --json >"$tmp/put.json" 2>"$tmp/put.err" || {
			echo "$NAME: cairn bench put failed:" >&2
			tail -5 "$tmp/put.err" >&2
			exit 1
		}
		rate=$(grep -o '"rate": *[0-9.]*' "$tmp/put.json" | sed -n '1s/.*: *//p' | awk '{printf "%d", $1}')
		rss=$(awk '/^VmRSS:/ {printf "%.0f", $2 / 1024}' "/proc/${pid[c1]}/status")
		heap=$(curl "${curlflags[@]}" "$ep/metrics" | awk '/^go_memstats_heap_inuse_bytes / {printf "%.0f", $2 / 1048576}')
		echo "| $size | ${bytes:-default} | $rss | $heap | ${rate:-?} | $before -> $(load) |"
		stop_all
	done
	echo
}

echo "## Machine"
echo
machine
echo
for part in $PARTS; do
	case $part in
	failover) failover ;;
	memory) memory ;;
	*) echo "$NAME: PARTS: unknown part $part (failover, memory)" >&2; exit 1 ;;
	esac
done
echo "load average after the run: $(load)"
