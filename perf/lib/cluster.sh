# perf/lib/cluster.sh - local distrod clusters on loopback for the perf scripts.
#
# Sourced by perf/cluster and perf/soak. The caller sets ROOT, OUT (a run
# directory), BASE_PORT, WORKERS, D (distrod), C (distroctl) and a die()
# function. Node i has peer port BASE_PORT+i, the Nacos API on
# BASE_PORT+1000+10*i, the binary protocol 2 and HTTP admin 3 above it.
# node_start passes NODE_TIMEOUTS and any extra flags; PIDS[i] is node i's
# process. NODE_TIMEOUTS unset: long heartbeat timeouts, for scripts whose
# instances are registered once and never beaten; set to () by the caller:
# distrod's defaults (an empty array used to mean the long ones too, so
# perf/soak's and perf/scale-cluster's churn lived 20 minutes, not 30 s).
# shellcheck shell=bash

declare -p NODE_TIMEOUTS >/dev/null 2>&1 ||
	NODE_TIMEOUTS=(--beat-timeout 600000 --delete-timeout 1200000)

PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

nacos_port() { echo $((BASE_PORT + 1000 + 10 * $1)); }
client_port() { echo $((BASE_PORT + 1002 + 10 * $1)); }
http_port() { echo $((BASE_PORT + 1003 + 10 * $1)); }
peer_port() { echo $((BASE_PORT + $1)); }
addr() { echo "127.0.0.1:$(client_port "$1")"; }
servers() { # comma-separated client addresses of nodes 0..n-1
	local n=$1 s="" i
	for ((i = 0; i < n; i++)); do s+="${s:+,}$(addr $i)"; done
	echo "$s"
}

# stat NODE NAME: one counter from the node's STATS
stat() { "$C" -s "$(addr "$1")" stats | awk -v k="$2" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }'; }

NODE_ARGS=()
node_start() { # node-index members extra-args...
	local i=$1 n=$2
	shift 2
	local args=(--workers "$WORKERS" --bind 127.0.0.1 --port "$(client_port "$i")"
		--nacos-port "$(nacos_port "$i")"
		--http-bind 127.0.0.1 --http-port "$(http_port "$i")" "${NODE_TIMEOUTS[@]}")
	if [ "$n" -gt 1 ]; then
		args+=(--cluster-conf "$OUT/cluster.conf" --cluster-secret-file "$OUT/secret"
			--peer-port "$(peer_port "$i")")
	fi
	"$D" "${args[@]}" "$@" >>"$OUT/node$i.log" 2>&1 &
	PIDS[$i]=$!
}

wait_listening() { # node
	local t
	for t in $(seq 1 200); do
		"$C" -s "$(addr "$1")" ping >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	die "node $1 does not answer (log $OUT/node$1.log)"
}

wait_ready() { # node [timeout-s]
	local t
	for t in $(seq 1 $((${2:-30} * 20))); do
		[ "$(stat "$1" cluster_ready)" = 1 ] && return 0
		sleep 0.05
	done
	die "node $1 never READY (log $OUT/node$1.log)"
}

# Dies when a port of node 0..n-1 already has a listener: the client ports
# use SO_REUSEPORT, so a node started on another run's port would share it
# silently (its clients half in the other cluster), and a peer port taken
# by another run's client port fails only that node.
ports_free() { # n
	local i p
	for ((i = 0; i < $1; i++)); do
		for p in $(peer_port $i) $(nacos_port $i) $(client_port $i) $(http_port $i) \
			$(($(nacos_port $i) + 1000)); do
			[ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] ||
				die "port $p (node $i) is in use: another run? set BASE_PORT (now $BASE_PORT)"
		done
	done
}

cluster_start() { # n extra-args-for-all...
	local n=$1 i
	shift
	ports_free "$n"
	: >"$OUT/cluster.conf"
	for ((i = 0; i < n; i++)); do echo "127.0.0.1:$(peer_port $i)" >>"$OUT/cluster.conf"; done
	head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$OUT/secret"
	for ((i = 0; i < n; i++)); do node_start "$i" "$n" "$@"; done
	for ((i = 0; i < n; i++)); do wait_listening "$i"; done
	if [ "$n" -gt 1 ]; then for ((i = 0; i < n; i++)); do wait_ready "$i"; done; fi
}

cluster_stop() {
	cleanup
	PIDS=()
	rm -f "$OUT"/node*.log
}

