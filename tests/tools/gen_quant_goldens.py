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
gguf has one. Deterministic (fixed seed).

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
    with open(os.path.join(args.out, "README.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
