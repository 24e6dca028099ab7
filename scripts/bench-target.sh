#!/usr/bin/env bash
# Benchmarks the built-in target against PostgreSQL on this machine, in one run:
#
#   1. sustained payments/s of the target (4 units, synchronous standby, durable commits) at
#      p99 under 50 ms: open model, constant rates from Redline's own load engine, growing by
#      RATE_FACTOR from RATE_START (after 10 s of unmeasured load at RATE_START: a fresh target
#      is cold) until one does not hold, then bisected (scripts/benchtarget);
#      a rate that does not hold is measured again, up to TRIES windows (noise from other tenants
#      of a shared machine only ever lengthens the tail);
#      then the CPU each kind of process spends per payment at CPU_RATE (/proc, idle subtracted);
#   2. pgbench TPC-B tps on a throwaway PostgreSQL cluster (scale 10, -c 8 -j 2);
#   3. failover under load: 10 SIGKILLs of unit primaries, kill → buckets serving again, p99,
#      with every acknowledged key read back and every balance recomputed afterwards;
#   4. sustained payments/s again with CROSS (default 0.2) of them cross-unit payments (decided
#      in the core zone: try / confirm / cancel), on a fresh target; then, as in step 1 on the
#      same target, the CPU per payment of that mix at CPU_RATE (beside step 1's, and the core
#      zone's CPU per cross-unit payment);
#
# and prints the ratio payments/s ÷ pgbench tps (goal: 3 or more), the failover p99 (goal:
# under 1 s) and payments/s with CROSS cross-unit ÷ without (goal: 0.7 or more, issue 4). It installs PostgreSQL (Debian package) when missing, starts and stops its own
# cluster and target, and leaves nothing behind. All traffic stays on 127.0.0.1.
#
#   STEP=10s RATE_START=500 RATE_FACTOR=1.5 TRIES=2 PGBENCH_TIME=20 KILLS=10 CROSS=0.2 scripts/bench-target.sh
#   ONLY=cross scripts/bench-target.sh     # steps 1 and 4 alone, side by side
#   ONLY=cross REPEAT=3 scripts/bench-target.sh  # the pair 3 times, in alternating order: each
#                                          # pair's ratio and their median (a shared machine's
#                                          # noise moves one search by ±30% from run to run)
#   ONLY=postgres scripts/bench-target.sh  # step 1 on SQLite and on PostgreSQL (target up --dsn)
#
# PostgreSQL runs as a throwaway cluster of scripts/pg.sh (fsync and synchronous_commit on).
#
# Figures are noisy on a shared machine (both sides suffer): run it on an idle one.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
UNITS=${UNITS:-4}
ACCOUNTS=${ACCOUNTS:-10000}
STEP=${STEP:-10s}
RATE_START=${RATE_START:-500}
RATE_FACTOR=${RATE_FACTOR:-1.5}
CPU_RATE=${CPU_RATE:-1000}
PGBENCH_TIME=${PGBENCH_TIME:-20}
PGBENCH_SCALE=${PGBENCH_SCALE:-10}
KILLS=${KILLS:-10}
TRIES=${TRIES:-2}
CROSS=${CROSS:-0.2}
ONLY=${ONLY:-}
REPEAT=${REPEAT:-1}
case $REPEAT in
'' | *[!0-9]* | 0) echo "REPEAT=$REPEAT: want a count of 1 or more" >&2; exit 2 ;;
esac
if [ "$REPEAT" -gt 1 ] && [ "$ONLY" != "cross" ]; then
	echo "REPEAT=$REPEAT repeats the cross-unit pair only: set ONLY=cross too" >&2
	exit 2
fi

tmp=$(mktemp -d /tmp/bench-target.XXXXXX)
chmod 755 "$tmp"
target_pid=""
pgdir=""
cleanup() {
	if [ -n "$target_pid" ]; then
		kill -INT "$target_pid" 2>/dev/null || true
		wait "$target_pid" 2>/dev/null || true
	fi
	if [ -n "$pgdir" ]; then
		scripts/pg.sh stop "$pgdir" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "== building"
$GO build -o "$tmp/redline" ./cmd/redline
$GO build -o "$tmp/benchtarget" ./scripts/benchtarget

# pg_start / pg_stop: a throwaway PostgreSQL cluster (scripts/pg.sh); pg_start sets $dsn.
pg_start() {
	local env
	env=$(scripts/pg.sh start)
	eval "$env"
	pgdir=$REDLINE_PG_DIR
	dsn=$REDLINE_TEST_DSN
}
pg_stop() {
	scripts/pg.sh stop "$pgdir"
	pgdir=""
}

# start_target [DSN]: runs `redline target up` in the background until its ready line; with a
# DSN, its databases are schemas on that PostgreSQL server.
start_target() {
	rm -rf "$tmp/data"
	local storage=()
	if [ -n "${1:-}" ]; then storage=(--dsn "$1"); fi
	"$tmp/redline" target up --units "$UNITS" --data "$tmp/data" --listen 127.0.0.1:0 --admin 127.0.0.1:0 "${storage[@]}" >"$tmp/up.log" 2>&1 &
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

sustained_of() { tail -1 "$1" | sed -E 's/.*"sustained":\{[^}]*"payments_per_s":([0-9.]+).*/\1/'; }
peak_of() { tail -1 "$1" | grep -oE '"payments_per_s":[0-9.]+' | cut -d: -f2 | sort -g | tail -1; }
p99_of() { tail -1 "$1" | sed -E 's/.*"sustained":\{[^}]*"p99_ms":([0-9.]+).*/\1/'; }

if [ "$ONLY" = "postgres" ]; then
	echo "== target on SQLite: throughput ($UNITS units, $ACCOUNTS accounts, open model from $RATE_START/s x$RATE_FACTOR, $STEP each)"
	start_target
	"$tmp/benchtarget" -data "$tmp/data" -mode throughput -accounts "$ACCOUNTS" -units "$UNITS" -rate-start "$RATE_START" -rate-factor "$RATE_FACTOR" -step "$STEP" -tries "$TRIES" | tee "$tmp/sqlite.out"
	stop_target
	pg_start
	echo "== target on PostgreSQL (target up --dsn): the same"
	start_target "$dsn"
	"$tmp/benchtarget" -data "$tmp/data" -mode throughput -accounts "$ACCOUNTS" -units "$UNITS" -rate-start "$RATE_START" -rate-factor "$RATE_FACTOR" -step "$STEP" -tries "$TRIES" | tee "$tmp/postgres.out"
	# The audit of the running target (it waits for the event pipeline to drain), read from
	# PostgreSQL.
	"$tmp/redline" target audit --data "$tmp/data" >"$tmp/audit.json" && audit=true || audit=false
	stop_target
	pg_stop
	echo
	echo "== bench-target, storage backends ($(nproc) cores)"
	printf "target sustained payments/s (p99 < 50 ms), SQLite:     %8.0f  (p99 %s ms)\n" "$(sustained_of "$tmp/sqlite.out")" "$(p99_of "$tmp/sqlite.out")"
	printf "target sustained payments/s (p99 < 50 ms), PostgreSQL: %8.0f  (p99 %s ms; audit %s)\n" "$(sustained_of "$tmp/postgres.out")" "$(p99_of "$tmp/postgres.out")" "$audit"
	printf "ratio PostgreSQL / SQLite:                              %8.2f\n" \
		"$(awk -v a="$(sustained_of "$tmp/postgres.out")" -v b="$(sustained_of "$tmp/sqlite.out")" 'BEGIN { if (b > 0) print a / b; else print 0 }')"
	printf "best payments/s at any p99, SQLite / PostgreSQL:        %8.0f / %.0f = %.2f  (load average %s)\n" \
		"$(peak_of "$tmp/sqlite.out")" "$(peak_of "$tmp/postgres.out")" \
		"$(awk -v a="$(peak_of "$tmp/postgres.out")" -v b="$(peak_of "$tmp/sqlite.out")" 'BEGIN { if (b > 0) print a / b; else print 0 }')" "$(cut -d' ' -f1-3 /proc/loadavg)"
	exit 0
fi

# search OUT [CROSS [CPU_OUT]]: one throughput search on a fresh target, in OUT; on stdout, its
# steps without the JSON summary (the summaries below read it from OUT). With CPU_OUT, then the
# CPU each kind of process spends per payment at CPU_RATE on the same target, in CPU_OUT (a
# fixed rate, so that runs compare: per payment, a batch's fixed costs shrink as rates grow).
search() {
	start_target
	"$tmp/benchtarget" -data "$tmp/data" -mode throughput -accounts "$ACCOUNTS" -units "$UNITS" -cross "${2:-0}" -rate-start "$RATE_START" -rate-factor "$RATE_FACTOR" -step "$STEP" -tries "$TRIES" | tee "$1" | grep -v '^{'
	if [ -n "${3:-}" ]; then
		"$tmp/benchtarget" -data "$tmp/data" -mode cpu -accounts "$ACCOUNTS" -units "$UNITS" -cross "${2:-0}" -rate "$CPU_RATE" -step "$STEP" | tee "$3" | head -n -1
	fi
	stop_target
}

if [ "$REPEAT" -gt 1 ]; then
	ratios=()
	for i in $(seq "$REPEAT"); do
		# Alternate which search goes first, so that a trend in the machine's load favours neither.
		for kind in $(if [ $((i % 2)) = 1 ]; then echo same cross; else echo cross same; fi); do
			echo "== pair $i of $REPEAT: $kind"
			if [ "$kind" = same ]; then search "$tmp/same.$i.out"; else search "$tmp/cross.$i.out" "$CROSS"; fi
		done
		s=$(sustained_of "$tmp/same.$i.out")
		c=$(sustained_of "$tmp/cross.$i.out")
		ratios+=("$(awk -v a="$c" -v b="$s" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print 0 }')")
		printf "pair %d: %s cross-unit %.0f/s (p99 %s ms) / same-unit %.0f/s (p99 %s ms) = %s\n" "$i" "$CROSS" "$c" "$(p99_of "$tmp/cross.$i.out")" "$s" "$(p99_of "$tmp/same.$i.out")" "${ratios[-1]}" | tee -a "$tmp/pairs"
	done
	echo
	echo "== bench-target, cross-unit share, $REPEAT pairs ($(nproc) cores)"
	cat "$tmp/pairs"
	printf "median ratio cross / same-unit:            %8s  (goal >= 0.7; load average %s)\n" \
		"$(printf "%s\n" "${ratios[@]}" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')" "$(cut -d' ' -f1-3 /proc/loadavg)"
	exit 0
fi

echo "== target: throughput ($UNITS units, $ACCOUNTS accounts, open model from $RATE_START/s x$RATE_FACTOR, $STEP each)"
search "$tmp/throughput.out" 0 "$tmp/cpu.out"

echo "== target: throughput with $CROSS of the payments cross-unit"
search "$tmp/cross.out" "$CROSS" "$tmp/cpu-cross.out"

sustained=$(sustained_of "$tmp/throughput.out")
sustained_p99=$(p99_of "$tmp/throughput.out")
cross=$(sustained_of "$tmp/cross.out")
cross_p99=$(p99_of "$tmp/cross.out")
# The sustained step's p99 of each kind of payment alone.
cross_kinds=$(tail -1 "$tmp/cross.out" | sed -nE 's/.*"sustained":\{[^}]*"same_unit_p99_ms":([0-9.]+),"cross_unit_p99_ms":([0-9.]+).*/same-unit \1 ms, cross-unit \2 ms/p')
# cpu_total OUT and cpu_core OUT: a CPU step's total µs a payment and the core zone's share.
cpu_total() { tail -1 "$1" | sed -nE 's/.*"total_cpu_us_per_payment":([0-9.e+-]+).*/\1/p'; }
cpu_core() { tail -1 "$1" | sed -nE 's/.*"group":"core","processes":[0-9]+,"idle_cpu_percent":[0-9.e+-]+,"cpu_us_per_payment":([0-9.e+-]+).*/\1/p'; }
cross_summary() {
	printf "target sustained payments/s, 0%% cross-unit:   %8.0f  (p99 %s ms)\n" "$sustained" "$sustained_p99"
	printf "target sustained payments/s, %s cross-unit: %8.0f  (p99 %s ms: %s)\n" "$CROSS" "$cross" "$cross_p99" "${cross_kinds:-no kind alone}"
	printf "ratio cross / same-unit:                   %8.2f  (goal >= 0.7; load average %s)\n" \
		"$(awk -v a="$cross" -v b="$sustained" 'BEGIN { if (b > 0) print a / b; else print 0 }')" "$(cut -d' ' -f1-3 /proc/loadavg)"
	# The core zone does nothing for a same-unit payment: its CPU in the mix, ÷ the share, is
	# what it spends per cross-unit payment.
	awk -v rate="$CPU_RATE" -v share="$CROSS" -v same="$(cpu_total "$tmp/cpu.out")" -v mix="$(cpu_total "$tmp/cpu-cross.out")" -v core="$(cpu_core "$tmp/cpu-cross.out")" 'BEGIN {
		if (same == "" || mix == "" || core == "" || same <= 0 || share <= 0) { print "CPU per payment: not measured (see above)"; exit }
		printf "CPU per payment at %d/s: same-unit %.0f µs, with %s cross-unit %.0f µs (x%.2f); the core zone %.0f µs per cross-unit payment\n", rate, same, share, mix, mix / same, core / share
	}'
}
if [ "$ONLY" = "cross" ]; then
	echo
	echo "== bench-target, cross-unit share ($(nproc) cores)"
	cross_summary
	exit 0
fi

echo "== PostgreSQL: pgbench TPC-B (scale $PGBENCH_SCALE, -c 8 -j 2 -T $PGBENCH_TIME)"
pg_start
pgbench -i -q -s "$PGBENCH_SCALE" "$dsn" >/dev/null 2>&1
pgbench -c 8 -j 2 -T "$PGBENCH_TIME" "$dsn" 2>/dev/null | tee "$tmp/pgbench.out" | grep -E "^(tps|latency average)"
pg_stop

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
	echo "target sustained payments/s (p99 < 50 ms): no rate held (see above)"
else
	printf "target sustained payments/s (p99 < 50 ms): %8.0f  (p99 %s ms)\n" "$sustained" "$sustained_p99"
fi
printf "pgbench TPC-B tps:                         %8.0f  (load average %s)\n" "$tps" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf "ratio target / pgbench:                    %8.2f  (goal >= 3)\n" "$(awk -v a="$sustained" -v b="$tps" 'BEGIN { print a / b }')"
printf "failover p99 over %s kills:                %8.1f ms  (goal < 1000); lost %s, accounts off %s, audit %s\n" "$fo_kills" "$fo_p99" "$fo_lost" "$fo_off" "$fo_audit"
cross_summary
