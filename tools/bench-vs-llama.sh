#!/usr/bin/env bash
# moescope against llama.cpp on the same random-weight models, side by side, on this machine's CPU.
# A benchmark command, never run in CI. Steps (each skipped when its output is already there):
#   1. llama.cpp from source: the PyPI source distribution of llama-cpp-python carries it
#      (vendor/llama.cpp); builds llama-bench and llama-quantize for this CPU (GGML_NATIVE).
#   2. A Python environment for the tools (torch, transformers, safetensors, gguf, numpy).
#   3. Per shape: a random-weight Hugging Face checkpoint of the published configuration with
#      --layers layers (tools/bench_checkpoint.py), converted by llama.cpp's convert_hf_to_gguf.py
#      (--outtype bf16, or another type, then llama-quantize for --quant).
#   4. Both engines in turn, --reps times, interleaved (moescope, llama.cpp, moescope, ...): prefill
#      for each --prompt count, decode --decode tokens, same threads; medians and the ratio.
# Usage: tools/bench-vs-llama.sh [--shapes "qwen3-30b-a3b deepseek-v2-lite olmoe-1b-7b mixtral-8x7b"]
#          [--layers 4] [--threads N] [--prompt "64 512"] [--decode 32] [--reps 3] [--quant TYPE]
#          [--work DIR] [--moescope BIN] [--llama-no-amx]
# Output: a table on stdout (decode rows also give both engines' share of the decode roofline
# that moescope measured in that run: measured read bandwidth / bytes per token) and
# DIR/results-DATE.json. --quant (Q8_0, Q4_K_M, ...) runs both engines
# on the quantised GGUF file. --llama-no-amx builds llama.cpp (in DIR/llama-build-noamx) with
# its AMX kernels compiled out and the rest of -march=native kept: llama.cpp 0.3.36's AMX matmul
# (ggml_backend_amx_mul_mat) crashed with SIGSEGV in every prompt test of the quantised models on
# a Xeon with AMX-INT8 (2026-12-04), so without it llama-bench gives no prefill figure there.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
shapes="qwen3-30b-a3b deepseek-v2-lite olmoe-1b-7b mixtral-8x7b"
layers=4 threads="" prompts="64 512" decode=32 reps=3 quant="" work="$root/.bench" cli="$root/build/app/cli/moescope-cli"
no_amx=0
while [ $# -gt 0 ]; do
  case "$1" in
    --shapes) shapes=$2; shift 2 ;;
    --layers) layers=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --prompt) prompts=$2; shift 2 ;;
    --decode) decode=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --quant) quant=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --moescope) cli=$2; shift 2 ;;
    --llama-no-amx) no_amx=1; shift ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
# Threads: physical cores, as moescope's default.
if [ -z "$threads" ]; then
  threads=$(lscpu -p=CORE,SOCKET 2>/dev/null | grep -v '^#' | sort -u | wc -l)
  [ "$threads" -gt 0 ] || threads=$(nproc)
fi
mkdir -p "$work"
log() { echo "[bench-vs-llama] $*" >&2; }

# 1. llama.cpp
lcpp_src=$(ls -d "$work"/llama_cpp_python-*/vendor/llama.cpp 2>/dev/null | head -1 || true)
if [ -z "$lcpp_src" ]; then
  log "fetching llama.cpp (llama-cpp-python source distribution from PyPI)"
  pip download --no-binary :all: --no-deps llama-cpp-python -d "$work" >&2
  tar xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
  lcpp_src=$(ls -d "$work"/llama_cpp_python-*/vendor/llama.cpp | head -1)
fi
lcpp_build="$work/llama-build" lcpp_flags=""
if [ "$no_amx" = 1 ]; then
  # explicit -mno-* options win over what -march=native turns on, wherever they stand
  lcpp_build="$work/llama-build-noamx" lcpp_flags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
fi
if [ ! -x "$lcpp_build/bin/llama-bench" ] || [ ! -x "$lcpp_build/bin/llama-quantize" ]; then
  log "building llama.cpp ($lcpp_src${lcpp_flags:+, $lcpp_flags})"
  cmake -S "$lcpp_src" -B "$lcpp_build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_CUDA=OFF \
    -DCMAKE_C_FLAGS="$lcpp_flags" -DCMAKE_CXX_FLAGS="$lcpp_flags" \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON >&2
  cmake --build "$lcpp_build" -j "$(nproc)" --target llama-bench llama-quantize >&2
fi
lcpp_ver=$(cat "$work"/llama_cpp_python-*/PKG-INFO | sed -n 's/^Version: //p' | head -1)
lcpp_ver="$lcpp_ver${lcpp_flags:+ ($lcpp_flags)}"

# 2. the tools' Python
py="$work/venv/bin/python"
if [ ! -x "$py" ] || ! "$py" -c "import torch, transformers, safetensors, gguf, numpy" 2>/dev/null; then
  log "setting up $work/venv (torch, transformers, safetensors, gguf, numpy, sentencepiece)"
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install -q torch transformers safetensors gguf numpy sentencepiece >&2
fi

# 3. moescope itself
if [ ! -x "$cli" ]; then
  log "building moescope"
  tools/build.sh >&2
fi

# llama-bench's tokens/s for one test (-p N -n 0 or -p 0 -n N), or nan (with the reason on stderr).
lcpp_rate() {
  local out rc
  out=$("$lcpp_build/bin/llama-bench" -m "$model_lc" -t "$threads" "$@" -r 1 -o json 2>/dev/null) && rc=0 || rc=$?
  if [ "$rc" != 0 ] || [ -z "$out" ]; then
    log "llama-bench $* on $model_lc failed (exit $rc)"
    echo nan
    return
  fi
  echo "$out" | "$py" -c 'import json,sys; print(json.load(sys.stdin)[0]["avg_ts"])'
}

results="$work/results-$(date +%Y%m%d-%H%M%S).json"
echo "[" > "$results.tmp"
first=1
printf '%-18s %-10s %12s %12s %8s %10s\n' "shape" "test" "moescope" "llama.cpp" "ratio" "roofline"
for shape in $shapes; do
  ckpt="$work/models/$shape-L$layers"
  gguf="$work/models/$shape-L$layers-bf16.gguf"
  if [ ! -f "$ckpt/config.json" ]; then
    log "$shape: random checkpoint with $layers layers"
    "$py" tools/bench_checkpoint.py --shape "$shape" --layers "$layers" --out "$ckpt" >&2
  fi
  if [ ! -f "$gguf" ]; then
    log "$shape: converting to GGUF (bf16)"
    "$py" tools/bench_checkpoint.py --convert "$lcpp_src" --out "$ckpt" --gguf "$gguf" >&2
  fi
  model_ms="$ckpt" model_lc="$gguf"
  if [ -n "$quant" ]; then
    qf="$work/models/$shape-L$layers-$quant.gguf"
    [ -f "$qf" ] || "$lcpp_build/bin/llama-quantize" "$gguf" "$qf" "$quant" >&2
    model_ms="$qf" model_lc="$qf"
  fi
  for p in $prompts; do
    ms=() lc=()
    for r in $(seq "$reps"); do
      ms+=("$("$cli" bench --model "$model_ms" --threads "$threads" --prompt-tokens "$p" --decode-tokens "$decode" --json \
              | "$py" -c 'import json,sys; j=json.load(sys.stdin); print(j["prefill_tokens_per_s"], j["decode_tokens_per_s"], j["bandwidth_gbs"], j["decode_roofline_tokens_per_s"])')")
      # prefill and decode as two runs, so that a crash in one (llama.cpp dies with SIGILL in
      # its Q8_0 prompt path on some CPUs) still leaves the other; nan marks the one that failed
      lc_p=$(lcpp_rate -p "$p" -n 0) lc_n=$(lcpp_rate -p 0 -n "$decode")
      lc+=("$lc_p $lc_n")
    done
    line=$("$py" - "$shape" "$p" "$decode" "$threads" "$lcpp_ver" "$model_ms" "${ms[@]}" -- "${lc[@]}" <<'PY'
import json, statistics, sys
shape, p, n, threads, ver, model = sys.argv[1:7]
rest = sys.argv[7:]
cut = rest.index("--")
ms = [list(map(float, r.split())) for r in rest[:cut]]
lc = [list(map(float, r.split())) for r in rest[cut + 1:]]
def med(v):
    v = [x for x in v if x == x]  # runs that failed are nan
    return statistics.median(v) if v else float("nan")
out = {"shape": shape, "model": model, "threads": int(threads), "prompt": int(p), "decode": int(n),
       "llama_cpp_python": ver,
       "moescope_prefill": med([r[0] for r in ms]), "llama_prefill": med([r[0] for r in lc]),
       "moescope_decode": med([r[1] for r in ms]), "llama_decode": med([r[1] for r in lc]),
       "bandwidth_gbs": med([r[2] for r in ms]), "decode_roofline": med([r[3] for r in ms]),
       "runs": {"moescope": ms, "llama.cpp": lc}}
print(json.dumps(out))
PY
)
    [ $first = 1 ] || echo "," >> "$results.tmp"
    first=0
    echo "$line" >> "$results.tmp"
    "$py" -c '
import json, sys
j = json.loads(sys.argv[1])
print("%-18s %-10s %12.2f %12.2f %7.2fx" % (j["shape"], "pp%d" % j["prompt"], j["moescope_prefill"], j["llama_prefill"],
                                              j["moescope_prefill"] / j["llama_prefill"] if j["llama_prefill"] == j["llama_prefill"] else float("nan")))
# decode: also both engines against the bandwidth roofline moescope measured in the same run
r = j["decode_roofline"]
print("%-18s %-10s %12.2f %12.2f %7.2fx %4.0f%%/%.0f%%" % (j["shape"], "tg%d@%d" % (j["decode"], j["prompt"]), j["moescope_decode"],
      j["llama_decode"], j["moescope_decode"] / j["llama_decode"], 100 * j["moescope_decode"] / r, 100 * j["llama_decode"] / r))
' "$line"
  done
done
echo "]" >> "$results.tmp"
mv "$results.tmp" "$results"
log "tokens/s, medians of $reps interleaved runs, $threads threads; details in $results"
