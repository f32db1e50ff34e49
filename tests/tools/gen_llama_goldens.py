#!/usr/bin/env python3
"""llama.cpp goldens: what llama.cpp itself computes for small GGUF models, so that
test_llama_goldens can check that moescope selects the same experts and gives the same logits.

For each model one fixed token sequence is fed to llama.cpp in a single batch (ids directly: the
tiny models carry a placeholder vocabulary), and tests/tools/llama_goldens.cpp, compiled against
the llama.cpp built here, records through the evaluation callback the selected experts of every
token and MoE layer (ffn_moe_topk-N), the scores they were selected on (ffn_moe_probs-N, after
the correction bias ffn_moe_probs_biased-N and the group mask ffn_moe_probs_masked-N where the
router has them) and the logits of every position. Written to tests/data/llama/NAME/:

  golden.json   the model file, its weight type, the tokens, the MoE layers, top-k, which tensor
                the scores are
  logits.npy    float32 [n_tokens, vocab]
  experts.npy   int32 [n_moe_layers, n_tokens, top_k], in llama.cpp's order (descending score)
  scores.npy    float32 [n_moe_layers, n_tokens, n_experts], the selection scores before any group
                mask (ffn_moe_probs_biased where the router has a correction bias, else ffn_moe_probs)
  margins.npy   float32 [n_moe_layers, n_tokens], llama.cpp's decision margins (decision_margins)
  logits_dequant.npy  (quantised models) float32 [n_tokens, vocab], llama.cpp's logits on a copy
                of the file with every tensor decoded to F32 (dequantised_copy): the exact forward
                of the quantised weights, without llama.cpp's rounding of the activations

Models:
  * F32: the GGUF goldens of tests/data/gguf (tests/tools/gen_gguf_goldens.py) that llama.cpp
    loads. The qwen2-moe and qwen3-moe ones have dense FFN layers between the MoE ones, which
    llama.cpp's qwen2moe/qwen3moe cannot load (every layer must have a router), so their
    architectures get an all-MoE variant of the same tiny config (tests/tools/gen_model_goldens.py's
    config with the dense layers turned to MoE), converted the same way, kept in
    tests/data/llama/models/.
  * Q8_0, Q4_K_M, MXFP4_MOE: the tiny models' dimensions (48, 16, ...) divide neither 32 nor 256,
    so two small random models whose matrix rows are multiples of 256 (qwen3moe and a DeepSeek-V3
    style deepseek2: sigmoid scores, correction bias, group-limited), made with transformers from a
    fixed seed (gen_model_goldens.build_model), saved to a temporary directory, converted to F32
    GGUF by convert_hf_to_gguf.py with gen_gguf_goldens.py's patches and quantised by
    llama-quantize; the quantised files are kept in tests/data/llama/models/, README.json lists
    every tensor type in them (llama-quantize falls back to another type for a row length its type
    cannot take) and check_types fails unless the routed experts got the intended type. Two layers
    would be closer to real models, but one layer each keeps all the new files within ~8 MB.
  * Files llama.cpp cannot read as the converter wrote them (no ARCH.vocab_size with a placeholder
    vocabulary, DeepSeek without q LoRA) get the missing integer through llama.cpp's kv_overrides
    (overrides()), recorded in golden.json; the files are not changed.

Steps: builds llama.cpp (its `llama` library and `llama-quantize`, CPU only, AVX2) in --build,
compiles llama_goldens.cpp against it, makes the models, runs them. Never needed in CI:

    pip download --no-binary :all: --no-deps llama-cpp-python -d /tmp/lcpp
    tar xzf /tmp/lcpp/llama_cpp_python-*.tar.gz -C /tmp/lcpp
    python3 tests/tools/gen_llama_goldens.py --llama-cpp /tmp/lcpp/llama_cpp_python-*/vendor/llama.cpp \
        --build /tmp/lcpp/build

Needs torch, transformers, safetensors, numpy, sentencepiece, gguf (as gen_model_goldens.py and
gen_gguf_goldens.py), cmake, ninja and a C++17 compiler.
"""
import argparse
import collections
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DATA = REPO / "tests" / "data"
sys.path.insert(0, str(HERE))

THREADS = 2
N_TOKENS = 32
# Fixed ids below 256 (every model's vocabulary has at least 256 entries), not the special ones 0-2.
TOKENS = [int(t) for t in np.random.RandomState(20261204).randint(3, 256, size=N_TOKENS)]

# CPU only, AVX2/FMA/F16C without -march=native, so that the goldens do not depend on the machine
# beyond that (as the CPU moescope's AVX2 kernel level needs).
CMAKE_FLAGS = ["-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=OFF", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON",
               "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=OFF",
               "-DLLAMA_BUILD_TOOLS=ON"]

# The F32 GGUF goldens of tests/data/gguf that llama.cpp loads as they are.
# (olmoe's file, like the qwen ones, has no olmoe.vocab_size, deepseek-v2-lite's no q_lora_rank: see overrides().)
F32_FROM_GGUF = ["mixtral", "olmoe", "deepseek-v2-lite", "deepseek-v2-group", "deepseek-v3"]
# Quantised types, as llama-quantize names them, and the golden type label.
QUANTS = {"Q8_0": "q8_0", "Q4_K_M": "q4_k_m", "MXFP4_MOE": "mxfp4"}


def run(cmd, **kw):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.stdout.write(r.stdout[-4000:] + r.stderr[-4000:])
        sys.exit(f"failed: {cmd[0]}")
    return r


# --------------------------------------------------------------------------------------------
# llama.cpp
# --------------------------------------------------------------------------------------------

def build_llama(src: Path, build: Path, jobs: int, extra):
    run(["cmake", "-S", src, "-B", build, "-G", "Ninja", *CMAKE_FLAGS, *extra])
    run(["cmake", "--build", build, "-j", str(jobs), "--target", "llama", "llama-quantize"])
    exe = build / "llama_goldens"
    libdir = build / "bin"
    run(["c++", "-std=c++17", "-O2", HERE / "llama_goldens.cpp", "-I", src / "include", "-I", src / "ggml" / "include",
         "-L", libdir, "-lllama", "-lggml", "-lggml-base", f"-Wl,-rpath,{libdir}", "-o", exe])
    return exe, build / "bin" / "llama-quantize"


def llama_version(src: Path):
    """The llama-cpp-python release the tree came with; the vendored tree carries no git commit, so
    also the SHA-256 of the files that decide what the goldens hold."""
    import hashlib
    info = {}
    pkg = src.parent.parent / "PKG-INFO"
    if pkg.exists():
        for line in pkg.read_text().splitlines():
            if line.startswith("Version:"):
                info["llama_cpp_python"] = line.split()[1]
                break
    files = ("include/llama.h", "src/llama-graph.cpp", "src/llama-model.cpp", "convert_hf_to_gguf.py")
    info["sha256"] = {f: hashlib.sha256((src / f).read_bytes()).hexdigest() for f in files}
    return info


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------

def convert(llama_cpp: Path, hf_dir: Path, out: Path, outtype="f32"):
    """convert_hf_to_gguf.py with gen_gguf_goldens.py's patches (dense qwen FFN names,
    placeholder vocabulary)."""
    import gen_gguf_goldens
    r = subprocess.run([sys.executable, "-c", gen_gguf_goldens.CHILD, str(llama_cpp), str(hf_dir), str(out), outtype],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.stdout.write(r.stdout[-4000:] + r.stderr[-4000:])
        sys.exit(f"{hf_dir}: the converter failed")


def allmoe_spec(name):
    """gen_model_goldens' tiny qwen2-moe / qwen3-moe config with every layer MoE."""
    import gen_model_goldens as gm
    base = dict(gm.VARIANTS[name])
    make = base["cfg"]

    def cfg():
        c = make()
        c.mlp_only_layers = []
        c.decoder_sparse_step = 1
        return c
    base["cfg"] = cfg
    return base


def cfg_qwen3moe_256():
    import gen_model_goldens as gm
    return gm.Qwen3MoeConfig(
        **gm._common(256), hidden_size=256, head_dim=128, intermediate_size=256, moe_intermediate_size=256,
        num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1, num_experts=4, num_experts_per_tok=2,
        norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[], attention_bias=False,
        max_position_embeddings=128, rms_norm_eps=1e-6, rope_parameters={"rope_type": "default", "rope_theta": 1e6},
        use_sliding_window=False, tie_word_embeddings=True)


def cfg_deepseek3_256():
    import gen_model_goldens as gm
    return gm.DeepseekV3Config(
        **gm._common(256), hidden_size=256, intermediate_size=256, moe_intermediate_size=256, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, q_lora_rank=256, kv_lora_rank=256, qk_nope_head_dim=128,
        qk_rope_head_dim=64, v_head_dim=128, n_routed_experts=4, num_experts_per_tok=2, n_group=2, topk_group=1,
        n_shared_experts=1, first_k_dense_replace=0, norm_topk_prob=True, routed_scaling_factor=2.5,
        num_nextn_predict_layers=0, rope_interleave=True, max_position_embeddings=128, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1e4}, tie_word_embeddings=False)


def quant_specs():
    import gen_model_goldens as gm
    return {
        "qwen3moe-256": dict(cfg=cfg_qwen3moe_256, cls=gm.Qwen3MoeForCausalLM, dtype="float32", seed=30100),
        "deepseek3-256": dict(cfg=cfg_deepseek3_256, cls=gm.DeepseekV3ForCausalLM, dtype="float32", seed=30200,
                              hub_extra={"scoring_func": "sigmoid", "topk_method": "noaux_tc", "moe_layer_freq": 1}),
    }


# Weights of the 256-wide models: std 0.05 (the tiny goldens' 0.2 is for hidden 48).
INIT_256 = 0.05


def make_hf(spec, out: Path, init_range=None):
    import gen_model_goldens as gm
    spec = dict(spec)
    if init_range is not None:
        make = spec["cfg"]

        def cfg():
            c = make()
            c.initializer_range = init_range
            return c
        spec["cfg"] = cfg
    model = gm.build_model(spec, spec["seed"])
    gm.save_dir(model, out, "float32", spec.get("hub_extra"), None)


def tensor_types(path: Path):
    import gguf
    r = gguf.GGUFReader(str(path))
    count = collections.Counter()
    per = {}
    for t in r.tensors:
        name = t.tensor_type.name
        count[name] += 1
        per[t.name] = name
    return dict(sorted(count.items())), per


def check_types(q: str, per: dict):
    """llama-quantize falls back to another type for a row length its type cannot take (here:
    DeepSeek's attn_k_b, rows of qk_nope 128, Q4_K_M -> Q5_0): the files must still hold the
    intended type where it matters, the routed experts (and for Q8_0 every matrix)."""
    experts = {n: t for n, t in per.items() if "_exps." in n}
    assert experts, "no expert tensors"
    want = {"Q8_0": {"Q8_0"}, "Q4_K_M": {"Q4_K", "Q6_K"}, "MXFP4_MOE": {"MXFP4"}}[q]
    bad = {n: t for n, t in experts.items() if t not in want}
    if q == "Q4_K_M":
        bad.update({n: t for n, t in experts.items() if ("gate_exps" in n or "up_exps" in n) and t != "Q4_K"})
    if q == "Q8_0":
        bad.update({n: t for n, t in per.items() if t not in ("Q8_0", "F32") or (t == "F32" and "norm" not in n
                                                                                 and "gate_inp" not in n
                                                                                 and "exp_probs_b" not in n)})
    if bad:
        sys.exit(f"llama-quantize {q} wrote other types than intended: {bad}")


def dequantised_copy(src: Path, out: Path):
    """The quantised file with every tensor decoded to F32 by gguf-py (gguf.quants.dequantize) and
    the same metadata: llama.cpp runs F32 weights with F32 activations, so its logits on this copy
    are the exact forward of the quantised weights, without llama.cpp's activation rounding."""
    import gguf
    from gguf.quants import dequantize
    r = gguf.GGUFReader(str(src))
    f = r.fields["general.architecture"]
    w = gguf.GGUFWriter(str(out), bytes(f.parts[f.data[0]]).decode())
    for field in r.fields.values():
        if field.name in ("general.architecture", "general.file_type") or field.name.startswith("GGUF."):
            continue
        vt = field.types[0]
        sub = field.types[-1] if vt == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(field.name, field.contents(), vt, sub_type=sub)
    for t in r.tensors:
        w.add_tensor(t.name, np.ascontiguousarray(dequantize(t.data, t.tensor_type), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# --------------------------------------------------------------------------------------------
# Goldens
# --------------------------------------------------------------------------------------------

def overrides(model: Path):
    """Metadata a file lacks that this llama.cpp needs, as KEY=INT for llama_goldens (llama.cpp's
    kv_overrides), "-" for none; the files stay as the converter wrote them.
      * ARCH.vocab_size: llama.cpp takes the size of a placeholder vocabulary (tokenizer.ggml.model
        "none") from that key alone and would otherwise have no tokens and refuse the embedding's
        shape; the converter writes it only for some architectures (llama, deepseek2). N: the
        length of the file's own token list.
      * deepseek2.attention.q_lora_rank=0 where the model has no q LoRA (attn_q, as DeepSeek-V2-Lite):
        llama.cpp tells the lite variant by its layer count (26, 27), requires the key otherwise, and
        the converter writes none then; 0 makes it build attn_q, as for the real Lite."""
    import gguf
    r = gguf.GGUFReader(str(model))
    f = r.fields["general.architecture"]
    arch = bytes(f.parts[f.data[0]]).decode()
    out = []
    if f"{arch}.vocab_size" not in r.fields:
        out.append(f"{arch}.vocab_size={len(r.fields['tokenizer.ggml.tokens'].data)}")
    if arch == "deepseek2" and "deepseek2.attention.q_lora_rank" not in r.fields:
        out.append("deepseek2.attention.q_lora_rank=0")
    return ",".join(out) or "-"


def capture(exe: Path, model: Path):
    with tempfile.TemporaryDirectory() as tmp:
        override = overrides(model)
        run([exe, model, tmp, str(THREADS), override, *TOKENS])
        man = json.loads((Path(tmp) / "manifest.json").read_text())
        T, V = man["n_tokens"], man["n_vocab"]
        logits = np.fromfile(Path(tmp) / "logits.f32", dtype="<f4").reshape(T, V)
        tensors = {}
        for t in man["tensors"]:
            dt = {"f32": "<f4", "i32": "<i4"}[t["type"]]
            ne0, ne1 = t["ne"]
            tensors[t["name"]] = np.fromfile(Path(tmp) / (t["name"] + ".bin"), dtype=dt).reshape(ne1, ne0)
    return logits, tensors, override


def decision_margins(topk, biased, masked, group_topk):
    """llama.cpp's margin per token: how far its selection was from changing. The k-th selected
    score minus the best unselected one among the experts it could choose; where it first keeps
    the best groups (ffn_moe_group_topk, each group scored by the sum of its two best biased
    scores, as llama-graph.cpp's build_moe_ffn does), also the worst kept group's score minus the
    best dropped one's, whichever is smaller. topk [T, K], biased [T, E] the selection scores
    before the group mask, masked [T, E] after it (or None), group_topk [T, G_used] (or None)."""
    T, E = biased.shape
    out = np.empty(T, dtype=np.float32)
    for t in range(T):
        s = masked[t] if masked is not None else biased[t]
        sel = topk[t]
        rest = np.delete(s, sel)
        rest = rest[rest > -np.inf]
        m = s[sel].min() - (rest.max() if rest.size else -np.inf)
        if group_topk is not None:
            n_group = biased.shape[1] // per_group(masked[t], group_topk[t])
            g = np.sort(biased[t].reshape(n_group, -1), axis=1)[:, -2:].sum(1)
            kept = np.zeros(n_group, bool)
            kept[group_topk[t]] = True
            if (~kept).any():
                m = min(m, g[kept].min() - g[~kept].max())
        out[t] = m
    return out


def per_group(masked_row, kept_groups):
    """Experts per group, from a masked score row and the kept groups: the unmasked experts are
    exactly the kept groups' ones."""
    n = int((masked_row > -np.inf).sum())
    assert n % len(kept_groups) == 0
    return n // len(kept_groups)


def write_golden(out: Path, name: str, model_rel: str, wtype: str, captured, source: str, dequant=None):
    logits, tensors, override = captured
    layers = sorted({int(k.rsplit("-", 1)[1]) for k in tensors if k.startswith("ffn_moe_topk-")})
    assert layers, f"{name}: no ffn_moe_topk tensor was seen"
    experts, scores, margins = [], [], []
    score_name = None
    for il in layers:
        topk = tensors[f"ffn_moe_topk-{il}"]  # [T, K]
        # the selection scores before any group mask: biased where there is a correction bias
        cand = "ffn_moe_probs_biased" if f"ffn_moe_probs_biased-{il}" in tensors else "ffn_moe_probs"
        assert score_name in (None, cand)
        score_name = cand
        biased = tensors[f"{cand}-{il}"]
        masked = tensors.get(f"ffn_moe_probs_masked-{il}")
        group_topk = tensors.get(f"ffn_moe_group_topk-{il}")
        assert (masked is None) == (group_topk is None)
        experts.append(topk.astype("<i4"))
        scores.append(biased.astype("<f4"))
        margins.append(decision_margins(topk, biased, masked, group_topk))
    experts = np.stack(experts)
    scores = np.stack(scores)
    margins = np.stack(margins).astype("<f4")
    assert experts.shape[1] == len(TOKENS) and logits.shape[0] == len(TOKENS)
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / "logits.npy", logits.astype("<f4"))
    np.save(d / "experts.npy", experts)
    np.save(d / "scores.npy", scores)
    np.save(d / "margins.npy", margins)
    if dequant is not None:
        np.save(d / "logits_dequant.npy", dequant.astype("<f4"))
    g = {"model": model_rel, "weights": wtype, "source": source, "tokens": TOKENS, "moe_layers": layers,
         "top_k": int(experts.shape[2]), "n_experts": int(scores.shape[2]), "scores": score_name,
         "grouped": "ffn_moe_group_topk" in " ".join(tensors), "min_margin": float(margins.min()),
         "llama_cpp_override": override}
    (d / "golden.json").write_text(json.dumps(g, indent=1) + "\n")
    print(f"{name}: {wtype}, {len(layers)} MoE layers, {len(TOKENS)} tokens, scores {score_name}, "
          f"smallest llama.cpp margin {margins.min():.3g}")
    return g


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-cpp", required=True, type=Path, help="llama.cpp source tree")
    ap.add_argument("--build", required=True, type=Path, help="build directory for llama.cpp")
    ap.add_argument("--out", default=DATA / "llama", type=Path)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", nargs="*", help="goldens to (re)make, by directory name")
    ap.add_argument("--cmake-arg", action="append", default=[],
                    help="extra llama.cpp cmake argument (a compiler launcher)")
    args = ap.parse_args()
    src = args.llama_cpp.resolve()
    sys.path.insert(0, str(src / "gguf-py"))  # llama.cpp's own gguf-py, as its converter uses
    exe, quantize = build_llama(src, args.build.resolve(), args.jobs, args.cmake_arg)
    out = args.out.resolve()
    models_dir = out / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    readme = out / "README.json"
    info = json.loads(readme.read_text()) if readme.exists() and args.only else {}
    info.update(llama_version(src))
    info["llama_cpp_source"] = "vendor/llama.cpp of the llama-cpp-python sdist (PyPI)"
    info["cmake_flags"] = CMAKE_FLAGS
    info["targets"] = ["llama", "llama-quantize"]
    info["capture"] = (f"tests/tools/llama_goldens.cpp: CPU, {THREADS} threads, one batch of {N_TOKENS} tokens, "
                       "all logits, F32 K/V cache, flash attention off")
    info["tokens"] = TOKENS
    info["command"] = "python3 tests/tools/gen_llama_goldens.py --llama-cpp LLAMA_CPP_SRC --build BUILD_DIR"
    try:
        from importlib.metadata import version
        info["versions"] = {p: version(p) for p in ("torch", "transformers", "numpy", "gguf")}
    except Exception:
        pass
    goldens = info.setdefault("goldens", {})
    files = info.setdefault("files", {})
    want = (lambda n: not args.only or n in args.only)

    for name in F32_FROM_GGUF:
        if want(name):
            model = DATA / "gguf" / f"{name}.gguf"
            goldens[name] = write_golden(out, name, f"gguf/{name}.gguf", "f32", capture(exe, model),
                                         f"tests/data/gguf/{name}.gguf (gen_gguf_goldens.py)")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for base in ("qwen2-moe", "qwen3-moe"):
            name = f"{base}-allmoe"
            if not want(name):
                continue
            hf = tmp / name
            make_hf(allmoe_spec(base), hf)
            gg = models_dir / f"{name}.gguf"
            convert(src, hf, gg)
            counts, _ = tensor_types(gg)
            files[f"models/{name}.gguf"] = {"from": f"gen_model_goldens.py {base} config, every layer MoE",
                                            "seed": allmoe_spec(base)["seed"], "types": counts,
                                            "bytes": gg.stat().st_size}
            goldens[name] = write_golden(out, name, f"llama/models/{name}.gguf", "f32", capture(exe, gg),
                                         files[f"models/{name}.gguf"]["from"])

        for name, spec in quant_specs().items():
            todo = [q for q, label in QUANTS.items() if want(f"{name}-{label}")]
            if not todo:
                continue
            hf = tmp / name
            make_hf(spec, hf, INIT_256)
            f32 = tmp / f"{name}-f32.gguf"
            convert(src, hf, f32)
            for q in todo:
                label = QUANTS[q]
                gname = f"{name}-{label}"
                gg = models_dir / f"{gname}.gguf"
                run([quantize, f32, gg, q])
                counts, per = tensor_types(gg)
                check_types(q, per)
                files[f"models/{gname}.gguf"] = {
                    "from": f"random {spec['cls'].__name__} (seed {spec['seed']}, init std {INIT_256}) -> "
                            f"convert_hf_to_gguf.py f32 -> llama-quantize {q}",
                    "command": f"llama-quantize MODEL-f32.gguf {gname}.gguf {q}",
                    "types": counts, "tensors": per, "bytes": gg.stat().st_size}
                deq = tmp / f"{gname}-dequantised.gguf"
                dequantised_copy(gg, deq)
                goldens[gname] = write_golden(out, gname, f"llama/models/{gname}.gguf", label, capture(exe, gg),
                                              files[f"models/{gname}.gguf"]["from"], dequant=capture(exe, deq)[0])

    info["goldens"] = dict(sorted(goldens.items()))
    info["files"] = dict(sorted(files.items()))
    readme.write_text(json.dumps(info, indent=1) + "\n")


if __name__ == "__main__":
    main()
