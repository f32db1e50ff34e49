#!/usr/bin/env bash
# Builds and runs bench_gemm_libs.cpp against the Debian packages libopenblas-dev and libdnnl-dev
# (installed here if missing) and moescope's engine library from build/ (or $1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
dpkg -s libopenblas-dev libdnnl-dev >/dev/null 2>&1 || apt-get install -y libopenblas-dev libdnnl-dev
g++ -std=c++20 -O2 -I"$root/engine/include" -I"$root/engine/internal" "$here/bench_gemm_libs.cpp" -o /tmp/bench_gemm_libs \
  "$build/engine/libmoescope_engine.a" -lopenblas -ldnnl $(pkg-config --libs spdlog fmt icu-uc libpcre2-8) -lpthread
OMP_NUM_THREADS=${THREADS:-2} /tmp/bench_gemm_libs "${THREADS:-2}"
