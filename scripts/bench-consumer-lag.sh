#!/usr/bin/env bash
# Issue 4's consumer benchmark, part of `make bench-target`: runs scenarios/consumer-lag.yaml on
# the built-in target ROUNDS times (peak load; the settlement consumer group throttled to 10% for
# 30 s, then released) and prints, side by side from those runs (scripts/benchthrottle):
#
#   payment p99 in the throttled phase vs the unthrottled phases around it (baseline before, after
#   once the lag has drained), and their ratio (goal <= 1.10); after / baseline beside it, the
#   noise of the machine; the consumer lag at the release and the time until it is back to the
#   baseline's level (goal <= 60 s); the audit's event figures (published, applied per group:
#   none lost or twice).
#
#   ROUNDS=2 scripts/bench-consumer-lag.sh    # about 2.5 minutes a round
#
# Each run's own SLA verdict is printed too; its exit code does not stop the benchmark. All
# traffic stays on 127.0.0.1; each run's target is stopped and the directory removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
tmp=$(mktemp -d /tmp/bench-consumer-lag.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

echo "== building"
$GO build -o "$tmp/redline" ./cmd/redline
$GO build -o "$tmp/benchthrottle" ./scripts/benchthrottle

ROUNDS=${ROUNDS:-2}
runs=()
for i in $(seq "$ROUNDS"); do
	echo "== consumer lag, round $i of $ROUNDS: redline run scenarios/consumer-lag.yaml"
	set +e
	"$tmp/redline" run scenarios/consumer-lag.yaml --out "$tmp/run$i" >"$tmp/run$i.log" 2>&1
	code=$?
	set -e
	grep -E "^(verdict|  phase)" "$tmp/run$i.log" || true
	if [ "$code" -ne 0 ] && [ "$code" -ne 3 ]; then
		cat "$tmp/run$i.log"
		echo "redline run exited $code" >&2
		exit 1
	fi
	runs+=(-run "$tmp/run$i")
done

echo
echo "== bench-consumer-lag ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
"$tmp/benchthrottle" "${runs[@]}"
