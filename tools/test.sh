#!/usr/bin/env bash
# Quick start, command 2: set everything up, build, and run the whole test suite with CTest.
# GPU tests skip with a reason on machines without a CUDA device.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh
build=${MOESCOPE_BUILD_DIR:-build}
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" "$@"
