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
#
# Settings (environment): MEMBERS per cluster (3; 1 to 9), DURATION of
# each run (10s), ROUNDS per workload
# and cluster (3), PORT_BASE (23000, below the ephemeral range: ports PORT_BASE+1 to +43 are used),
# WORKLOADS (the table's rows, as cairn bench compare arguments), BENCH_CAIRN
# (default: built from this checkout), BENCH_ETCD (default: etcd in PATH),
# LOG_STORE (Cairn's log_store: boltdb or wal; empty: the default),
# KEEP=1 keeps the scratch directory (data dirs, logs). CAIRN_* and ETCD*
# variables are unset: cairn serve refuses unknown ones, and both servers
# would take their settings from them.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
MEMBERS=${MEMBERS:-3}
case $MEMBERS in [1-9]) ;; *) echo "compare.sh: MEMBERS=$MEMBERS: use 1 to 9" >&2; exit 1 ;; esac
PORT_BASE=${PORT_BASE:-23000}
WORKLOADS=${WORKLOADS:-"put,clients=1 put,clients=64 put,clients=256 get,clients=64 get,clients=64,stale refresh,clients=64,keys=10000"}
BENCH_ETCD=${BENCH_ETCD:-$(command -v etcd || true)}
[ -n "$BENCH_ETCD" ] || { echo "compare.sh: etcd is not installed (Debian: apt-get install etcd-server)" >&2; exit 1; }
command -v curl >/dev/null || { echo "compare.sh: curl is missing (apt-get install curl)" >&2; exit 1; }

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
# (serve is started with the binary itself, not this function, so that $!
# is its process ID.)
cairn() { "$BENCH_CAIRN" "$@"; }

# One PKI for both clusters: node certificates for 127.0.0.1 (server and
# client auth, so etcd's peers use them as well) and a root client.
pki=$tmp/pki
cairn ca init --dir "$pki" --trust-domain cairn.internal >/dev/null
for i in $(seq "$MEMBERS"); do
	cairn cert issue --node n$i --ip 127.0.0.1 --dns localhost --ca-dir "$pki" --out "$pki" >/dev/null
done
cairn cert issue --client root --ca-dir "$pki" --out "$pki" >/dev/null
tlsflags=(--cacert "$pki/ca.crt" --cert "$pki/root.crt" --key "$pki/root.key")

port() { echo $((PORT_BASE + $1)); }

# etcd: client ports +1..+3, peer ports +11..+13.
cluster=""
for i in $(seq "$MEMBERS"); do cluster+="${cluster:+,}e$i=https://127.0.0.1:$(port $((10 + i)))"; done
etcd_eps=""
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

# Cairn: client ports +21..+23, peer ports +31..+33, DNS +41..+43.
cairn_eps=""
for i in $(seq "$MEMBERS"); do
	peers=""
	for j in $(seq "$MEMBERS"); do [ "$j" = "$i" ] || peers+="${peers:+,}127.0.0.1:$(port $((30 + j)))"; done
	cairn_eps+="${cairn_eps:+,}https://127.0.0.1:$(port $((20 + i)))"
	"$BENCH_CAIRN" serve --name n$i --data-dir "$tmp/cairn$i" \
		--addr 127.0.0.1:$(port $((20 + i))) --peer-addr 127.0.0.1:$(port $((30 + i))) \
		--dns-addr 127.0.0.1:$(port $((40 + i))) --peers "$peers" \
		--ca-file "$pki/ca.crt" --cert-file "$pki/n$i.crt" --key-file "$pki/n$i.key" \
		${LOG_STORE:+--log-store "$LOG_STORE"} \
		>"$tmp/cairn$i.log" 2>&1 &
	pids+=($!)
done

healthy() { # url: /health answers {"health":"true"}
	curl -sf --cacert "$pki/ca.crt" --cert "$pki/root.crt" --key "$pki/root.key" "$1/health" | grep -q '"health": *"true"'
}
for ep in ${etcd_eps//,/ } ${cairn_eps//,/ }; do
	for _ in $(seq 600); do healthy "$ep" && break; sleep 0.1; done
	healthy "$ep" || { echo "compare.sh: $ep is not healthy after 60s; logs in $tmp" >&2; KEEP=1; exit 1; }
done
cairn status --endpoints "$cairn_eps" "${tlsflags[@]}" >/dev/null

echo "## Machine"
echo
echo "- CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
dev=$(df "$tmp" | awk 'NR==2 {print $1}')
rota=$(lsblk -ndo ROTA "$dev" 2>/dev/null | tr -d ' ' || true)
# The fsync floor: 4 KiB writes with O_DSYNC, one at a time, as a log does.
sync_s=$(dd if=/dev/zero of="$tmp/dsync" bs=4k count=500 oflag=dsync 2>&1 | awk '/copied/ {print $(NF-3)}')
echo "- memory: $(free -g | awk '/^Mem:/ {print $2}') GiB; data dirs on $dev ($(df -h "$tmp" | awk 'NR==2 {print $2}')$([ "$rota" = 1 ] && echo ", reports rotational")$([ "$rota" = 0 ] && echo ", not rotational")); one 4 KiB O_DSYNC write: $(awk -v s="$sync_s" 'BEGIN {printf "%.2f", s * 1000 / 500}') ms (dd, 500 in a row)"
echo "- load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- etcd: $("$BENCH_ETCD" --version | head -1 | sed 's/etcd Version: //'); cairn: $(git describe --always --dirty 2>/dev/null || echo unknown) ($(cairn --version | awk '{print $NF}'))"
echo "- members per cluster: $MEMBERS; $DURATION per run, $ROUNDS rounds per workload and cluster, alternated etcd, cairn, etcd, cairn, ...; cairn log_store: ${LOG_STORE:-default}"
echo
echo "## Result"
echo
# shellcheck disable=SC2086 # WORKLOADS is a list of arguments
cairn bench compare --a-name etcd --a "$etcd_eps" --b-name cairn --b "$cairn_eps" "${tlsflags[@]}" \
	--duration "$DURATION" --rounds "$ROUNDS" --markdown --progress $WORKLOADS
