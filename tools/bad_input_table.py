#!/usr/bin/env python3
"""Writes docs/bad-input.md: every bad input moescope is tested against, with the exact message
moescope-cli prints (stderr) and its exit status, captured by running the CLI.

    python3 tools/bad_input_table.py [--cli build/app/cli/moescope-cli] [--out docs/bad-input.md]

Each case builds its input in a temporary copy of a committed test model (tests/data/models), so
the table is regenerated from scratch and always shows what the current build says."""
import argparse, json, os, shutil, struct, subprocess, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "tests", "data", "models")


def model_copy(tmp, name="mixtral"):
    d = tempfile.mkdtemp(dir=tmp)
    for f in os.listdir(os.path.join(MODELS, name)):
        shutil.copy(os.path.join(MODELS, name, f), d)
    if not os.path.exists(os.path.join(d, "tokenizer.json")):  # borrow the chat model's tokenizer
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(MODELS, "chat-tiny", f), d)
    return d


def edit_config(d, key, value):
    p = os.path.join(d, "config.json")
    c = json.load(open(p))
    if value is DELETE:
        c.pop(key, None)
    else:
        c[key] = value
    json.dump(c, open(p, "w"))


def read_st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def write_st(path, header, data):
    h = json.dumps(header).encode()
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)


def edit_st(d, fn):
    p = os.path.join(d, "model.safetensors")
    h, data = read_st(p)
    data = fn(h, data) or data
    write_st(p, h, data)


DELETE = object()

GGUF = os.path.join(ROOT, "tests", "data", "gguf", "mixtral.gguf")
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def gguf_layout(b):
    """Byte positions in a GGUF file: {key: value offset} and, per tensor, where its ne, type and
    offset fields are (a reader of just enough of the format to edit it)."""
    pos = 24
    n_tensors, n_kv = struct.unpack_from("<QQ", b, 8)
    kv = {}

    def skip_value(t, pos):
        if t == 8:
            return pos + 8 + struct.unpack_from("<Q", b, pos)[0]
        if t == 9:
            et, n = struct.unpack_from("<IQ", b, pos)
            pos += 12
            for _ in range(n):
                pos = skip_value(et, pos)
            return pos
        return pos + _FIXED[t]
    for _ in range(n_kv):
        n = struct.unpack_from("<Q", b, pos)[0]
        key = b[pos + 8:pos + 8 + n].decode()
        t = struct.unpack_from("<I", b, pos + 8 + n)[0]
        kv[key] = pos + 12 + n
        pos = skip_value(t, pos + 12 + n)
    tensors = []
    for _ in range(n_tensors):
        n = struct.unpack_from("<Q", b, pos)[0]
        name = b[pos + 8:pos + 8 + n].decode()
        pos += 8 + n
        dims = struct.unpack_from("<I", b, pos)[0]
        ne_at = pos + 4
        pos = ne_at + 8 * dims
        tensors.append({"name": name, "ne": ne_at, "type": pos, "offset": pos + 4})
        pos += 12
    return kv, tensors


def gguf_copy(tmp, edit=None, name="model.gguf"):
    d = tempfile.mkdtemp(dir=tmp)
    b = bytearray(open(GGUF, "rb").read())
    if edit:
        b = edit(b, *gguf_layout(b)) or b
    open(os.path.join(d, name), "wb").write(b)
    return os.path.join(d, name)


def cases(tmp):
    """(area, description, argv builder) — argv builder returns the CLI arguments."""
    out = []

    def config_case(desc, key, value):
        def run():
            d = model_copy(tmp)
            edit_config(d, key, value)
            return ["generate", "--model", d, "--ids", "1,2", "--max-tokens", "1"]
        out.append(("config.json", desc, run))

    config_case("`architectures` missing", "architectures", DELETE)
    config_case("unknown architecture", "architectures", ["GPT2LMHeadModel"])
    config_case("`hidden_size` missing", "hidden_size", DELETE)
    config_case("negative `hidden_size`", "hidden_size", -48)
    config_case("enormous `vocab_size`", "vocab_size", 10**12)
    config_case("`num_hidden_layers` a string", "num_hidden_layers", "three")
    config_case("top-k above the number of experts", "num_experts_per_tok", 9)
    config_case("heads not dividing hidden_size", "num_attention_heads", 5)
    config_case("KV heads not dividing heads", "num_key_value_heads", 3)
    config_case("zero experts", "num_local_experts", 0)
    config_case("unsupported RoPE scaling", "rope_scaling", {"type": "dynamic", "factor": 2})
    config_case("Llama 3 rope bands reversed", "rope_scaling",
                {"type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 1,
                 "original_max_position_embeddings": 64})
    config_case("unsupported activation", "hidden_act", "gelu")
    config_case("`eos_token_id` outside the vocabulary", "eos_token_id", 99999)

    def gpt_oss_case(desc, edit, model="gpt-oss", area="config.json (gpt-oss)"):
        def run():
            d = model_copy(tmp, model)
            edit(d)
            return ["generate", "--model", d, "--ids", "1,2", "--max-tokens", "1"]
        out.append((area, desc, run))

    gpt_oss_case("`layer_types` with fewer entries than layers",
                 lambda d: edit_config(d, "layer_types", ["sliding_attention", "full_attention", "full_attention"]))
    gpt_oss_case("unknown layer type in `layer_types`",
                 lambda d: edit_config(d, "layer_types", ["sliding_attention", "full_attention", "linear_attention",
                                                          "full_attention"]))

    def quant(d):
        edit_config(d, "quantization_config", {"quant_method": "awq"})
    gpt_oss_case("quantisation other than MXFP4", quant, "gpt-oss-mxfp4")

    def sinks(h, data):
        h["model.layers.0.self_attn.sinks"]["shape"] = [2, 2]
    gpt_oss_case("attention sinks of the wrong shape", lambda d: edit_st(d, sinks), area="safetensors (gpt-oss)")

    def blocks(h, data):
        h["model.layers.0.mlp.experts.gate_up_proj_blocks"]["shape"] = [8, 64, 1, 32]
    gpt_oss_case("MXFP4 blocks whose split disagrees with `hidden_size`", lambda d: edit_st(d, blocks), "gpt-oss-mxfp4",
                 "safetensors (gpt-oss)")

    def q35_case(desc, edit, model="qwen3.5-moe", area="config.json (Qwen3.5)"):
        gpt_oss_case(desc, edit, model, area)

    q35_case("`layer_types` with more entries than layers",
             lambda d: edit_config(d, "layer_types", ["linear_attention", "full_attention", "linear_attention",
                                                      "full_attention"]))
    q35_case("unknown layer type in `layer_types`",
             lambda d: edit_config(d, "layer_types", ["linear_attention", "sliding_attention", "linear_attention"]))
    q35_case("linear-attention value heads not shared evenly by key heads",
             lambda d: edit_config(d, "linear_num_value_heads", 3))
    q35_case("`text_config` missing from the multimodal layout", lambda d: edit_config(d, "text_config", DELETE),
             "qwen3.5-moe-vl")

    def conv(h, data):
        h["model.layers.0.linear_attn.conv1d.weight"]["shape"] = [80, 2, 2]
    q35_case("linear-attention convolution split differently from `linear_conv_kernel_dim`", lambda d: edit_st(d, conv),
             area="safetensors (Qwen3.5)")

    def arch_case(desc, model, key, value, area):
        gpt_oss_case(desc, lambda d: edit_config(d, key, value), model, area)

    arch_case("`mlp_bias: true` (Llama)", "llama", "mlp_bias", True, "config.json (Llama)")
    arch_case("`mlp_bias: true` (DeepSeek-V2)", "deepseek-v2-lite", "mlp_bias", True, "config.json (DeepSeek-V2)")
    arch_case("`mlp_layer_types` with fewer entries than layers", "glm4-moe-lite", "mlp_layer_types",
              ["dense", "sparse"], "config.json (GLM-4.7-Flash)")
    arch_case("`mlp_layer_types` not a list", "glm4-moe-lite", "mlp_layer_types", "sparse",
              "config.json (GLM-4.7-Flash)")
    arch_case("unknown value in `mlp_layer_types`", "glm4-moe-lite", "mlp_layer_types", ["dense", "moe", "sparse"],
              "config.json (GLM-4.7-Flash)")
    arch_case("MXFP4 experts whose width is not a multiple of 32", "gpt-oss-mxfp4", "intermediate_size", 48,
              "config.json (gpt-oss)")

    def u8(h, data):
        t = h["model.norm.weight"]
        t["dtype"] = "U8"
        t["data_offsets"] = [t["data_offsets"][0], t["data_offsets"][0] + 48]

    def file_case(area, desc, fn, argv=None):
        def run():
            d = model_copy(tmp)
            fn(d)
            return (argv or ["generate", "--model", "{d}", "--ids", "1,2", "--max-tokens", "1"]) and \
                [a.replace("{d}", d) for a in (argv or ["generate", "--model", "{d}", "--ids", "1,2", "--max-tokens", "1"])]
        out.append((area, desc, run))

    def w(name, text):
        return lambda d: open(os.path.join(d, name), "w" if isinstance(text, str) else "wb").write(text)

    file_case("config.json", "not JSON", w("config.json", "{ not json"))
    file_case("config.json", "missing", lambda d: os.remove(os.path.join(d, "config.json")))
    st = "model.safetensors"
    file_case("safetensors", "file of 3 bytes", w(st, b"abc"))
    file_case("safetensors", "truncated (half the data gone)",
              lambda d: os.truncate(os.path.join(d, st), os.path.getsize(os.path.join(d, st)) // 2))
    file_case("safetensors", "header length past the end of the file",
              w(st, struct.pack("<Q", 10**6) + b"{}"))
    file_case("safetensors", "header not JSON", w(st, struct.pack("<Q", 8) + b"{notjson"))

    def offsets(h, data):
        h["model.norm.weight"]["data_offsets"] = [len(data) - 4, len(data) + 188]
    file_case("safetensors", "data offsets out of range", lambda d: edit_st(d, offsets))

    def overlap(h, data):
        h["model.layers.0.input_layernorm.weight"]["data_offsets"] = h["model.norm.weight"]["data_offsets"]
    file_case("safetensors", "overlapping tensors", lambda d: edit_st(d, overlap))

    def dtype(h, data):
        h["model.norm.weight"]["dtype"] = "I8"
    file_case("safetensors", "unsupported dtype", lambda d: edit_st(d, dtype))

    def mismatch(h, data):
        h["model.norm.weight"]["dtype"] = "F16"
    file_case("safetensors", "size not matching shape × dtype", lambda d: edit_st(d, mismatch))

    def shape(h, data):
        h["model.norm.weight"]["shape"] = [4, 12]
    file_case("safetensors", "wrong tensor shape", lambda d: edit_st(d, shape))
    file_case("safetensors", "U8 tensor that is not MXFP4 blocks or scales", lambda d: edit_st(d, u8))

    def missing(h, data):
        del h["model.layers.1.block_sparse_moe.experts.3.w2.weight"]
    file_case("safetensors", "missing tensor", lambda d: edit_st(d, missing))
    file_case("safetensors", "no .safetensors file", lambda d: os.remove(os.path.join(d, st)))
    idx = "model.safetensors.index.json"
    file_case("index", "index not JSON", w(idx, '{"weight_map": [1, 2'))
    file_case("index", "index names a missing shard",
              w(idx, json.dumps({"weight_map": {"model.norm.weight": "other.safetensors"}})))
    file_case("index", "index names a path, not a file name",
              w(idx, json.dumps({"weight_map": {"model.norm.weight": "../x.safetensors"}})))
    file_case("index", "index without weight_map", w(idx, "{}"))

    def gguf_case(desc, edit, argv=None, name="model.gguf"):
        def run():
            f = gguf_copy(tmp, edit, name)
            return [a.replace("{f}", f) for a in (argv or ["generate", "--model", "{f}", "--ids", "1,2", "--max-tokens", "1"])]
        out.append(("GGUF", desc, run))

    def put(fmt, at_fn):
        def edit(b, kv, ts):
            struct.pack_into(fmt[0], b, at_fn(kv, ts), *fmt[1:])
        return edit
    gguf_case("file of 3 bytes", lambda b, kv, ts: bytearray(b"GGU"))
    gguf_case("bad magic", put(("<I", 0x46554746), lambda kv, ts: 0))
    gguf_case("GGUF version 1", put(("<I", 1), lambda kv, ts: 4))
    gguf_case("unknown version", put(("<I", 4), lambda kv, ts: 4))
    gguf_case("truncated (half the data gone)", lambda b, kv, ts: b[:len(b) // 2])
    gguf_case("absurd tensor count", put(("<Q", 1 << 60), lambda kv, ts: 8))
    gguf_case("dimensions whose product overflows", put(("<QQ", 1 << 32, 1 << 32), lambda kv, ts: ts[0]["ne"]))
    gguf_case("tensor data out of range", put(("<Q", 1 << 30), lambda kv, ts: ts[-1]["offset"]))

    def gguf_overlap(b, kv, ts):
        struct.pack_into("<Q", b, ts[1]["offset"], struct.unpack_from("<Q", b, ts[0]["offset"])[0])
    gguf_case("overlapping tensors", gguf_overlap)
    gguf_case("unsupported tensor type (IQ2_XXS)", put(("<I", 16), lambda kv, ts: ts[0]["type"]))
    gguf_case("row not a whole block (Q8_0 with 48-wide rows)", put(("<I", 8), lambda kv, ts: ts[0]["type"]))
    gguf_case("metadata contradicting the tensor shapes", put(("<I", 64), lambda kv, ts: kv["llama.embedding_length"]))

    def gguf_arch(b, kv, ts):
        at = kv["general.architecture"] + 8
        b[at:at + 5] = b"gpt-2"
    gguf_case("unsupported architecture", gguf_arch)

    def gguf_split(b, kv, ts):
        o = bytearray(struct.pack("<IIQQ", 0x46554747, 3, 0, 2))
        for key, t, fmt, v in (("split.no", 2, "<H", 0), ("split.count", 2, "<H", 2)):
            o += struct.pack("<Q", len(key)) + key.encode() + struct.pack("<I", t) + struct.pack(fmt, v)
        return o
    gguf_case("split set with a missing part", gguf_split, name="m-00001-of-00002.gguf")
    gguf_case("no tokenizer in the file (placeholder vocabulary) and no tokenizer.json beside it", None,
              ["tokenize", "--model", "{f}", "--text", "hello"])

    tok = ["tokenize", "--model", "{d}", "--text", "hello"]
    file_case("tokenizer.json", "missing", lambda d: os.remove(os.path.join(d, "tokenizer.json")), tok)
    file_case("tokenizer.json", "not JSON", w("tokenizer.json", "{"), tok)
    file_case("tokenizer.json", "unsupported model type", w("tokenizer.json", json.dumps({"model": {"type": "Unigram", "vocab": []}})), tok)
    file_case("tokenizer.json", "BPE without vocab", w("tokenizer.json", json.dumps({"model": {"type": "BPE"}})), tok)
    file_case("tokenizer.json", "merge of unknown tokens",
              w("tokenizer.json", json.dumps({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}})), tok)
    file_case("tokenizer input", "text not valid UTF-8",
              w("bad.txt", b"ok \xff\xfe"), ["tokenize", "--model", "{d}", "--file", "{d}/bad.txt"])
    file_case("tokenizer input", "id outside the vocabulary", lambda d: None,
              ["detokenize", "--model", "{d}", "--ids", "1,99999999"])

    msgs = json.dumps([{"role": "user", "content": "hi"}])

    def tpl(template):
        def f(d):
            p = os.path.join(d, "tokenizer_config.json")
            c = json.load(open(p))
            if template is DELETE:
                c.pop("chat_template", None)
            else:
                c["chat_template"] = template
            json.dump(c, open(p, "w"))
            open(os.path.join(d, "m.json"), "w").write(msgs)
        return f
    targv = ["template", "--model", "{d}", "--messages", "{d}/m.json"]
    file_case("chat template", "no chat_template", tpl(DELETE), targv)
    file_case("chat template", "syntax error", tpl("{% for m in messages %}{{ m.content }"), targv)
    file_case("chat template", "unclosed block", tpl("{% if true %}x"), targv)
    file_case("chat template", "raise_exception", tpl("{{ raise_exception('Only user roles') }}"), targv)
    file_case("chat template", "unknown filter", tpl("{{ messages | frobnicate }}"), targv)
    file_case("chat template", "runaway loop (work limit)",
              tpl("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"), targv)
    file_case("chat template", "runaway recursion",
              tpl("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"), targv)
    file_case("messages file", "not JSON", w("m.json", "[{"), targv)
    file_case("messages file", "not an array", w("m.json", '{"role": "user"}'), targv)

    trace_argv = ["stats", "--trace", "{d}/t.json"]
    file_case("routing trace", "not JSON", w("t.json", "{"), trace_argv)
    file_case("routing trace", "wrong version", w("t.json", json.dumps({"version": 2})), trace_argv)
    file_case("routing trace", "expert id ≥ n_experts",
              w("t.json", json.dumps({"version": 1, "model": "m", "n_experts": 4, "top_k": 1, "moe_layers": [0],
                                      "tokens": [{"pos": 0, "id": 1, "text": "a", "phase": "prefill",
                                                  "routes": [{"layer": 0, "experts": [7], "weights": [1.0]}]}]})),
              trace_argv)
    file_case("routing trace", "experts and weights of different length",
              w("t.json", json.dumps({"version": 1, "model": "m", "n_experts": 4, "top_k": 2, "moe_layers": [0],
                                      "tokens": [{"pos": 0, "id": 1, "text": "a", "phase": "prefill",
                                                  "routes": [{"layer": 0, "experts": [1, 2], "weights": [1.0]}]}]})),
              trace_argv)
    file_case("routing trace", "missing file", lambda d: None, trace_argv)

    remote = os.path.join(ROOT, "tests", "data", "remote")
    def dump_case(desc, name, extra=()):
        file_case("routing dump", desc, lambda d: None, ["stats", "--trace", os.path.join(remote, name)] + list(extra))
    dump_case(".npy of floats, not expert ids", "bad_dump_float.npy")
    dump_case(".npy shorter than its shape", "bad_dump_truncated.npy")
    dump_case("token ids of another shape", "dump_routing.npy", ["--token-ids", os.path.join(remote, "dump_routing.npy")])
    dump_case("SGLang base64 without the model's shape", "dump_sglang.jsonl")
    dump_case("SGLang routing read with another model's config", "sglang_chat.json", ["--preset", "olmoe-1b-7b"])
    file_case("routing dump", "npy of 3 layers read with a 2-layer model", lambda d: edit_config(d, "num_hidden_layers", 2),
              ["stats", "--trace", os.path.join(remote, "dump_routing.npy"), "--model", "{d}"])
    dump_case("response with ragged [tokens, layers, top_k] lists", "bad_ragged.json")
    dump_case("base64 cut inside a value", "bad_base64_truncated.json", ["--model", os.path.join(MODELS, "mixtral")])
    dump_case("a server's error body", "error_body.json")
    dump_case("a response without routing (server not started with the flag)", "vllm_chat_no_routing.json")

    # Routing dumps written here: safetensors arrays [sequences, tokens, layers, top_k] and JSON lines.
    def st_dump(name, tensors, cut=0):
        def f(d):
            header, data = {}, b""
            for tname, dtype, shape, raw in tensors:
                header[tname] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
                data += raw
            write_st(os.path.join(d, name), header, data[:len(data) - cut] if cut else data)
        return f
    ids16 = struct.pack("<48h", *[i % 8 for i in range(48)])  # [2, 4, 3, 2]
    dump_st = ["stats", "--trace", "{d}/r.safetensors"]
    file_case("routing dump", ".safetensors cut short (data missing)",
              st_dump("r.safetensors", [("routed_experts", "I16", [2, 4, 3, 2], ids16)], cut=10), dump_st)
    file_case("routing dump", ".safetensors ids of a float dtype",
              st_dump("r.safetensors", [("routed_experts", "F32", [2, 4, 3, 2], b"\0" * 192)]), dump_st)
    file_case("routing dump", ".safetensors token ids of another shape",
              st_dump("r.safetensors", [("routed_experts", "I16", [2, 4, 3, 2], ids16),
                                        ("token_ids", "I32", [2, 3], b"\0" * 24)]), dump_st)
    file_case("routing dump", ".safetensors with two candidate id tensors",
              st_dump("r.safetensors", [("a", "I16", [2, 4, 3, 2], ids16), ("b", "I16", [2, 4, 3, 2], ids16)]), dump_st)
    file_case("routing dump", ".safetensors without expert ids",
              st_dump("r.safetensors", [("logits", "F32", [2], b"\0" * 8)]), dump_st)
    file_case("routing dump", "expert id ≥ the model's expert count",
              st_dump("r.safetensors", [("routed_experts", "I16", [2, 4, 3, 2],
                                         struct.pack("<48h", *[(9 if i == 30 else i % 8) for i in range(48)]))]),
              dump_st + ["--model", "{d}"])
    vllm_lines = open(os.path.join(remote, "dump_vllm.jsonl")).read().splitlines()
    file_case("routing dump", ".jsonl whose last line is cut short",
              w("r.jsonl", vllm_lines[0] + "\n" + vllm_lines[1][:len(vllm_lines[1]) // 2] + "\n"),
              ["stats", "--trace", "{d}/r.jsonl"])
    file_case("routing dump", ".jsonl with a malformed line",
              w("r.jsonl", vllm_lines[0] + "\n\n" + '{"id": "x", "choices": [}' + "\n" + vllm_lines[1] + "\n"),
              ["stats", "--trace", "{d}/r.jsonl"])

    serve = ["serve", "--model", "{d}"]
    file_case("serve", "--host beyond loopback without --api-key", lambda d: None, serve + ["--host", "0.0.0.0"])
    file_case("serve", "port out of range", lambda d: None, serve + ["--port", "70000"])
    file_case("serve", "empty --api-key", lambda d: None, serve + ["--api-key", ""])
    file_case("serve", "--max-body below 1 KiB", lambda d: None, serve + ["--max-body", "10"])
    file_case("serve", "--max-connections 0", lambda d: None, serve + ["--max-connections", "0"])
    file_case("bench-serve", "a URL that is not http://", lambda d: None, ["bench-serve", "--url", "ftp://example"])
    file_case("bench-serve", "nothing listens there", lambda d: None, ["bench-serve", "--url", "http://127.0.0.1:1"])

    gen = ["generate", "--model", "{d}", "--ids"]
    file_case("command line", "token id outside the vocabulary", lambda d: None, gen + ["1,99999"])
    file_case("command line", "ids not numbers", lambda d: None, gen + ["1,x"])
    file_case("command line", "unknown option", lambda d: None, ["generate", "--model", "{d}", "--bogus", "1"])
    file_case("command line", "unknown command", lambda d: None, ["frobnicate"])
    file_case("command line", "model folder does not exist", lambda d: None,
              ["generate", "--model", "{d}/nowhere", "--ids", "1"])
    file_case("command line", "negative --max-tokens", lambda d: None, gen + ["1,2", "--max-tokens", "-3"])
    file_case("command line", "temperature not a number", lambda d: None, gen + ["1,2", "--temperature", "hot"])
    file_case("command line", "temperature not finite (nan)", lambda d: None, gen + ["1,2", "--temperature", "nan"])
    file_case("command line", "unknown backend", lambda d: None, gen + ["1,2", "--backend", "tpu"])
    file_case("command line", "expert out of range in --disable-experts", lambda d: None,
              gen + ["1,2", "--disable-experts", "1:99"])
    file_case("command line", "--top-k-experts 0 (no expert would be chosen)", lambda d: None,
              gen + ["1,2", "--top-k-experts", "0"])
    file_case("command line", "every routed expert of a layer disabled, no shared expert", lambda d: None,
              gen + ["1,2", "--disable-experts", "*:0,1,2,3,4,5,6,7"])
    file_case("command line", "unknown --weights mode", lambda d: None, gen + ["1,2", "--weights", "q4"])
    file_case("command line", "--weights with --shape (weights made on the fly)", lambda d: None,
              ["bench", "--shape", "olmoe-1b-7b", "--layers", "1", "--weights", "q8_0"])
    file_case("command line", "unknown preset", lambda d: None, ["inspect", "--preset", "gpt-5"])
    file_case("command line", "prompt longer than the context", lambda d: None,
              gen + [",".join(["5"] * 5000)])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "app", "cli", "moescope-cli"))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "bad-input.md"))
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for area, desc, build in cases(tmp):
            argv = build()
            p = subprocess.run([a.cli] + argv, capture_output=True, text=True, timeout=120,
                               env=dict(os.environ, SPDLOG_LEVEL="off"))
            msg = p.stderr.strip().replace(tmp, "$TMP").replace(ROOT + "/", "")
            lines = msg.count("\n") + 1 if msg else 0
            rows.append((area, desc, p.returncode, msg, lines))
    with open(a.out, "w") as f:
        f.write("# Bad input and what moescope says\n\n")
        f.write("Every bad input moescope is tested against, with the exact line `moescope-cli` prints on stderr\n"
                "and its exit status. The desktop app shows the same messages (they are the engine's\n"
                "`moescope::Error` texts). Generated by `python3 tools/bad_input_table.py` from a\n"
                "temporary copy of `tests/data/models/mixtral` (gpt-oss rows: of `gpt-oss` / `gpt-oss-mxfp4`; Qwen3.5 rows: of `qwen3.5-moe` / `qwen3.5-moe-vl`; Llama, DeepSeek-V2 and GLM-4.7-Flash rows: of `llama`, `deepseek-v2-lite` and `glm4-moe-lite`; GGUF rows: of `tests/data/gguf/mixtral.gguf`)\n"
                "with one thing broken per row; `$TMP/…` is that copy. The unit tests asserting these messages are `tests/test_bad_input.cpp`,\n"
                "`test_gguf.cpp`, `test_tokenizer.cpp`, `test_template.cpp` and the fuzz regressions (`tests/fuzz/`).\n\n")
        f.write("Faults while running (not input) are in the last section.\n\n")
        f.write("| input | what is wrong | exit | message |\n|---|---|---|---|\n")
        for area, desc, rc, msg, lines in rows:
            shown = msg.replace("|", "\\|").replace("\n", "<br>")
            flag = "" if (rc != 0 and lines == 1) else " **(!)**"
            f.write(f"| {area} | {desc} | {rc}{flag} | `{shown}` |\n")
        f.write(FAULTS)
    bad = [r for r in rows if r[2] == 0 or r[4] != 1]
    print(f"{len(rows)} cases, {len(bad)} not one line with a non-zero status")
    for r in bad:
        print("  ", r[0], "|", r[1], "| rc", r[2], "|", r[3][:200])


FAULTS = """
Rows marked **(!)** do not meet the contract (non-zero status with exactly one line on stderr).

## Faults while running

| fault | what happens | tested by |
|---|---|---|
| checkpoint file deleted while loaded | nothing: the mapping keeps the file's data; generation goes on | `test_faults` checkpoint_deleted_while_mapped |
| checkpoint file truncated between answers | next generate/forward: `checkpoint file PATH changed on disk since it was loaded (N bytes, now M); reload the model` | `test_faults` checkpoint_truncated_between_answers |
| checkpoint file truncated during a forward pass | the SIGBUS handler prints `moescope: the checkpoint file PATH was truncated or overwritten while the model was using it; reload the model` and exits with status 75 (no bare "Bus error") | `test_faults` checkpoint_truncated_during_read_exits_cleanly |
| disk full while autosaving a conversation | the save reports the error; the previous file is unchanged (QSaveFile); no temporary file is left | `test_faults` disk_full_while_saving_keeps_previous_file |
| conversation folder not writable | as disk full | `test_faults` unwritable_folder_while_saving_keeps_previous_file (non-root) |
| app killed in the middle of a save | the file on disk is the old or the new conversation, never a torn one | `test_faults` killed_mid_save_leaves_a_complete_file |
| unreadable conversation file | moved aside as `NAME.corrupt-TIMESTAMP`, reported, the others load | `test_app` (app engineer), fuzz target `conversation` |
| GPU out of memory at load | the CUDA backend's pre-load memory check refuses with the bytes needed and free | `test_cuda_model` (CUDA engineer) |
| no CUDA runtime / no GPU (installed package) | `--backend auto` uses the CPU backend and logs why; `--backend cuda` fails with `CUDA backend unavailable: REASON (use --backend cpu)` | `installer/test-package.sh` |
"""

if __name__ == "__main__":
    main()
