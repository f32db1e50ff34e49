#!/usr/bin/env bash
# Quick start, command 2: set everything up, build, and run the whole test suite with CTest.
# GPU tests skip with a reason on machines without a CUDA device.
# MOESCOPE_CI_EXTRA=1 (what CI, .ci/run, sets) adds the heavy checks: the brief fuzz runs (CTest
# label fuzz, own clang build), the Debian package test (label slow, root only, installs the
# package) and, after the suite, the whole suite again under ASan+UBSan (tools/sanitize.sh asan).
# Without it those CTest cases skip.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh
build=${MOESCOPE_BUILD_DIR:-build}
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" "$@"
if [ "${MOESCOPE_CI_EXTRA:-0}" = 1 ]; then
  tools/sanitize.sh asan
fi
