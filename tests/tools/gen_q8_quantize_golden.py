#!/usr/bin/env python3
"""A quantisation golden for Q8_0: floats in, the blocks the PyPI `gguf` package makes of them.

Writes tests/data/quant/Q8_0-quantize.npy (float32 [n_blocks, 32], the input) and
Q8_0-quantize.blocks (n_blocks raw 34-byte blocks from gguf.quants.quantize, which follows
quantize_row_q8_0_ref in ggml-quants.c). test_load_options checks moescope's quantize_q8_0 (the
quantiser behind `--weights q8_0`) against them byte for byte.

The blocks: edge cases first (all zeros; a single non-zero value; exact ties x·(127/amax) = k + 0.5,
which round away from zero; a scale in the half-float subnormal range; a scale too large for a half
float, stored as infinity; BF16-representable values, what a BF16 checkpoint holds), then blocks
of random normal values over a wide range of magnitudes. Deterministic (fixed seed).

    pip install gguf numpy
    python3 tests/tools/gen_q8_quantize_golden.py [--out tests/data/quant]
"""
import argparse
import os

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize


def bf16_round(x):
    """x rounded to the nearest BF16 value (ties to even), as float32."""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(here, "..", "data", "quant"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(8)
    blocks = [np.zeros(32, np.float32)]
    one = np.zeros(32, np.float32)
    one[5] = -3.25
    blocks.append(one)
    ties = np.zeros(32, np.float32)  # amax 127: d = 1, id = 1, every x·id exact
    ties[:8] = [127.0, 0.5, -0.5, 1.5, -2.5, 63.5, -126.5, 100.5]
    blocks.append(ties)
    blocks.append((rng.standard_normal(32) * 1e-4).astype(np.float32))  # d below 2^-14
    blocks.append((rng.standard_normal(32) * 1e7).astype(np.float32))   # d above 65504
    for _ in range(3):
        blocks.append(bf16_round(rng.standard_normal(32) * rng.uniform(0.005, 0.1)))
    for scale in np.geomspace(1e-4, 1e3, 24):
        blocks.append((rng.standard_normal(32) * scale).astype(np.float32))
    x = np.stack(blocks).astype(np.float32)
    q = quantize(x, T.Q8_0).reshape(len(blocks), 34)
    np.save(os.path.join(args.out, "Q8_0-quantize.npy"), x)
    q.astype(np.uint8).tofile(os.path.join(args.out, "Q8_0-quantize.blocks"))
    print(f"Q8_0 quantise: {len(blocks)} blocks")


if __name__ == "__main__":
    main()
