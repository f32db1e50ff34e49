#!/usr/bin/env python3
"""Generate tests/data/models/chat-tiny: a tiny random DeepSeek-V3 chat checkpoint WITH a tokenizer.

The desktop app's UI tests (and the app itself, until the bundled teaching model exists) need a
model directory that the whole chat path accepts: tokenizer.json, tokenizer_config.json with a
Jinja chat_template and bos/eos, config.json + safetensors with Hub tensor names, and
generation_config.json with sampling defaults. The weights are random, so the text it writes is
gibberish; what matters is that it streams, stops, samples and routes like a real model.

  * tokenizer: byte-level BPE (GPT-2 style) trained with the `tokenizers` library on generated
    English sentences (fixed seed), vocab 480 including the special tokens below;
  * model: DeepseekV3ForCausalLM (MLA, 3 layers, first dense, 16 routed experts top-4 in
    4 groups, 1 shared expert), hidden 32, built and saved by gen_model_goldens.py's helpers.

Usage: python3 tests/tools/gen_chat_test_model.py [--out DIR]
Deterministic: running it twice gives byte-identical files. CPU only, no network.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_model_goldens as gold  # noqa: E402  (sets torch threads/determinism)

import torch  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402
from transformers import DeepseekV3Config, DeepseekV3ForCausalLM  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "data" / "models" / "chat-tiny"
SEED = 9000
VOCAB = 480
SPECIALS = ["<|pad|>", "<|begin|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
# Not special (they are text a reasoning model writes), but single tokens, as in DeepSeek-R1.
OUT_SCALE = 3.0
THINK_TOKENS = ["<think>", "</think>"]

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)

WORDS = {
    "subj": ["the model", "a router", "every expert", "the cache", "my friend", "the teacher",
             "a small token", "the layer", "our student", "the network", "this machine"],
    "verb": ["reads", "sends", "chooses", "remembers", "writes", "counts", "explains", "routes",
             "balances", "learns", "predicts", "shares"],
    "obj": ["the next word", "four experts", "a long story", "the attention", "many numbers",
            "a simple answer", "the weights", "every sentence", "the question", "a good idea"],
    "tail": ["today", "again", "very quickly", "with care", "in the morning", "for a while",
             "without a sound", "step by step", "at the end", "once more"],
}


def corpus(n_sentences: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n_sentences):
        s = " ".join(rng.choice(WORDS[k]) for k in ("subj", "verb", "obj", "tail"))
        out.append(s[0].upper() + s[1:] + rng.choice([".", ".", "!", "?"]))
    return out


def train_tokenizer(out: Path):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB - len(THINK_TOKENS),
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(4000, SEED), trainer=trainer)
    tok.add_tokens(THINK_TOKENS)
    tok.save(str(out / "tokenizer.json"))
    cfg = {
        "bos_token": "<|begin|>",
        "eos_token": "<|end|>",
        "pad_token": "<|pad|>",
        "add_bos_token": False,
        "chat_template": CHAT_TEMPLATE,
        "model_max_length": 2048,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return tok


def cfg_chat_tiny(vocab: int, bos: int, eos: int, pad: int):
    return DeepseekV3Config(
        vocab_size=vocab,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=pad,
        initializer_range=gold.INIT_RANGE,
        attention_dropout=0.0,
        hidden_size=32,
        intermediate_size=64,
        moe_intermediate_size=16,
        num_hidden_layers=3,
        num_attention_heads=2,
        num_key_value_heads=2,
        q_lora_rank=24,
        kv_lora_rank=16,
        qk_nope_head_dim=16,
        qk_rope_head_dim=8,
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
        max_position_embeddings=2048,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1e4},
        tie_word_embeddings=False,
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="chattiny_"))
    try:
        tok_dir = tmp / "tok"
        tok_dir.mkdir()
        tok = train_tokenizer(tok_dir)
        vocab = tok.get_vocab_size()
        ids = {t: tok.token_to_id(t) for t in SPECIALS}
        spec = dict(
            cfg=lambda: cfg_chat_tiny(vocab, ids["<|begin|>"], ids["<|end|>"], ids["<|pad|>"]),
            cls=DeepseekV3ForCausalLM,
        )
        model = gold.build_model(spec, SEED)
        # Output rows shaped so that the gibberish is readable on screen and answers run for a
        # while (tests stop them mid-way): special and think tokens, and single bytes that are
        # not printable ASCII (control bytes, pieces of UTF-8 sequences), get a zero row (logit
        # 0) while the other rows are scaled up, so their top logits dominate.
        quiet = [ids[t] for t in SPECIALS] + [tok.token_to_id(t) for t in THINK_TOKENS]
        for token, i in tok.get_vocab().items():
            if len(token) == 1 and not ("!" <= token <= "~" or token == "\u0120"):
                quiet.append(i)
        with torch.no_grad():
            w = model.lm_head.weight
            w *= OUT_SCALE
            for i in sorted(set(quiet)):
                w[i] = 0.0
        gold.BOS, gold.EOS, gold.PAD = ids["<|begin|>"], ids["<|end|>"], ids["<|pad|>"]
        model_dir = tmp / "model"
        gold.save_dir(model, model_dir, "float32", {"scoring_func": "sigmoid", "topk_method": "noaux_tc",
                                                   "moe_layer_freq": 1}, None)
        gen = {
            "bos_token_id": ids["<|begin|>"],
            "eos_token_id": ids["<|end|>"],
            "pad_token_id": ids["<|pad|>"],
            "do_sample": True,
            "temperature": 0.7,
            "top_p": 0.95,
            "top_k": 40,
            "max_new_tokens": 200,
        }
        (model_dir / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
        for f in tok_dir.iterdir():
            shutil.copy(f, model_dir / f.name)
        if args.out.exists():
            shutil.rmtree(args.out)
        shutil.copytree(model_dir, args.out)
        for f in args.out.iterdir():
            f.chmod(0o644)
        total = sum(f.stat().st_size for f in args.out.iterdir())
        print(f"wrote {args.out} (vocab {vocab}, {total / 1e6:.2f} MB)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
