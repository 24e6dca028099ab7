#!/usr/bin/env bash
# Benchmarks the built-in target against PostgreSQL on this machine, in one run:
#
#   1. sustained payments/s of the target (4 units, synchronous standby, durable commits) at
#      p99 under 50 ms, closed-loop workers at growing concurrency (scripts/benchtarget);
#   2. pgbench TPC-B tps on a throwaway PostgreSQL cluster (scale 10, -c 8 -j 2);
#   3. failover under load: 10 SIGKILLs of unit primaries, kill → buckets serving again, p99,
#      with every acknowledged key read back and every balance recomputed afterwards;
#   4. sustained payments/s again with CROSS (default 0.2) of them cross-unit payments (decided
#      in the core zone: try / confirm / cancel), on a fresh target;
#
# and prints the ratio payments/s ÷ pgbench tps (goal: 3 or more), the failover p99 (goal:
# under 1 s) and payments/s with CROSS cross-unit ÷ without (goal: 0.7 or more, issue 4). It installs PostgreSQL (Debian package) when missing, starts and stops its own
# cluster and target, and leaves nothing behind. All traffic stays on 127.0.0.1.
#
#   STEP=10s CONCURRENCY=4,8,16,32,64,128,256 PGBENCH_TIME=20 KILLS=10 CROSS=0.2 scripts/bench-target.sh
#   ONLY=cross scripts/bench-target.sh     # steps 1 and 4 alone, side by side
#
# Figures are noisy on a shared machine (both sides suffer): run it on an idle one.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
UNITS=${UNITS:-4}
ACCOUNTS=${ACCOUNTS:-10000}
STEP=${STEP:-10s}
CONCURRENCY=${CONCURRENCY:-4,8,16,32,64,128,256}
PGBENCH_TIME=${PGBENCH_TIME:-20}
PGBENCH_SCALE=${PGBENCH_SCALE:-10}
KILLS=${KILLS:-10}
CROSS=${CROSS:-0.2}
ONLY=${ONLY:-}
PGPORT=${PGPORT:-55432}

tmp=$(mktemp -d /tmp/bench-target.XXXXXX)
chmod 755 "$tmp"
target_pid=""
pgdata=""
pgbin=""
cleanup() {
	if [ -n "$target_pid" ]; then
		kill -INT "$target_pid" 2>/dev/null || true
		wait "$target_pid" 2>/dev/null || true
	fi
	if [ -n "$pgdata" ] && [ -f "$pgdata/postmaster.pid" ]; then
		su postgres -s /bin/sh -c "$pgbin/pg_ctl -D $pgdata -m fast -w stop" >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "== building"
$GO build -o "$tmp/redline" ./cmd/redline
$GO build -o "$tmp/benchtarget" ./scripts/benchtarget

# start_target: runs `redline target up` in the background until its ready line.
start_target() {
	rm -rf "$tmp/data"
	"$tmp/redline" target up --units "$UNITS" --data "$tmp/data" --listen 127.0.0.1:0 --admin 127.0.0.1:0 >"$tmp/up.log" 2>&1 &
	target_pid=$!
	for _ in $(seq 300); do
		if grep -q "^router" "$tmp/up.log"; then
			head -1 "$tmp/up.log"
			return
		fi
		if ! kill -0 "$target_pid" 2>/dev/null; then
			cat "$tmp/up.log"
			echo "redline target up failed" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "redline target up: not ready after 30 s" >&2
	exit 1
}

stop_target() {
	kill -INT "$target_pid"
	wait "$target_pid" || true
	target_pid=""
}

echo "== target: throughput ($UNITS units, $ACCOUNTS accounts, concurrency $CONCURRENCY, $STEP each)"
start_target
"$tmp/benchtarget" -data "$tmp/data" -mode throughput -accounts "$ACCOUNTS" -units "$UNITS" -concurrency "$CONCURRENCY" -step "$STEP" | tee "$tmp/throughput.out"
stop_target

echo "== target: throughput with $CROSS of the payments cross-unit"
start_target
"$tmp/benchtarget" -data "$tmp/data" -mode throughput -accounts "$ACCOUNTS" -units "$UNITS" -cross "$CROSS" -concurrency "$CONCURRENCY" -step "$STEP" | tee "$tmp/cross.out"
stop_target

sustained=$(tail -1 "$tmp/throughput.out" | sed -E 's/.*"sustained":\{[^}]*"payments_per_s":([0-9.]+).*/\1/')
sustained_p99=$(tail -1 "$tmp/throughput.out" | sed -E 's/.*"sustained":\{[^}]*"p99_ms":([0-9.]+).*/\1/')
cross=$(tail -1 "$tmp/cross.out" | sed -E 's/.*"sustained":\{[^}]*"payments_per_s":([0-9.]+).*/\1/')
cross_p99=$(tail -1 "$tmp/cross.out" | sed -E 's/.*"sustained":\{[^}]*"p99_ms":([0-9.]+).*/\1/')
cross_summary() {
	printf "target sustained payments/s, 0%% cross-unit:   %8.0f  (p99 %s ms)\n" "$sustained" "$sustained_p99"
	printf "target sustained payments/s, %s cross-unit: %8.0f  (p99 %s ms)\n" "$CROSS" "$cross" "$cross_p99"
	printf "ratio cross / same-unit:                   %8.2f  (goal >= 0.7; load average %s)\n" \
		"$(awk -v a="$cross" -v b="$sustained" 'BEGIN { if (b > 0) print a / b; else print 0 }')" "$(cut -d' ' -f1-3 /proc/loadavg)"
}
if [ "$ONLY" = "cross" ]; then
	echo
	echo "== bench-target, cross-unit share ($(nproc) cores)"
	cross_summary
	exit 0
fi

echo "== PostgreSQL: pgbench TPC-B (scale $PGBENCH_SCALE, -c 8 -j 2 -T $PGBENCH_TIME)"
if ! command -v pgbench >/dev/null || ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
	echo "installing postgresql (Debian package)"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pgdata="$tmp/pgdata"
mkdir -p "$pgdata"
chown postgres:postgres "$pgdata"
su postgres -s /bin/sh -c "$pgbin/initdb -D $pgdata -U postgres -A trust -E UTF8 --no-locale" >/dev/null
su postgres -s /bin/sh -c "$pgbin/pg_ctl -D $pgdata -l $pgdata/server.log -w -t 60 -o \"-c listen_addresses=127.0.0.1 -p $PGPORT -k $pgdata\" start" >/dev/null
pgbench -h 127.0.0.1 -p "$PGPORT" -U postgres -i -q -s "$PGBENCH_SCALE" postgres >/dev/null 2>&1
pgbench -h 127.0.0.1 -p "$PGPORT" -U postgres -c 8 -j 2 -T "$PGBENCH_TIME" postgres 2>/dev/null | tee "$tmp/pgbench.out" | grep -E "^(tps|latency average)"
su postgres -s /bin/sh -c "$pgbin/pg_ctl -D $pgdata -m fast -w stop" >/dev/null
pgdata=""

echo "== target: failover under load ($KILLS kills of unit primaries)"
start_target
"$tmp/benchtarget" -data "$tmp/data" -mode failover -accounts "$ACCOUNTS" -kills "$KILLS" | tee "$tmp/failover.out"
stop_target

# The summaries: the last line of each driver run is JSON.
tps=$(sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\).*/\1/p' "$tmp/pgbench.out")
fo=$(tail -1 "$tmp/failover.out")
fo_p99=$(echo "$fo" | sed -E 's/.*"p99_ms":([0-9.]+).*/\1/')
fo_lost=$(echo "$fo" | sed -E 's/.*"lost":([0-9]+).*/\1/')
fo_off=$(echo "$fo" | sed -E 's/.*"accounts_off":([0-9]+).*/\1/')
fo_audit=$(echo "$fo" | sed -E 's/.*"audit":"([a-z]+)".*/\1/')
fo_kills=$(echo "$fo" | sed -E 's/.*"kills":([0-9]+).*/\1/')

echo
echo "== bench-target ($(nproc) cores)"
if [ "$sustained" = "0" ]; then
	echo "target sustained payments/s (p99 < 50 ms): none of the steps kept p99 under 50 ms (see above)"
else
	printf "target sustained payments/s (p99 < 50 ms): %8.0f  (p99 %s ms)\n" "$sustained" "$sustained_p99"
fi
printf "pgbench TPC-B tps:                         %8.0f  (load average %s)\n" "$tps" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf "ratio target / pgbench:                    %8.2f  (goal >= 3)\n" "$(awk -v a="$sustained" -v b="$tps" 'BEGIN { print a / b }')"
printf "failover p99 over %s kills:                %8.1f ms  (goal < 1000); lost %s, accounts off %s, audit %s\n" "$fo_kills" "$fo_p99" "$fo_lost" "$fo_off" "$fo_audit"
cross_summary
