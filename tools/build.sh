#!/usr/bin/env bash
# Installs the dependencies (Debian 12) and builds moescope into build/ (Release).
# CUDA is built when nvcc is found: for this machine's GPU when one is present, else for sm_90.
# Environment: MOESCOPE_BUILD_DIR (default build), MOESCOPE_CUDA_ARCHITECTURES, MOESCOPE_CUDA=AUTO|ON|OFF.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
if [ -z "${MOESCOPE_CUDA_ARCHITECTURES:-}" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    MOESCOPE_CUDA_ARCHITECTURES=native
  else
    MOESCOPE_CUDA_ARCHITECTURES=90
  fi
fi
build=${MOESCOPE_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DMOESCOPE_CUDA="${MOESCOPE_CUDA:-AUTO}" -DMOESCOPE_CUDA_ARCHITECTURES="$MOESCOPE_CUDA_ARCHITECTURES"
cmake --build "$build" -j "$(nproc)"
