#!/usr/bin/env python3
"""Train the bundled teaching model resources/models/moescope-tiny (DeepSeek-V3 architecture,
scaled down) on the corpus of tools/make_teaching_corpus.py. CPU, fixed seed, reproducible:
the same command with the same torch/transformers versions on the same kind of CPU writes the
same weights, bit for bit (one torch thread, a step-based schedule; --max-minutes trades that
for a wall-time budget).

  python3 tools/train_teaching_model.py --out resources/models/moescope-tiny     # full run, 3,800 steps
  python3 tools/train_teaching_model.py --smoke --out /tmp/tiny-smoke             # seconds

Steps:
  1. generate the corpus (deterministic), render every example with the model's own chat
     template (transformers' apply_chat_template);
  2. train a byte-level BPE tokenizer on it with HF `tokenizers` (digits split one by one);
  3. train a DeepseekV3ForCausalLM (transformers) with the loss on the assistant answers, AdamW,
     warmup + cosine schedule, and DeepSeek-V3's auxiliary-loss-free load balancing: after every
     step, for every MoE layer, e_score_correction_bias += gamma * sign(mean_load - load_e) over
     the batch's (non-padding) token loads; the bias only affects which experts are selected;
  4. save a Hugging Face directory: config.json (Hub layout), model.safetensors (Hub tensor names,
     one tensor per expert), generation_config.json, tokenizer.json, tokenizer_config.json (bos,
     eos, chat template), eval_prompts.json (held-out evaluation sets), training_log.json.

Needs torch, transformers 5.x, tokenizers, safetensors.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "tests" / "tools"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import make_teaching_corpus as corpus_mod  # noqa: E402
from gen_model_goldens import hubify_config  # noqa: E402  (sets 1 thread; reset below)

import transformers  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402
from transformers import DeepseekV3Config, DeepseekV3ForCausalLM, GenerationConfig, PreTrainedTokenizerFast  # noqa: E402

torch.use_deterministic_algorithms(False)
transformers.logging.set_verbosity_error()

PAD, BOS, EOS, IM_START, IM_END = "<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"
SPECIALS = [PAD, BOS, EOS, IM_START, IM_END]  # ids 0..4
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


# Model sizes: the full teaching model and the smoke-test one.
SIZES = {
    "full": dict(hidden_size=128, intermediate_size=384, moe_intermediate_size=64, num_hidden_layers=4,
                 q_lora_rank=64, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=16, v_head_dim=16),
    "smoke": dict(hidden_size=32, intermediate_size=64, moe_intermediate_size=16, num_hidden_layers=3,
                  q_lora_rank=16, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=8, v_head_dim=8),
}


def model_config(vocab: int, smoke: bool, **override) -> DeepseekV3Config:
    dims = dict(SIZES["smoke" if smoke else "full"])
    dims.update(override)
    return DeepseekV3Config(
        vocab_size=vocab,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        num_attention_heads=4,
        num_key_value_heads=4,
        n_routed_experts=16,
        num_experts_per_tok=4,
        n_group=4,
        topk_group=2,
        n_shared_experts=1,
        first_k_dense_replace=1,
        norm_topk_prob=True,
        routed_scaling_factor=2.0,
        num_nextn_predict_layers=0,
        max_position_embeddings=512,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=False,
        initializer_range=0.02,
        attention_dropout=0.0,
        **dims,
    )


# ------------------------------------------------------------------------------------------------
# Tokenizer
# ------------------------------------------------------------------------------------------------

def train_tokenizer(texts: list[str], vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == i, s
    return tok


def write_tokenizer_files(tok: Tokenizer, out: Path):
    tok.save(str(out / "tokenizer.json"))
    cfg = {
        "add_bos_token": False,
        "add_eos_token": False,
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": PAD,
        "unk_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 512,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------

def encode_examples(train: list[dict], hf_tok, max_len: int):
    """(ids, first answer position) per example: loss on the assistant answer + <|im_end|>."""
    out = []
    cache: dict[str, tuple] = {}
    for e in train:
        key = json.dumps(e["messages"], ensure_ascii=False)
        if key in cache:
            out.append(cache[key])
            continue
        prompt = hf_tok.apply_chat_template(e["messages"][:-1], tokenize=False, add_generation_prompt=True)
        full = hf_tok.apply_chat_template(e["messages"], tokenize=False)
        assert full.startswith(prompt)
        p_ids = hf_tok.tokenizer_obj.encode(prompt, add_special_tokens=False).ids
        f_ids = hf_tok.tokenizer_obj.encode(full, add_special_tokens=False).ids
        assert f_ids[:len(p_ids)] == p_ids, (prompt, full)
        f_ids = f_ids[:-1] if f_ids[-1] != hf_tok.tokenizer_obj.token_to_id(IM_END) else f_ids  # drop final "\n"
        assert f_ids[-1] == hf_tok.tokenizer_obj.token_to_id(IM_END)
        item = (f_ids[:max_len], len(p_ids))
        cache[key] = item
        out.append(item)
    return out


def make_batch(items, pad_id: int):
    L = max(len(ids) for ids, _ in items)
    x = torch.full((len(items), L), pad_id, dtype=torch.long)
    y = torch.full((len(items), L), -100, dtype=torch.long)
    mask = torch.zeros((len(items), L), dtype=torch.long)
    for i, (ids, start) in enumerate(items):
        t = torch.tensor(ids, dtype=torch.long)
        x[i, :len(ids)] = t
        mask[i, :len(ids)] = 1
        # label at position j predicts token j+1; answer tokens are positions >= start
        y[i, start - 1:len(ids) - 1] = t[start:]
    return x, y, mask


# ------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------

class LoadMeter:
    """Forward hooks on every MoE router: expert loads over the batch's real (non-pad) tokens."""

    def __init__(self, model):
        self.routers = []
        self.layers = []
        self.mask = None
        self.loads = {}
        for i, layer in enumerate(model.model.layers):
            gate = getattr(layer.mlp, "gate", None)
            if gate is not None and hasattr(gate, "e_score_correction_bias"):
                self.routers.append(gate)
                self.layers.append(i)
                gate.register_forward_hook(self._hook(i))

    def _hook(self, layer):
        def hook(module, inputs, output):
            idx = output[2].detach()
            if self.mask is not None and self.mask.numel() == idx.shape[0]:
                idx = idx[self.mask.view(-1).bool()]
            self.loads[layer] = torch.bincount(idx.reshape(-1), minlength=module.num_experts).float()
        return hook


def train(args):
    # One thread by default: on the 2 shared cores of the build machine, 2 intra-op threads were
    # measured ~50x slower per step than 1 whenever another process held a core (spin-waiting).
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    examples, ev = corpus_mod.make_corpus(args.seed, scale=0.01 if args.smoke else 1.0)
    print(f"corpus: {len(examples)} examples", flush=True)

    # tokenizer: trained on the rendered training conversations
    texts = []
    for e in examples:
        msgs = e["messages"]
        texts.append("".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in msgs))
    tok = train_tokenizer(texts, 96 * 4 + 256 + 8 if args.smoke else args.vocab)
    write_tokenizer_files(tok, out)
    hf_tok = PreTrainedTokenizerFast.from_pretrained(str(out))
    hf_tok.tokenizer_obj = tok
    vocab = tok.get_vocab_size()
    print(f"tokenizer: vocab {vocab}", flush=True)

    data = encode_examples(examples, hf_tok, max_len=160)
    lens = [len(d[0]) for d in data]
    print(f"tokens/example: mean {sum(lens) / len(lens):.1f} max {max(lens)}", flush=True)

    cfg = model_config(vocab, args.smoke)
    cfg._attn_implementation = "sdpa"
    cfg._experts_implementation = "eager"
    model = DeepseekV3ForCausalLM(cfg).to(torch.float32)
    model.train()
    meter = LoadMeter(model)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f}M parameters, MoE layers {meter.layers}", flush=True)

    steps = args.steps if args.steps else (30 if args.smoke else 3800)
    bs = args.batch if args.batch else (8 if args.smoke else 64)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.01)
    warm = max(1, min(200, steps // 10))

    def lr_at(p):  # p: training progress in [0, 1]
        w = warm / steps
        if p < w:
            return args.lr * max(p, 1 / steps) / w
        q = min(1.0, (p - w) / max(1e-9, 1 - w))
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * q)))

    rng = random.Random(args.seed + 1)
    order: list[int] = []
    log = []
    ema = None
    # Progress runs on steps, or on wall time when --max-minutes is given and the machine is too
    # slow to do all steps in it: the schedule then compresses so it still ends decayed.
    t_train = time.time()
    budget = args.max_minutes * 60 - (t_train - t0) if args.max_minutes else None
    step = 0
    for step in range(steps):
        progress = step / steps
        if budget:
            progress = max(progress, (time.time() - t_train) / budget)
        if not order:
            # length-bucketed batches: shuffle, sort chunks by length, shuffle batches
            perm = list(range(len(data)))
            rng.shuffle(perm)
            chunks = [sorted(perm[i:i + bs * 50], key=lambda j: len(data[j][0])) for i in range(0, len(perm), bs * 50)]
            batches = [c[i:i + bs] for c in chunks for i in range(0, len(c), bs)]
            rng.shuffle(batches)
            order = [b for b in batches if len(b) == bs][::-1]
            order = [j for b in order for j in b][::-1]
        idx = [order.pop() for _ in range(bs)]
        x, y, mask = make_batch([data[j] for j in idx], 0)
        meter.mask = mask
        for g in opt.param_groups:
            g["lr"] = lr_at(progress)
        logits = model(input_ids=x, attention_mask=mask).logits
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        # aux-loss-free load balancing (DeepSeek-V3): bias += gamma * sign(mean load - load)
        maxvio = {}
        with torch.no_grad():
            for gate, layer in zip(meter.routers, meter.layers):
                load = meter.loads[layer]
                gate.e_score_correction_bias += args.gamma * torch.sign(load.mean() - load)
                maxvio[layer] = float(load.max() / load.mean())
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % args.log_every == 0 or step == steps - 1:
            el = time.time() - t0
            rec = {"step": step, "loss": round(loss.item(), 4), "loss_ema": round(ema, 4), "lr": round(lr_at(progress), 6), "progress": round(progress, 4),
                   "maxvio": {str(k): round(v, 3) for k, v in maxvio.items()},
                   "bias_range": {str(l): [round(float(g.e_score_correction_bias.min()), 3),
                                           round(float(g.e_score_correction_bias.max()), 3)]
                                  for g, l in zip(meter.routers, meter.layers)},
                   "elapsed_s": round(el, 1)}
            log.append(rec)
            print(json.dumps(rec), flush=True)
        if progress >= 1.0:
            print(f"stopping at step {step}: --max-minutes reached", flush=True)
            break
    train_s = time.time() - t0
    meter.mask = None
    model.eval()

    # ---- save ------------------------------------------------------------------------------
    model.generation_config = GenerationConfig(bos_token_id=1, eos_token_id=[2, 4], pad_token_id=0)
    model.save_pretrained(out)
    hubify_config(out / "config.json",
                  {"scoring_func": "sigmoid", "topk_method": "noaux_tc", "moe_layer_freq": 1}, "float32")
    (out / "eval_prompts.json").write_text(json.dumps(ev, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    summary = {"steps": step + 1, "planned_steps": steps, "max_minutes": args.max_minutes, "batch": bs, "lr": args.lr, "gamma": args.gamma, "seed": args.seed,
               "parameters": n_params, "train_seconds": round(train_s, 1),
               "final_loss_ema": round(ema, 4), "torch": torch.__version__,
               "transformers": transformers.__version__, "threads": torch.get_num_threads(), "log": log}
    (out / "training_log.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"saved to {out} after {train_s / 60:.1f} min, loss (ema) {ema:.4f}", flush=True)

    # ---- quick check in transformers (held-out two-digit additions) ------------------------
    n_check = 2 if args.smoke else 40
    ok = 0
    im_end = tok.token_to_id(IM_END)
    for it in ev["add2"][:n_check]:
        p = hf_tok.apply_chat_template([{"role": "user", "content": it["prompt"]}], tokenize=False,
                                       add_generation_prompt=True)
        ids = torch.tensor([tok.encode(p, add_special_tokens=False).ids])
        with torch.no_grad():
            g = model.generate(ids, max_new_tokens=8, do_sample=False, eos_token_id=[2, im_end], pad_token_id=0)
        ans = tok.decode(g[0, ids.shape[1]:].tolist(), skip_special_tokens=True).strip()
        ok += ans == it["answer"]
    if n_check:
        print(f"transformers check: {ok}/{n_check} held-out two-digit additions exact", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--smoke", action="store_true", help="tiny corpus and model, a few steps")
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--gamma", type=float, default=1e-3, help="bias update speed (aux-loss-free balancing)")
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (2 = both cores of an idle machine)")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--max-minutes", type=float, default=0,
                    help="wall-time budget: the lr schedule follows max(step/steps, time/budget) and ends at 1 "
                         "(the run is then no longer reproducible)")
    train(ap.parse_args())


if __name__ == "__main__":
    main()
