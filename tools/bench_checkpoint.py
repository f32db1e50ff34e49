#!/usr/bin/env python3
"""Random-weight checkpoints of the published MoE shapes, for tools/bench-vs-llama.sh.

  bench_checkpoint.py --shape qwen3-30b-a3b --layers 4 --out DIR
      DIR/config.json (resources/presets/<shape>.json with num_hidden_layers = --layers, and any
      auto_map dropped: transformers' own classes are used) and DIR/model.safetensors with the
      weights transformers initialises for that configuration (seed 0), in bfloat16.
  bench_checkpoint.py --convert LLAMA_CPP_SRC --out DIR --gguf FILE [--outtype bf16]
      FILE converted from DIR by llama.cpp's convert_hf_to_gguf.py, with a placeholder vocabulary
      of the configuration's size (these checkpoints have no tokenizer; see CHILD).

Never needed by the app, its tests or CI.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHAPE_PRESET = {"deepseek-v3": "deepseek-r1"}


def make(shape, layers, out):
    import torch
    import transformers

    cfg = json.load(open(os.path.join(ROOT, "resources", "presets", SHAPE_PRESET.get(shape, shape) + ".json")))
    cfg["num_hidden_layers"] = layers
    cfg.pop("auto_map", None)
    cfg.pop("quantization_config", None)  # DeepSeek-R1 ships FP8; the bench checkpoints are BF16
    cfg["torch_dtype"] = "bfloat16"
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    config = transformers.AutoConfig.from_pretrained(out)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True, max_shard_size="100GB")
    # save_pretrained rewrites config.json in transformers' spelling; moescope and the converter read both.
    print(f"{out}: {sum(p.numel() for p in model.parameters()) / 1e9:.2f} B parameters")


# Runs in a child process: the converter's main() with set_vocab replaced by a placeholder
# SentencePiece-style vocabulary of the configuration's size (<unk>, <s>, </s>, the 256 byte
# tokens llama.cpp looks up, then "<tN>"): llama-bench feeds random token ids, so only the size
# matters, and it keeps the LM head the published shape's.
CHILD = r'''
import sys
llama_cpp, src, out, outtype = sys.argv[1:5]
sys.path.insert(0, llama_cpp)
sys.argv = ["convert_hf_to_gguf.py", src, "--outtype", outtype, "--outfile", out]
import convert_hf_to_gguf as conv
import gguf

def placeholder_vocab(self):
    n = self.hparams["vocab_size"]
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    tokens += ["<t%d>" % i for i in range(len(tokens), n)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [gguf.TokenType.BYTE] * 256
    types += [gguf.TokenType.NORMAL] * (n - len(types))
    self.gguf_writer.add_tokenizer_model("llama")
    self.gguf_writer.add_tokenizer_pre("default")
    self.gguf_writer.add_token_list(tokens[:n])
    self.gguf_writer.add_token_scores([0.0] * n)
    self.gguf_writer.add_token_types(types[:n])
    self.gguf_writer.add_unk_token_id(0)
    self.gguf_writer.add_bos_token_id(1)
    self.gguf_writer.add_eos_token_id(2)

# llama.cpp recognises DeepSeek-V2-Lite (no q_lora_rank) by its 26 or 27 layers and otherwise
# demands the key; with fewer layers, say 0, which its loader reads as "no query LoRA".
def with_q_lora_rank(set_params):
    def wrapped(self):
        set_params(self)
        if "q_lora_rank" in self.hparams and self.hparams["q_lora_rank"] is None:
            self.gguf_writer.add_q_lora_rank(0)
    return wrapped

original = conv.get_model_class
def get_model_class(*args, **kwargs):
    cls = original(*args, **kwargs)
    cls.set_vocab = placeholder_vocab
    cls.set_gguf_parameters = with_q_lora_rank(cls.set_gguf_parameters)
    return cls
conv.get_model_class = get_model_class
conv.main()
'''


def convert(llama_cpp, src, gguf, outtype):
    r = subprocess.run([sys.executable, "-c", CHILD, llama_cpp, src, gguf, outtype])
    if r.returncode != 0:
        sys.exit(f"{src}: the converter failed")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--out", required=True)
    ap.add_argument("--convert", metavar="LLAMA_CPP_SRC")
    ap.add_argument("--gguf")
    ap.add_argument("--outtype", default="bf16")
    a = ap.parse_args()
    if a.convert:
        convert(a.convert, a.out, a.gguf, a.outtype)
    else:
        make(a.shape, a.layers, a.out)


if __name__ == "__main__":
    main()
