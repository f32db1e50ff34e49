#!/usr/bin/env python3
"""Writes tests/data/remote/: responses in the shapes vLLM and SGLang document for returned routed
experts, for tests/test_remote_routing.cpp (the layouts are described in
engine/include/moescope/remote_routing.h and docs/remote-routing.md).

    python3 tests/tools/gen_remote_samples.py

Followed:
  vLLM  docs/training/routed_experts_replay.md (vllm-project/vllm @ 0087e005, v0.21 era):
        "prompt_routed_experts" at the response level, "routed_experts" per choice, nested lists
        [tokens][moe_layers][top_k] of int16 ids, -1 = prefix-cached position; streaming: routing only
        in the last chunk of a choice. Where a stream puts prompt_routed_experts is not documented:
        these samples put it in the last chunk (the parser accepts it in any chunk).
  SGLang python/sglang/srt/entrypoints/openai/serving_chat.py / serving_completions.py / utils.py
        (PR #17434, Jan 2026) and srt/layers/moe/routed_experts_capturer.py: response-level
        "sglext": {"routed_experts": base64(int32 [seqlen-1][num_hidden_layers][top_k])}; streaming: a
        chunk with "choices": [] and "sglext" after the content, then usage, then [DONE];
        /generate: "meta_info": {"routed_experts": ..., "prompt_tokens": N}.

The model of every sample: 3 layers (layer 0 dense, 1 and 2 MoE), 8 experts, top-2; a prompt of 3
tokens, 3 generated. Expert of token t (position in the sequence), MoE layer m, slot k, choice c:
(3t + 2m + k + 5c) % 8."""
import base64, json, os, struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "remote")
PROMPT, GEN, MOE, K, LAYERS = 3, 3, 2, 2, 3
PROMPT_IDS, GEN_IDS = [101, 102, 103], [[201, 202, 203], [211, 212, 213]]


def expert(t, m, k, c=0):
    return (3 * t + 2 * m + k + 5 * c) % 8


def rows(t0, t1, c=0):
    return [[[expert(t, m, k, c) for k in range(K)] for m in range(MOE)] for t in range(t0, t1)]


def sglang_b64(c=0):
    vals = []
    for t in range(PROMPT + GEN - 1):  # seqlen - 1: the last sampled token is never fed
        vals += [0] * K  # dense layer 0: SGLang's layer axis counts every layer
        for m in range(MOE):
            vals += [expert(t, m, k, c) for k in range(K)]
    return base64.b64encode(struct.pack("<%di" % len(vals), *vals)).decode()


def usage():
    return {"prompt_tokens": PROMPT, "completion_tokens": GEN, "total_tokens": PROMPT + GEN}


def sse(chunks, crlf=False):
    nl = "\r\n" if crlf else "\n"
    out = "".join("data: " + (c if isinstance(c, str) else json.dumps(c)) + nl + nl for c in chunks)
    return out


def write(name, text):
    with open(os.path.join(OUT, name), "w", newline="") as f:
        f.write(text)


def main():
    os.makedirs(OUT, exist_ok=True)
    # ---- vLLM ----
    vllm_chat = {
        "id": "chatcmpl-7f3a", "object": "chat.completion", "created": 1767225600, "model": "Qwen/Qwen3-30B-A3B",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there", "tool_calls": [], "reasoning": None},
                     "logprobs": None, "finish_reason": "length", "stop_reason": None, "token_ids": GEN_IDS[0],
                     "routed_experts": rows(PROMPT, PROMPT + GEN)}],
        "service_tier": None, "system_fingerprint": "vllm-0.21.0",
        "usage": usage(), "prompt_logprobs": None, "prompt_token_ids": PROMPT_IDS,
        "prompt_routed_experts": rows(0, PROMPT), "kv_transfer_params": None}
    write("vllm_chat.json", json.dumps(vllm_chat, indent=1))

    cached = rows(0, PROMPT)
    cached[0] = [[-1] * K for _ in range(MOE)]  # a prefix-cache hit: vLLM marks the position -1
    vllm_n2 = {
        "id": "cmpl-91c2", "object": "text_completion", "created": 1767225600, "model": "Qwen/Qwen3-30B-A3B",
        "choices": [{"index": c, "text": ["Hi there", "Hello"][c], "logprobs": None, "finish_reason": "length",
                     "stop_reason": None, "routed_experts": rows(PROMPT, PROMPT + GEN, c)} for c in range(2)],
        "usage": usage(), "prompt_routed_experts": cached}
    write("vllm_completions_n2.json", json.dumps(vllm_n2))

    vllm_none = json.loads(json.dumps(vllm_chat))
    vllm_none["choices"][0]["routed_experts"] = None
    vllm_none["prompt_routed_experts"] = None
    write("vllm_chat_no_routing.json", json.dumps(vllm_none))

    head = {"id": "chatcmpl-7f3a", "object": "chat.completion.chunk", "created": 1767225600, "model": "Qwen/Qwen3-30B-A3B"}
    chunks = [dict(head, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}])]
    for piece in ["Hi", " th", "ere"]:
        chunks.append(dict(head, choices=[{"index": 0, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}]))
    chunks.append(dict(head, choices=[{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "length",
                                       "routed_experts": rows(PROMPT, PROMPT + GEN)}],
                       prompt_routed_experts=rows(0, PROMPT)))
    chunks.append("[DONE]")
    write("vllm_chat_stream.txt", sse(chunks))

    # ---- SGLang ----
    sgl_chat = {
        "id": "5c1d2e", "object": "chat.completion", "created": 1767225600, "model": "Qwen/Qwen3-30B-A3B",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there", "reasoning_content": None, "tool_calls": None},
                     "logprobs": None, "finish_reason": "length", "matched_stop": None}],
        "usage": usage(), "metadata": {"weight_version": "default"}, "sglext": {"routed_experts": sglang_b64()}}
    write("sglang_chat.json", json.dumps(sgl_chat))

    head = {"id": "5c1d2e", "object": "chat.completion.chunk", "created": 1767225600, "model": "Qwen/Qwen3-30B-A3B"}
    chunks = [dict(head, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
    for piece in ["Hi", " th", "ere"]:
        chunks.append(dict(head, choices=[{"index": 0, "delta": {"content": piece}, "finish_reason": None}]))
    chunks.append(dict(head, choices=[{"index": 0, "delta": {}, "finish_reason": "length"}]))
    chunks.append(dict(head, choices=[], sglext={"routed_experts": sglang_b64()}))
    chunks.append(dict(head, choices=[], usage=usage()))
    chunks.append("[DONE]")
    write("sglang_chat_stream.txt", ": keep-alive comment\n" + sse(chunks, crlf=True))

    gen = {"text": "Hi there", "output_ids": GEN_IDS[0],
           "meta_info": {"id": "5c1d2e", "finish_reason": {"type": "length", "length": GEN}, "prompt_tokens": PROMPT,
                         "completion_tokens": GEN, "cached_tokens": 0, "e2e_latency": 0.05, "routed_experts": sglang_b64()}}
    write("sglang_generate.json", json.dumps(gen))
    gen2 = [json.loads(json.dumps(gen)), json.loads(json.dumps(gen))]
    gen2[1]["text"], gen2[1]["output_ids"] = "Hello", GEN_IDS[1]
    gen2[1]["meta_info"]["routed_experts"] = sglang_b64(1)
    write("sglang_generate_n2.json", json.dumps(gen2))

    # ---- malformed ----
    b64 = sglang_b64()
    bad = dict(sgl_chat, sglext={"routed_experts": b64[:-3]})  # cut inside an int32
    write("bad_base64_truncated.json", json.dumps(bad))
    bad = dict(sgl_chat, sglext={"routed_experts": b64[:-4]})  # whole base64, 3 bytes short of an int32
    write("bad_base64_short.json", json.dumps(bad))
    bad = dict(sgl_chat, sglext={"routed_experts": b64[:10] + "*" + b64[11:]})
    write("bad_base64_char.json", json.dumps(bad))
    bad = json.loads(json.dumps(vllm_chat))
    bad["choices"][0]["routed_experts"][1] = bad["choices"][0]["routed_experts"][1][:1]
    write("bad_ragged.json", json.dumps(bad))
    bad = json.loads(json.dumps(vllm_chat))
    bad["choices"][0]["routed_experts"][0][0][0] = 300
    write("bad_expert_id.json", json.dumps(bad))
    write("bad_truncated_body.json", json.dumps(vllm_chat)[:700])
    write("error_body.json", json.dumps({"object": "error", "message": "The model `nope` does not exist.",
                                         "type": "NotFoundError", "param": None, "code": 404}))
    stream = open(os.path.join(OUT, "vllm_chat_stream.txt")).read()
    write("bad_stream_no_done.txt", stream[: stream.index("data: [DONE]")])
    write("bad_stream_cut.txt", stream[: len(stream) // 2])
    write("bad_stream_error.txt", sse([chunks[0], {"error": {"message": "out of KV cache", "type": "InternalServerError", "code": 500}}]))

    dumps()


def write_npy(name, descr, shape, values, fmt):
    """A .npy file (format 1.0) written by hand, so the generator needs no numpy."""
    head = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join("%d, " % d for d in shape) if len(shape) == 1 else ", ".join(str(d) for d in shape))
    pad = (64 - (10 + len(head) + 1) % 64) % 64
    head = head + " " * pad + "\n"
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode())
        f.write(struct.pack("<%d%s" % (len(values), fmt), *values))
        return f


def dumps():
    """Routing dumps for `stats --trace` and their expected per-layer expert loads (dump_expected.json)."""
    expected = {}
    # JSON lines: the vLLM chat response, the n=2 completion (prompt rows shared: counted once), chat again.
    lines = [open(os.path.join(OUT, n)).read().replace("\n", "") for n in ("vllm_chat.json", "vllm_completions_n2.json", "vllm_chat.json")]
    write("dump_vllm.jsonl", "\n".join(json.loads(json.dumps(l)) for l in lines) + "\n")
    load = [[0] * 8 for _ in range(MOE)]
    tokens = 0
    for doc in (json.loads(l) for l in lines):
        rows_all = [doc["prompt_routed_experts"]] + [c["routed_experts"] for c in doc["choices"]]
        for block in rows_all:
            for tok in block:
                tokens += 1
                for m, ex in enumerate(tok):
                    for e in ex:
                        if e >= 0:
                            load[m][e] += 1
    expected["dump_vllm.jsonl"] = {"tokens": tokens, "load": load}

    # SGLang JSON lines (base64, every layer in the payload): chat and /generate.
    sg = [open(os.path.join(OUT, n)).read() for n in ("sglang_chat.json", "sglang_generate.json")]
    write("dump_sglang.jsonl", "\n".join(json.dumps(json.loads(l)) for l in sg) + "\n")
    load = [[0] * 8 for _ in range(MOE)]
    for _ in sg:
        for t in range(PROMPT + GEN - 1):
            for m in range(MOE):
                for k in range(K):
                    load[m][expert(t, m, k)] += 1
    expected["dump_sglang.jsonl"] = {"tokens": 2 * (PROMPT + GEN - 1), "load": load}

    # NumPy: [sequences=2, tokens=5, layers=3 (all), top_k=2] int16, token ids beside with the last
    # position of sequence 1 padding (-1, its routing -1 too).
    S, T = 2, 5
    vals, ids = [], []
    load = [[0] * 8 for _ in range(MOE)]
    tokens = 0
    for sq in range(S):
        for t in range(T):
            pad = sq == 1 and t == T - 1
            ids.append(-1 if pad else 100 + t)
            vals += [0] * K if not pad else [-1] * K
            for m in range(MOE):
                for k in range(K):
                    e = -1 if pad else expert(t, m, k, sq)
                    vals.append(e)
                    if e >= 0:
                        load[m][e] += 1
            tokens += 0 if pad else 1
    write_npy("dump_routing.npy", "<i2", (S, T, LAYERS, K), vals, "h")
    write_npy("dump_token_ids.npy", "<i4", (S, T), ids, "i")
    expected["dump_routing.npy"] = {"tokens": tokens, "load": load}
    write_npy("bad_dump_float.npy", "<f4", (2, 2, 2), [0.0] * 8, "f")
    with open(os.path.join(OUT, "dump_routing.npy"), "rb") as f:
        b = f.read()
    with open(os.path.join(OUT, "bad_dump_truncated.npy"), "wb") as f:
        f.write(b[: len(b) - 7])
    write("dump_expected.json", json.dumps(expected, indent=1))


if __name__ == "__main__":
    main()
