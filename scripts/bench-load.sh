#!/usr/bin/env bash
# Benchmarks Redline's load engine side by side with wrk and vegeta against one local server.
#
#   scripts/bench-load.sh          make bench-load: CPU per request (wrk, vegeta, Redline), rate
#                                  accuracy at 10,000/s for 30 s, intended vs service latency
#                                  against a stalling server; a few minutes
#   scripts/bench-load.sh soak     make bench-soak: 10 minutes at 5,000/s, resident memory
#
# It installs what it needs: wrk (Debian package) when missing, vegeta with go install. All
# traffic goes to 127.0.0.1; every run is bounded in time. Figures are noisy on a shared
# machine: run it on an idle one, and compare the tools side by side, as it does.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
VEGETA_VERSION=v12.13.0
CPU_RATE=${CPU_RATE:-10000}        # about the arrivals/s of the CPU comparison (see benchload cpu)
CPU_DURATION=${CPU_DURATION:-8s}
RATE=${RATE:-10000}                # arrivals/s for the accuracy run
RATE_DURATION=${RATE_DURATION:-30s}
SOAK_RATE=${SOAK_RATE:-5000}
SOAK_DURATION=${SOAK_DURATION:-10m}

mode=${1:-bench}

if ! command -v wrk >/dev/null; then
	echo "installing wrk (Debian package)"
	apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
GOBIN=$($GO env GOPATH)/bin
if [ ! -x "$GOBIN/vegeta" ]; then
	echo "installing vegeta $VEGETA_VERSION"
	$GO install "github.com/tsenart/vegeta/v12@$VEGETA_VERSION"
fi
export PATH="$GOBIN:$PATH"

# On a shared machine, other work disturbs the figures. The CPU comparison runs every tool and
# its server at the same raised priority (nice -10). The accuracy runs (rate, stall, soak) run
# generator and server under SCHED_FIFO, as if on a machine of their own: they use a fraction of
# a core and block in epoll between arrivals, so they cannot starve the machine (and Linux keeps
# 5% of every second for other tasks anyway). Only root may do either; others run as they are.
NICE=()
RT=()
if [ "$(id -u)" = 0 ]; then
	NICE=(nice -n -10)
	if command -v chrt >/dev/null && chrt -f 1 true 2>/dev/null; then RT=(chrt -f 1); fi
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

$GO build -o "$tmp/benchserver" ./scripts/benchserver
$GO build -o "$tmp/benchload" ./scripts/benchload

# start_server NAME PRIORITY FLAGS...: starts a benchserver on a free loopback port, under
# PRIORITY (nice or rt); sets $url.
start_server() {
	local name=$1 prio=$2
	shift 2
	local run=("${NICE[@]}")
	if [ "$prio" = rt ]; then run=("${RT[@]}"); fi
	"${run[@]}" "$tmp/benchserver" -addr 127.0.0.1:0 "$@" >"$tmp/$name.addr" 2>"$tmp/$name.log" &
	pids+=($!)
	for _ in $(seq 100); do
		if [ -s "$tmp/$name.addr" ]; then
			url="http://$(head -1 "$tmp/$name.addr")/"
			return
		fi
		sleep 0.05
	done
	echo "benchserver $name did not start:" >&2
	cat "$tmp/$name.log" >&2
	exit 1
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $($GO version | cut -d' ' -f3)"
echo "priority: CPU comparison ${NICE[*]:-as is}; accuracy runs ${RT[*]:-as is}"
if [ "$mode" = soak ]; then
	start_server soak rt
	"${RT[@]}" "$tmp/benchload" soak -url "$url" -rate "$SOAK_RATE" -duration "$SOAK_DURATION" -workers "$SOAK_RATE"
	exit
fi

echo
start_server fast nice
"${NICE[@]}" "$tmp/benchload" cpu -url "$url" -rate "$CPU_RATE" -duration "$CPU_DURATION"
echo
# Workers as the plan compiler sizes them by default: the rate times one second of latency.
start_server accurate rt
"${RT[@]}" "$tmp/benchload" rate -url "$url" -rate "$RATE" -duration "$RATE_DURATION" -workers "$RATE"
echo
start_server stall rt -stall 1s -stall-every 10s
# Connections below workers: arrivals wait for a connection during a stall, the way a client
# with a pool waits, so their latency from the intended time shows the stall.
"${RT[@]}" "$tmp/benchload" stall -url "$url" -rate 1000 -duration 30s -workers 2000 -connections 50
