#!/usr/bin/env python3
"""Block-level dequantisation goldens for every GGUF block type moescope reads.

For each type it writes tests/data/quant/<TYPE>.blocks (raw blocks, as they sit in a GGUF file)
and <TYPE>.npy (float32 [n_blocks, block_elems]): what the reference dequantiser of the PyPI
`gguf` package (gguf.quants.dequantize) makes of them. test_gguf checks moescope's
dequantize_blocks against them bit for bit (NaN against NaN).

The blocks: edge cases first (all-zero bytes; all 0xFF, which makes every half-float scale a NaN;
the largest finite half scale 65504 with all-ones codes; the smallest subnormal scale; a negative
scale; E8M0 exponents 0, 1, 127, 254 for MXFP4), then blocks of random bytes (every code and scale
bit pattern reachable), then blocks quantised from random floats by gguf's own quantiser where
gguf has one. Deterministic (fixed seed). Also the quantiser golden of Q8_0
(q8_0_quantize_golden: Q8_0-quantize.npy / .blocks).

    pip install gguf numpy
    python3 tests/tools/gen_quant_goldens.py [--out tests/data/quant]
"""
import argparse
import json
import os

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

TYPES = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
         "IQ4_NL", "IQ4_XS", "MXFP4"]

# Byte offsets of the half-float scales (d, and dmin/m where there is one) in each block.
HALF_OFFSETS = {
    "Q8_0": [0], "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2],
    "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
    "IQ4_NL": [0], "IQ4_XS": [0],
}


def set_half(block, offsets, value_bits):
    for o in offsets:
        block[o:o + 2] = np.frombuffer(np.uint16(value_bits).tobytes(), dtype=np.uint8)


def edge_blocks(name, type_size):
    out = [np.zeros(type_size, np.uint8), np.full(type_size, 0xFF, np.uint8)]
    if name == "MXFP4":
        for e in (0, 1, 127, 254):
            b = np.full(type_size, 0x77, np.uint8)  # codes 7 (= 12/2 = 6.0) everywhere
            b[0] = e
            out.append(b)
        return out
    offs = HALF_OFFSETS[name]
    for bits in (0x7BFF, 0x0001, 0xBC00):  # 65504, 2^-24, -1.0
        b = np.full(type_size, 0xFF, np.uint8)  # every code and scale at its maximum
        set_half(b, offs, bits)
        out.append(b)
    b = np.full(type_size, 0x5A, np.uint8)  # a mixed bit pattern with a finite scale
    set_half(b, offs, 0x3555)
    out.append(b)
    return out


def bf16_round(x):
    """x rounded to the nearest BF16 value (ties to even), as float32."""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


def q8_0_quantize_golden(out):
    """Q8_0-quantize.npy (float32 [n_blocks, 32], the input) and Q8_0-quantize.blocks (the 34-byte
    blocks gguf.quants.quantize makes of them, following quantize_row_q8_0_ref in ggml-quants.c):
    test_load_options checks moescope's quantize_q8_0 (behind `--weights q8_0`) against them byte
    for byte. Edge cases first (all zeros; a single non-zero value; exact ties x·(127/amax) = k + 0.5,
    which round away from zero; a scale in the half-float subnormal range; a scale too large for a
    half float, stored as infinity; BF16-representable values, what a BF16 checkpoint holds), then
    random normal values over a wide range of magnitudes."""
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
    np.save(os.path.join(out, "Q8_0-quantize.npy"), x)
    q.astype(np.uint8).tofile(os.path.join(out, "Q8_0-quantize.blocks"))
    print(f"Q8_0 quantise: {len(blocks)} blocks")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(here, "..", "data", "quant"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(15)
    summary = {"gguf_version": gguf.__version__ if hasattr(gguf, "__version__") else "unknown",
               "types": {}}
    try:
        from importlib.metadata import version
        summary["gguf_version"] = version("gguf")
    except Exception:
        pass
    for name in TYPES:
        qt = T[name]
        block_elems, type_size = gguf.GGML_QUANT_SIZES[qt]
        blocks = edge_blocks(name, type_size)
        n_edge = len(blocks)
        for _ in range(8):
            blocks.append(rng.integers(0, 256, type_size, dtype=np.uint8))
        n_quantised = 0
        try:  # gguf's own quantiser, where it has one: realistic blocks
            x = (rng.standard_normal((4, block_elems)) * rng.uniform(0.01, 3.0, (4, 1))).astype(np.float32)
            q = quantize(x, qt).reshape(4, type_size)
            blocks.extend(q)
            n_quantised = 4
        except (NotImplementedError, Exception):
            pass
        raw = np.stack(blocks).astype(np.uint8)
        with np.errstate(all="ignore"):
            ref = dequantize(raw.reshape(-1), qt).astype(np.float32).reshape(len(blocks), block_elems)
        raw.tofile(os.path.join(args.out, name + ".blocks"))
        np.save(os.path.join(args.out, name + ".npy"), ref)
        summary["types"][name] = {"block_elems": block_elems, "block_bytes": type_size,
                                  "blocks": len(blocks), "edge": n_edge, "quantised": n_quantised,
                                  "nan": int(np.isnan(ref).sum())}
        print(f"{name}: {len(blocks)} blocks ({n_edge} edge, {n_quantised} quantised), "
              f"{int(np.isnan(ref).sum())} NaN values")
    q8_0_quantize_golden(args.out)
    with open(os.path.join(args.out, "README.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
