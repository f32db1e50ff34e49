#!/usr/bin/env python3
"""A full-depth GGUF file from a few-layer one, for memory and speed checks at full size.

  gguf_repeat_layers.py --in SMALL.gguf --layers N --out FULL.gguf

FULL.gguf has SMALL's metadata with `<arch>.block_count = N`, its non-layer tensors (embedding,
output, final norm) as they are, and layer i's tensors copied from SMALL's layer i % L (L = SMALL's
block count), so every block of every quantised type is one llama-quantize wrote: a random-weight
Qwen3-30B-A3B-shaped Q4_K_M file of 48 layers (~18 GB) from the 4-layer one that
tools/bench-vs-llama.sh makes (tools/bench_checkpoint.py + llama-quantize). The tensor data is
streamed, so the script needs little memory. Needs the PyPI `gguf` package; never needed by the app,
its tests or CI.
"""
import argparse
import re

import gguf
import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--in", dest="src", required=True)
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    r = gguf.GGUFReader(a.src)
    arch = r.fields["general.architecture"].contents()
    small = int(r.fields[f"{arch}.block_count"].contents())
    w = gguf.GGUFWriter(a.out, arch)
    for key, field in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        value = a.layers if key == f"{arch}.block_count" else field.contents()
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            w.add_key_value(key, value, vtype, sub_type=field.types[-1])
        else:
            w.add_key_value(key, value, vtype)

    layer = re.compile(r"^blk\.(\d+)\.(.*)$")
    by_name = {t.name: t for t in r.tensors}
    plan = []  # (name in FULL, tensor of SMALL)
    for t in r.tensors:
        if not layer.match(t.name):
            plan.append((t.name, t))
    for i in range(a.layers):
        for t in r.tensors:
            m = layer.match(t.name)
            if m and int(m.group(1)) == i % small:
                plan.append((f"blk.{i}.{m.group(2)}", by_name[t.name]))
    for name, t in plan:
        # element shape, outermost first (numpy order; the reader gives GGUF order); a dtype other
        # than uint8 so that the writer takes it as elements, not bytes
        w.add_tensor_info(name, list(reversed(t.shape.tolist())), np.dtype(np.float32), int(t.n_bytes), raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for name, t in plan:
        w.write_tensor_data(np.ascontiguousarray(t.data).view(np.uint8).reshape(-1))
    w.close()
    print(f"{a.out}: {a.layers} layers (from {small}), {len(plan)} tensors")


if __name__ == "__main__":
    main()
