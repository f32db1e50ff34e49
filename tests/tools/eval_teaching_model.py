#!/usr/bin/env python3
"""Evaluate the bundled teaching model through the C++ engine (moescope-cli).

For every held-out prompt in MODEL/eval_prompts.json (written by tools/train_teaching_model.py):

  moescope-cli generate --model MODEL --chat --prompt P --temperature 0 --max-tokens N --trace T

and scores the answer (stdout):
  - arithmetic (add2, add2_large, add3, sub2, sub3): the answer's first integer equals the result;
  - concepts, code, french, strings: the answer equals the reference exactly (whitespace-trimmed).

Specialisation: for each domain (arithmetic, concepts, code, french, strings) the routing traces
of its prompts (prompt + generated tokens, special tokens <s> <|im_start|> <|im_end|> left out)
give, per MoE layer, the distribution of token->expert selections over the experts; reported is
the Jensen-Shannon divergence (base 2, in [0, 1]) between every pair of domains per layer, its
mean and minimum.

Usage: python3 tests/tools/eval_teaching_model.py [--cli build/app/cli/moescope-cli]
           [--model resources/models/moescope-tiny] [--json OUT] [--limit N]
Needs only Python 3 (no ML packages).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOMAIN_OF = {"add2": "arithmetic", "add2_large": "arithmetic", "add3": "arithmetic", "sub2": "arithmetic",
             "sub3": "arithmetic", "concepts": "concepts", "code": "code", "french": "french",
             "strings": "strings"}
SPECIAL_IDS = {0, 1, 2, 3, 4}


def first_int(s: str):
    m = re.search(r"-?\d+", s)
    return m.group(0) if m else None


def score(task: str, item: dict, out: str) -> bool:
    if DOMAIN_OF[task] == "arithmetic":
        return first_int(out) == item["answer"]
    return out.strip() == item["answer"].strip()


def run_one(cli: str, model: str, item: dict, max_tokens: int, tmp: Path, key: str):
    trace = tmp / f"{key}.json"
    r = subprocess.run([cli, "generate", "--model", model, "--chat", "--prompt", item["prompt"],
                        "--temperature", "0", "--max-tokens", str(max_tokens), "--trace", str(trace), "--threads", "1"],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"{item['prompt']!r}: {r.stderr.strip()}")
    tr = json.loads(trace.read_text())
    trace.unlink()
    return r.stdout, tr


def js(p, q):
    def kl(a, b):
        return sum(x * math.log2(x / y) for x, y in zip(a, b) if x > 0)
    m = [(x + y) / 2 for x, y in zip(p, q)]
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cli", default=str(REPO / "build" / "app" / "cli" / "moescope-cli"))
    ap.add_argument("--model", default=str(REPO / "resources" / "models" / "moescope-tiny"))
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--limit", type=int, default=0, help="at most N prompts per task")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--show-errors", type=int, default=3)
    args = ap.parse_args()

    ev = json.loads((Path(args.model) / "eval_prompts.json").read_text())
    results = {}
    counts = {}  # domain -> layer -> [n_experts]
    layers = None
    with tempfile.TemporaryDirectory() as td, ThreadPoolExecutor(args.jobs) as pool:
        tmp = Path(td)
        for task, items in ev.items():
            if args.limit:
                items = items[:args.limit]
            max_tokens = 48 if task in ("concepts", "code", "french") else 16
            futs = [pool.submit(run_one, args.cli, args.model, it, max_tokens, tmp, f"{task}-{i}")
                    for i, it in enumerate(items)]
            ok, errors, kinds = 0, [], {}
            dom = DOMAIN_OF[task]
            for it, f in zip(items, futs):
                out, tr = f.result()
                good = score(task, it, out)
                ok += good
                if "kind" in it:
                    k = kinds.setdefault(it["kind"], [0, 0])
                    k[0] += good
                    k[1] += 1
                if not good and len(errors) < args.show_errors:
                    errors.append({"prompt": it["prompt"], "want": it["answer"], "got": out})
                if task == "add2_large":
                    continue  # the 60-prompt add2 set already represents arithmetic
                layers = tr["moe_layers"]
                c = counts.setdefault(dom, {l: [0] * tr["n_experts"] for l in layers})
                for t in tr["tokens"]:
                    if t["id"] in SPECIAL_IDS:
                        continue
                    for r in t["routes"]:
                        for e in r["experts"]:
                            c[r["layer"]][e] += 1
            results[task] = {"correct": ok, "total": len(items), "accuracy": round(ok / len(items), 4),
                             "examples_wrong": errors}
            if kinds:
                results[task]["by_kind"] = {k: f"{a}/{b}" for k, (a, b) in kinds.items()}
            print(f"{task:11s} {ok:4d}/{len(items):<4d} = {100 * ok / len(items):5.1f}%"
                  + (f"  {results[task]['by_kind']}" if kinds else ""), flush=True)
            for e in errors:
                print(f"    {e['prompt']!r}: want {e['want']!r}, got {e['got']!r}")
    # specialisation
    doms = sorted(counts)
    spec = {}
    for l in layers:
        dist = {d: [x / sum(counts[d][l]) for x in counts[d][l]] for d in doms}
        pairs = {f"{a}/{b}": round(js(dist[a], dist[b]), 4) for a, b in itertools.combinations(doms, 2)}
        spec[str(l)] = {"mean_js": round(sum(pairs.values()) / len(pairs), 4), "min_js": min(pairs.values()),
                        "pairs": pairs,
                        "top_experts": {d: sorted(range(len(dist[d])), key=lambda e: -dist[d][e])[:4] for d in doms}}
        print(f"layer {l}: mean JS {spec[str(l)]['mean_js']:.3f}, min JS {spec[str(l)]['min_js']:.3f} "
              f"({min(pairs, key=pairs.get)})")
    if args.json:
        Path(args.json).write_text(json.dumps({"tasks": results, "specialisation": spec}, indent=1,
                                              ensure_ascii=False) + "\n")


if __name__ == "__main__":
    sys.exit(main())
