#!/bin/sh
# CTest driver: tools/train_teaching_model.py --smoke writes a checkpoint that the engine loads
# (moescope-cli inspect) and generates from (moescope-cli generate --ids), and a second run with
# the same seed writes identical files.
# Exit 77 (skipped) when python3 or its ML stack (torch, transformers, tokenizers, safetensors)
# is not available, as on CI.
# Usage: train_smoke_test.sh SOURCE_DIR MOESCOPE_CLI
set -u
src="$1"
cli="$2"
if ! command -v python3 >/dev/null 2>&1; then
  echo "SKIP: python3 not found"; exit 77
fi
if ! python3 -c "import torch, transformers, tokenizers, safetensors" >/dev/null 2>&1; then
  echo "SKIP: torch/transformers/tokenizers/safetensors not importable"; exit 77
fi
out=$(mktemp -d "${TMPDIR:-/tmp}/moescope-train-smoke.XXXXXX") || exit 1
trap 'rm -rf "$out"' EXIT
python3 "$src/tools/train_teaching_model.py" --smoke --out "$out" || { echo "FAIL: training smoke run"; exit 1; }
for f in config.json model.safetensors generation_config.json tokenizer.json tokenizer_config.json; do
  [ -f "$out/$f" ] || { echo "FAIL: $f missing"; exit 1; }
done
"$cli" inspect --model "$out" > "$out/inspect.json" || { echo "FAIL: moescope-cli inspect"; exit 1; }
grep -q '"DeepseekV3ForCausalLM"' "$out/inspect.json" || { echo "FAIL: inspect does not report DeepseekV3ForCausalLM"; exit 1; }
"$cli" generate --model "$out" --ids 1,2,3 --max-tokens 4 || { echo "FAIL: moescope-cli generate --ids"; exit 1; }
"$cli" generate --model "$out" --chat --prompt "What is 2+3?" --max-tokens 4 --temperature 0 \
  || { echo "FAIL: moescope-cli generate --chat"; exit 1; }
# Reproducible: the same command again writes the same weights and tokenizer, byte for byte.
python3 "$src/tools/train_teaching_model.py" --smoke --out "$out/again" > /dev/null || { echo "FAIL: second training smoke run"; exit 1; }
for f in model.safetensors tokenizer.json config.json; do
  cmp -s "$out/$f" "$out/again/$f" || { echo "FAIL: $f differs between two runs with the same seed"; exit 1; }
done
echo "OK: smoke checkpoint trains, loads and generates; a second run gives identical files"
