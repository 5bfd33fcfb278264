#!/usr/bin/env bash
# DNS throughput side by side: Cairn, NSD (Debian's authoritative server,
# the same zone as a static file) and, when COREDNS names a coredns binary,
# CoreDNS with its etcd plugin (in front of an etcd v3 server) and its cache.
# All serve the same 100 services x 3 instances; dnsperf sends 50% A of an
# instance and 50% SRV of a service. Runs alternate (cairn, nsd, coredns,
# cairn, ...); the table gives the median of the rounds and the ratios.
# Also DoT when DOT=1 (dnsperf -m dot against Cairn's --dns-tls-addr).
# Prints the machine (with its load average, before and after: the figures
# of a loaded machine are lower and noisier) and a Markdown table. Every
# process it starts is stopped on exit.
#
#   apt-get install -y dnsperf nsd        # and, for CoreDNS: etcd-server etcd-client
#   deploy/bench/dns-compare.sh           # from the repository root
#   ROUNDS=5 DURATION=10 COREDNS=/path/to/coredns deploy/bench/dns-compare.sh
#
# Settings (environment): DURATION of each dnsperf run in seconds (10),
# ROUNDS (3), DNSPERF_ARGS (-c 8 -T 2 -q 500: the issue's), BENCH_CAIRN
# (default: built from this checkout), BASELINE (another cairn binary,
# measured as "cairn-baseline"), COREDNS, BENCH_ETCD/ETCDCTL (for CoreDNS;
# default from PATH), DOT=1, PORT_BASE (free block from 24000), KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/../.."

NAME=dns-compare.sh
MEMBERS=1
BENCH_NO_ETCD=1
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
DNSPERF_ARGS=${DNSPERF_ARGS:-"-c 8 -T 2 -q 500"}
for t in dnsperf nsd; do
	command -v "$t" >/dev/null || { echo "$NAME: $t is missing (apt-get install -y dnsperf nsd)" >&2; exit 1; }
done
# shellcheck source=deploy/bench/lib.sh
. deploy/bench/lib.sh
bench_port_base 24000 29000
bench_init
services=100 instances=3
ip() { echo "10.$((1 + $1 / 250)).$(($1 % 250)).$((1 + $2))"; }

# The query file.
for s in $(seq 0 $((services - 1))); do
	for i in $(seq 0 $((instances - 1))); do echo "i$i.svc$s.cairn.internal A"; done
	for _ in $(seq "$instances"); do echo "svc$s.cairn.internal SRV"; done
done >"$tmp/queries.txt"

# Cairn (and the baseline binary, if any), with the registrations.
dotport=$(port 48)
start_dns_cairn() { # name binary i [extra flags]
	local name=$1 bin=$2 i=$3
	shift 3
	"$bin" serve --name "$name" --data-dir "$tmp/data-$name" \
		--addr "127.0.0.1:$(port $((20 + i)))" --peer-addr "127.0.0.1:$(port $((30 + i)))" \
		--dns-addr "127.0.0.1:$(port $((40 + i)))" \
		--ca-file "$pki/ca.crt" --cert-file "$pki/n1.crt" --key-file "$pki/n1.key" "$@" \
		>>"$tmp/$name.log" 2>&1 &
	pid[$name]=$!
	wait_healthy "$(cairn_ep "$i")"
	for s in $(seq 0 $((services - 1))); do
		for j in $(seq 0 $((instances - 1))); do
			curl "${curlflags[@]}" -f -XPUT "$(cairn_ep "$i")/v2/keys/skydns/internal/cairn/svc$s/i$j" \
				--data-urlencode "value={\"host\":\"$(ip "$s" "$j")\",\"port\":$((8000 + j))}" >/dev/null
		done
	done
}
targets=()
dotflags=()
[ "${DOT:-}" != 1 ] || dotflags=(--dns-tls-addr "127.0.0.1:$dotport")
start_dns_cairn cairn "$BENCH_CAIRN" 1 "${dotflags[@]}"
targets+=("cairn udp 127.0.0.1 $(port 41)")
if [ -n "${BASELINE:-}" ]; then
	start_dns_cairn cairn-baseline "$BASELINE" 2
	targets+=("cairn-baseline udp 127.0.0.1 $(port 42)")
fi

# NSD with the same zone; SRV targets have A records, which NSD adds to the
# additional section as Cairn does.
{
	printf '$ORIGIN cairn.internal.\n$TTL 30\n@ IN SOA ns.cairn.internal. hostmaster.cairn.internal. 1 3600 600 86400 30\n@ IN NS ns\nns IN A 127.0.0.1\n'
	for s in $(seq 0 $((services - 1))); do
		for i in $(seq 0 $((instances - 1))); do
			echo "i$i.svc$s IN A $(ip "$s" "$i")"
			echo "svc$s IN SRV 10 33 $((8000 + i)) i$i.svc$s"
		done
	done
} >"$tmp/cairn.internal.zone"
cat >"$tmp/nsd.conf" <<EOF
server:
	ip-address: 127.0.0.1
	port: $(port 43)
	server-count: $(nproc)
	username: ""
	chroot: ""
	zonesdir: "$tmp"
	pidfile: "$tmp/nsd.pid"
	database: ""
	xfrdfile: "$tmp/xfrd.state"
	zonelistfile: "$tmp/zone.list"
	logfile: "$tmp/nsd.log"
	verbosity: 0
	# Debian's NSD limits responses per source network (RRL, 200/s by
	# default); every query here comes from 127.0.0.1, and Cairn's own
	# rate limit is off (and exempts loopback) by default: off for both.
	rrl-ratelimit: 0
	rrl-whitelist-ratelimit: 0
remote-control:
	control-enable: no
zone:
	name: cairn.internal
	zonefile: cairn.internal.zone
EOF
nsd -d -c "$tmp/nsd.conf" >>"$tmp/nsd.log" 2>&1 &
pid[nsd]=$!
targets+=("nsd udp 127.0.0.1 $(port 43)")

# CoreDNS: etcd v3 holds the same records (SkyDNS JSON under /skydns), the
# etcd plugin answers from it and the cache plugin in front.
if [ -n "${COREDNS:-}" ]; then
	BENCH_ETCD=${BENCH_ETCD:-$(command -v etcd || true)}
	ETCDCTL=${ETCDCTL:-$(command -v etcdctl || true)}
	[ -n "$BENCH_ETCD" ] && [ -n "$ETCDCTL" ] || { echo "$NAME: CoreDNS needs etcd and etcdctl (apt-get install etcd-server etcd-client)" >&2; exit 1; }
	ep=http://127.0.0.1:$(port 1)
	"$BENCH_ETCD" --name e1 --data-dir "$tmp/etcd" --listen-client-urls "$ep" --advertise-client-urls "$ep" \
		--listen-peer-urls "http://127.0.0.1:$(port 11)" --initial-advertise-peer-urls "http://127.0.0.1:$(port 11)" \
		--initial-cluster "e1=http://127.0.0.1:$(port 11)" >>"$tmp/etcd.log" 2>&1 &
	pid[etcd]=$!
	for _ in $(seq 100); do ETCDCTL_API=3 "$ETCDCTL" --endpoints "$ep" endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
	for s in $(seq 0 $((services - 1))); do
		for j in $(seq 0 $((instances - 1))); do
			ETCDCTL_API=3 "$ETCDCTL" --endpoints "$ep" put "/skydns/internal/cairn/svc$s/i$j" \
				"{\"host\":\"$(ip "$s" "$j")\",\"port\":$((8000 + j))}" >/dev/null
		done
	done
	cat >"$tmp/Corefile" <<EOF
cairn.internal:$(port 44) {
	bind 127.0.0.1
	cache 30
	etcd {
		path /skydns
		endpoint $ep
	}
}
EOF
	"$COREDNS" -conf "$tmp/Corefile" >>"$tmp/coredns.log" 2>&1 &
	pid[coredns]=$!
	targets+=("coredns udp 127.0.0.1 $(port 44)")
fi
[ "${DOT:-}" != 1 ] || targets+=("cairn-dot dot 127.0.0.1 $dotport")

# Every target answers before any is measured.
for t in "${targets[@]}"; do
	read -r name mode host p <<<"$t"
	[ "$mode" = udp ] || continue
	for _ in $(seq 100); do
		[ "$(dig +short +tries=1 +time=1 -p "$p" "@$host" i0.svc0.cairn.internal A 2>/dev/null)" = "$(ip 0 0)" ] && break
		sleep 0.1
	done
	[ "$(dig +short -p "$p" "@$host" i0.svc0.cairn.internal A)" = "$(ip 0 0)" ] || { echo "$NAME: $name does not answer; logs in $tmp" >&2; KEEP=1; exit 1; }
done

echo "## Machine"
echo
machine
echo "- dnsperf $(dnsperf -h 2>&1 | sed -n 's/^DNS Performance Testing Tool *//p;' | head -n1)$DNSPERF_ARGS -l $DURATION; $ROUNDS rounds, alternated; nsd $(nsd -v 2>&1 | sed -n '1s/^NSD version //p')"
echo

# cpu_ticks PID: CPU time (clock ticks) used so far by PID and every
# process below it (NSD answers from forked children, which it replaces at
# each reload).
cpu_ticks() {
	local t=0 q f s
	# utime and stime, fields 14 and 15 of stat, counted after the command
	# name (which may hold spaces: "nsd: server 1").
	if s=$(cat "/proc/$1/stat" 2>/dev/null); then
		read -r -a f <<<"${s##*) }"
		t=$((f[11] + f[12]))
	fi
	for q in $(pgrep -P "$1"); do t=$((t + $(cpu_ticks "$q"))); done
	echo "$t"
}
hz=$(getconf CLK_TCK)
declare -A rates cpus
for r in $(seq "$ROUNDS"); do
	for t in "${targets[@]}"; do
		read -r name mode host p <<<"$t"
		server=${pid[${name%-dot}]}
		before=$(cpu_ticks "$server")
		# shellcheck disable=SC2086 # DNSPERF_ARGS is a list of arguments
		out=$(dnsperf -m "$mode" -s "$host" -p "$p" -d "$tmp/queries.txt" -l "$DURATION" $DNSPERF_ARGS 2>&1) ||
			{ echo "$NAME: dnsperf against $name failed: $out" >&2; exit 1; }
		qps=$(awk '/Queries per second:/ {printf "%d", $4}' <<<"$out")
		lost=$(awk '/Queries lost:/ {print $3}' <<<"$out")
		# The server's CPU per answer: on a small machine dnsperf competes
		# with the server for the cores, so queries/s alone can be the
		# generator's limit (nothing lost) rather than the server's.
		cpu=$(awk -v t=$(($(cpu_ticks "$server") - before)) -v hz="$hz" -v q="$qps" -v d="$DURATION" 'BEGIN {printf "%.1f", t / hz * 1e6 / (q * d)}')
		echo "round $r: $name $qps queries/s (lost $lost), server CPU $cpu µs per query" >&2
		rates[$name]+="$qps "
		cpus[$name]+="$cpu "
	done
done
echo "- load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
c=$(median <<<"${rates[cairn]}")
medianf() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
cc=$(medianf <<<"${cpus[cairn]}")
echo "| server | queries/s (median of $ROUNDS) | rounds | cairn ÷ server | server CPU µs per query (median) | server CPU ÷ cairn's |"
echo "| --- | ---: | --- | ---: | ---: | ---: |"
for t in "${targets[@]}"; do
	read -r name _ <<<"$t"
	m=$(median <<<"${rates[$name]}")
	mc=$(medianf <<<"${cpus[$name]}")
	echo "| $name | $m | ${rates[$name]% } | $(awk -v a="$c" -v b="$m" 'BEGIN {printf "%.2f", a / b}') | $mc | $(awk -v a="$mc" -v b="$cc" 'BEGIN {printf "%.2f", a / b}') |"
done
