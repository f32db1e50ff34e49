#!/usr/bin/env python3
"""Writes a large routing dump to measure `moescope-cli stats --trace` / RoutingDump on:
expert ids [S, 2000, 58, 8] int16 (PREFIX_routed.npy) and token ids [S, 2000] int32
(PREFIX_tokens.npy), every sequence's tail padded (token id -1, expert ids -1), as RL pipelines
save rollouts of different lengths. 58 layers x top-8 of 256 experts: DeepSeek-R1's MoE layers.

    python3 tools/gen_routing_dump.py 5000 /tmp/dumps/big      # 9.3 GB + 40 MB
    moescope-cli stats --trace /tmp/dumps/big_routed.npy --token-ids /tmp/dumps/big_tokens.npy --preset deepseek-r1
"""
import sys

import numpy as np

S, T, L, K = int(sys.argv[1]), 2000, 58, 8
out = sys.argv[2]
rng = np.random.default_rng(0)
ids = np.lib.format.open_memmap(out + "_routed.npy", mode="w+", dtype=np.int16, shape=(S, T, L, K))
tok = np.lib.format.open_memmap(out + "_tokens.npy", mode="w+", dtype=np.int32, shape=(S, T))
lens = rng.integers(T // 2, T + 1, size=S)
step = 50
for s0 in range(0, S, step):
    s1 = min(S, s0 + step)
    block = rng.integers(0, 256, size=(s1 - s0, T, L, K), dtype=np.int16)
    t = rng.integers(0, 129280, size=(s1 - s0, T), dtype=np.int32)
    for i in range(s1 - s0):
        block[i, lens[s0 + i]:] = -1
        t[i, lens[s0 + i]:] = -1
    ids[s0:s1] = block
    tok[s0:s1] = t
ids.flush()
tok.flush()
print("tokens (non-padding):", int(lens.sum()), "ids counted:", int(lens.sum()) * L * K)
