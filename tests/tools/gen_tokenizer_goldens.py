#!/usr/bin/env python3
"""Writes tests/data/tokenizers/goldens/<name>.json: what Hugging Face produces for a varied corpus.

For every tokenizer directory under tests/data/tokenizers/ and every corpus text it records
  raw_ids / raw_ids_special   tokenizers.Tokenizer.from_file(tokenizer.json).encode(text, add_special_tokens=False/True)
  raw_decode / raw_decode_skip   that tokenizer's decode(raw_ids_special, skip_special_tokens=False/True)
  auto_ids / auto_ids_special    transformers.AutoTokenizer.from_pretrained(dir)(text, add_special_tokens=False/True)
  auto_decode / auto_decode_skip AutoTokenizer.decode(auto_ids_special, skip_special_tokens=False/True)
The raw_* fields are what moescope::Tokenizer::from_file must reproduce, the auto_* fields what
from_dir (tokenizer.json + tokenizer_config.json) must reproduce.

goldens/variants.json covers the components the three real files do not use (NFKC, Lowercase,
Strip, Replace, Digits, every Split behaviour and invert, ByteLevel with its own regex and
add_prefix_space, Metaspace with split and prepend_scheme "first", lstrip / rstrip /
single_word / normalized added tokens, ignore_merges, unk + fuse_unk, RobertaProcessing, the
Metaspace decoder): each variant is a real file with some parts replaced (`overrides`, whole
top-level keys; `model_patch`, fields of `model`), and has the raw_* fields only.

    python3 tests/tools/gen_tokenizer_goldens.py     # needs: pip install tokenizers transformers
"""
import json
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore")

import tokenizers  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "data" / "tokenizers"
NAMES = ["deepseek-v3", "qwen3", "llama2"]

CORPUS = [
    "",
    "Hello world",
    "Hello, world! How are you doing today?",
    " leading space",
    "   three leading spaces",
    "trailing spaces   ",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure they'll say it's fine, we've done what we'd planned. DON'T SHOUT",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "for (int i = 0; i < 10; ++i) {\n\tsum += a[i] * b[i];\n}\n",
    "tabs\tand\t\ttabs\t \t mixed",
    "line one\r\nline two\r\n\r\nline four\n\n\n",
    "   \n  \n\t\n",
    " ",
    "\n",
    "1234567890 3.14159 1,000,000 2024-05-17 0x1F 12345678901234567890",
    "Emoji: 😀🎉👍🏽 family: 👨‍👩‍👧‍👦 flag: 🇩🇪 heart: ❤️",
    "中文分词测试：我爱自然语言处理。",
    "日本語のテキスト、カタカナとひらがな。",
    "한국어 텍스트입니다",
    "Русский текст: Привет, мир!",
    "العربية: مرحبا بالعالم",
    "Accents: café naïve résumé Ångström — “quotes” ‘single’ …",
    "Combining: e\u0301 a\u0308 n\u0303 (decomposed) vs é ä ñ",
    "Compat: ﬁ ﬂ ① ² ｆｕｌｌｗｉｄｔｈ Ⅻ",
    "https://example.com/path?query=1&other=two#frag and user@mail.org",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<｜begin▁of▁sentence｜>You are helpful.<｜User｜>Hi<｜Assistant｜>",
    "<s>[INST] Hello [/INST] Hi there</s>",
    "text</s>more text<s>",
    "<think>\nreasoning\n</think>\n\nanswer",
    "Special in middle:<|endoftext|>after",
    "▁already▁has▁metaspace",
    "MixedCASE camelCase snake_case kebab-case SCREAMING_CASE",
    "a" * 50 + " " + "ab" * 30,
    "Price: $1,299.99 (20% off!) #deal @shop ~approx ^caret |pipe|",
    "Zero\u200bwidth\u200dspace and nbsp\u00a0here and ideographic\u3000space",
    "Ελληνικά και עברית και हिन्दी और ไทย",
    "JSON: {\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
    "   ",
    "x",
]


def qwen_added(extra):
    base = json.loads((ROOT / "qwen3" / "tokenizer.json").read_text(encoding="utf-8"))["added_tokens"]
    return base + extra


def tok(content, id, special=False, lstrip=False, rstrip=False, normalized=False, single_word=False):
    return {"id": id, "content": content, "single_word": single_word, "lstrip": lstrip,
            "rstrip": rstrip, "normalized": normalized, "special": special}


def variants():
    return [
        {"name": "qwen3-nfkc-lower-digits", "base": "qwen3",
         "model_patch": {"ignore_merges": True},
         "overrides": {
             "normalizer": {"type": "Sequence", "normalizers": [
                 {"type": "NFKC"}, {"type": "Lowercase"},
                 {"type": "Strip", "strip_left": True, "strip_right": True}]},
             "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                 {"type": "Digits", "individual_digits": True},
                 {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}]},
             "post_processor": {"type": "RobertaProcessing", "sep": ["<|im_end|>", 151645],
                                "cls": ["<|im_start|>", 151644], "trim_offsets": True, "add_prefix_space": True},
             "added_tokens": qwen_added([
                 tok("<mask>", 151669, special=True, lstrip=True),
                 tok("<rs>", 151670, special=True, rstrip=True),
                 tok("fox", 151671, single_word=True),
                 tok("SpecialWord", 151672, normalized=True)])}},
        {"name": "qwen3-split-behaviours", "base": "qwen3",
         "overrides": {
             "normalizer": {"type": "Sequence", "normalizers": [
                 {"type": "NFC"}, {"type": "Replace", "pattern": {"Regex": "[0-9]"}, "content": "#"},
                 {"type": "Replace", "pattern": {"String": "the"}, "content": "THE"}]},
             "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                 {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "MergedWithPrevious", "invert": False},
                 {"type": "Split", "pattern": {"String": ","}, "behavior": "MergedWithNext", "invert": False},
                 {"type": "Split", "pattern": {"Regex": "\\p{Lu}"}, "behavior": "Contiguous", "invert": False},
                 {"type": "Split", "pattern": {"Regex": "[.!?]"}, "behavior": "Removed", "invert": False},
                 {"type": "Split", "pattern": {"Regex": "[a-z]+"}, "behavior": "Isolated", "invert": True},
                 {"type": "Digits", "individual_digits": False},
                 {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}}},
        {"name": "llama2-metaspace-split", "base": "llama2",
         "model_patch": {"byte_fallback": False, "fuse_unk": True},
         "overrides": {
             "normalizer": None,
             "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True},
             "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True},
             "added_tokens": [tok("<unk>", 0, special=True), tok("<s>", 1, special=True),
                              tok("</s>", 2, special=True, lstrip=True, rstrip=True)]}},
    ]


def gen_variants():
    import tempfile
    out = []
    for v in variants():
        doc = json.loads((ROOT / v["base"] / "tokenizer.json").read_text(encoding="utf-8"))
        doc.update(v.get("overrides", {}))
        doc["model"].update(v.get("model_patch", {}))
        with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8", delete=False) as f:
            json.dump(doc, f, ensure_ascii=False)
        raw = Tokenizer.from_file(f.name)
        os.unlink(f.name)
        cases = []
        for text in CORPUS + ["The Fox, the fox; a <mask> b  <mask>c <rs>  d SPECIALWORD specialword", "x </s>  y</s>z"]:
            special = raw.encode(text, add_special_tokens=True).ids
            cases.append({"text": text, "raw_ids": raw.encode(text, add_special_tokens=False).ids,
                          "raw_ids_special": special,
                          "raw_decode": raw.decode(special, skip_special_tokens=False),
                          "raw_decode_skip": raw.decode(special, skip_special_tokens=True)})
        out.append({k: v[k] for k in v} | {"cases": cases})
    path = ROOT / "goldens" / "variants.json"
    path.write_text(json.dumps({"generator": "tests/tools/gen_tokenizer_goldens.py",
                                "tokenizers": tokenizers.__version__, "variants": out},
                               ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"{path}: {len(out)} variants", file=sys.stderr)


def main() -> int:
    for name in NAMES:
        d = ROOT / name
        raw = Tokenizer.from_file(str(d / "tokenizer.json"))
        auto = AutoTokenizer.from_pretrained(str(d))
        cases = []
        for text in CORPUS:
            raw_plain = raw.encode(text, add_special_tokens=False).ids
            raw_special = raw.encode(text, add_special_tokens=True).ids
            auto_plain = auto(text, add_special_tokens=False)["input_ids"]
            auto_special = auto(text, add_special_tokens=True)["input_ids"]
            cases.append({
                "text": text,
                "raw_ids": raw_plain,
                "raw_ids_special": raw_special,
                "raw_decode": raw.decode(raw_special, skip_special_tokens=False),
                "raw_decode_skip": raw.decode(raw_special, skip_special_tokens=True),
                "auto_ids": auto_plain,
                "auto_ids_special": auto_special,
                "auto_decode": auto.decode(auto_special, skip_special_tokens=False),
                "auto_decode_skip": auto.decode(auto_special, skip_special_tokens=True),
            })
        out = ROOT / "goldens" / f"{name}.json"
        out.parent.mkdir(exist_ok=True)
        doc = {"generator": "tests/tools/gen_tokenizer_goldens.py",
               "tokenizers": tokenizers.__version__, "transformers": transformers.__version__,
               "auto_class": type(auto).__name__, "cases": cases}
        out.write_text(json.dumps(doc, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
        print(f"{out}: {len(cases)} cases", file=sys.stderr)
    gen_variants()
    return 0


if __name__ == "__main__":
    sys.exit(main())
