#!/usr/bin/env bash
# Runs libFuzzer targets for a given time, in a clang ASan+UBSan build of its own (build-fuzz/,
# configured and built here on first use; MOESCOPE_FUZZ_BUILD_DIR overrides).
#
#   tests/fuzz/run.sh TARGET SECONDS      one target (safetensors gguf config tokenizer template trace
#                                         remote conversation)
#   tests/fuzz/run.sh --all SECONDS       each target in turn
#   tests/fuzz/run.sh --ci SECONDS        the same, as the CTest case fuzz_brief: skipped (77)
#                                         unless MOESCOPE_CI_EXTRA=1 (tools/test.sh's extra
#                                         checks, which CI runs)
#
# The committed seeds (corpus/TARGET, regressions/TARGET) are copied into the build dir's working
# corpus, which keeps what the fuzzer finds between runs. A crash leaves its input in
# build-fuzz/findings/TARGET/ and makes the script fail: add the input to regressions/TARGET/ once
# it is fixed. Exit 77 (CTest: skipped) when clang or libFuzzer is not installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${MOESCOPE_FUZZ_BUILD_DIR:-$root/build-fuzz}
all_targets=(safetensors gguf config tokenizer template trace remote conversation)

[ $# -eq 2 ] || { echo "usage: $0 TARGET|--all SECONDS" >&2; exit 2; }
if [ "$1" = "--ci" ] && [ "${MOESCOPE_CI_EXTRA:-0}" != 1 ]; then
  echo "fuzz: brief fuzzing runs with MOESCOPE_CI_EXTRA=1 only, skipping" >&2; exit 77
fi
if [ "$1" = "--all" ] || [ "$1" = "--ci" ]; then targets=("${all_targets[@]}"); else targets=("$1"); fi
seconds=$2

# The longest input generated (longer seeds are cut). The tokenizer seeds are the three real
# tokenizers of tests/data cut down to 400 tokens, structure intact.
declare -A max_len=([safetensors]=65536 [gguf]=65536 [config]=8192 [tokenizer]=65536 [template]=16384
                    [trace]=65536 [remote]=65536 [conversation]=65536)

if ! command -v clang++ >/dev/null; then echo "fuzz: clang++ not installed, skipping" >&2; exit 77; fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' > "$probe/p.cpp"
if ! clang++ -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" 2>/dev/null; then
  echo "fuzz: libFuzzer (libclang-rt-dev) not installed, skipping" >&2; exit 77
fi

if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMOESCOPE_FUZZ=ON -DMOESCOPE_BUILD_TESTS=OFF -DMOESCOPE_BUILD_UI=OFF -DMOESCOPE_CUDA=OFF >/dev/null
fi
jobs=${MOESCOPE_FUZZ_JOBS:-$(nproc)}
cmake --build "$build" -j "$jobs" --target "${targets[@]/#/fuzz_}"

status=0
for t in "${targets[@]}"; do
  work="$build/corpus/$t"
  findings="$build/findings/$t"
  mkdir -p "$work" "$findings"
  cp -n "$here/corpus/$t/"* "$work/" 2>/dev/null || true
  seeds=("$work" "$here/regressions/$t")
  echo "fuzz: $t for ${seconds}s"
  # New inputs go to the first directory ($work) only; the others are read.
  if ! "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len="${max_len[$t]}" \
         -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$findings/" \
         "${seeds[@]}" 2>&1 | tee "$build/fuzz-$t.log" | grep -E '^(#[0-9]+ +(INITED|DONE)|stat::|==[0-9]+==|SUMMARY|.*(ERROR|Test unit written))'; then
    :
  fi
  if grep -q -E 'Test unit written|^SUMMARY' "$build/fuzz-$t.log"; then
    echo "fuzz: $t FOUND A PROBLEM: see $build/fuzz-$t.log and $findings/" >&2
    status=1
  fi
done
exit $status
