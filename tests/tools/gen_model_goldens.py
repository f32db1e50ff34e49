#!/usr/bin/env python3
"""Generate tiny random MoE checkpoints and their reference outputs (goldens).

For each variant a tiny model is built from a config with Hugging Face transformers' own
modelling classes (random weights, fixed seeds, nothing downloaded), saved as a Hugging Face
directory with the tensor names used on the Hub (one tensor per expert), reloaded with
``from_pretrained`` and run in float32 (eager attention, eager experts). The directory gets:

  config.json, generation_config.json, *.safetensors (+ index when sharded),
  golden.json (input ids, routing trace, greedy continuation, margins), logits.npy.

Routing decisions and greedy choices are made well separated (margins >= MIN_MARGIN),
otherwise the next seed is tried, so tiny float differences in a reimplementation cannot flip
an expert choice or a generated token.

Usage: python3 tests/tools/gen_model_goldens.py [--only NAME ...] [--out DIR]
Needs: torch, transformers (5.x), safetensors, numpy. CPU only, one thread.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

import transformers  # noqa: E402
from safetensors import safe_open  # noqa: E402
from transformers import (  # noqa: E402
    DeepseekV2Config,
    DeepseekV2ForCausalLM,
    DeepseekV3Config,
    DeepseekV3ForCausalLM,
    GenerationConfig,
    Glm4MoeConfig,
    Glm4MoeForCausalLM,
    Glm4MoeLiteConfig,
    Glm4MoeLiteForCausalLM,
    GptOssConfig,
    GptOssForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    MixtralConfig,
    MixtralForCausalLM,
    Mxfp4Config,
    OlmoeConfig,
    OlmoeForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen2MoeConfig,
    Qwen2MoeForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
    Qwen3MoeConfig,
    Qwen3MoeForCausalLM,
    Qwen3_5MoeConfig,
    Qwen3_5MoeForCausalLM,
    Qwen3_5MoeForConditionalGeneration,
    Qwen3_5MoeTextConfig,
)

transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "data" / "models"

MIN_MARGIN = 1e-3
N_INPUT = 16
N_PROMPT = 8
N_NEW = 16
BOS, EOS, PAD = 1, 2, 0
INIT_RANGE = 0.2
MAX_SEEDS = 400


# --------------------------------------------------------------------------------------------
# Variants
# --------------------------------------------------------------------------------------------

def _common(vocab):
    return dict(
        vocab_size=vocab,
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=PAD,
        initializer_range=INIT_RANGE,
        attention_dropout=0.0,
    )


def cfg_mixtral():
    return MixtralConfig(
        **_common(256),
        hidden_size=48,
        intermediate_size=16,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=8,
        num_experts_per_tok=2,
        max_position_embeddings=128,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 1e6},
        sliding_window=None,
        tie_word_embeddings=False,
        router_jitter_noise=0.0,
    )


def cfg_qwen2_moe():
    return Qwen2MoeConfig(
        **_common(320),
        hidden_size=48,
        intermediate_size=64,
        moe_intermediate_size=16,
        shared_expert_intermediate_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_experts=8,
        num_experts_per_tok=3,
        norm_topk_prob=False,
        decoder_sparse_step=1,
        mlp_only_layers=[1],
        qkv_bias=True,
        max_position_embeddings=128,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1e6},
        use_sliding_window=False,
        tie_word_embeddings=False,
    )


def cfg_qwen3_moe():
    return Qwen3MoeConfig(
        **_common(256),
        hidden_size=48,
        head_dim=16,  # != hidden / heads (12)
        intermediate_size=64,
        moe_intermediate_size=16,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_experts=8,
        num_experts_per_tok=3,
        norm_topk_prob=True,
        decoder_sparse_step=2,  # MoE on layers 1 and 3, dense SwiGLU on 0 and 2
        mlp_only_layers=[],
        attention_bias=False,
        max_position_embeddings=128,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1e6},
        use_sliding_window=False,
        tie_word_embeddings=True,
    )


def cfg_olmoe():
    return OlmoeConfig(
        **_common(320),
        hidden_size=48,
        intermediate_size=16,  # expert width (OLMoE has no dense layers)
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=4,
        num_experts=8,
        num_experts_per_tok=3,
        norm_topk_prob=False,
        clip_qkv=None,
        attention_bias=False,
        max_position_embeddings=128,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 1e4},
        tie_word_embeddings=False,
    )


def cfg_olmoe_clip():
    # clip_qkv below the normed q/k magnitudes (~1): transformers clamps q and k after the q/k
    # norms, so an engine that clamps before them differs by far more than the tolerance.
    cfg = cfg_olmoe()
    cfg.clip_qkv = 0.8
    return cfg


def cfg_deepseek_v2_lite():
    return DeepseekV2Config(
        **_common(256),
        hidden_size=48,
        intermediate_size=64,
        moe_intermediate_size=16,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=4,
        q_lora_rank=None,
        kv_lora_rank=24,
        qk_nope_head_dim=16,
        qk_rope_head_dim=8,
        v_head_dim=16,
        n_routed_experts=8,
        num_experts_per_tok=3,
        n_shared_experts=2,
        first_k_dense_replace=1,
        topk_method="greedy",
        n_group=1,
        topk_group=1,
        routed_scaling_factor=1.0,
        norm_topk_prob=False,
        max_position_embeddings=128,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1e4},
        tie_word_embeddings=False,
    )


def cfg_deepseek_v2_group():
    return DeepseekV2Config(
        **_common(320),
        hidden_size=48,
        intermediate_size=64,
        moe_intermediate_size=16,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=4,
        q_lora_rank=24,
        kv_lora_rank=32,
        qk_nope_head_dim=16,
        qk_rope_head_dim=16,
        v_head_dim=24,  # != qk_nope_head_dim
        n_routed_experts=16,
        num_experts_per_tok=3,
        n_shared_experts=1,
        first_k_dense_replace=1,
        topk_method="group_limited_greedy",
        n_group=4,
        topk_group=2,
        routed_scaling_factor=1.5,
        norm_topk_prob=False,
        max_position_embeddings=8192,
        rms_norm_eps=1e-6,
        rope_parameters={
            "rope_type": "yarn",
            "rope_theta": 1e4,
            "factor": 4.0,
            "original_max_position_embeddings": 2048,
            "beta_fast": 32,
            "beta_slow": 1,
            "mscale": 1.0,
            "mscale_all_dim": 0.707,
        },
        tie_word_embeddings=False,
    )


def cfg_deepseek_v3():
    return DeepseekV3Config(
        **_common(320),
        hidden_size=48,
        intermediate_size=64,
        moe_intermediate_size=16,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=4,
        q_lora_rank=32,
        kv_lora_rank=24,
        qk_nope_head_dim=16,
        qk_rope_head_dim=16,
        v_head_dim=16,
        n_routed_experts=16,
        num_experts_per_tok=4,
        n_group=4,
        topk_group=2,
        n_shared_experts=1,
        first_k_dense_replace=1,
        norm_topk_prob=True,
        routed_scaling_factor=2.5,
        num_nextn_predict_layers=0,
        rope_interleave=True,
        max_position_embeddings=16384,
        rms_norm_eps=1e-6,
        rope_parameters={
            "rope_type": "yarn",
            "rope_theta": 1e4,
            "factor": 4.0,
            "original_max_position_embeddings": 4096,
            "beta_fast": 32,
            "beta_slow": 1,
            "mscale": 1.0,
            "mscale_all_dim": 1.0,
        },
        tie_word_embeddings=False,
    )


def cfg_gpt_oss(hidden=48, width=16):
    # Every gpt-oss option: sliding (window 5 < the 16 input tokens) and full layers alternating,
    # YaRN without truncation, biases everywhere, sinks, a clamp limit the gate/up values cross,
    # and a non-default swiglu_alpha.
    return GptOssConfig(
        **_common(256),
        hidden_size=hidden,
        intermediate_size=width,
        head_dim=16,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=8,
        num_experts_per_tok=3,
        sliding_window=5,
        layer_types=["sliding_attention", "full_attention", "full_attention", "sliding_attention"],
        swiglu_limit=1.2,
        swiglu_alpha=1.5,
        attention_bias=True,
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
        rope_parameters={
            "rope_type": "yarn",
            "rope_theta": 1e4,
            "factor": 4.0,
            "original_max_position_embeddings": 32,
            "beta_fast": 8.0,
            "beta_slow": 1.0,
            "truncate": False,
        },
        tie_word_embeddings=False,
    )


# Dense decoders (the DeepSeek-R1 distills: Qwen2 1.5B-32B, Llama 8B/70B; Qwen3 as the dense
# counterpart of Qwen3-MoE). No MoE layer: the routing trace is empty.
def cfg_qwen2():
    return Qwen2Config(
        **_common(256),
        hidden_size=48,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1e4},
        use_sliding_window=False,
        tie_word_embeddings=True,
    )


def cfg_qwen3():
    return Qwen3Config(
        **_common(256),
        hidden_size=48,
        head_dim=16,  # != hidden / heads (12)
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        attention_bias=False,
        max_position_embeddings=128,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1e6},
        use_sliding_window=False,
        tie_word_embeddings=False,
    )


def cfg_llama():
    # rope_type llama3 with an original context short enough that all three frequency bands
    # (kept, blended, divided by factor) occur at head_dim 12; q/k/v/o biases on.
    return LlamaConfig(
        **_common(256),
        hidden_size=48,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        attention_bias=True,
        mlp_bias=False,
        max_position_embeddings=512,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
        tie_word_embeddings=False,
    )


def cfg_glm4_moe():
    # GLM-4.5's options: partial rotary (half of head_dim 16), per-head q/k norm, q/k/v biases,
    # one leading dense layer, sigmoid router with correction bias in 4 groups (top-2 groups), a
    # shared expert, routed_scaling_factor.
    return Glm4MoeConfig(
        **_common(320),
        hidden_size=48,
        head_dim=16,
        intermediate_size=64,
        moe_intermediate_size=16,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        n_routed_experts=16,
        num_experts_per_tok=4,
        n_group=4,
        topk_group=2,
        n_shared_experts=1,
        first_k_dense_replace=1,
        norm_topk_prob=True,
        routed_scaling_factor=2.5,
        use_qk_norm=True,
        attention_bias=True,
        partial_rotary_factor=0.5,
        max_position_embeddings=128,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.5},
        tie_word_embeddings=False,
    )


def cfg_glm4_moe_lite():
    # GLM-4.7-Flash: DeepSeek-V3's MLA (q LoRA, interleaved rope, v_head != qk_nope) and router,
    # dense/sparse layers from mlp_layer_types (layer 1 dense, not the leading one).
    return Glm4MoeLiteConfig(
        **_common(320),
        hidden_size=48,
        intermediate_size=64,
        moe_intermediate_size=16,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=4,
        q_lora_rank=24,
        kv_lora_rank=32,
        qk_nope_head_dim=16,
        qk_rope_head_dim=8,
        v_head_dim=24,
        n_routed_experts=16,
        num_experts_per_tok=4,
        n_group=4,
        topk_group=2,
        n_shared_experts=1,
        norm_topk_prob=True,
        routed_scaling_factor=1.8,
        mlp_layer_types=["sparse", "dense", "sparse"],
        rope_interleave=True,
        max_position_embeddings=128,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 1e4},
        tie_word_embeddings=False,
    )


def _qwen3_5_moe_text(layer_types):
    # Qwen3.5-MoE's options: Gated DeltaNet linear-attention layers (2 key heads serving 4 value
    # heads, k_head_dim 8 != v_head_dim 12, conv kernel 4) between gated full-attention layers
    # (q_proj also yields the sigmoid output gate; per-head q/k norm; head_dim 16 != 48/4;
    # partial rotary 0.25 -> 4 of 16 dims, mrope sections that for text are plain rotary),
    # (1 + w) RMSNorms, softmax top-3 of 8 experts renormalised, a sigmoid-gated shared expert.
    # No padding_idx: a zero embedding row (pad = 0) would make the gated outputs and so every
    # router logit exactly 0 for a generated pad token, a tie.
    return dict(
        **dict(_common(256), pad_token_id=None),
        hidden_size=48,
        head_dim=16,
        num_hidden_layers=len(layer_types),
        layer_types=layer_types,
        num_attention_heads=4,
        num_key_value_heads=2,
        linear_num_key_heads=2,
        linear_num_value_heads=4,
        linear_key_head_dim=8,
        linear_value_head_dim=12,
        linear_conv_kernel_dim=4,
        num_experts=8,
        num_experts_per_tok=3,
        moe_intermediate_size=16,
        shared_expert_intermediate_size=32,
        attention_bias=False,
        max_position_embeddings=128,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.25,
                         "mrope_section": [1, 1, 0], "mrope_interleaved": True},
        tie_word_embeddings=False,
    )


def cfg_qwen3_5_moe():
    return Qwen3_5MoeTextConfig(**_qwen3_5_moe_text(["linear_attention", "full_attention", "linear_attention"]))


def cfg_qwen3_5_moe_vl():
    # The published layout: Qwen3_5MoeForConditionalGeneration with a (tiny) vision tower, the
    # text model under model.language_model.*, its config under text_config.
    text = _qwen3_5_moe_text(["linear_attention", "full_attention", "linear_attention"])
    vision = dict(depth=1, hidden_size=8, num_heads=2, intermediate_size=8, in_channels=3, patch_size=2,
                  temporal_patch_size=1, spatial_merge_size=1, out_hidden_size=48, num_position_embeddings=4)
    return Qwen3_5MoeConfig(text_config=text, vision_config=vision, tie_word_embeddings=False,
                            image_token_id=250, video_token_id=251, vision_start_token_id=252,
                            vision_end_token_id=253)


# name -> cfg: config factory, cls: model class, router: softmax|v2|v3, dtype: saved weight dtype,
#         seed: first seed tried, hub_extra: extra Hub config.json fields, shard: max_shard_size.
# Entries with "base" are the base model (same seed, same weights) saved in another dtype.
VARIANTS = {
    "mixtral": dict(cfg=cfg_mixtral, cls=MixtralForCausalLM, router="softmax", dtype="float32", seed=1000),
    "qwen2-moe": dict(cfg=cfg_qwen2_moe, cls=Qwen2MoeForCausalLM, router="softmax", dtype="float32", seed=2000),
    "qwen3-moe": dict(cfg=cfg_qwen3_moe, cls=Qwen3MoeForCausalLM, router="softmax", dtype="float32", seed=3000),
    "olmoe": dict(cfg=cfg_olmoe, cls=OlmoeForCausalLM, router="softmax", dtype="float32", seed=4000),
    "olmoe-clip": dict(cfg=cfg_olmoe_clip, cls=OlmoeForCausalLM, router="softmax", dtype="float32", seed=4500),
    "deepseek-v2-lite": dict(
        cfg=cfg_deepseek_v2_lite, cls=DeepseekV2ForCausalLM, router="v2", dtype="float32", seed=5000,
        hub_extra={"scoring_func": "softmax", "moe_layer_freq": 1},
    ),
    "deepseek-v2-group": dict(
        cfg=cfg_deepseek_v2_group, cls=DeepseekV2ForCausalLM, router="v2", dtype="float32", seed=6000,
        hub_extra={"scoring_func": "softmax", "moe_layer_freq": 1},
    ),
    "deepseek-v3": dict(
        cfg=cfg_deepseek_v3, cls=DeepseekV3ForCausalLM, router="v3", dtype="float32", seed=7000,
        hub_extra={"scoring_func": "sigmoid", "topk_method": "noaux_tc", "moe_layer_freq": 1},
        shard="120KB", companion="deepseek-v3-bf16",
    ),
    "deepseek-v3-bf16": dict(base="deepseek-v3", dtype="bfloat16", shard="60KB"),
    "olmoe-f16": dict(base="olmoe", dtype="float16"),
    "glm4-moe-lite": dict(cfg=cfg_glm4_moe_lite, cls=Glm4MoeLiteForCausalLM, router="v3", dtype="float32",
                          seed=11000),
    "glm4-moe": dict(cfg=cfg_glm4_moe, cls=Glm4MoeForCausalLM, router="v3", dtype="float32", seed=10000),
    "gpt-oss": dict(cfg=cfg_gpt_oss, cls=GptOssForCausalLM, router="gptoss", dtype="float32", seed=8000),
    # The released gpt-oss form: experts in MXFP4 (`*_blocks` / `*_scales`, quant_method mxfp4),
    # hidden and expert width multiples of 32; transformers dequantises them when it loads.
    "gpt-oss-mxfp4": dict(cfg=lambda: cfg_gpt_oss(hidden=64, width=32), cls=GptOssForCausalLM, router="gptoss",
                          dtype="float32", seed=8500, mxfp4=True),
    "qwen2": dict(cfg=cfg_qwen2, cls=Qwen2ForCausalLM, router="softmax", dtype="float32", seed=9000),
    "qwen3": dict(cfg=cfg_qwen3, cls=Qwen3ForCausalLM, router="softmax", dtype="float32", seed=9100),
    "llama": dict(cfg=cfg_llama, cls=LlamaForCausalLM, router="softmax", dtype="float32", seed=9200),
    # Qwen3.5 configs keep transformers 5's rope_parameters (with mrope_section) on the Hub.
    "qwen3.5-moe": dict(cfg=cfg_qwen3_5_moe, cls=Qwen3_5MoeForCausalLM, router="softmax", dtype="float32",
                        seed=12000, keep_rope_parameters=True, router_scale=0.5, max_fp32_rel_err=4e-6),
    "qwen3.5-moe-vl": dict(cfg=cfg_qwen3_5_moe_vl, cls=Qwen3_5MoeForConditionalGeneration, router="softmax",
                           dtype="float32", seed=12500, keep_rope_parameters=True, router_scale=0.5,
                           max_fp32_rel_err=4e-6),
}

# Multimodal layouts keep the language model under model.language_model.* (Qwen3.5's published
# checkpoints); the text model's tensors are named as in its own causal LM after that prefix.
LM_ROOT = {"qwen3_5_moe": "model.language_model."}


def lm_root(arch):
    return LM_ROOT.get(arch, "model.")


def text_config(cfg):
    return cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg

TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# --------------------------------------------------------------------------------------------
# Model construction
# --------------------------------------------------------------------------------------------

def build_model(spec, seed):
    """Random model in fp32 with well-spread weights: norm weights, biases and the V3 score
    correction bias are randomised too (defaults of 1 / 0 would hide bugs)."""
    cfg = spec["cfg"]()
    cfg._attn_implementation = "eager"
    cfg._experts_implementation = "eager"
    torch.manual_seed(seed)
    model = spec["cls"](cfg).to(torch.float32).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if name.endswith("norm.weight"):
                p.copy_(torch.empty(p.shape).uniform_(0.6, 1.4, generator=g))
            elif name.endswith(".bias") or name.endswith("_bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
            elif name.endswith(".sinks"):  # gpt-oss: sink logits of the order of the scores
                p.copy_(torch.randn(p.shape, generator=g))
            if spec.get("router_scale") and name.endswith("mlp.gate.weight"):
                p.mul_(spec["router_scale"])  # narrower router logits: the (1 + w) norms saturate the softmax
        for name, b in sorted(model.named_buffers(), key=lambda kv: kv[0]):
            if name.endswith("e_score_correction_bias"):
                # non-negative: every biased score sigmoid(x) + b is > 0, so masking unselected
                # groups with 0.0 or with -inf selects the same experts (see README).
                b.copy_(torch.empty(b.shape).uniform_(0.02, 0.3, generator=g))
    return model


# MXFP4 (OCP microscaling FP4) as the gpt-oss checkpoints hold it: per 32 consecutive inputs of a
# row one E8M0 exponent (bias 127) and 32 E2M1 codes, two per byte (element 2j in the low nibble).
FP4 = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0])


def mxfp4_quantize(w):
    """w [..., rows, in] -> (blocks uint8 [..., rows, in/32, 16], scales uint8 [..., rows, in/32],
    the dequantised values): nearest code after scaling each block's max |w| to at most 6."""
    *pre, R, C = w.shape
    g = w.reshape(*pre, R, C // 32, 32)
    amax = np.abs(g).max(-1)
    e = np.where(amax > 0, np.ceil(np.log2(np.maximum(amax, 1e-30) / 6.0)), 0).astype(np.int64)
    q = g / np.ldexp(1.0, e)[..., None]
    idx = np.abs(np.abs(q)[..., None] - FP4[:8]).argmin(-1)
    code = idx + np.where(q < 0, 8, 0)
    blocks = (code[..., 0::2] | (code[..., 1::2] << 4)).astype(np.uint8)
    return blocks, (e + 127).astype(np.uint8), mxfp4_dequantize(blocks, (e + 127).astype(np.uint8))


def mxfp4_dequantize(blocks, scales):
    """Independent of transformers' convert_moe_packed_tensors: [..., rows, G, 16] -> [..., rows, G·32]."""
    codes = np.stack([blocks & 0x0F, blocks >> 4], -1).reshape(*blocks.shape[:-1], 32)
    vals = FP4[codes] * np.ldexp(1.0, scales.astype(np.int64) - 127)[..., None]
    return vals.reshape(*blocks.shape[:-2], -1)


def mxfp4_round_experts(model):
    """Rounds every expert matrix to MXFP4 values in place (the in-memory model then equals what
    transformers dequantises from the saved blocks). Returns {tensor name: (blocks, scales)}."""
    packed = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not (name.endswith("experts.gate_up_proj") or name.endswith("experts.down_proj")):
                continue
            rows_in = p.detach().double().transpose(1, 2).numpy()  # [E, out, in]
            blocks, scales, deq = mxfp4_quantize(rows_in)
            p.copy_(torch.from_numpy(deq).transpose(1, 2).to(p.dtype))
            packed[name] = (blocks, scales)
    return packed


def mxfp4_rewrite(out: Path, packed):
    """Replaces the saved fused expert tensors by their blocks and scales; marks the config."""
    from safetensors.torch import save_file
    files = sorted(out.glob("*.safetensors"))
    assert len(files) == 1, "mxfp4 variant must not be sharded"
    t = load_tensors(out, dequantize=False)
    for name, (blocks, scales) in packed.items():
        del t[name]
        t[name + "_blocks"] = torch.from_numpy(blocks)
        t[name + "_scales"] = torch.from_numpy(scales)
    save_file({k: v.contiguous() for k, v in sorted(t.items())}, str(files[0]), metadata={"format": "pt"})
    cfg = json.loads((out / "config.json").read_text())
    cfg["quantization_config"] = {
        "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens",
                                   "lm_head"],
        "quant_method": "mxfp4"}
    (out / "config.json").write_text(json.dumps(dict(sorted(cfg.items())), indent=2) + "\n")


def hubify_config(path: Path, hub_extra: dict | None, dtype_name: str, keep_rope_parameters=False):
    """Rewrite transformers 5 config.json into the layout published on the Hub:
    rope_theta + rope_scaling (legacy names) instead of rope_parameters, torch_dtype, no derived
    DeepSeek fields (head_dim, qk_head_dim). keep_rope_parameters: the Hub config has them too
    (Qwen3.5, published with transformers 5)."""
    cfg = json.loads(path.read_text())
    if keep_rope_parameters:
        cfg["dtype"] = dtype_name
        cfg["torch_dtype"] = dtype_name
        path.write_text(json.dumps(dict(sorted(cfg.items())), indent=2) + "\n")
        return
    rp = cfg.pop("rope_parameters")
    cfg["rope_theta"] = rp["rope_theta"]
    if "partial_rotary_factor" in rp:  # top-level on the Hub (GLM-4.5)
        cfg["partial_rotary_factor"] = rp.pop("partial_rotary_factor")
    if rp.get("rope_type", "default") == "default":
        cfg["rope_scaling"] = None
    else:
        rs = {k: v for k, v in rp.items() if k not in ("rope_type", "rope_theta")}
        rs["type"] = rp["rope_type"]
        cfg["rope_scaling"] = dict(sorted(rs.items()))
    if cfg.get("model_type", "").startswith("deepseek"):
        cfg.pop("head_dim", None)
        cfg.pop("qk_head_dim", None)
    if "head_dim" in cfg and cfg["head_dim"] is None:
        cfg.pop("head_dim")
    cfg["dtype"] = dtype_name
    cfg["torch_dtype"] = dtype_name
    if hub_extra:
        cfg.update(hub_extra)
    path.write_text(json.dumps(dict(sorted(cfg.items())), indent=2) + "\n")


def save_dir(model, out: Path, dtype_name: str, hub_extra, shard, packed=None, keep_rope_parameters=False):
    if out.exists():
        shutil.rmtree(out)
    m = model
    if dtype_name != "float32":
        m = copy.deepcopy(model).to(TORCH_DTYPES[dtype_name])
        # e_score_correction_bias stays float32 (transformers keeps it fp32; mixed-dtype file)
        with torch.no_grad():
            for (n, b), (_, b0) in zip(m.named_buffers(), model.named_buffers()):
                if n.endswith("e_score_correction_bias"):
                    b.data = b0.detach().clone().to(torch.float32)
    m.generation_config = GenerationConfig(bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD)
    kw = {"max_shard_size": shard} if shard else {}
    m.save_pretrained(out, **kw)
    hubify_config(out / "config.json", hub_extra, dtype_name, keep_rope_parameters)
    if packed:
        mxfp4_rewrite(out, packed)


def load_tensors(d: Path, dequantize=True) -> dict[str, torch.Tensor]:
    """Every tensor of the directory; MXFP4 `X_blocks` / `X_scales` pairs also as the fused `X`
    ([E, in, out], as transformers keeps it), dequantised by mxfp4_dequantize."""
    out = {}
    for f in sorted(d.glob("*.safetensors")):
        with safe_open(str(f), "pt") as fh:
            for k in fh.keys():
                out[k] = fh.get_tensor(k)
    if dequantize:
        for k in [k for k in out if k.endswith("_blocks")]:
            base = k[: -len("_blocks")]
            w = mxfp4_dequantize(out[k].numpy(), out[base + "_scales"].numpy())
            out[base] = torch.from_numpy(w).transpose(1, 2).float()
    return out


def load_model(spec, d: Path):
    kw = {"quantization_config": Mxfp4Config(dequantize=True)} if spec.get("mxfp4") else {}
    return spec["cls"].from_pretrained(
        d, dtype=torch.float32, attn_implementation="eager", experts_implementation="eager", **kw
    ).eval()


# --------------------------------------------------------------------------------------------
# Routing: capture and independent recomputation
# --------------------------------------------------------------------------------------------

class Capture:
    """Forward hooks on every router (model.layers.N.mlp.gate) and MoE block (model.layers.N.mlp)."""

    def __init__(self, model):
        self.router = {}
        self.block = {}
        self.handles = []
        for name, mod in model.named_modules():
            parts = name.replace("model.language_model.", "model.", 1).split(".")
            if len(parts) == 5 and parts[:2] == ["model", "layers"] and parts[3] == "mlp" and parts[4] in ("gate", "router"):
                layer = int(parts[2])
                self.handles.append(mod.register_forward_hook(self._router_hook(layer)))
            if len(parts) == 4 and parts[:2] == ["model", "layers"] and parts[3] == "mlp" and (
                    hasattr(mod, "gate") or hasattr(mod, "router")):
                layer = int(parts[2])
                self.handles.append(mod.register_forward_hook(self._block_hook(layer)))

    def _router_hook(self, layer):
        def hook(mod, inp, out):
            logits, weights, idx = out
            self.router[layer] = (logits.detach().float().clone(), weights.detach().float().clone(),
                                  idx.detach().clone(), mod)
        return hook

    def _block_hook(self, layer):
        def hook(mod, inp, out):
            x = inp[0].detach().reshape(-1, inp[0].shape[-1]).float().clone()
            out = out[0] if isinstance(out, tuple) else out  # gpt-oss: (hidden, router scores)
            y = out.detach().reshape(-1, out.shape[-1]).float().clone()
            self.block[layer] = (x, y)
        return hook

    def clear(self):
        self.router.clear()
        self.block.clear()

    def remove(self):
        for h in self.handles:
            h.remove()


def recompute_routing(kind, logits, gate, cfg, group_fill):
    """Independent recomputation (float64 numpy) from the router logits.

    Returns per token: experts (descending selection score), final weights (same order),
    expert margin (k-th minus (k+1)-th allowed selection score), group margin (or None)."""
    lg = logits.double().numpy()
    T, E = lg.shape
    k = cfg.num_experts_per_tok
    res = []
    for t in range(T):
        x = lg[t]
        gmargin = None
        if kind == "softmax" or kind == "v2":
            p = np.exp(x - x.max())
            p /= p.sum()
            score = p.copy()  # selection score
            weight_src = p
            allowed = np.ones(E, bool)
            if kind == "v2" and cfg.topk_method == "group_limited_greedy":
                G, TG = cfg.n_group, cfg.topk_group
                gs = score.reshape(G, E // G).max(-1)
                order = np.argsort(-gs, kind="stable")
                gmargin = gs[order[TG - 1]] - gs[order[TG]]
                allowed = np.zeros(E, bool)
                for gi in order[:TG]:
                    allowed[gi * (E // G):(gi + 1) * (E // G)] = True
        elif kind == "gptoss":  # top-k on the raw logits, softmax over the k selected
            score = x.copy()
            weight_src = None
            allowed = np.ones(E, bool)
        elif kind == "v3":
            s = 1.0 / (1.0 + np.exp(-x))
            bias = gate.e_score_correction_bias.detach().double().numpy()
            score = s + bias
            weight_src = s
            G, TG = cfg.n_group, cfg.topk_group
            gsz = E // G
            gs = np.sort(score.reshape(G, gsz), axis=-1)[:, -2:].sum(-1)
            order = np.argsort(-gs, kind="stable")
            gmargin = gs[order[TG - 1]] - gs[order[TG]]
            allowed = np.zeros(E, bool)
            for gi in order[:TG]:
                allowed[gi * gsz:(gi + 1) * gsz] = True
        else:
            raise ValueError(kind)
        masked = np.where(allowed, score, group_fill)
        order = np.argsort(-masked, kind="stable")
        sel = order[:k]
        emargin = masked[order[k - 1]] - masked[order[k]]
        if kind == "gptoss":
            w = np.exp(x[sel] - x[sel].max())
            w /= w.sum()
        else:
            w = weight_src[sel].copy()
        if kind == "softmax":
            if getattr(cfg, "norm_topk_prob", True) or cfg.model_type == "mixtral":
                w = w / w.sum()
        elif kind == "v2":
            w = w * cfg.routed_scaling_factor
        elif kind == "v3":
            if cfg.norm_topk_prob:
                w = w / (w.sum() + 1e-20)
            w = w * cfg.routed_scaling_factor
        res.append((sel.tolist(), w, float(emargin), None if gmargin is None else float(gmargin)))
    return res


def routing_from_capture(kind, cap, cfg, moe_layers):
    """Routing trace from the hooked router outputs (experts sorted by selection score), checked
    against the independent recomputation. Returns (routing list, min expert margin, min group
    margin, number of tokens whose V3 choice differs from the unbiased choice)."""
    routing = []
    min_e, min_g = math.inf, math.inf
    bias_changed = 0
    for layer in moe_layers:
        logits, weights, idx, gate = cap.router[layer]
        ref = recompute_routing(kind, logits, gate, cfg, -np.inf)
        if kind in ("v2", "v3"):
            # 0.0-masking (transformers V2, older transformers V3) must give the same choice
            alt = recompute_routing(kind, logits, gate, cfg, 0.0)
            for (a, _, _, _), (b, _, _, _) in zip(ref, alt):
                assert a == b, f"layer {layer}: -inf vs 0 group masking differ: {a} vs {b}"
        experts, ws = [], []
        for t, (sel, w_ref, em, gm) in enumerate(ref):
            hooked = idx[t].tolist()
            assert sorted(hooked) == sorted(sel), f"layer {layer} token {t}: hook {hooked} vs recompute {sel}"
            pos = {e: j for j, e in enumerate(hooked)}
            w = [float(weights[t, pos[e]]) for e in sel]
            assert np.allclose(w, w_ref, rtol=1e-5, atol=1e-6), (layer, t, w, w_ref)
            experts.append([int(e) for e in sel])
            ws.append([float(np.float32(v)) for v in w])
            min_e = min(min_e, em)
            if gm is not None:
                min_g = min(min_g, gm)
            if kind == "v3":
                s = 1.0 / (1.0 + np.exp(-logits[t].double().numpy()))
                if sorted(np.argsort(-s, kind="stable")[: cfg.num_experts_per_tok].tolist()) != sorted(sel):
                    bias_changed += 1
        routing.append({"layer": layer, "experts": experts, "weights": ws})
    return routing, min_e, (None if min_g == math.inf else min_g), bias_changed


def moe_prefix(arch, layer):
    return f"model.layers.{layer}.block_sparse_moe" if arch == "mixtral" else f"{lm_root(arch)}layers.{layer}.mlp"


def verify_block_outputs(arch, cap, routing, tensors, cfg_of_block=None):
    """Recompute each MoE block output from the Hub-layout tensors in the saved files and the
    captured routing (experts + final weights): proves layout, orientation and weights."""
    worst = 0.0
    for r in routing:
        layer = r["layer"]
        x, y = cap.block[layer]
        x = x.double()
        p = moe_prefix(arch, layer)
        out = torch.zeros_like(x)
        for t in range(x.shape[0]):
            for e, w in zip(r["experts"][t], r["weights"][t]):
                if arch == "gpt_oss":
                    gu = x[t] @ tensors[f"{p}.experts.gate_up_proj"][e].double() + \
                        tensors[f"{p}.experts.gate_up_proj_bias"][e].double()
                    lim, alpha = cfg_of_block["swiglu_limit"], cfg_of_block["swiglu_alpha"]
                    gt, up = gu[0::2].clamp(max=lim), gu[1::2].clamp(-lim, lim)
                    h = (up + 1) * gt * torch.sigmoid(alpha * gt)
                    out[t] += w * (h @ tensors[f"{p}.experts.down_proj"][e].double() +
                                   tensors[f"{p}.experts.down_proj_bias"][e].double())
                    continue
                if arch == "mixtral":
                    g_, u_, d_ = (tensors[f"{p}.experts.{e}.{n}.weight"].double() for n in ("w1", "w3", "w2"))
                else:
                    g_, u_, d_ = (tensors[f"{p}.experts.{e}.{n}_proj.weight"].double() for n in ("gate", "up", "down"))
                h = F.silu(g_ @ x[t]) * (u_ @ x[t])
                out[t] += w * (d_ @ h)
        if arch in ("deepseek_v2", "deepseek_v3", "glm4_moe", "glm4_moe_lite"):
            g_, u_, d_ = (tensors[f"{p}.shared_experts.{n}_proj.weight"].double() for n in ("gate", "up", "down"))
            out += (F.silu(x @ g_.T) * (x @ u_.T)) @ d_.T
        elif arch in ("qwen2_moe", "qwen3_5_moe", "qwen3_5_moe_text"):
            g_, u_, d_ = (tensors[f"{p}.shared_expert.{n}_proj.weight"].double() for n in ("gate", "up", "down"))
            sg = torch.sigmoid(x @ tensors[f"{p}.shared_expert_gate.weight"].double().T)
            out += sg * ((F.silu(x @ g_.T) * (x @ u_.T)) @ d_.T)
        err = (out - y.double()).abs().max().item() / max(1.0, y.abs().max().item())
        worst = max(worst, err)
        assert err < 1e-5, f"layer {layer}: MoE block recomputation differs by {err}"
    return worst


def check_hub_layout(arch, tensors, cfg, moe_layers):
    names = set(tensors)
    if arch == "gpt_oss":  # fused experts as transformers and the Hub keep them
        E, H, I = cfg.num_local_experts, cfg.hidden_size, cfg.intermediate_size
        for layer in moe_layers:
            p = moe_prefix(arch, layer)
            want = {f"{p}.router.weight": (E, H), f"{p}.router.bias": (E,),
                    f"{p}.experts.gate_up_proj": (E, H, 2 * I), f"{p}.experts.gate_up_proj_bias": (E, 2 * I),
                    f"{p}.experts.down_proj": (E, I, H), f"{p}.experts.down_proj_bias": (E, H),
                    f"model.layers.{layer}.self_attn.sinks": (cfg.num_attention_heads,)}
            if f"{p}.experts.gate_up_proj_blocks" in names:  # MXFP4, rows [out, in / 32 blocks]
                want.update({f"{p}.experts.gate_up_proj_blocks": (E, 2 * I, H // 32, 16),
                             f"{p}.experts.gate_up_proj_scales": (E, 2 * I, H // 32),
                             f"{p}.experts.down_proj_blocks": (E, H, I // 32, 16),
                             f"{p}.experts.down_proj_scales": (E, H, I // 32)})
            for k, shp in want.items():
                assert k in names and tuple(tensors[k].shape) == shp, (k, tensors.get(k, None))
        return
    for layer in moe_layers:
        p = moe_prefix(arch, layer)
        assert f"{p}.gate.weight" in names, f"{p}.gate.weight missing"
        E = cfg.num_local_experts if arch == "mixtral" else (
            cfg.n_routed_experts if arch.startswith("deepseek") or arch.startswith("glm4_moe") else cfg.num_experts)
        H = cfg.hidden_size
        for e in range(E):
            if arch == "mixtral":
                I = cfg.intermediate_size
                shp = {"w1": (I, H), "w3": (I, H), "w2": (H, I)}
            else:
                I = cfg.moe_intermediate_size if hasattr(cfg, "moe_intermediate_size") else cfg.intermediate_size
                shp = {"gate_proj": (I, H), "up_proj": (I, H), "down_proj": (H, I)}
            for n, s in shp.items():
                key = f"{p}.experts.{e}.{n}.weight"
                assert key in names and tuple(tensors[key].shape) == s, (key, tensors.get(key, None))
        if arch in ("deepseek_v3", "glm4_moe", "glm4_moe_lite"):
            assert f"{p}.gate.e_score_correction_bias" in names
        if arch.startswith("deepseek") or arch.startswith("glm4_moe"):
            assert f"{p}.shared_experts.gate_proj.weight" in names
        if arch in ("qwen2_moe", "qwen3_5_moe", "qwen3_5_moe_text"):
            assert f"{p}.shared_expert.gate_proj.weight" in names and f"{p}.shared_expert_gate.weight" in names
    assert not any("gate_up_proj" in n for n in names), "fused expert tensors in checkpoint"



# --------------------------------------------------------------------------------------------
# Independent float64 NumPy forward from config.json + safetensors only (no transformers).
# It documents, in plain code, the semantics the engine has to reproduce, and checks the goldens.
# --------------------------------------------------------------------------------------------

def _np_rms(x, w, eps):
    return w * (x / np.sqrt((x * x).mean(-1, keepdims=True) + eps))


def _np_mscale(scale, m=1.0):
    return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0


def _np_rope_tables(cfg, d, n):
    theta = float(cfg.get("rope_theta", 10000.0))
    inv = 1.0 / theta ** (np.arange(0, d, 2, dtype=np.float64) / d)
    att = 1.0
    rs = cfg.get("rope_scaling")
    if rs and rs.get("type", rs.get("rope_type")) == "yarn":
        factor, orig = float(rs["factor"]), float(rs["original_max_position_embeddings"])
        bf, bs = rs.get("beta_fast") or 32, rs.get("beta_slow") or 1
        corr = lambda r: d * math.log(orig / (r * 2 * math.pi)) / (2 * math.log(theta))  # noqa: E731
        low, high = corr(bf), corr(bs)
        if rs.get("truncate", True):
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, d - 1)
        if low == high:
            high += 0.001
        ramp = np.clip((np.arange(d // 2) - low) / (high - low), 0, 1)
        extra = 1 - ramp  # 1: keep the original frequency, 0: divide it by factor
        inv = inv / factor * (1 - extra) + inv * extra
        ms, msa = rs.get("mscale"), rs.get("mscale_all_dim")
        att = _np_mscale(factor, ms) / _np_mscale(factor, msa) if (ms and msa) else _np_mscale(factor)
    if rs and rs.get("type", rs.get("rope_type")) == "llama3":
        f, lo, hi, orig = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
        wl = 2 * math.pi / inv
        smooth = (orig / wl - lo) / (hi - lo)
        inv = np.where(wl < orig / hi, inv, np.where(wl > orig / lo, inv / f, (1 - smooth) * inv / f + smooth * inv))
    ang = np.arange(n, dtype=np.float64)[:, None] * inv[None, :]
    return np.cos(ang) * att, np.sin(ang) * att


def _np_rope(v, cos, sin, interleaved):
    """v [T, heads, d]. interleaved: pairs (x0,x1),(x2,x3)... rotated in place (DeepSeek);
    otherwise rotate_half pairs (x_i, x_{i+d/2})."""
    c, s = cos[:, None, :], sin[:, None, :]
    out = np.empty_like(v)
    if interleaved:
        a, b = v[..., 0::2], v[..., 1::2]
        out[..., 0::2], out[..., 1::2] = a * c - b * s, b * c + a * s
    else:
        h = v.shape[-1] // 2
        a, b = v[..., :h], v[..., h:]
        out[..., :h], out[..., h:] = a * c - b * s, b * c + a * s
    return out


def _np_attend(q, k, v, scale, window=0, sinks=None):
    """q [T,H,dq], k [T,H,dq], v [T,H,dv], causal; softmax per head. window > 0: query t sees
    keys (t - window, t]. sinks [H]: one more logit per head in the softmax, with no value."""
    T = q.shape[0]
    s = np.einsum("thd,uhd->htu", q, k) * scale
    s = s + np.triu(np.full((T, T), -np.inf), 1)[None]
    if window:
        s = s + np.tril(np.full((T, T), -np.inf), -window)[None]
    if sinks is not None:
        s = np.concatenate([s, np.broadcast_to(sinks[:, None, None], (s.shape[0], T, 1))], -1)
    s = np.exp(s - s.max(-1, keepdims=True))
    s /= s.sum(-1, keepdims=True)
    if sinks is not None:
        s = s[..., :-1]
    return np.einsum("htu,uhd->thd", s, v).reshape(T, -1)


def _np_swiglu(x, g, u, d):
    a = x @ g.T
    return ((a / (1 + np.exp(-a))) * (x @ u.T)) @ d.T


def _np_gated_deltanet(h, W, a, cfg):
    """Qwen3.5's Gated DeltaNet layer over h [T, D], token by token from a zero state (the
    delta rule with decay, as the papers write it; transformers prefills it in chunks)."""
    T = h.shape[0]
    nk, nv = cfg["linear_num_key_heads"], cfg["linear_num_value_heads"]
    dk, dv, K = cfg["linear_key_head_dim"], cfg["linear_value_head_dim"], cfg["linear_conv_kernel_dim"]
    qkv = h @ W[a + "in_proj_qkv.weight"].T                       # [T, 2·nk·dk + nv·dv]
    w = W[a + "conv1d.weight"][:, 0, :]                           # [channels, K]
    pad = np.concatenate([np.zeros((K - 1, qkv.shape[1])), qkv], 0)
    conv = np.stack([(pad[t:t + K] * w.T).sum(0) for t in range(T)])  # causal, depthwise
    conv = conv / (1 + np.exp(-conv))                             # silu
    q = conv[:, :nk * dk].reshape(T, nk, dk)
    k = conv[:, nk * dk:2 * nk * dk].reshape(T, nk, dk)
    v = conv[:, 2 * nk * dk:].reshape(T, nv, dv)
    l2 = lambda x: x / np.sqrt((x * x).sum(-1, keepdims=True) + 1e-6)  # noqa: E731
    q, k = l2(q) / math.sqrt(dk), l2(k)
    beta = 1 / (1 + np.exp(-(h @ W[a + "in_proj_b.weight"].T)))   # [T, nv]
    a_in = h @ W[a + "in_proj_a.weight"].T + W[a + "dt_bias"]
    g = -np.exp(W[a + "A_log"]) * np.where(a_in > 20, a_in, np.log1p(np.exp(np.minimum(a_in, 20))))
    z = (h @ W[a + "in_proj_z.weight"].T).reshape(T, nv, dv)
    o = np.zeros((T, nv, dv))
    for hv in range(nv):
        kh = hv // (nv // nk)
        S = np.zeros((dk, dv))
        for t in range(T):
            S = S * np.exp(g[t, hv])
            S = S + np.outer(k[t, kh], beta[t, hv] * (v[t, hv] - k[t, kh] @ S))
            o[t, hv] = q[t, kh] @ S
    o = o / np.sqrt((o * o).mean(-1, keepdims=True) + cfg["rms_norm_eps"]) * W[a + "norm.weight"]
    o = o * (z / (1 + np.exp(-z)))
    return o.reshape(T, -1) @ W[a + "out_proj.weight"].T


def numpy_reference_forward(d: Path, ids):
    cfg = json.loads((d / "config.json").read_text())
    W = {k: v.double().numpy() for k, v in load_tensors(d).items()}
    root = lm_root(cfg["model_type"])
    if "text_config" in cfg:  # multimodal layout: the text model's config (the top-level tie wins)
        cfg = dict(cfg["text_config"], tie_word_embeddings=cfg.get("tie_word_embeddings", False))
    if "rope_parameters" in cfg:  # transformers 5 / Qwen3.5 spelling; text mrope = plain rotary
        rp = cfg["rope_parameters"]
        assert rp.get("rope_type", "default") == "default"
        cfg = dict(cfg, rope_theta=rp["rope_theta"], rope_scaling=None,
                   partial_rotary_factor=rp.get("partial_rotary_factor", cfg.get("partial_rotary_factor", 1.0)))
    W = {("model." + k[len(root):] if k.startswith(root) else k): v for k, v in W.items()}
    mt = cfg["model_type"]
    q35 = mt == "qwen3_5_moe_text"  # (1 + w) norms, gated attention, linear-attention layers
    norm_w = (lambda w: 1.0 + w) if q35 else (lambda w: w)
    T, Hd, H = len(ids), cfg["hidden_size"], cfg["num_attention_heads"]
    eps = cfg["rms_norm_eps"]
    mla = mt.startswith("deepseek") or mt == "glm4_moe_lite"
    if mla:
        dn, dr, dv = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
        cos, sin = _np_rope_tables(cfg, dr, T)
        scale = (dn + dr) ** -0.5
        rs = cfg.get("rope_scaling")
        if rs and rs.get("mscale_all_dim"):
            scale *= _np_mscale(rs["factor"], rs["mscale_all_dim"]) ** 2
        interleaved = mt == "deepseek_v2" or cfg.get("rope_interleave", True)
    else:
        hd = cfg.get("head_dim") or Hd // H
        KV = cfg["num_key_value_heads"]
        rd = int(hd * cfg.get("partial_rotary_factor", 1.0))  # rotated dims (GLM: the first half)
        cos, sin = _np_rope_tables(cfg, rd, T)
        scale = hd ** -0.5
    x = W["model.embed_tokens.weight"][ids]
    routing = {}
    for L in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{L}."
        h = _np_rms(x, norm_w(W[p + "input_layernorm.weight"]), eps)
        a = p + "self_attn."
        gate = None
        if q35 and cfg["layer_types"][L] == "linear_attention":
            x = x + _np_gated_deltanet(h, W, p + "linear_attn.", cfg)
        elif mla:
            if cfg.get("q_lora_rank"):
                q = _np_rms(h @ W[a + "q_a_proj.weight"].T, W[a + "q_a_layernorm.weight"], 1e-6) @ W[a + "q_b_proj.weight"].T
            else:
                q = h @ W[a + "q_proj.weight"].T
            q = q.reshape(T, H, dn + dr)
            ckv = h @ W[a + "kv_a_proj_with_mqa.weight"].T
            lat = _np_rms(ckv[:, : cfg["kv_lora_rank"]], W[a + "kv_a_layernorm.weight"], 1e-6)
            kpe = _np_rope(ckv[:, None, cfg["kv_lora_rank"]:], cos, sin, interleaved)
            kv = (lat @ W[a + "kv_b_proj.weight"].T).reshape(T, H, dn + dv)
            qq = np.concatenate([q[..., :dn], _np_rope(q[..., dn:], cos, sin, interleaved)], -1)
            kk = np.concatenate([kv[..., :dn], np.broadcast_to(kpe, (T, H, dr))], -1)
            o = _np_attend(qq, kk, kv[..., dn:], scale)
        else:
            def proj(n):
                y = h @ W[a + n + "_proj.weight"].T
                return y + W[a + n + "_proj.bias"] if a + n + "_proj.bias" in W else y
            q, k, v = proj("q"), proj("k"), proj("v")
            if q35:  # q_proj per head: [query (hd), gate (hd)]
                q, gate = q.reshape(T, H, 2, hd)[:, :, 0], q.reshape(T, H, 2, hd)[:, :, 1].reshape(T, -1)
            if mt == "olmoe":  # full-width q/k norm before the head split and rope
                q, k = _np_rms(q, W[a + "q_norm.weight"], eps), _np_rms(k, W[a + "k_norm.weight"], eps)
                if cfg.get("clip_qkv"):  # clamped after the norms (transformers' OlmoeAttention)
                    c = cfg["clip_qkv"]
                    q, k, v = np.clip(q, -c, c), np.clip(k, -c, c), np.clip(v, -c, c)
            q, k, v = q.reshape(T, H, hd), k.reshape(T, KV, hd), v.reshape(T, KV, hd)
            if mt in ("qwen3_moe", "qwen3") or q35 or (mt == "glm4_moe" and cfg.get("use_qk_norm")):  # per head, before rope
                q, k = _np_rms(q, norm_w(W[a + "q_norm.weight"]), eps), _np_rms(k, norm_w(W[a + "k_norm.weight"]), eps)
            q = np.concatenate([_np_rope(q[..., :rd], cos, sin, False), q[..., rd:]], -1)
            k = np.concatenate([_np_rope(k[..., :rd], cos, sin, False), k[..., rd:]], -1)
            rep = H // KV
            window = 0
            if mt == "gpt_oss" and cfg["layer_types"][L] == "sliding_attention":
                window = cfg["sliding_window"]
            o = _np_attend(q, np.repeat(k, rep, 1), np.repeat(v, rep, 1), scale, window, W.get(a + "sinks"))
        if not (q35 and cfg["layer_types"][L] == "linear_attention"):
            if gate is not None:
                o = o / (1 + np.exp(-gate))  # sigmoid output gate
            x = x + o @ W[a + "o_proj.weight"].T
            if a + "o_proj.bias" in W:
                x = x + W[a + "o_proj.bias"]
        h = _np_rms(x, norm_w(W[p + "post_attention_layernorm.weight"]), eps)
        if mt == "gpt_oss":  # router with bias, softmax over the top-k logits, clamped SwiGLU
            m = p + "mlp."
            logit = h @ W[m + "router.weight"].T + W[m + "router.bias"]
            lim, alpha = cfg["swiglu_limit"], cfg["swiglu_alpha"]
            out = np.zeros_like(h)
            route = []
            for t in range(T):
                sel = np.argsort(-logit[t], kind="stable")[: cfg["num_experts_per_tok"]]
                w = np.exp(logit[t][sel] - logit[t][sel].max())
                w /= w.sum()
                route.append((sel.tolist(), w.tolist()))
                for e, we in zip(sel, w):
                    gu = h[t] @ W[m + "experts.gate_up_proj"][e] + W[m + "experts.gate_up_proj_bias"][e]
                    gt, up = np.minimum(gu[0::2], lim), np.clip(gu[1::2], -lim, lim)
                    act = (up + 1) * gt / (1 + np.exp(-alpha * gt))
                    out[t] += we * (act @ W[m + "experts.down_proj"][e] + W[m + "experts.down_proj_bias"][e])
            routing[L] = route
            x = x + out
            continue
        if mt in ("qwen2", "qwen3", "llama"):
            is_moe, m = False, p + "mlp."
        elif mt == "glm4_moe":
            is_moe, m = L >= cfg["first_k_dense_replace"], p + "mlp."
        elif mt == "glm4_moe_lite":
            is_moe, m = cfg["mlp_layer_types"][L] == "sparse", p + "mlp."
        elif mt == "mixtral":
            is_moe, m = True, p + "block_sparse_moe."
        elif mt == "olmoe":
            is_moe, m = True, p + "mlp."
        elif q35:
            is_moe, m = True, p + "mlp."
        elif mt in ("qwen2_moe", "qwen3_moe"):
            is_moe = L not in (cfg.get("mlp_only_layers") or []) and (L + 1) % cfg["decoder_sparse_step"] == 0
            m = p + "mlp."
        else:
            is_moe, m = L >= cfg["first_k_dense_replace"] and L % cfg.get("moe_layer_freq", 1) == 0, p + "mlp."
        if not is_moe:
            x = x + _np_swiglu(h, *(W[m + n + "_proj.weight"] for n in ("gate", "up", "down")))
            continue
        logit = h @ W[m + "gate.weight"].T
        k_ = cfg["num_experts_per_tok"]
        E = logit.shape[1]
        out = np.zeros_like(h)
        route = []
        for t in range(T):
            lg = logit[t]
            if mt in ("deepseek_v3", "glm4_moe", "glm4_moe_lite"):
                s = 1 / (1 + np.exp(-lg))
                b = s + W[m + "gate.e_score_correction_bias"]
                G, TG = cfg["n_group"], cfg["topk_group"]
                gs = np.sort(b.reshape(G, -1), -1)[:, -2:].sum(-1)
                keep = np.repeat(np.isin(np.arange(G), np.argsort(-gs)[:TG]), E // G)
                b = np.where(keep, b, -np.inf)
                sel = np.argsort(-b)[:k_]
                w = s[sel]
                if cfg["norm_topk_prob"]:
                    w = w / (w.sum() + 1e-20)
                w = w * cfg["routed_scaling_factor"]
            else:
                pr = np.exp(lg - lg.max())
                pr /= pr.sum()
                sc = pr
                if mt == "deepseek_v2" and cfg["topk_method"] == "group_limited_greedy":
                    G, TG = cfg["n_group"], cfg["topk_group"]
                    gs = pr.reshape(G, -1).max(-1)
                    keep = np.repeat(np.isin(np.arange(G), np.argsort(-gs)[:TG]), E // G)
                    sc = np.where(keep, pr, -np.inf)
                sel = np.argsort(-sc)[:k_]
                w = pr[sel]
                if mt == "deepseek_v2":
                    w = w * cfg["routed_scaling_factor"]  # V2: no renormalisation
                elif mt == "mixtral" or q35 or cfg.get("norm_topk_prob"):
                    w = w / w.sum()
            route.append((sel.tolist(), w.tolist()))
            for e, we in zip(sel, w):
                if mt == "mixtral":
                    g_, u_, d_ = (W[f"{m}experts.{e}.{n}.weight"] for n in ("w1", "w3", "w2"))
                else:
                    g_, u_, d_ = (W[f"{m}experts.{e}.{n}_proj.weight"] for n in ("gate", "up", "down"))
                out[t] += we * _np_swiglu(h[t], g_, u_, d_)
        if mt.startswith("deepseek") or mt.startswith("glm4_moe"):
            out += _np_swiglu(h, *(W[m + "shared_experts." + n + "_proj.weight"] for n in ("gate", "up", "down")))
        elif mt == "qwen2_moe" or q35:
            sg = 1 / (1 + np.exp(-(h @ W[m + "shared_expert_gate.weight"].T)))
            out += sg * _np_swiglu(h, *(W[m + "shared_expert." + n + "_proj.weight"] for n in ("gate", "up", "down")))
        routing[L] = route
        x = x + out
    x = _np_rms(x, norm_w(W["model.norm.weight"]), eps)
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else W["lm_head.weight"]
    return x @ head.T, routing


def check_numpy_reference(d: Path, golden_logits, routing, ids):
    lg, rt = numpy_reference_forward(d, ids)
    err = np.abs(lg - golden_logits).max() / max(1.0, np.abs(lg).max())
    assert err < 1e-4, f"{d.name}: numpy reference logits differ by {err}"
    for r in routing:
        for t, (e, w) in enumerate(zip(r["experts"], r["weights"])):
            assert rt[r["layer"]][t][0] == e, (d.name, r["layer"], t, rt[r["layer"]][t][0], e)
            assert np.allclose(rt[r["layer"]][t][1], w, rtol=1e-4, atol=1e-5), (d.name, r["layer"], t)
    return float(err)

# --------------------------------------------------------------------------------------------
# Golden generation
# --------------------------------------------------------------------------------------------

def moe_layer_ids(model):
    names = ((n.replace("model.language_model.", "model.", 1), m) for n, m in model.named_modules())
    return sorted(
        int(n.split(".")[2]) for n, m in names
        if n.count(".") == 3 and n.startswith("model.layers.") and n.endswith(".mlp")
        and (hasattr(m, "gate") or hasattr(m, "router"))
    )


def evaluate(spec, model, input_ids, prompt):
    """Reference forward, routing trace, greedy continuation and margins for a loaded model.
    Returns None if any margin is too small."""
    cfg = text_config(model.config)
    kind = spec["router"]
    moe_layers = moe_layer_ids(model)
    cap = Capture(model)
    try:
        with torch.no_grad():
            cap.clear()
            logits = model(torch.tensor([input_ids]), use_cache=False).logits[0].float()
            routing, min_e, min_g, bias_changed = routing_from_capture(kind, cap, cfg, moe_layers)
            block_capture = (dict(cap.block), routing)

            gen = model.generate(
                torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                do_sample=False, max_new_tokens=N_NEW, output_logits=True, return_dict_in_generate=True,
                pad_token_id=PAD,
            )
            generated = gen.sequences[0, len(prompt):].tolist()
            if len(generated) != N_NEW:
                return None, "generation stopped early (eos)"
            min_l = math.inf
            for step in gen.logits:
                top2 = torch.topk(step[0].double(), 2).values
                min_l = min(min_l, (top2[0] - top2[1]).item())
            # the same greedy choices from plain no-cache forwards, and routing margins on the
            # full generated sequence (a flipped route would change the continuation)
            cap.clear()
            full = prompt + generated
            lg_full = model(torch.tensor([full[:-1]]), use_cache=False).logits[0].double()
            for j in range(N_NEW):
                row = lg_full[len(prompt) - 1 + j]
                if int(row.argmax()) != generated[j]:
                    return None, "generate() and no-cache argmax disagree"
                top2 = torch.topk(row, 2).values
                min_l = min(min_l, (top2[0] - top2[1]).item())
            _, min_e2, min_g2, _ = routing_from_capture(kind, cap, cfg, moe_layers)
            min_e = min(min_e, min_e2)
            if min_g is not None:
                min_g = min(min_g, min_g2)
    finally:
        cap.remove()
    if min_e < MIN_MARGIN:
        return None, f"route margin {min_e:.2e}"
    if min_g is not None and min_g < MIN_MARGIN:
        return None, f"group margin {min_g:.2e}"
    if min_l < MIN_MARGIN:
        return None, f"logit margin {min_l:.2e}"
    if kind == "v3" and bias_changed == 0:
        return None, "correction bias never changes a choice"
    return dict(
        logits=logits.numpy().astype(np.float32),
        moe_layers=moe_layers,
        routing=routing,
        generated=generated,
        min_route_margin=min_e,
        min_group_margin=min_g,
        min_logit_margin=min_l,
        bias_changed_tokens=bias_changed if kind == "v3" else None,
        block_capture=block_capture,
    ), "ok"


def format_golden(golden: dict) -> str:
    """One top-level key per line, one routing layer per line (compact, diff-friendly)."""
    def c(v):
        return json.dumps(v, separators=(", ", ": "))
    lines = []
    for k, v in golden.items():
        if k == "routing":
            inner = ",\n".join("  " + c(r) for r in v)
            lines.append(f' {c(k)}: [\n{inner}\n ]')
        else:
            lines.append(f" {c(k)}: {c(v)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write_golden(out: Path, spec, model, res, input_ids, prompt, seed, dtype_name):
    arch = model.config.model_type
    tensors = load_tensors(out)
    check_hub_layout(arch, tensors, text_config(model.config), res["moe_layers"])
    cap_blocks, routing = res["block_capture"]

    class _C:  # minimal stand-in with the captured blocks
        block = cap_blocks
    worst = verify_block_outputs(arch, _C, routing, {k: v.float() for k, v in tensors.items()},
                                 json.loads((out / "config.json").read_text()))
    np_err = check_numpy_reference(out, res["logits"].astype(np.float64), routing, input_ids)
    np.save(out / "logits.npy", np.ascontiguousarray(res["logits"], dtype=np.float32))
    golden = {
        "architecture": model.config.architectures[0],
        "weights_dtype": "mxfp4" if spec.get("mxfp4") else dtype_name,  # mxfp4: routed experts
        "input_ids": list(map(int, input_ids)),
        "logits": "logits.npy",
        "moe_layers": res["moe_layers"],
        "routing": routing,
        "greedy": {"prompt": list(map(int, prompt)), "generated": list(map(int, res["generated"]))},
        "min_route_margin": res["min_route_margin"] if res["moe_layers"] else None,  # dense: no route
        "min_group_margin": res["min_group_margin"],
        "min_logit_margin": res["min_logit_margin"],
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "seed": seed,
        "moe_block_recompute_max_rel_err": float(f"{worst:.3g}"),
        "numpy_reference_max_rel_err": float(f"{np_err:.3g}"),
    }
    if res.get("bias_changed_tokens") is not None:
        golden["correction_bias_changed_choices"] = res["bias_changed_tokens"]
    (out / "golden.json").write_text(format_golden(golden))


def gen_variant(name, out_root: Path, log):
    spec = VARIANTS[name]
    companions = []
    if "base" in spec:
        raise RuntimeError("derived variants are generated with their base")
    for other, s in VARIANTS.items():
        if s.get("base") == name:
            companions.append(other)
    tmp_root = Path(tempfile.mkdtemp(prefix="moegold_"))
    try:
        for seed in range(spec["seed"], spec["seed"] + MAX_SEEDS):
            model = build_model(spec, seed)
            packed = mxfp4_round_experts(model) if spec.get("mxfp4") else None
            cfg = text_config(model.config)
            rng = np.random.default_rng(seed)
            input_ids = [BOS] + rng.integers(3, cfg.vocab_size, N_INPUT - 1).tolist()
            prompt = input_ids[:N_PROMPT]
            results = {}
            ok = True
            for vname in [name] + companions:
                vspec = VARIANTS[vname]
                dtype_name = vspec["dtype"]
                d = tmp_root / vname
                save_dir(model, d, dtype_name, spec.get("hub_extra"), vspec.get("shard", spec.get("shard")), packed,
                         spec.get("keep_rope_parameters", False))
                loaded = load_model(spec, d)
                # the reloaded directory must reproduce the in-memory model (fp32 save only:
                # proves the Hub layout/config is what transformers expects)
                if dtype_name == "float32":
                    with torch.no_grad():
                        a = model(torch.tensor([input_ids]), use_cache=False).logits
                        b = loaded(torch.tensor([input_ids]), use_cache=False).logits
                    diff = (a - b).abs().max().item()
                    assert diff == 0.0, f"{vname}: reload changed logits by {diff}"
                res, why = evaluate(spec, loaded, input_ids, prompt)
                if res is not None and spec.get("max_fp32_rel_err"):
                    # transformers' fp32 forward against the float64 NumPy one: a seed whose fp32
                    # rounding alone moves the logits near the engine's 1e-4 tolerance is skipped
                    # (Gated DeltaNet's chunked fp32 prefill can amplify rounding).
                    err = np.abs(numpy_reference_forward(d, input_ids)[0] - res["logits"]).max()
                    err /= max(1.0, np.abs(res["logits"]).max())
                    if err > spec["max_fp32_rel_err"]:
                        res, why = None, f"fp32 forward {err:.2e} from the float64 reference"
                if res is None:
                    log(f"  {vname} seed {seed}: rejected ({why})")
                    ok = False
                    break
                results[vname] = (res, loaded, d, dtype_name)
            if not ok:
                continue
            for vname, (res, loaded, d, dtype_name) in results.items():
                write_golden(d, VARIANTS[vname] if "router" in VARIANTS[vname] else spec, loaded, res,
                             input_ids, prompt, seed, dtype_name)
                final = out_root / vname
                if final.exists():
                    shutil.rmtree(final)
                shutil.copytree(d, final)
                for f in final.iterdir():
                    f.chmod(0o644)
                log(f"  {vname}: seed {seed}, route margin {res['min_route_margin']:.3e}, group margin "  # inf: dense
                    f"{res['min_group_margin']}, logit margin {res['min_logit_margin']:.3e}")
            return
        raise RuntimeError(f"{name}: no seed with margins >= {MIN_MARGIN}")
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", help="base variants to generate (default: all)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    bases = [n for n, s in VARIANTS.items() if "base" not in s]
    if args.only:
        bases = [n for n in bases if n in args.only]
    args.out.mkdir(parents=True, exist_ok=True)
    for name in bases:
        print(f"{name}:", flush=True)
        gen_variant(name, args.out, lambda m: print(m, flush=True))
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"total size of {args.out}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
