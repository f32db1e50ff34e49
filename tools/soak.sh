#!/usr/bin/env bash
# Load test: chats without pause on the CPU backend for a given time (default 30 minutes) in one
# long-running process (tests/soak/soak_driver.cpp: conversations opened, answered, autosaved and
# closed; the model closed and reloaded every 25 rounds), and reports its resident memory (VmRSS
# from /proc) at the start and at the end, sampled once a minute into a CSV. Fails if the process
# crashes, reports an error, or its RSS at the end exceeds the start by more than
# MOESCOPE_SOAK_MAX_GROWTH_KB (default 65536).
#
#   tools/soak.sh [--app] [SECONDS] [MODEL_DIR]
#
# --app runs the real main window instead (tests/soak/soak_app.cpp, offscreen): every view docked
# and shown, conversations started, answered, autosaved, re-opened and deleted, the model reloaded.
#
# MODEL_DIR defaults to the bundled model (resources/models/moescope-tiny), else the chat test model.
# Environment: MOESCOPE_BUILD_DIR (default build), MOESCOPE_SOAK_THREADS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
driver=moescope-soak
if [ "${1:-}" = --app ]; then
  driver=moescope-soak-app
  shift
fi
seconds=${1:-1800}
model=${2:-}
if [ -z "$model" ]; then
  model=resources/models/moescope-tiny
  [ -f "$model/config.json" ] || model=tests/data/models/chat-tiny
fi
build=${MOESCOPE_BUILD_DIR:-build}
[ -f "$build/build.ninja" ] || tools/build.sh
cmake --build "$build" --target "$driver"
exe=$build/tests/soak/$driver

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
csv=${MOESCOPE_SOAK_CSV:-$work/rss.csv}
echo "elapsed_s,rss_kb" > "$csv"
echo "soak: ${seconds}s on $model (CPU backend, $driver), data in $work"
if [ "$driver" = moescope-soak-app ]; then
  QT_QPA_PLATFORM=offscreen "$exe" --model "$model" --seconds "$seconds" --data-dir "$work/data" > "$work/out.log" 2>&1 &
else
  "$exe" --model "$model" --seconds "$seconds" --data-dir "$work/data" --threads "${MOESCOPE_SOAK_THREADS:-2}" \
    > "$work/out.log" 2>&1 &
fi
pid=$!
start=$(date +%s)
rss_of() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true; }
while kill -0 "$pid" 2>/dev/null; do
  r=$(rss_of)
  [ -n "$r" ] && echo "$(( $(date +%s) - start )),$r" >> "$csv"
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
done
status=0
wait "$pid" || status=$?
cat "$work/out.log"
[ "$status" -eq 0 ] || { echo "soak: FAILED: exit status $status" >&2; exit 1; }
summary=$(grep '^soak: done' "$work/out.log") || { echo "soak: FAILED: no summary" >&2; exit 1; }
rss_start=$(sed 's/.*rss_start_kb=\([0-9]*\).*/\1/' <<<"$summary")
rss_end=$(sed 's/.*rss_end_kb=\([0-9]*\).*/\1/' <<<"$summary")
echo "soak: RSS start ${rss_start} kB, end ${rss_end} kB, growth $((rss_end - rss_start)) kB; samples in $csv"
if [ "$csv" = "$work/rss.csv" ]; then cat "$csv"; fi
limit=${MOESCOPE_SOAK_MAX_GROWTH_KB:-65536}
[ $((rss_end - rss_start)) -le "$limit" ] || { echo "soak: FAILED: RSS grew by more than $limit kB" >&2; exit 1; }
echo "soak: OK"
