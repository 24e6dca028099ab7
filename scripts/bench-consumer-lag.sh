#!/usr/bin/env bash
# Issue 4's consumer benchmark, part of `make bench-target`: runs scenarios/consumer-lag.yaml on
# the built-in target (peak load; the settlement consumer group throttled to 10% for 30 s, then
# released) and prints, side by side from that one run:
#
#   payment p99 in the baseline phase vs the throttled phase, and their ratio (goal <= 1.10);
#   the consumer lag at the release and the time until it is back to the baseline's level
#   (goal <= 60 s); the audit's event figures (published, applied per group: none lost or twice).
#
# The run's own SLA verdict is printed too; its exit code does not stop the benchmark. All
# traffic stays on 127.0.0.1; the run's target is stopped and its directory removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
tmp=$(mktemp -d /tmp/bench-consumer-lag.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

echo "== building"
$GO build -o "$tmp/redline" ./cmd/redline
$GO build -o "$tmp/benchthrottle" ./scripts/benchthrottle

echo "== consumer lag: redline run scenarios/consumer-lag.yaml"
set +e
"$tmp/redline" run scenarios/consumer-lag.yaml --out "$tmp/run" >"$tmp/run.log" 2>&1
code=$?
set -e
grep -E "^(verdict|  phase)" "$tmp/run.log" || true
if [ "$code" -ne 0 ] && [ "$code" -ne 3 ]; then
	cat "$tmp/run.log"
	echo "redline run exited $code" >&2
	exit 1
fi

echo
echo "== bench-consumer-lag ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
"$tmp/benchthrottle" -run "$tmp/run"
