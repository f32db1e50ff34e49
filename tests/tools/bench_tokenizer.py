#!/usr/bin/env python3
"""Encode throughput: moescope vs Hugging Face tokenizers, single thread, same text, same ids.

Builds ~10 MB of text deterministically (random.Random(0)) from the golden corpus of
gen_tokenizer_goldens.py plus pseudo-words in several scripts, numbers and code lines, so that
the word cache cannot hold everything. Both sides encode it in the same chunks (each ends at
the first newline after 4096 bytes): moescope through `moescope-cli tokenize --bench`, HF through
AutoTokenizer(dir).backend_tokenizer.encode (the pipeline moescope's from_dir reproduces), one
call per chunk, TOKENIZERS_PARALLELISM=false. Token counts and an FNV-1a hash of all ids must
agree, so the comparison is of identical work.

    python3 tests/tools/bench_tokenizer.py --cli build/app/cli/moescope-cli [--models qwen3 llama2] [--mb 10]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("RAYON_NUM_THREADS", "1")
warnings.filterwarnings("ignore")

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data" / "tokenizers"
sys.path.insert(0, str(HERE))
from gen_tokenizer_goldens import CORPUS  # noqa: E402


def make_text(n_bytes: int) -> str:
    rng = random.Random(0)
    words = sorted({w for t in CORPUS for w in t.split()})
    alphabets = ["abcdefghijklmnopqrstuvwxyz", "абвгдежзийклмнопрстуфхцчшщыэюя",
                 "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年", "αβγδεζηθικλμνξοπρστυφχψω",
                 "àéèêëïîôùûüçñ"]
    for _ in range(20000):  # pseudo-words: mostly Latin, some other scripts
        a = alphabets[0] if rng.random() < 0.7 else rng.choice(alphabets)
        w = "".join(rng.choice(a) for _ in range(rng.randint(2, 11)))
        words.append(w.capitalize() if rng.random() < 0.15 else w)
    code = [t for t in CORPUS if "\n" in t]
    out, size = [], 0
    while size < n_bytes:
        r = rng.random()
        if r < 0.1:
            para = rng.choice(code)
        elif r < 0.15:
            para = rng.choice(CORPUS) + "\n"
        else:
            sent = []
            for _ in range(rng.randint(3, 40)):
                x = rng.random()
                if x < 0.05:
                    sent.append(str(rng.randint(0, 10 ** rng.randint(1, 9))))
                elif x < 0.1:
                    sent.append(rng.choice(",.;:!?-()\"'"))
                else:
                    sent.append(rng.choice(words))
            para = " ".join(sent) + rng.choice([".", "!", "?", ":"]) + rng.choice(["\n", "\n\n", " ", "\r\n"])
        out.append(para)
        size += len(para.encode("utf-8"))
    return "".join(out)


def chunks_of(data: bytes):
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", min(len(data), pos + 4096))
        end = len(data) if end < 0 else end + 1
        yield data[pos:end].decode("utf-8")
        pos = end


def bench_hf(model_dir: Path, data: bytes):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(model_dir)).backend_tokenizer
    chunks = list(chunks_of(data))
    t0 = time.perf_counter()
    encs = [tok.encode(c, add_special_tokens=False).ids for c in chunks]
    seconds = time.perf_counter() - t0
    h, n = 0xcbf29ce484222325, 0
    for ids in encs:
        n += len(ids)
        for i in ids:
            h = ((h ^ i) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return {"bytes": len(data), "chunks": len(chunks), "tokens": n, "ids_hash": h,
            "seconds": seconds, "mb_per_s": len(data) / 1e6 / seconds}


def bench_moescope(cli: str, model_dir: Path, path: str):
    out = subprocess.run([cli, "tokenize", "--model", str(model_dir), "--file", path, "--bench"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--models", nargs="+", default=["qwen3", "llama2"])
    ap.add_argument("--mb", type=float, default=10.0)
    args = ap.parse_args()
    data = make_text(int(args.mb * 1e6)).encode("utf-8")
    ok = True
    with tempfile.NamedTemporaryFile(suffix=".txt") as f:
        f.write(data)
        f.flush()
        print(f"text: {len(data) / 1e6:.1f} MB")
        for name in args.models:
            d = DATA / name
            ms = bench_moescope(args.cli, d, f.name)
            hf = bench_hf(d, data)
            same = ms["tokens"] == hf["tokens"] and ms["ids_hash"] == hf["ids_hash"]
            ok = ok and same
            print(f"{name:12s} moescope {ms['mb_per_s']:6.2f} MB/s ({ms['seconds']:.2f} s)   "
                  f"HF tokenizers {hf['mb_per_s']:6.2f} MB/s ({hf['seconds']:.2f} s)   "
                  f"ratio {ms['mb_per_s'] / hf['mb_per_s']:.2f}x   tokens {ms['tokens']} "
                  f"{'identical ids' if same else 'IDS DIFFER (hf tokens %d)' % hf['tokens']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
