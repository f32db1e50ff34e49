#!/usr/bin/env python3
"""Seeds for the gguf fuzz target (tests/fuzz/corpus/gguf/), written with the PyPI gguf package's
GGUFWriter: small files that the reader accepts, so that the fuzzer starts from valid structure.

  metadata.gguf     metadata of every value type (arrays included) and tensors of several types
  mixtral-tiny.gguf a complete 1-layer llama-with-experts model (Q8_0 experts), so that mutations
                    reach the architecture mapping and the weight binding
  vocab-gpt2.gguf   a small byte-level BPE vocabulary (tokenizer.ggml.*, pre qwen2) and a chat
                    template, so that mutations reach the tokenizer rebuilt from GGUF metadata
  vocab-spm.gguf    the same for a SentencePiece vocabulary (scores, byte tokens)

    pip install gguf numpy
    python3 tests/tools/gen_gguf_fuzz_seeds.py
"""
import os

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf.quants import quantize

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fuzz", "corpus", "gguf")
rng = np.random.default_rng(7)


def write(w):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def add_q(w, name, x, qt):
    w.add_tensor(name, quantize(x.astype(np.float32), qt), raw_dtype=qt)


def metadata():
    w = gguf.GGUFWriter(os.path.join(OUT, "metadata.gguf"), "test")
    w.add_uint8("t.u8", 200); w.add_int8("t.i8", -3); w.add_uint16("t.u16", 60000); w.add_int16("t.i16", -2)
    w.add_uint32("t.u32", 7); w.add_int32("t.i32", -7); w.add_uint64("t.u64", 1 << 40); w.add_int64("t.i64", -(1 << 40))
    w.add_float32("t.f32", 0.25); w.add_float64("t.f64", -1.5); w.add_bool("t.bool", True); w.add_string("t.s", "héllo")
    w.add_array("t.ints", [1, 2, 3]); w.add_array("t.strs", ["a", "bc", ""]); w.add_array("t.floats", [0.5, 1.5])
    w.add_tensor("f32", rng.standard_normal((2, 8)).astype(np.float32))
    w.add_tensor("f16", rng.standard_normal(8).astype(np.float16))
    add_q(w, "q8_0", rng.standard_normal((2, 32)), Q.Q8_0)
    add_q(w, "q4_0", rng.standard_normal(32), Q.Q4_0)
    add_q(w, "mxfp4", rng.standard_normal(32), Q.MXFP4)
    write(w)


def mixtral_tiny():
    H, V, E, W, heads, kv, hd = 32, 8, 2, 32, 2, 1, 16
    w = gguf.GGUFWriter(os.path.join(OUT, "mixtral-tiny.gguf"), "llama")
    w.add_block_count(1); w.add_context_length(64); w.add_embedding_length(H); w.add_feed_forward_length(W)
    w.add_head_count(heads); w.add_head_count_kv(kv); w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5); w.add_expert_count(E); w.add_expert_used_count(1); w.add_rope_dimension_count(hd)
    w.add_bos_token_id(1); w.add_eos_token_id(2)
    r = lambda *s: (rng.standard_normal(s) * 0.2).astype(np.float32)
    w.add_tensor("token_embd.weight", r(V, H)); w.add_tensor("output_norm.weight", np.ones(H, np.float32))
    w.add_tensor("output.weight", r(V, H)); w.add_tensor("blk.0.attn_norm.weight", np.ones(H, np.float32))
    w.add_tensor("blk.0.attn_q.weight", r(heads * hd, H)); w.add_tensor("blk.0.attn_k.weight", r(kv * hd, H))
    w.add_tensor("blk.0.attn_v.weight", r(kv * hd, H)); w.add_tensor("blk.0.attn_output.weight", r(H, heads * hd))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(H, np.float32)); w.add_tensor("blk.0.ffn_gate_inp.weight", r(E, H))
    for n in ("gate", "up", "down"):
        add_q(w, f"blk.0.ffn_{n}_exps.weight", r(E, W, H), Q.Q8_0)
    write(w)


def vocab_gpt2():
    w = gguf.GGUFWriter(os.path.join(OUT, "vocab-gpt2.gguf"), "qwen3moe")
    # byte-level alphabet for ASCII letters, digits, space (Ġ) and newline (Ċ), a few merges
    base = [chr(c) for c in range(33, 127)] + ["Ġ", "Ċ"]
    merges = ["Ġ a", "Ġ t", "h e", "i n", "Ġt he", "2 3", "5 8"]
    tokens = base + [m.replace(" ", "") for m in merges] + ["<|im_start|>", "<|im_end|>", "<think>", "[PAD0]"]
    types = [1] * (len(base) + len(merges)) + [3, 3, 4, 5]
    w.add_tokenizer_model("gpt2"); w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens); w.add_token_types(types); w.add_token_merges(merges)
    w.add_bos_token_id(len(tokens) - 4); w.add_eos_token_id(len(tokens) - 3)
    w.add_chat_template("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}")
    write(w)


def vocab_spm():
    w = gguf.GGUFWriter(os.path.join(OUT, "vocab-spm.gguf"), "llama")
    pieces = ["▁", "a", "b", "c", "▁a", "ab", "▁ab", "▁b", "1", "2", "▁1"]
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + pieces
    types = [2, 3, 3] + [6] * 256 + [1] * len(pieces)
    w.add_tokenizer_model("llama"); w.add_tokenizer_pre("default")
    w.add_token_list(tokens); w.add_token_types(types)
    w.add_token_scores([0.0] * 259 + [-float(i) for i in range(len(pieces))])
    w.add_bos_token_id(1); w.add_eos_token_id(2); w.add_unk_token_id(0); w.add_add_bos_token(True)
    write(w)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    metadata()
    mixtral_tiny()
    vocab_gpt2()
    vocab_spm()
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)))
