# shellcheck shell=bash
# Shared by compare.sh, scale.sh and heartbeat-scale.sh (sourced, not run):
# the scratch directory and its cleanup, the cairn binary, one mutual-TLS PKI
# for both clusters, starting a member of each, health checks, a free block
# of ports and the machine lines.
#
# The sourcing script sets, before it calls bench_init: NAME (its name, for
# messages), MEMBERS, PORT_BASE (or calls bench_port_base first) and
# optionally BENCH_CAIRN, BENCH_ETCD, LOG_STORE, KEEP, SERVER_CPUS and
# BENCH_CPUS (taskset CPU lists for the members and for the load generator:
# SERVER_CPUS=0 BENCH_CPUS=1 keeps them off each other's cores), and BENCH_NO_ETCD=1
# when it runs no etcd (etcd need not be installed then, and the machine
# lines leave it out). Ports: etcd clients +1..+9 and peers +11..+19; Cairn
# clients +21..+29, peers +31..+39, DNS +41..+49.

# bench_init checks the tools, unsets CAIRN_* and ETCD* (cairn serve refuses
# unknown ones, and both servers would take their settings from them),
# makes $tmp with a cleanup that stops every member still running, builds cairn
# unless BENCH_CAIRN is set, and makes the PKI in $tmp/pki.
bench_init() {
	case $MEMBERS in [1-9]) ;; *) echo "$NAME: MEMBERS=$MEMBERS: use 1 to 9" >&2; exit 1 ;; esac
	if [ "${BENCH_NO_ETCD:-}" != 1 ]; then
		BENCH_ETCD=${BENCH_ETCD:-$(command -v etcd || true)}
		[ -n "$BENCH_ETCD" ] || { echo "$NAME: etcd is not installed (Debian: apt-get install etcd-server)" >&2; exit 1; }
	fi
	command -v curl >/dev/null || { echo "$NAME: curl is missing (apt-get install curl)" >&2; exit 1; }

	while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(CAIRN_|ETCD)' || true)

	server_pin=() bench_pin=()
	if [ -n "${SERVER_CPUS:-}${BENCH_CPUS:-}" ]; then
		command -v taskset >/dev/null || { echo "$NAME: SERVER_CPUS and BENCH_CPUS need taskset (apt-get install util-linux)" >&2; exit 1; }
		[ -z "${SERVER_CPUS:-}" ] || server_pin=(taskset -c "$SERVER_CPUS")
		[ -z "${BENCH_CPUS:-}" ] || bench_pin=(taskset -c "$BENCH_CPUS")
	fi

	tmp=$(mktemp -d)
	trap bench_cleanup EXIT

	if [ -z "${BENCH_CAIRN:-}" ]; then
		go build -o "$tmp/cairn" ./cmd/cairn
		BENCH_CAIRN=$tmp/cairn
	fi

	# One PKI for both clusters: node certificates for 127.0.0.1 (server
	# and client auth, so etcd's peers use them as well) and a root client.
	pki=$tmp/pki
	cairn ca init --dir "$pki" --trust-domain cairn.internal >/dev/null
	for i in $(seq "$MEMBERS"); do
		cairn cert issue --node "n$i" --ip 127.0.0.1 --dns localhost --ca-dir "$pki" --out "$pki" >/dev/null
	done
	cairn cert issue --client root --ca-dir "$pki" --out "$pki" >/dev/null
	# shellcheck disable=SC2034 # used by the scripts that source this
	tlsflags=(--cacert "$pki/ca.crt" --cert "$pki/root.crt" --key "$pki/root.key")
	curlflags=(-s --cacert "$pki/ca.crt" --cert "$pki/root.crt" --key "$pki/root.key")

	etcd_cluster="" etcd_eps="" cairn_eps=""
	for i in $(seq "$MEMBERS"); do
		etcd_cluster+="${etcd_cluster:+,}e$i=https://127.0.0.1:$(port $((10 + i)))"
		etcd_eps+="${etcd_eps:+,}$(etcd_ep "$i")"
		cairn_eps+="${cairn_eps:+,}$(cairn_ep "$i")"
	done
}

bench_cleanup() {
	local p
	for p in "${pid[@]}"; do [ -z "$p" ] || kill "$p" 2>/dev/null || true; done
	for p in "${pid[@]}"; do [ -z "$p" ] || wait "$p" 2>/dev/null || true; done
	if [ "${KEEP:-}" = 1 ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}

# (serve is started with the binary itself, not this function, so that $!
# is its process ID.)
cairn() { "$BENCH_CAIRN" "$@"; }

port() { echo $((PORT_BASE + $1)); }
etcd_ep() { echo "https://127.0.0.1:$(port "$1")"; }
cairn_ep() { echo "https://127.0.0.1:$(port $((20 + $1)))"; }

# bench_port_base first last: with PORT_BASE empty, sets it to the first of
# first, first+100, ..., last whose ports +1..+(40+MEMBERS) nothing listens
# on; with PORT_BASE set, checks that nothing listens on those. (ss, from
# iproute2, tells; without it every port counts as free.)
ports_busy() { # base span: the ports of base+1..+span something listens on
	ss -Htuln 2>/dev/null | awk '{print $5}' | sed 's/.*://' | sort -u |
		awk -v lo=$(($1 + 1)) -v hi=$(($1 + $2)) '$1 >= lo && $1 <= hi'
}
bench_port_base() {
	local b span=$((40 + MEMBERS))
	if [ -z "${PORT_BASE:-}" ]; then
		for b in $(seq "$1" 100 "$2"); do [ -n "$(ports_busy "$b" "$span")" ] || { PORT_BASE=$b; return 0; }; done
		echo "$NAME: no free block of $span ports from $1 to $(($2 + span)); set PORT_BASE" >&2
		exit 1
	elif [ -n "$(ports_busy "$PORT_BASE" "$span")" ]; then
		echo "$NAME: ports in use at PORT_BASE=$PORT_BASE: $(ports_busy "$PORT_BASE" "$span" | tr '\n' ' ')" >&2
		exit 1
	fi
}

# start_etcd i: member i of etcd in the background (a new cluster, or the
# existing one of its data dir); its process ID goes to pid[e$i] (stop_member
# e$i stops it).
declare -A pid
start_etcd() {
	local i=$1 c p
	c=$(etcd_ep "$i") p=https://127.0.0.1:$(port $((10 + i)))
	"${server_pin[@]}" "$BENCH_ETCD" --name "e$i" --data-dir "$tmp/etcd$i" --enable-v2=true \
		--listen-client-urls "$c" --advertise-client-urls "$c" \
		--listen-peer-urls "$p" --initial-advertise-peer-urls "$p" \
		--initial-cluster "$etcd_cluster" --initial-cluster-state new --initial-cluster-token bench \
		--cert-file "$pki/n$i.crt" --key-file "$pki/n$i.key" --trusted-ca-file "$pki/ca.crt" --client-cert-auth \
		--peer-cert-file "$pki/n$i.crt" --peer-key-file "$pki/n$i.key" --peer-trusted-ca-file "$pki/ca.crt" --peer-client-cert-auth \
		>>"$tmp/etcd$i.log" 2>&1 &
	pid[e$i]=$!
}

# start_cairn i [binary offset key]: member i of Cairn, as start_etcd;
# pid[c$i]. The array serve_flags, which the sourcing script may set after
# sourcing this file, adds flags to cairn serve. A second Cairn cluster
# (compare.sh's BASELINE) gives its binary, a port offset (ports
# PORT_BASE+offset+1.. for clients, +offset+11.. for peers, +offset+21..
# for DNS; the first cluster's offset is 20) and the key of its pid, data
# dir and log.
serve_flags=()
start_cairn() {
	local i=$1 bin=${2:-$BENCH_CAIRN} off=${3:-20} key=${4:-c} j peers="" name
	name=cairn$i
	[ "$key" = c ] || name=cairn-$key$i
	for j in $(seq "$MEMBERS"); do [ "$j" = "$i" ] || peers+="${peers:+,}127.0.0.1:$(port $((off + 10 + j)))"; done
	"${server_pin[@]}" "$bin" serve --name "n$i" --data-dir "$tmp/$name" \
		--addr "127.0.0.1:$(port $((off + i)))" --peer-addr "127.0.0.1:$(port $((off + 10 + i)))" \
		--dns-addr "127.0.0.1:$(port $((off + 20 + i)))" --peers "$peers" \
		--ca-file "$pki/ca.crt" --cert-file "$pki/n$i.crt" --key-file "$pki/n$i.key" \
		${LOG_STORE:+--log-store "$LOG_STORE"} "${serve_flags[@]}" \
		>>"$tmp/$name.log" 2>&1 &
	pid[$key$i]=$!
}

# stop_member e$i|c$i: SIGTERM, and wait until it has exited.
stop_member() {
	[ -n "${pid[$1]:-}" ] || return 0
	kill -TERM "${pid[$1]}" 2>/dev/null || true
	wait "${pid[$1]}" 2>/dev/null || true
	pid[$1]=""
}

healthy() { # url: /health answers {"health":"true"}
	curl "${curlflags[@]}" -f "$1/health" | grep -q '"health": *"true"'
}

# wait_healthy url...: each answers healthy within 60s, or the run ends
# (keeping the scratch directory for its logs), at once if a process in pid
# has exited.
wait_healthy() {
	local ep k
	for ep in "$@"; do
		for _ in $(seq 600); do
			healthy "$ep" && break
			for k in "${!pid[@]}"; do
				[ -z "${pid[$k]}" ] || kill -0 "${pid[$k]}" 2>/dev/null ||
					{ echo "$NAME: $k exited; logs in $tmp" >&2; tail -n 3 "$tmp"/*.log >&2; KEEP=1; exit 1; }
			done
			sleep 0.1
		done
		healthy "$ep" || { echo "$NAME: $ep is not healthy after 60s; logs in $tmp" >&2; KEEP=1; exit 1; }
	done
}

# machine prints the machine's lines (CPU, memory, disk and its fsync
# floor, load average, versions) as a Markdown list.
machine() {
	local dev rota sync_s etcd_v=""
	echo "- CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	dev=$(df "$tmp" | awk 'NR==2 {print $1}')
	rota=$(lsblk -ndo ROTA "$dev" 2>/dev/null | tr -d ' ' || true)
	# The fsync floor: 4 KiB writes with O_DSYNC, one at a time, as a log does.
	sync_s=$(dd if=/dev/zero of="$tmp/dsync" bs=4k count=500 oflag=dsync 2>&1 | awk '/copied/ {print $(NF-3)}')
	rm -f "$tmp/dsync"
	echo "- memory: $(free -g | awk '/^Mem:/ {print $2}') GiB; data dirs on $dev ($(df -h "$tmp" | awk 'NR==2 {print $2}')$([ "$rota" = 1 ] && echo ", reports rotational")$([ "$rota" = 0 ] && echo ", not rotational")); one 4 KiB O_DSYNC write: $(awk -v s="$sync_s" 'BEGIN {printf "%.2f", s * 1000 / 500}') ms (dd, 500 in a row)"
	echo "- load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
	[ -z "${SERVER_CPUS:-}${BENCH_CPUS:-}" ] || echo "- pinned (taskset): members on CPUs ${SERVER_CPUS:-any}, load generator on CPUs ${BENCH_CPUS:-any}"
	# (sed, not head: head's early exit would fail the assignment with SIGPIPE
	# under pipefail.)
	[ "${BENCH_NO_ETCD:-}" = 1 ] || etcd_v="etcd: $("$BENCH_ETCD" --version | sed -n '1{s/etcd Version: //;p;}'); "
	echo "- ${etcd_v}cairn: $(git describe --always --dirty 2>/dev/null || echo unknown) ($(cairn --version | awk '{print $NF}'))"
}
