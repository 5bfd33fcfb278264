#!/usr/bin/env bash
# The heartbeat scale test: starts 3 Cairn members on loopback (mutual TLS,
# a PKI made with cairn ca init / cairn cert issue), writes KEYS
# registrations with a TTL and heartbeats each once every INTERVAL, spread
# over time and over the members, for DURATION (cairn bench refresh
# --interval). Meanwhile `cairn register` keeps one real registration alive
# and dig asks every member's DNS for it every DNS_EVERY, counting the
# answers that are missing. Prints the machine, the bench report (rate
# achieved, heartbeats late, registrations lost, each member's CPU and
# memory, raft entries per heartbeat) and the DNS tally, and stops every
# process it started. ETCD=1 then runs the same load against a 3-member
# Debian etcd 3.4 (v2 API on) for comparison (no DNS there).
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
# CAIRN_* and ETCD* variables are unset: cairn serve refuses unknown ones,
# and both servers would take their settings from them.
set -euo pipefail
cd "$(dirname "$0")/../.."

KEYS=${KEYS:-100000}
TTL=${TTL:-30s}
INTERVAL=${INTERVAL:-10s}
DURATION=${DURATION:-5m}
CLIENTS=${CLIENTS:-}
DNS_EVERY=${DNS_EVERY:-2}
with_etcd=${ETCD:-0} # ETCD itself is unset below, with every ETCD* variable
PORT_BASE=${PORT_BASE:-}
MEMBERS=3
command -v curl >/dev/null || { echo "heartbeat-scale.sh: curl is missing (apt-get install curl)" >&2; exit 1; }
command -v dig >/dev/null || { echo "heartbeat-scale.sh: dig is missing (apt-get install bind9-dnsutils)" >&2; exit 1; }
if [ "$with_etcd" = 1 ]; then
	BENCH_ETCD=${BENCH_ETCD:-$(command -v etcd || true)}
	[ -n "$BENCH_ETCD" ] || { echo "heartbeat-scale.sh: ETCD=1 but etcd is not installed (Debian: apt-get install etcd-server)" >&2; exit 1; }
fi

while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(CAIRN_|ETCD)' || true)

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ "${KEEP:-}" = 1 ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

if [ -z "${BENCH_CAIRN:-}" ]; then
	go build -o "$tmp/cairn" ./cmd/cairn
	BENCH_CAIRN=$tmp/cairn
fi
cairn() { "$BENCH_CAIRN" "$@"; }

pki=$tmp/pki
cairn ca init --dir "$pki" --trust-domain cairn.internal >/dev/null
for i in $(seq "$MEMBERS"); do
	cairn cert issue --node n$i --ip 127.0.0.1 --dns localhost --ca-dir "$pki" --out "$pki" >/dev/null
done
cairn cert issue --client root --ca-dir "$pki" --out "$pki" >/dev/null
tlsflags=(--cacert "$pki/ca.crt" --cert "$pki/root.crt" --key "$pki/root.key")

port() { echo $((PORT_BASE + $1)); }
busy() { # base: prints the ports of base+1..+43 something listens on
	ss -Htuln 2>/dev/null | awk '{print $5}' | sed 's/.*://' | sort -u |
		awk -v lo=$(($1 + 1)) -v hi=$(($1 + 43)) '$1 >= lo && $1 <= hi'
}
if [ -z "$PORT_BASE" ]; then
	for b in $(seq 24000 100 25900); do [ -z "$(busy "$b")" ] && { PORT_BASE=$b; break; }; done
	[ -n "$PORT_BASE" ] || { echo "heartbeat-scale.sh: no free block of 43 ports from 24000 to 25943; set PORT_BASE" >&2; exit 1; }
elif [ -n "$(busy "$PORT_BASE")" ]; then
	echo "heartbeat-scale.sh: ports in use at PORT_BASE=$PORT_BASE: $(busy "$PORT_BASE" | tr '\n' ' ')" >&2
	exit 1
fi

healthy() { # url: /health answers {"health":"true"}
	curl -sf --cacert "$pki/ca.crt" --cert "$pki/root.crt" --key "$pki/root.key" "$1/health" | grep -q '"health": *"true"'
}
wait_healthy() { # endpoints, comma-separated
	for ep in ${1//,/ }; do
		for _ in $(seq 600); do
			healthy "$ep" && break
			for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || { echo "heartbeat-scale.sh: a server exited; logs in $tmp" >&2; tail -3 "$tmp"/*.log >&2; KEEP=1; exit 1; }; done
			sleep 0.1
		done
		healthy "$ep" || { echo "heartbeat-scale.sh: $ep is not healthy after 60s; logs in $tmp" >&2; KEEP=1; exit 1; }
	done
}

# Cairn: client ports +21..+23, peer ports +31..+33, DNS +41..+43.
cairn_eps="" dns_addrs=()
for i in $(seq "$MEMBERS"); do
	peers=""
	for j in $(seq "$MEMBERS"); do [ "$j" = "$i" ] || peers+="${peers:+,}127.0.0.1:$(port $((30 + j)))"; done
	cairn_eps+="${cairn_eps:+,}https://127.0.0.1:$(port $((20 + i)))"
	dns_addrs+=("$(port $((40 + i)))")
	"$BENCH_CAIRN" serve --name n$i --data-dir "$tmp/cairn$i" \
		--addr 127.0.0.1:$(port $((20 + i))) --peer-addr 127.0.0.1:$(port $((30 + i))) \
		--dns-addr 127.0.0.1:$(port $((40 + i))) --peers "$peers" \
		--ca-file "$pki/ca.crt" --cert-file "$pki/n$i.crt" --key-file "$pki/n$i.key" \
		${LOG_STORE:+--log-store "$LOG_STORE"} \
		>"$tmp/cairn$i.log" 2>&1 &
	pids+=($!)
done
wait_healthy "$cairn_eps"
cairn status --endpoints "$cairn_eps" "${tlsflags[@]}" >/dev/null

echo "## Machine"
echo
echo "- CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
dev=$(df "$tmp" | awk 'NR==2 {print $1}')
rota=$(lsblk -ndo ROTA "$dev" 2>/dev/null | tr -d ' ' || true)
sync_s=$(dd if=/dev/zero of="$tmp/dsync" bs=4k count=500 oflag=dsync 2>&1 | awk '/copied/ {print $(NF-3)}')
echo "- memory: $(free -g | awk '/^Mem:/ {print $2}') GiB; data dirs on $dev ($(df -h "$tmp" | awk 'NR==2 {print $2}')$([ "$rota" = 1 ] && echo ", reports rotational")$([ "$rota" = 0 ] && echo ", not rotational")); one 4 KiB O_DSYNC write: $(awk -v s="$sync_s" 'BEGIN {printf "%.2f", s * 1000 / 500}') ms (dd, 500 in a row)"
echo "- load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- cairn: $(git describe --always --dirty 2>/dev/null || echo unknown) ($(cairn --version | awk '{print $NF}')); log_store: ${LOG_STORE:-default}$([ "$with_etcd" = 1 ] && echo "; etcd: $("$BENCH_ETCD" --version | head -1 | sed 's/etcd Version: //')")"
echo "- load: $KEYS registrations, ttl $TTL, a heartbeat each every $INTERVAL, for $DURATION, over $MEMBERS members (generator and members on this machine)"
echo

# One real registration, kept alive by cairn register, that DNS must
# answer on every member all along.
"$BENCH_CAIRN" register --endpoints "$cairn_eps" "${tlsflags[@]}" --service probe --instance probe-1 \
	--host 10.9.9.9 --port 80 --ttl 10s >"$tmp/register.log" 2>&1 &
pids+=($!)
probe() { # one round: every member's DNS; prints ok or the failing member
	for a in "${dns_addrs[@]}"; do
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
		echo "heartbeat-scale.sh: cairn bench refresh on $1 failed:" >&2
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
dnspid=$!
pids+=($dnspid)
bench cairn "$cairn_eps"
kill "$dnspid" 2>/dev/null || true
wait "$dnspid" 2>/dev/null || true
probe >>"$tmp/dns"
ok=$(grep -c '^ok' "$tmp/dns" || true)
bad=$(grep -c '^fail' "$tmp/dns" || true)
echo
echo "DNS: $((ok + bad)) queries of probe-1.probe.cairn.internal over the run (every ${DNS_EVERY}s, each member), $bad without the answer"
grep '^fail' "$tmp/dns" | head -5 | sed 's/^/    /' || true
echo "cairn register: $(grep -c 'heartbeat failed' "$tmp/register.log" || true) heartbeats failed, $(grep -c 'msg=registered' "$tmp/register.log" || true) (re)registrations"
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$with_etcd" = 1 ]; then
	# Stop Cairn first: the two clusters share the machine.
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
	# etcd: client ports +1..+3, peer ports +11..+13.
	cluster="" etcd_eps=""
	for i in $(seq "$MEMBERS"); do cluster+="${cluster:+,}e$i=https://127.0.0.1:$(port $((10 + i)))"; done
	for i in $(seq "$MEMBERS"); do
		c=https://127.0.0.1:$(port $i) p=https://127.0.0.1:$(port $((10 + i)))
		etcd_eps+="${etcd_eps:+,}$c"
		"$BENCH_ETCD" --name e$i --data-dir "$tmp/etcd$i" --enable-v2=true \
			--listen-client-urls "$c" --advertise-client-urls "$c" \
			--listen-peer-urls "$p" --initial-advertise-peer-urls "$p" \
			--initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token bench \
			--cert-file "$pki/n$i.crt" --key-file "$pki/n$i.key" --trusted-ca-file "$pki/ca.crt" --client-cert-auth \
			--peer-cert-file "$pki/n$i.crt" --peer-key-file "$pki/n$i.key" --peer-trusted-ca-file "$pki/ca.crt" --peer-client-cert-auth \
			>"$tmp/etcd$i.log" 2>&1 &
		pids+=($!)
	done
	wait_healthy "$etcd_eps"
	echo
	echo "## etcd (the same load; no DNS)"
	echo
	bench etcd "$etcd_eps"
fi
