#!/usr/bin/env python3
"""A random-weight Qwen3-MoE checkpoint of a real-ish size, for benchmarks that need answers at a
realistic pace (the test models answer thousands of tokens a second): F16 safetensors, the real
Qwen3 tokenizer and chat template from ../shared (or --tokenizer DIR). Not for correctness: its
answers are random. Needs numpy and safetensors (a tools venv), never the app.

  python3 tools/gen_bench_checkpoint.py OUT_DIR [--layers 2] [--hidden 1024] [--experts 64]
"""
import argparse
import json
import os
import shutil

import numpy as np
from safetensors.numpy import save_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--experts", type=int, default=64)
    ap.add_argument("--top-k", type=int, default=8)
    ap.add_argument("--expert-width", type=int, default=512)
    ap.add_argument("--tokenizer", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "tokenizers", "qwen3"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    H, L, E, W = a.hidden, a.layers, a.experts, a.expert_width
    heads, kv_heads, head_dim, vocab = 16, 4, 64, 151936
    rng = np.random.default_rng(7)

    def w(*shape):
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)

    t = {"model.embed_tokens.weight": w(vocab, H), "model.norm.weight": np.ones(H, np.float16)}
    for l in range(L):
        p = f"model.layers.{l}."
        t[p + "input_layernorm.weight"] = np.ones(H, np.float16)
        t[p + "post_attention_layernorm.weight"] = np.ones(H, np.float16)
        t[p + "self_attn.q_proj.weight"] = w(heads * head_dim, H)
        t[p + "self_attn.k_proj.weight"] = w(kv_heads * head_dim, H)
        t[p + "self_attn.v_proj.weight"] = w(kv_heads * head_dim, H)
        t[p + "self_attn.o_proj.weight"] = w(H, heads * head_dim)
        t[p + "self_attn.q_norm.weight"] = np.ones(head_dim, np.float16)
        t[p + "self_attn.k_norm.weight"] = np.ones(head_dim, np.float16)
        t[p + "mlp.gate.weight"] = w(E, H)
        for e in range(E):
            q = p + f"mlp.experts.{e}."
            t[q + "gate_proj.weight"] = w(W, H)
            t[q + "up_proj.weight"] = w(W, H)
            t[q + "down_proj.weight"] = w(H, W)
    save_file(t, os.path.join(a.out, "model.safetensors"))
    config = {
        "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": H, "num_hidden_layers": L,
        "num_attention_heads": heads, "num_key_value_heads": kv_heads, "head_dim": head_dim, "intermediate_size": 4 * H,
        "moe_intermediate_size": W, "num_experts": E, "num_experts_per_tok": a.top_k, "decoder_sparse_step": 1,
        "mlp_only_layers": [], "norm_topk_prob": True, "vocab_size": vocab, "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": True, "hidden_act": "silu",
        "attention_bias": False, "bos_token_id": 151643, "eos_token_id": 151645, "torch_dtype": "float16",
    }
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        src = os.path.join(a.tokenizer, name)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(a.out, name))
    template = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "templates", "qwen3.jinja")
    if os.path.exists(template):
        shutil.copy(template, os.path.join(a.out, "chat_template.jinja"))  # the HF layout of a template
    print(f"wrote {a.out}: {L} layers, {E} experts (top-{a.top_k}), hidden {H}")


if __name__ == "__main__":
    main()
