#!/usr/bin/env bash
# The CUDA engine on a real GPU in one prepared run (issue 19): build only what the GPU checks
# need, run the gpu-labelled tests (kernel-by-kernel and whole-model parity against the CPU
# backend), the kernel table's performance mode and `moescope-cli bench --backend cuda` on seven
# real model shapes, and write every log and a results.json into $OUT.
#
#   tools/gpu-check.sh --fetch-deps   here (Debian 12, network), once before a device run: the
#       Debian packages the engine builds against and the device image lacks (spdlog, fmt,
#       nlohmann-json, PCRE2, ICU, pkgconf), fetched with apt-get download, unpacked without
#       static libraries and docs into .gpu-deps/deps.tar.gz (ignored by git, about 16 MB).
#   tools/gpu-check.sh                on the device machine, from a copy of the working tree:
#       device tool `run` with command "tools/gpu-check.sh", carry [".gpu-deps"], timeout_s 600.
#   tools/gpu-check.sh --dry-run      (or MOESCOPE_GPU_DRY_RUN=1) anywhere: every step up to the
#       first one that needs a device (configure, build), then stops and says what it would run.
#
# What the device machine has (/work/.library/device/KINDS.md): nvcc 13, CMake, ninja, python3,
# a C++ compiler (nvcc's host compiler); no Qt, no network, and no spdlog/fmt/json/PCRE2/ICU
# development files that anyone has seen. So the build is -DMOESCOPE_BUILD_UI=OFF (engine,
# moescope-cli and the plain-C++ GPU tests, no Qt), and the libraries come from the carried
# tarball where the machine lacks them (the script checks; MOESCOPE_GPU_CARRIED_DEPS=1 forces
# them, to test that path on a machine that has them).
#
# Time (10 minutes at most per device command, 15 minutes of device time per task, machine start
# included). Measured here (Debian 12, 2 cores shared with other jobs, no ccache, dry run in a
# clean clone): configure 3 s, build of the 3 targets (moescope-cli, test_cuda_ops,
# test_cuda_model; 80 jobs, sm_90 only) 160 s wall, 5 min 14 s CPU (user+sys), the longest single
# compile 15.5 s (safetensors.cpp). On 16 cores that is about 314/16 = 20 s of compiling, floored
# by the longest compile plus the library and link steps: under a minute, with CMake's CUDA
# detection at configure (~10 s) on top. The GPU steps are estimated from the work they do, on an H200:
# gpu tests ~1-3 min (16 tiny golden models incl. gpt-oss and Qwen3.5-MoE, plus test_cuda_model's
# linear_state and test_cuda_ops' delta_net/sinks rows; CPU references on 2 threads, eager module loading;
# the block-type kernels' rows, test_cuda_ops quant_* (13 types) and test_cuda_model parity_q8_0 /
# greedy_q8_0 (6 models loaded with --weights q8_0), add an estimated 20-40 s), kernel table ~30 s
# (its quant_moe_gemv rows generate a few hundred MB of random blocks on the host), seven benches ~10-20 s each (weights generated on the device, 512-token
# prefill, 256 decode steps, calibration). Every step has its own timeout, so an overrun costs
# that step only; the whole script stops itself at MOESCOPE_GPU_BUDGET seconds (default 540).
#
# Output ($OUT, default ./gpu-check-out; at most 8 files come back from a device run):
#   summary.txt   machine, versions, step times, the results table
#   results.json  device, measured copy bandwidth and BF16 GEMM throughput, per shape prefill and
#                 decode tokens/s, bytes read per token, fractions of the rooflines; gpu test
#                 results, parity figures, kernel table
#   build.log  ctest.log  kernels.log  bench.log     the raw output of each step
#   logs.tar.gz   all of it plus each bench's JSON and CTest's LastTest.log
#
# Environment: OUT, MOESCOPE_GPU_BUILD_DIR (build-gpu), MOESCOPE_GPU_JOBS (nproc),
# MOESCOPE_CUDA_ARCHITECTURES (native; 90 in a dry run without a GPU), MOESCOPE_GPU_BUDGET,
# MOESCOPE_GPU_CCACHE=1 (use ccache for the build; off by default so that build times are real).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DEPS_TARBALL=$ROOT/.gpu-deps/deps.tar.gz
# Debian 12 packages; the runtime libraries (libspdlog1.10, libfmt9, libicu72, libpcre2-8-0,
# libpkgconf3) travel too, since the device image may not have these versions.
DEPS_PACKAGES="libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 nlohmann-json3-dev libpcre2-dev libpcre2-8-0
  libicu-dev libicu72 pkgconf pkgconf-bin libpkgconf3"

# ---- --fetch-deps: here, with apt ------------------------------------------------------------
if [ "${1:-}" = "--fetch-deps" ]; then
  set -e
  command -v apt-get >/dev/null || { echo "--fetch-deps needs apt-get (Debian 12)" >&2; exit 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download $DEPS_PACKAGES)
  mkdir -p "$tmp/root"
  for f in "$tmp"/*.deb; do dpkg -x "$f" "$tmp/root"; done
  find "$tmp/root" -name '*.a' -delete
  rm -rf "$tmp/root/usr/share/doc" "$tmp/root/usr/share/man" "$tmp/root/usr/share/lintian"
  (cd "$tmp" && for f in *.deb; do dpkg-deb --show --showformat='${Package} ${Version}\n' "$f"; done) >"$tmp/root/PACKAGES"
  mkdir -p "$ROOT/.gpu-deps"
  tar -C "$tmp/root" -czf "$DEPS_TARBALL" .
  echo "wrote $DEPS_TARBALL ($(du -h "$DEPS_TARBALL" | cut -f1)):"
  cat "$tmp/root/PACKAGES"
  exit 0
fi

DRY=${MOESCOPE_GPU_DRY_RUN:-0}
[ "${1:-}" = "--dry-run" ] && DRY=1
OUT=${OUT:-$ROOT/gpu-check-out}
mkdir -p "$OUT"
LOGS=$(mktemp -d)  # everything, tarred into $OUT/logs.tar.gz at the end
BUILD=${MOESCOPE_GPU_BUILD_DIR:-build-gpu}
JOBS=${MOESCOPE_GPU_JOBS:-$(nproc)}
BUDGET=${MOESCOPE_GPU_BUDGET:-540}
T0=$(date +%s)
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
: >"$LOGS/steps.tsv"

say() { echo "gpu-check: $*" | tee -a "$SUMMARY"; }
elapsed() { echo $(( $(date +%s) - T0 )); }
left() { echo $(( BUDGET - $(elapsed) )); }
# step NAME LOG TIMEOUT CMD...: runs CMD with its output appended to LOG, records status and time.
step() {
  local name=$1 log=$2 limit=$3; shift 3
  local l; l=$(left)
  if [ "$l" -lt 20 ]; then
    say "$name: not run, the time budget (${BUDGET}s) is spent"
    printf '%s\tnot run\t0\n' "$name" >>"$LOGS/steps.tsv"
    return 1
  fi
  [ "$limit" -gt "$l" ] && limit=$l
  local s; s=$(date +%s)
  echo "==== $name: $* (timeout ${limit}s)" >>"$log"
  timeout --signal=TERM --kill-after=10 "$limit" "$@" >>"$log" 2>&1
  local rc=$?
  local d=$(( $(date +%s) - s ))
  printf '%s\t%s\t%s\n' "$name" "$rc" "$d" >>"$LOGS/steps.tsv"
  if [ $rc -eq 0 ]; then say "$name: ok (${d}s)"
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then say "$name: TIMED OUT after ${d}s (limit ${limit}s)"
  else say "$name: FAILED with status $rc (${d}s)"; fi
  return $rc
}

finish() {
  local status=$1
  python3 - "$OUT" "$LOGS" "$DRY" "$status" <<'PY' || say "results.json: python3 failed, see the logs"
import json, os, re, sys, glob
out, logs, dry, status = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
def read(p):
    try:
        with open(p, errors="replace") as f: return f.read()
    except OSError: return ""
r = {"dry_run": dry, "status": status, "steps": [], "device": {}, "shapes": {}, "gpu_tests": {}, "kernels": []}
for line in read(os.path.join(logs, "steps.tsv")).splitlines():
    name, rc, sec = line.split("\t")
    r["steps"].append({"step": name, "status": rc, "seconds": int(sec)})
for k, v in (l.split("=", 1) for l in read(os.path.join(logs, "machine.env")).splitlines() if "=" in l):
    r["device"][k] = v
# benches: one JSON per shape (moescope-cli bench --json)
for p in sorted(glob.glob(os.path.join(logs, "bench-*.json"))):
    shape = os.path.basename(p)[6:-5]
    try: j = json.loads(read(p))
    except ValueError:
        r["shapes"][shape] = {"error": "no JSON (see bench.log)"}; continue
    wb, kb = j.get("weight_bytes_per_token", 0), j.get("kv_bytes_per_token_avg", 0)
    r["shapes"][shape] = {
        "backend": j.get("backend"), "layers_run": j.get("layers_run"), "moe_layers_run": j.get("moe_layers_run"),
        "prompt_tokens": j.get("prompt_tokens"), "decode_tokens": j.get("decode_tokens"),
        "prefill_tokens_per_s": j.get("prefill_tokens_per_s"), "decode_tokens_per_s": j.get("decode_tokens_per_s"),
        "ms_per_token": j.get("ms_per_token"),
        "weight_bytes_per_token": wb, "kv_bytes_per_token_avg": kb, "bytes_per_token": wb + kb,
        "achieved_decode_gbs": j.get("achieved_decode_gbs"),
        "bandwidth_gbs": j.get("bandwidth_gbs"), "decode_roofline_fraction": j.get("decode_roofline_fraction"),
        "matmul_tflops": j.get("matmul_tflops"), "prefill_tflops": j.get("prefill_tflops"),
        "prefill_matmul_fraction": j.get("prefill_matmul_fraction"), "calibration": j.get("calibration")}
    if j.get("backend"): r["device"].setdefault("backend_name", j["backend"])
bw = [s["bandwidth_gbs"] for s in r["shapes"].values() if s.get("bandwidth_gbs")]
mm = [s["matmul_tflops"] for s in r["shapes"].values() if s.get("matmul_tflops")]
if bw: r["device"]["copy_bandwidth_gbs"] = max(bw); r["device"]["copy_bandwidth_gbs_all"] = bw
if mm: r["device"]["bf16_gemm_tflops"] = max(mm); r["device"]["bf16_gemm_tflops_all"] = mm
# gpu tests: PASS/FAIL/SKIP rows and the parity figures they print
ct = read(os.path.join(logs, "ctest.log"))
rows = re.findall(r"^(?:\d+: )?(PASS|FAIL!|SKIP)\s+: (\S+?)(?:\((.*?)\))?(?: (.*))?$", ct, re.M)
r["gpu_tests"]["rows"] = {"passed": sum(1 for x in rows if x[0] == "PASS"),
                          "failed": [f"{x[1]}({x[2]}) {x[3]}".strip() for x in rows if x[0] == "FAIL!"],
                          "skipped": sum(1 for x in rows if x[0] == "SKIP")}
m = re.search(r"(\d+)% tests passed, (\d+) tests failed out of (\d+)", ct)
if m: r["gpu_tests"]["ctest"] = m.group(0)
par = {}
# parity_q8_0: the same models loaded with --weights q8_0 (routed experts in blocks on the
# device), keyed "MODEL+q8_0" (their transformers figure is printed but not held to a tolerance).
def par_key(case, name): return name if case == "parity" else name + "+q8_0"
for case, name, ecpu, tcpu, egold, tgold in re.findall(
        r"(parity|parity_q8_0): (\S+): max \|logit - CPU\(BF16 weights\)\| = (\S+) \(tolerance (\S+)\), max \|logit - transformers\| = (\S+) \(tolerance (\S+)\)", ct):
    par.setdefault(par_key(case, name), {}).update(max_logit_err_vs_cpu=float(ecpu), tol_cpu=float(tcpu),
                                    max_logit_err_vs_transformers=float(egold), tol_transformers=float(tgold))
for case, name, ties, widest, werr in re.findall(
        r"(parity|parity_q8_0): (\S+): routing identical to the CPU backend \((\d+) near-ties, widest (\S+)\), max weight error (\S+)", ct):
    par.setdefault(par_key(case, name), {}).update(routing_near_ties=int(ties), widest_tie=float(widest), max_weight_err=float(werr))
for name, g, d in re.findall(r"decode_graph: (\S+): graph vs no graph (\S+), decode vs transformers (\S+)", ct):
    par.setdefault(name, {}).update(graph_vs_nograph=float(g), decode_vs_transformers=float(d))
r["gpu_tests"]["parity"] = par
# kernel table
for k in re.findall(r"perf: kernel=(\S+) shape=(.*?) us=(\S+) gbs=(\S+) tflops=(\S+)", read(os.path.join(logs, "kernels.log"))):
    r["kernels"].append({"kernel": k[0], "shape": k[1], "us": float(k[2]), "gbs": float(k[3]), "tflops": float(k[4])})
with open(os.path.join(out, "results.json"), "w") as f: json.dump(r, f, indent=2)
# the table for the note
lines = ["", "shape | layers | prefill tok/s | decode tok/s | bytes/token | decode GB/s | roofline | prefill TFLOP/s | of GEMM"]
for s, v in r["shapes"].items():
    if "error" in v: lines.append(f"{s} | {v['error']}"); continue
    f = lambda x, p=1: "-" if x is None else f"{x:.{p}f}"
    lines.append(f"{s} | {v['layers_run']} | {f(v['prefill_tokens_per_s'])} | {f(v['decode_tokens_per_s'])} | "
                 f"{v['bytes_per_token']/1e6:.1f} MB | {f(v['achieved_decode_gbs'])} | {100*(v['decode_roofline_fraction'] or 0):.0f}% | "
                 f"{f(v['prefill_tflops'], 2)} | {100*(v['prefill_matmul_fraction'] or 0):.0f}%")
d = r["device"]
lines.append(f"device: {d.get('gpu', '?')}; copy bandwidth {d.get('copy_bandwidth_gbs', '-')} GB/s; BF16 GEMM {d.get('bf16_gemm_tflops', '-')} TFLOP/s")
lines.append(f"gpu tests: {r['gpu_tests'].get('ctest', 'not run')}; rows {r['gpu_tests']['rows']['passed']} passed, "
             f"{len(r['gpu_tests']['rows']['failed'])} failed, {r['gpu_tests']['rows']['skipped']} skipped")
for x in r["gpu_tests"]["rows"]["failed"]: lines.append("  FAIL " + x[:300])
with open(os.path.join(out, "summary.txt"), "a") as f: f.write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
  for f in build.log ctest.log kernels.log bench.log; do [ -f "$LOGS/$f" ] && cp "$LOGS/$f" "$OUT/$f"; done
  [ -f "$BUILD/Testing/Temporary/LastTest.log" ] && cp "$BUILD/Testing/Temporary/LastTest.log" "$LOGS/"
  cp "$SUMMARY" "$LOGS/" 2>/dev/null
  tar -C "$LOGS" -czf "$OUT/logs.tar.gz" . 2>/dev/null
  rm -rf "$LOGS"
  say "done in $(elapsed)s, status $status; results in $OUT"
  exit "$status"
}

# ---- the machine ---------------------------------------------------------------------------
{
  echo "date=$(date -u +%FT%TZ)"
  echo "host=$(uname -srm)"
  echo "os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
  echo "cores=$(nproc)"
  echo "memory=$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
    echo "gpu_memory=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader | head -1)"
    echo "driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)"
    echo "compute_capability=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1)"
  else
    echo "gpu=none"
  fi
  echo "nvcc=$( (command -v nvcc >/dev/null && nvcc --version || /usr/local/cuda/bin/nvcc --version) 2>/dev/null | grep -o 'release [0-9.]*' | head -1)"
  echo "cmake=$(cmake --version 2>/dev/null | head -1)"
  echo "ninja=$(ninja --version 2>/dev/null)"
  echo "cxx=$(c++ --version 2>/dev/null | head -1)"
  echo "python3=$(python3 --version 2>&1)"
} >"$LOGS/machine.env"
cat "$LOGS/machine.env" | tee -a "$SUMMARY"
HAVE_GPU=0
grep -q '^gpu=none' "$LOGS/machine.env" || HAVE_GPU=1
if [ "$DRY" != 1 ] && [ $HAVE_GPU = 0 ]; then
  say "no GPU here (nvidia-smi finds none); use --dry-run to check everything up to the GPU steps"
  finish 2
fi
for tool in cmake c++ python3 timeout; do
  command -v $tool >/dev/null || { say "missing: $tool"; finish 2; }
done

# ---- the libraries: the machine's own, or the carried Debian packages ------------------------
have_system_deps() {
  [ -f /usr/include/spdlog/spdlog.h ] && [ -f /usr/include/nlohmann/json.hpp ] && command -v pkg-config >/dev/null &&
    pkg-config --exists libpcre2-8 icu-uc 2>/dev/null &&
    { [ -d /usr/lib/x86_64-linux-gnu/cmake/spdlog ] || [ -d /usr/lib/cmake/spdlog ]; }
}
CMAKE_DEPS=()
if [ "${MOESCOPE_GPU_CARRIED_DEPS:-0}" != 1 ] && have_system_deps; then
  say "libraries: the machine's own (spdlog, nlohmann-json, PCRE2, ICU found)"
else
  if [ ! -f "$DEPS_TARBALL" ]; then
    say "libraries: spdlog/nlohmann-json/PCRE2/ICU development files are missing here and $DEPS_TARBALL was not"
    say "  carried: run tools/gpu-check.sh --fetch-deps on the Debian machine and pass carry [\".gpu-deps\"]"
    finish 2
  fi
  D=${MOESCOPE_GPU_DEPS_DIR:-/tmp/moescope-gpu-deps}
  rm -rf "$D" && mkdir -p "$D" && tar -C "$D" -xzf "$DEPS_TARBALL"
  # The .pc files name /usr; point them at the unpacked tree.
  find "$D" -name '*.pc' -exec sed -i -E "s#(=[[:space:]]*|-I|-L)/usr#\1$D/usr#g" {} +
  ARCHLIB=$D/usr/lib/x86_64-linux-gnu
  export PATH=$D/usr/bin:$PATH
  export LD_LIBRARY_PATH=$ARCHLIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export PKG_CONFIG_PATH=$ARCHLIB/pkgconfig:$D/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
  CMAKE_DEPS=(-DCMAKE_PREFIX_PATH="$D/usr" -DPKG_CONFIG_EXECUTABLE="$D/usr/bin/pkg-config")
  say "libraries: carried Debian 12 packages unpacked in $D ($(paste -sd, "$D/PACKAGES" | cut -c1-200)...)"
  pkg-config --modversion libpcre2-8 icu-uc >>"$LOGS/build.log" 2>&1 || say "pkg-config cannot read the carried .pc files"
fi

# ---- configure and build: engine + moescope-cli + the GPU tests, no Qt ------------------------
# Qt is kept out even where it is installed, so that a dry run here builds what the device does.
ARCH=${MOESCOPE_CUDA_ARCHITECTURES:-native}
if [ $HAVE_GPU = 0 ] && [ "$ARCH" = native ]; then ARCH=90; fi  # dry run: nothing to detect
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
NVCC=$(command -v nvcc || ls -d /usr/local/cuda/bin/nvcc /usr/local/cuda-*/bin/nvcc 2>/dev/null | head -1)
[ -n "$NVCC" ] || { say "no nvcc on PATH or under /usr/local/cuda*"; finish 2; }
LAUNCH=(-DCMAKE_CUDA_COMPILER="$NVCC")
if [ "${MOESCOPE_GPU_CCACHE:-0}" = 1 ] && command -v ccache >/dev/null; then
  LAUNCH+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
step configure "$LOGS/build.log" 120 cmake -S . -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DMOESCOPE_CUDA=ON -DMOESCOPE_CUDA_ARCHITECTURES="$ARCH" -DMOESCOPE_BUILD_UI=OFF -DMOESCOPE_BUILD_TESTS=ON \
  -DCMAKE_DISABLE_FIND_PACKAGE_Qt6=ON "${CMAKE_DEPS[@]}" "${LAUNCH[@]}" || finish 1
bs=$(date +%s)
step build "$LOGS/build.log" 420 cmake --build "$BUILD" -j "$JOBS" --target moescope-cli test_cuda_ops test_cuda_model ||
  finish 1
say "build: $(( $(date +%s) - bs ))s wall on $JOBS jobs"
CLI=$BUILD/app/cli/moescope-cli
# BF16 weights on the device: 14, 61, 31, 46 (16 of 32 layers), ~76 GB (3 dense + 3 MoE layers
# of 61), then the last two architectures to reach CUDA, gpt-oss (sinks, windows, biased clamped
# experts) and Qwen3.5 (Gated DeltaNet layers): 42 and 69 GB; each alone on the 141 GB card
# (docs/cuda-backend.md). They come last, so the budget cuts them first.
SHAPES=("olmoe-1b-7b" "qwen3-30b-a3b" "deepseek-v2-lite" "mixtral-8x7b --layers 16" "deepseek-v3 --layers 6"
  "gpt-oss-20b" "qwen3.5-35b-a3b")

if [ "$DRY" = 1 ]; then
  say "DRY RUN: built $CLI, $BUILD/tests/test_cuda_ops, $BUILD/tests/test_cuda_model for sm_$ARCH"
  "$BUILD/tests/test_cuda_ops" rmsnorm >>"$LOGS/ctest.log" 2>&1
  say "DRY RUN: test_cuda_ops without a device says: $(grep -m1 '^SKIP' "$LOGS/ctest.log")"
  say "DRY RUN: the next step needs a CUDA device; a device run goes on with:"
  say "  ctest --test-dir $BUILD -L gpu --output-on-failure -V --timeout 240"
  say "  MOESCOPE_CUDA_PERF=1 $BUILD/tests/test_cuda_ops perf_table"
  for s in "${SHAPES[@]}"; do say "  $CLI bench --backend cuda --json --shape $s"; done
  finish 0
fi

# ---- the GPU steps ---------------------------------------------------------------------------
nvidia-smi >>"$LOGS/machine.log" 2>&1
status=0
# -V: every test's output (the parity figures), not only a failing one's.
step gpu-tests "$LOGS/ctest.log" 300 ctest --test-dir "$BUILD" -L gpu --output-on-failure -V --timeout 240 || status=1
MOESCOPE_CUDA_PERF=1 step kernel-table "$LOGS/kernels.log" 90 "$BUILD/tests/test_cuda_ops" perf_table || status=1
for s in "${SHAPES[@]}"; do
  name=${s%% *}
  # shellcheck disable=SC2086  # the shape's own arguments
  step "bench $name" "$LOGS/bench.log" 150 sh -c "\"$CLI\" bench --backend cuda --json --shape $s >\"$LOGS/bench-$name.json\"" ||
    status=1
done
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv >>"$LOGS/machine.log" 2>&1
finish $status
