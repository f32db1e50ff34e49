#!/usr/bin/env python3
"""GGUF goldens: the tiny test models of tests/data/models converted by llama.cpp's own
convert_hf_to_gguf.py, so that test_gguf can check that a GGUF file and the Hugging Face
checkpoint it came from give the same ModelSpec and the same forward pass.

llama.cpp's source comes from the PyPI source distribution of llama-cpp-python (vendor/llama.cpp);
the converter needs torch, transformers, safetensors, numpy and sentencepiece:

    pip install torch transformers safetensors numpy sentencepiece
    pip download --no-binary :all: --no-deps llama-cpp-python -d /tmp/lcpp
    tar xzf /tmp/lcpp/llama_cpp_python-*.tar.gz -C /tmp/lcpp
    python3 tests/tools/gen_gguf_goldens.py --llama-cpp /tmp/lcpp/llama_cpp_python-*/vendor/llama.cpp

The converter runs unchanged except for two things. llama.cpp assumes that every layer of qwen2moe
and qwen3moe is MoE, so its tensor lists for them lack the dense FFN that the qwen2-moe
(mlp_only_layers) and qwen3-moe (decoder_sparse_step 2) goldens have: the generator adds
blk.N.ffn_gate/ffn_up/ffn_down to them, the names llama.cpp uses for every other architecture.
And the vocabulary: the tiny models have random weights and
no tokenizer, so set_vocab writes a placeholder vocabulary (tokenizer.ggml.model "none", tokens
"<tN>") and the bos/eos ids of config.json, as llama.cpp's SpecialVocab reads them. Output type:
F32 for the float32 models, F16 and BF16 for olmoe-f16 and deepseek-v3-bf16 (the converter keeps
norms and biases in F32 there, as it always does). Files go to tests/data/gguf/NAME.gguf, with
README.json saying which converter made them.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "..", "data", "models")

# model directory -> converter --outtype
VARIANTS = {
    "mixtral": "f32",
    "qwen2-moe": "f32",
    "qwen3-moe": "f32",
    "olmoe": "f32",
    "olmoe-f16": "f16",
    "deepseek-v2-lite": "f32",
    "deepseek-v2-group": "f32",
    "deepseek-v3": "f32",
    "deepseek-v3-bf16": "bf16",
}

# Vocabulary-only files (convert_hf_to_gguf.py --vocab-only, the converter's own set_vocab) of the
# real tokenizers in tests/data/tokenizers, with the published config of a model that uses them:
# test_gguf checks that the tokenizer rebuilt from their metadata encodes and decodes as the
# tokenizer.json it came from.
VOCABS = {
    "vocab-qwen3": ("qwen3", "qwen3-30b-a3b"),
    "vocab-deepseek-v3": ("deepseek-v3", "deepseek-r1"),
    # SentencePiece: converted from tokenizer.json (no tokenizer.model here), so every score is
    # the converter's placeholder -1000 and the pieces' order carries the merge ranks
    "vocab-llama2": ("llama2", "mixtral-8x7b"),
}

# Runs inside a child process: the converter's main() with set_vocab replaced.
CHILD = r'''
import sys
llama_cpp, src, out, outtype = sys.argv[1:5]
sys.path.insert(0, llama_cpp)
sys.argv = ["convert_hf_to_gguf.py", src, "--outtype", outtype, "--outfile", out]
import convert_hf_to_gguf as conv
import gguf

# llama.cpp assumes every layer of qwen2moe/qwen3moe is MoE, so its tensor lists for them lack the
# dense FFN; the goldens have dense layers (mlp_only_layers, decoder_sparse_step). Name those as
# llama.cpp does for every other architecture (blk.N.ffn_gate/ffn_up/ffn_down).
T = gguf.MODEL_TENSOR
for arch in (gguf.MODEL_ARCH.QWEN2MOE, gguf.MODEL_ARCH.QWEN3MOE):
    for t in (T.FFN_GATE, T.FFN_UP, T.FFN_DOWN):
        if t not in gguf.MODEL_TENSORS[arch]:
            gguf.MODEL_TENSORS[arch].append(t)

def placeholder_vocab(self):
    n = self.hparams["vocab_size"]
    self.gguf_writer.add_tokenizer_model("none")
    self.gguf_writer.add_token_list([f"<t{i}>" for i in range(n)])
    self.gguf_writer.add_token_types([gguf.TokenType.NORMAL] * n)
    gguf.SpecialVocab(self.dir_model, load_merges=False, n_vocab=n).add_to_gguf(self.gguf_writer)

original = conv.get_model_class
def get_model_class(*args, **kwargs):
    cls = original(*args, **kwargs)
    cls.set_vocab = placeholder_vocab
    return cls
conv.get_model_class = get_model_class
conv.main()
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-cpp", required=True, help="llama.cpp source tree (with convert_hf_to_gguf.py)")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "data", "gguf"))
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    info = {"converter": "llama.cpp convert_hf_to_gguf.py (vendor/llama.cpp of the llama-cpp-python sdist)",
            "files": {}}
    readme = os.path.join(args.out, "README.json")
    if args.only and os.path.exists(readme):  # regenerating some: keep the others' entries
        info["files"] = json.load(open(readme)).get("files", {})
    try:
        from importlib.metadata import version
        info["versions"] = {p: version(p) for p in ("torch", "transformers", "numpy")}
    except Exception:
        pass
    version_file = os.path.join(args.llama_cpp, "..", "..", "PKG-INFO")
    if os.path.exists(version_file):
        for line in open(version_file):
            if line.startswith("Version:"):
                info["llama_cpp_python"] = line.split()[1]
                break
    for name, outtype in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        out = os.path.join(args.out, name + ".gguf")
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "log")
            with open(log, "w") as f:
                r = subprocess.run([sys.executable, "-c", CHILD, args.llama_cpp, os.path.join(MODELS, name), out, outtype],
                                   stdout=f, stderr=subprocess.STDOUT)
            if r.returncode != 0:
                sys.stdout.write(open(log).read())
                sys.exit(f"{name}: the converter failed")
        info["files"][name + ".gguf"] = {"from": f"tests/data/models/{name}", "outtype": outtype,
                                        "bytes": os.path.getsize(out)}
        print(f"{name}.gguf: {os.path.getsize(out)} bytes ({outtype})")
    for name, (tok, preset) in VOCABS.items():
        if args.only and name not in args.only:
            continue
        out = os.path.join(args.out, name + ".gguf")
        with tempfile.TemporaryDirectory() as tmp:
            for f in ("tokenizer.json", "tokenizer_config.json"):
                shutil.copy(os.path.join(HERE, "..", "data", "tokenizers", tok, f), tmp)
            cfg = json.load(open(os.path.join(HERE, "..", "..", "resources", "presets", preset + ".json")))
            cfg.pop("auto_map", None)
            cfg.pop("quantization_config", None)
            json.dump(cfg, open(os.path.join(tmp, "config.json"), "w"))
            r = subprocess.run([sys.executable, os.path.join(args.llama_cpp, "convert_hf_to_gguf.py"), tmp,
                                "--vocab-only", "--outfile", out], capture_output=True, text=True)
            if r.returncode != 0:
                sys.stdout.write(r.stdout + r.stderr)
                sys.exit(f"{name}: the converter failed")
        info["files"][name + ".gguf"] = {"from": f"tests/data/tokenizers/{tok} + resources/presets/{preset}.json",
                                        "vocab_only": True, "bytes": os.path.getsize(out)}
        print(f"{name}.gguf: {os.path.getsize(out)} bytes (vocabulary only)")
    with open(os.path.join(args.out, "README.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
