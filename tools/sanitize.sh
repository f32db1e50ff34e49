#!/usr/bin/env bash
# Builds the test suite with sanitizers (CPU backend, no CUDA) and runs it.
#
#   tools/sanitize.sh asan [CTEST ARGS]   AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
#   tools/sanitize.sh tsan [CTEST ARGS]   ThreadSanitizer (build-tsan/)
#
# The presets of the same names configure the builds (-O1 -g1: optimised enough that the slow tests
# are not, line tables for symbolised stacks; assertions stay on). The suite runs without the
# `slow`, `gpu` and `fuzz` labels (the package test and the training smoke test build or train on
# their own; GPU tests need a device; fuzzing has its own sanitized build). UI tests run offscreen.
# TSan runs the `qthreads` tests too (test_app, test_experiments_ui: the real window and engine
# host on two QThreads): every value they hand between threads goes through ui::Mailbox
# (ui/thread_relay.h), a std::mutex-guarded queue that TSan sees, and Qt's event queue only wakes
# the receiver; what TSan cannot see inside the uninstrumented Qt libraries is in tools/tsan.supp.
# Environment: MOESCOPE_SANITIZE_JOBS (build parallelism, default nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-}
case "$kind" in
  asan) build=build-asan; skip='slow|gpu|fuzz' ;;
  tsan) build=build-tsan; skip='slow|gpu|fuzz' ;;
  *) echo "usage: $0 asan|tsan [ctest args...]" >&2; exit 2 ;;
esac
shift
tools/install-deps.sh >/dev/null
cmake --preset "$kind" >/dev/null  # every time, so that a changed preset reaches an existing build

# A source edited while the build runs (another editor in the same checkout) leaves objects built
# from two versions of a header linked together: the sanitizers then report the mixed class
# layouts as new-delete-type-mismatch or UB. Build until no source changed during a pass; files
# that did are touched so that objects compiled from their old version, which ninja sees as
# newer, are rebuilt too. A clean checkout (CI) builds once.
stamp=$(mktemp)
trap 'rm -f "$stamp"' EXIT
for pass in 1 2 3; do
  touch "$stamp"
  cmake --build "$build" -j "${MOESCOPE_SANITIZE_JOBS:-$(nproc)}"
  mapfile -t changed < <(find CMakeLists.txt cmake engine app ui kernels tests installer -newer "$stamp" -type f \
    \( -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cmake' -o -name CMakeLists.txt \))
  [ ${#changed[@]} -eq 0 ] && break
  echo "sanitize: ${#changed[@]} source files changed during the build (${changed[0]} ...); building again" >&2
  [ "$pass" = 3 ] && echo "sanitize: sources still changing; the build may mix versions" >&2
  touch "${changed[@]}"
done

# Fail on the first report, with symbolised stacks. Leak checking stays on (ASan's default).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# die_after_fork=0: the remote-backend tests start moescope-cli serve with QProcess (a fork of a threaded process).
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:die_after_fork=0:suppressions=$PWD/tools/tsan.supp}
export QT_QPA_PLATFORM=offscreen
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" -LE "$skip" --timeout 1800 "$@"
