#!/usr/bin/env python3
"""Render chat-template goldens with transformers' own apply_chat_template (tokenize=False).

For each template in tests/data/templates/*.jinja and each tests/data/tokenizers/*/tokenizer_config.json
that has one, several conversations are rendered with and without the generation prompt; a case
that transformers refuses records its error message instead (Mixtral's raise_exception on roles
that do not alternate, a DeepSeek tool call whose content is null). Nothing is downloaded: the
tokenizers are loaded from the test directories and the .jinja templates are passed in as
`chat_template=`. The special tokens a template sees are those of the tokenizer it is rendered
with, optionally overridden; the golden file records them as bos_token / eos_token (empty: not
set), which is what moescope's ChatTemplateConfig carries. Templates that call strftime_now()
(gpt-oss) are rendered at a fixed time, recorded as "now".

    python3 tests/tools/gen_template_goldens.py     # writes tests/data/templates/goldens/*.json
"""
import datetime
import json
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
from transformers import PreTrainedTokenizerFast  # noqa: E402
import transformers  # noqa: E402
import jinja2  # noqa: E402
from transformers.utils import chat_template_utils  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data"
OUT = DATA / "templates" / "goldens"

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city — in °C.",
        "parameters": {"type": "object",
                       "properties": {"city": {"type": "string", "description": "City name, e.g. Zürich"},
                                      "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                       "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "add",
        "description": "Add two integers.",
        "parameters": {"type": "object",
                       "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                       "required": ["a", "b"]}}},
]

USER = {"role": "user", "content": "Hello! How many experts does DeepSeek-R1 route each token to?"}
SYSTEM = {"role": "system", "content": "You are a concise assistant."}
ASSISTANT = {"role": "assistant", "content": "Eight routed experts plus one shared expert."}
USER2 = {"role": "user", "content": "And how many routed experts are there in total?"}
NON_ASCII = [
    {"role": "user", "content": "Grüße aus Zürich! 你好，世界 🌍 — ça va? «ñ» \"quotes\" and 'apostrophes'\ttab"},
    {"role": "assistant", "content": "Très bien, merci ✓ Привет! 😀\nSecond line."},
    {"role": "user", "content": "  leading and trailing spaces  \n"},
]
THINK = [
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "<think>\nThe user asks 2+2. That is 4.\n</think>\n\nThe answer is 4."},
    {"role": "user", "content": "And 3+3?"},
]
THINK_LAST = THINK + [{"role": "assistant", "content": "<think>\n3+3=6\n</think>\n\n6."}]
REASONING_FIELD = [
    {"role": "user", "content": "What is 5*5?"},
    {"role": "assistant", "content": "25.", "reasoning_content": "Five times five is twenty-five."},
]
QWEN_TOOL_CHAT = [
    SYSTEM,
    {"role": "user", "content": "What's the weather in Zürich, and what is 2+3?"},
    {"role": "assistant", "content": "Let me check.", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Zürich", "unit": "celsius"}}},
        {"type": "function", "function": {"name": "add", "arguments": "{\"a\": 2, \"b\": 3}"}}]},
    {"role": "tool", "content": "{\"temperature\": 21, \"sky\": \"sunny\"}"},
    {"role": "tool", "content": "5"},
    {"role": "assistant", "content": "It is 21 °C and sunny in Zürich; 2+3 = 5."},
]
QWEN_TOOL_PENDING = [
    {"role": "user", "content": "Add 40 and 2."},
    {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "add", "arguments": {"a": 40, "b": 2}}}]},
    {"role": "tool", "content": "42"},
]
DEEPSEEK_TOOL_EMPTY = [
    {"role": "user", "content": "Add 40 and 2."},
    {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "add", "arguments": "{\"a\": 40, \"b\": 2}"}}]},
    {"role": "tool", "content": "42"},
    {"role": "tool", "content": "(second output)"},
    {"role": "assistant", "content": "40 + 2 = 42."},
]
DEEPSEEK_TOOL_NULL = [
    {"role": "user", "content": "Add 40 and 2."},
    {"role": "assistant", "content": None, "tool_calls": [
        {"type": "function", "function": {"name": "add", "arguments": "{\"a\": 40, \"b\": 2}"}}]},
    {"role": "tool", "content": "42"},
]
TWO_SYSTEMS = [SYSTEM, {"role": "system", "content": "Answer in English."}, USER]

# gpt-oss (harmony): reasoning goes in "thinking" (or reasoning_content, aliased), one tool call per
# assistant message, tool schemas rendered as TypeScript, builtin tools, a developer role.
# (its template needs a description on every parameter: TOOLS has some without, which it refuses)
GPT_OSS_TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city — in °C.",
        "parameters": {"type": "object",
                       "properties": {"city": {"type": "string", "description": "City name, e.g. Zürich"},
                                      "unit": {"type": "string", "enum": ["celsius", "fahrenheit"],
                                               "description": "Unit"}},
                       "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "add",
        "description": "Add two integers.",
        "parameters": {"type": "object",
                       "properties": {"a": {"type": "integer", "description": "First"},
                                      "b": {"type": "integer", "description": "Second"}},
                       "required": ["a", "b"]}}},
    {"type": "function", "function": {
        "name": "search_experts",
        "description": "Find experts by layer.",
        "parameters": {"type": "object",
                       "properties": {
                           "layers": {"type": "array", "items": {"type": "integer"}, "description": "Layer indices"},
                           "names": {"type": "array", "items": {"type": "string"}, "nullable": True,
                                     "description": "Expert names"},
                           "filter": {"type": "object", "description": "Optional filter",
                                      "properties": {"min_load": {"type": "number"}, "shared": {"type": "boolean"}},
                                      "required": ["min_load"]},
                           "pairs": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}},
                                     "description": "Pairs"},
                           "mode": {"oneOf": [{"type": "string", "description": "by name"}, {"type": "integer"}],
                                    "default": "auto", "description": "Mode"},
                           "limit": {"type": "integer", "default": 10, "description": "At most this many"},
                           "kind": {"type": ["string", "null"], "description": "Kind"},
                           "note": {"type": "string", "nullable": True, "description": "A note"},
                           "any_value": {"description": "Anything"},
                           "flags": {"type": "array", "description": "Flags"}},
                       "required": ["layers"]}}},
    {"type": "function", "function": {"name": "ping", "description": "No parameters.", "parameters": {}}},
]
GPT_OSS_REASONING_LAST = [
    {"role": "user", "content": "What is 5*5?"},
    {"role": "assistant", "content": "25.", "thinking": "Five times five is twenty-five."},
]
GPT_OSS_REASONING_TURNS = [
    SYSTEM,
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4.", "thinking": "Two plus two is four."},
    {"role": "user", "content": "And 3+3?"},
]
GPT_OSS_TOOL_CHAT = [
    {"role": "developer", "content": "Use the tools when they help."},
    {"role": "user", "content": "What's the weather in Zürich?"},
    {"role": "assistant", "thinking": "I should call get_weather for Zürich.", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Zürich", "unit": "celsius"}}}]},
    {"role": "tool", "content": "{\"temperature\": 21, \"sky\": \"sunny\"}"},
    {"role": "assistant", "content": "It is 21 °C and sunny in Zürich."},
    {"role": "user", "content": "Now add 40 and 2."},
    {"role": "assistant", "content": "Adding.", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": "{\"a\": 40, \"b\": 2}"}}]},
    {"role": "tool", "content": "42"},
]
GPT_OSS_TOOL_BOTH = [
    USER,
    {"role": "assistant", "content": "x", "thinking": "y", "tool_calls": [
        {"type": "function", "function": {"name": "add", "arguments": {"a": 1, "b": 2}}}]},
]
GPT_OSS_TOOL_ORPHAN = [USER, {"role": "tool", "content": "42"}]
GPT_OSS_CHANNEL_IN_CONTENT = [
    USER, {"role": "assistant", "content": "<|channel|>analysis<|message|>hmm<|end|>"}, USER2]
GPT_OSS_CHANNEL_IN_THINKING = [
    USER, {"role": "assistant", "content": "ok", "thinking": "<|channel|>final<|message|>x"}]

BASE = [("user", [USER]), ("system_user", [SYSTEM, USER]), ("multi_turn", [SYSTEM, USER, ASSISTANT, USER2]),
        ("non_ascii", NON_ASCII), ("ends_with_assistant", [USER, ASSISTANT])]
NO_SYSTEM = [("user", [USER]), ("multi_turn", [USER, ASSISTANT, USER2]), ("non_ascii", NON_ASCII),
             ("ends_with_assistant", [USER, ASSISTANT])]


def cases_for(name):
    """(case name, messages, extra variables) for one template family."""
    if name == "mixtral" or name == "llama2":
        out = NO_SYSTEM + [
            ("not_alternating", [USER, USER2], {}),
            ("system_role", [SYSTEM, USER], {}),
            ("tool_role", [USER, {"role": "tool", "content": "x"}], {}),
        ]
        return [c if len(c) == 3 else (c[0], c[1], {}) for c in out]
    out = list(BASE)
    if name.startswith("deepseek"):
        out += [("think", THINK, {}), ("think_last", THINK_LAST, {}), ("two_systems", TWO_SYSTEMS, {}),
                ("tool_calls_empty_content", DEEPSEEK_TOOL_EMPTY, {}), ("tool_calls_null_content", DEEPSEEK_TOOL_NULL, {})]
    if name.startswith("qwen3"):
        out += [("think", THINK, {}), ("think_last", THINK_LAST, {}), ("reasoning_content", REASONING_FIELD, {}),
                ("enable_thinking_false", [USER], {"enable_thinking": False}),
                ("enable_thinking_true", [USER], {"enable_thinking": True}),
                ("tools", QWEN_TOOL_CHAT, {"tools": TOOLS}),
                ("tools_pending", QWEN_TOOL_PENDING, {"tools": TOOLS}),
                ("tools_no_system", [USER], {"tools": TOOLS}),
                ("tool_messages_without_tools", QWEN_TOOL_PENDING, {}),
                ("two_systems", TWO_SYSTEMS, {})]
    if name in ("olmoe", "qwen2-moe"):
        out += [("think", THINK, {})]
    if name == "gpt-oss":
        out += [("developer", [{"role": "developer", "content": "Answer briefly."}, USER], {}),
                ("think", THINK, {}),
                ("reasoning_last", GPT_OSS_REASONING_LAST, {}),
                ("reasoning_content", REASONING_FIELD, {}),
                ("reasoning_turns", GPT_OSS_REASONING_TURNS, {}),
                ("reasoning_effort_high", [USER], {"reasoning_effort": "high"}),
                ("model_identity", [SYSTEM, USER], {"model_identity": "You are moescope's test model."}),
                ("builtin_tools", [USER], {"builtin_tools": ["browser", "python"]}),
                ("builtin_python", [USER], {"builtin_tools": ["python"]}),
                ("tools", GPT_OSS_TOOL_CHAT, {"tools": GPT_OSS_TOOLS}),
                ("tools_no_system", [USER], {"tools": GPT_OSS_TOOLS[:2]}),
                ("tools_undescribed_parameter", [USER], {"tools": TOOLS}),
                ("tools_and_builtin", [SYSTEM, USER], {"tools": GPT_OSS_TOOLS[:1], "builtin_tools": ["browser"]}),
                ("tool_messages_without_tools", QWEN_TOOL_PENDING, {}),
                ("tool_content_and_thinking", GPT_OSS_TOOL_BOTH, {"tools": GPT_OSS_TOOLS}),
                ("tool_without_call", GPT_OSS_TOOL_ORPHAN, {}),
                ("channel_in_content", GPT_OSS_CHANNEL_IN_CONTENT, {}),
                ("channel_in_thinking", GPT_OSS_CHANNEL_IN_THINKING, {}),
                ("two_systems", TWO_SYSTEMS, {})]
    return [c if len(c) == 3 else (c[0], c[1], {}) for c in out]


def load_tokenizer(dirname):
    return PreTrainedTokenizerFast.from_pretrained(str(DATA / "tokenizers" / dirname))


# .jinja template -> (tokenizer whose special tokens it sees, bos/eos overrides passed as kwargs)
JINJA = {
    "deepseek-v3": ("deepseek-v3", {}),
    "deepseek-r1": ("deepseek-v3", {}),
    "qwen3": ("qwen3", {}),
    "qwen2-moe": ("qwen3", {}),
    "mixtral": ("llama2", {}),
    "olmoe": ("llama2", {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}),
    # openai/gpt-oss-20b's tokenizer_config.json: bos <|startoftext|>, eos <|return|> (the template uses neither).
    "gpt-oss": ("llama2", {"bos_token": "<|startoftext|>", "eos_token": "<|return|>"}),
}

# strftime_now() reads the clock; the goldens are rendered at this fixed local time (recorded in
# each golden as "now", and given to moescope the same way) so that they do not change daily.
NOW = datetime.datetime(2025, 8, 5, 14, 30, 0)


class _FixedDatetime(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return NOW



def render(tok, messages, add_generation_prompt, extra, chat_template=None):
    try:
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                       chat_template=chat_template, **extra)
        return {"expected": text}
    except Exception as e:  # jinja2 TemplateError / UndefinedError / TypeError: the message is the golden
        return {"error": str(e), "error_type": type(e).__name__}


def golden(name, tok, source_ref, chat_template, overrides):
    chat_template_utils.datetime = _FixedDatetime  # what strftime_now() calls
    special = tok.special_tokens_map
    bos = overrides.get("bos_token", special.get("bos_token") or "")
    eos = overrides.get("eos_token", special.get("eos_token") or "")
    cases = []
    for case_name, messages, extra in cases_for(name):
        for agp in (False, True):
            r = render(tok, messages, agp, {**overrides, **extra}, chat_template)
            cases.append({"name": f"{case_name}{'+gen' if agp else ''}", "messages": messages,
                          "add_generation_prompt": agp, "extra": extra, **r})
    uses_clock = "strftime_now" in (chat_template or tok.chat_template or "")
    return {"template": name, "source": source_ref, "bos_token": bos, "eos_token": eos,
            **({"now": NOW.isoformat()} if uses_clock else {}),
            "generator": f"transformers {transformers.__version__}, jinja2 {jinja2.__version__}",
            "cases": cases}


# Language snippets rendered by the same compiled jinja2 environment transformers uses, for
# features the real templates touch only lightly: (template, variables).
SNIPPETS = [
    ("{% for i in [1,2] %}{% if loop.first %}{% set x = 5 %}{% endif %}[{{ x }}]{% endfor %}{{ x }}", {}),
    ("{% set x = 1 %}{% for i in [1,2] %}{{ x }}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}", {}),
    ("{% for m in msgs if m.r %}{{ loop.index }}{{ m.r }}{{ loop.length }}{{ loop.last }}{% else %}E{% endfor %}",
     {"msgs": [{"r": "a"}, {}, {"r": "b"}]}),
    ("{% for m in [] %}x{% else %}empty{% endfor %}", {}),
    ("{% for x in [1,2,3,4,5] %}{% if x == 2 %}{% continue %}{% endif %}{{ x }}{% if x == 4 %}{% break %}{% endif %}{% endfor %}", {}),
    ("{% for x in 'abc' %}{{ loop.index0 }}{{ loop.revindex }}{{ loop.previtem }}{{ loop.nextitem }}|{% endfor %}", {}),
    ("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}", {"d": {"b": 1, "a": [2]}}),
    ("{{ d.x is defined }} {{ d.x is none }} {{ d.y is none }} {{ d.y is not none }} {{ u is defined }} {{ u is undefined }}",
     {"d": {"y": None}}),
    ("{{ u }}|{{ u ~ 'x' }}|{{ u|length }}|{{ 'x' in u }}|{{ u|default('dflt') }}|{% for x in u %}no{% endfor %}|{{ not u }}", {}),
    ("{{ u.attr }}", {}),
    ("{{ u + 1 }}", {}),
    ("{{ d.missing.deeper }}", {"d": {}}),
    ("{{ [1, 'a', none, true, 1.5, {'k': \"v'\"}, (1,), ()] }}", {}),
    ("{{ none }}|{{ None }}|{{ true }}|{{ False }}|{{ d }}", {"d": {"a": None, "b": True, "c": "x'y"}}),
    ("{{ 1/2 }} {{ 7//2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2**10 }} {{ 2**-1 }} {{ 1e20 }} {{ 0.1+0.2 }} {{ 3.0 }} {{ 1e-5 }} {{ 10/5 }} {{ 1_000 }} {{ 1.5e3 }}", {}),
    ("{{ 'héllo wörld'[::-1] }} {{ 'héllo'|length }} {{ 'héllo'[1] }} {{ 'héllo'[1:3] }} {{ 'héllo'[-2:] }} {{ [1,2,3,4][::2] }} {{ [1,2,3][5] }}|{{ [1,2,3][-1] }}", {}),
    ("{{ 'a b  c '.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a,b,c'.split(',', 1) }} {{ 'a,b,c'.rsplit(',', 1) }} [{{ '  x  '.strip() }}] [{{ 'xxaxx'.strip('x') }}] [{{ '\\n\\nx\\n'.lstrip('\\n') }}] [{{ ' x '.rstrip() }}]", {}),
    ("{{ 'Hello'.upper() }} {{ 'HeLLo'.lower() }} {{ 'a-b-c'.replace('-', '+') }} {{ 'a-b-c'.replace('-', '', 1) }} {{ 'ab'.startswith(('x', 'a')) }} {{ 'ab'.endswith('b') }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }}", {}),
    ("{{ 'a' 'b' }} {{ \"q\\n\\t\\u00e9\\x41\\\\\" }} {{ 'it\\'s' }}", {}),
    ("{{ x|tojson }} {{ x|tojson(indent=2) }} {{ x|tojson(sort_keys=true) }} {{ x|tojson(separators=(',', ':')) }} {{ x|tojson(ensure_ascii=true) }}",
     {"x": {"b": "é\"\\\n\u0001\u2028😀</", "a": [1, 2.5, None, True, {}], "c": []}}),
    ("{{ 1.5|tojson }} {{ 1e20|tojson }} {{ none|tojson }} {{ 'x'|tojson }} {{ [1, [2, []]]|tojson(indent=1) }}", {}),
    ("{{ u|tojson }}", {}),
    ("{{ 'abc'|first }} {{ [3,4]|last }} {{ 'ab'|list }} {{ [1,2]|join(', ') }} {{ d|list }} {{ d|length }} {{ d|first }} {{ [3,1,2]|sort }} {{ [3,1,2]|sort(reverse=true) }} {{ ['b','A','a']|unique|list }} {{ [1,2,3]|sum }} {{ [1,5,3]|max }} {{ [4,2]|min }}",
     {"d": {"z": 1, "y": 2}}),
    ("{{ 3|string + 'a' }} {{ '42'|int + 1 }} {{ 'x'|int }} {{ 4.7|int }} {{ ' 12 '|int }} {{ '3.5'|float }} {{ -3|abs }} {{ 2.567|round(2) }} {{ 2.5|round }}", {}),
    ("{{ '  pad  '|trim }}|{{ 'xxyxx'|trim('x') }}|{{ 'Ab'|upper }}{{ 'Ab'|lower }}|{{ 'a<b>&\"'|e }}|{{ 'ab'|safe }}|{{ 'hello big world'|wordcount }}|{{ 'x\ny'|indent(2) }}|{{ 'x\ny'|indent(2, true) }}", {}),
    ("{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(',') }} {{ msgs|rejectattr('role', 'eq', 'user')|list|length }} {{ msgs|map(attribute='role')|list }} {{ [1,2,3,4]|select('odd')|list }} {{ [1,2,3,4]|reject('even')|list }} {{ ['a','B']|map('upper')|list }}",
     {"msgs": [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"}]}),
    ("{{ d|items|list }} {{ d|dictsort }} {{ d.keys()|list }} {{ d.values()|list }} {{ d.get('a') }} {{ d.get('q', 7) }} {{ d['a'] }} {{ d.a }}", {"d": {"b": 2, "a": 1}}),
    ("{{ x is string }} {{ x is mapping }} {{ x is iterable }} {{ x is sequence }} {{ d is mapping }} {{ d is sequence }} {{ n is number }} {{ n is integer }} {{ f is float }} {{ t is boolean }} {{ t is true }} {{ t is false }} {{ n is odd }} {{ n is even }} {{ n is divisibleby 3 }} {{ u is iterable }} {{ l is sequence }} {{ n is in [3, 4] }} {{ 'a' is lower }}",
     {"x": "s", "d": {}, "n": 3, "f": 1.0, "t": True, "l": [1]}),
    ("{{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' < 'b' }} {{ [1] == [1] }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'b' in 'abc' }} {{ 'z' not in ['a'] }} {{ 'k' in {'k': 1} }} {{ not 1 == 2 }} {{ 1 != 1 }} {{ [1,2] < [1,3] }}", {}),
    ("{{ 'a' if x else 'b' }} {{ 'a' if not x }}|{{ x or 'fallback' }} {{ x and 'no' }} {{ 'y' and 'yes' }} {{ 0 or [] or 'last' }}", {"x": 0}),
    ("{{ 'a' + 1 }}", {}),
    ("{{ 1 + 'a' }}", {}),
    ("{{ 1 / 0 }}", {}),
    ("{{ 'a' < 1 }}", {}),
    ("{{ [1] + [2] }} {{ 'ab' * 3 }} {{ [0] * 2 }} {{ (1, 2) + (3,) }} {{ -(3) }} {{ +2 }} {{ 'x' ~ 1 ~ none ~ [1] }}", {}),
    ("{% set ns = namespace(a=1, b='x') %}{% set ns.a = ns.a + 1 %}{% set ns.c = [1] %}{{ ns.a }}{{ ns.b }}{{ ns.c }}{{ ns.missing is defined }}", {}),
    ("{% set a, b = 1, 'two' %}{{ a }}{{ b }}{% set t = (1, 2) %}{{ t }}{% set c %}block {{ a }}{% endset %}[{{ c }}]", {}),
    ("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', '?') }} {{ greet(name='C', punct='.') }} {{ greet() }}|", {}),
    ("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}", {}),
    ("a\n  {% if true %}\n  yes\n  {% endif %}\nb\n{# comment #}\nc {#- trimmed -#} d\n  {%- if true -%}  e  {%- endif %}\n{{- ' f ' -}}\n  g {%+ if true %}h{% endif +%}\ni", {}),
    ("  {% for x in [1, 2] %}\n    item {{ x }}\n  {% endfor %}\n{% raw %}{{ not rendered }} {% if %}{% endraw %}\nend\n", {}),
    ("line one\r\nline two\rline three {{ 'x' }}\n\n", {}),
    ("{{ '{}-{}'.format(1, 'b') }} {{ 'abcabc'.find('c') }} {{ 'abcabc'.count('b') }} {{ ', '.join(['a', 'b']) }} {{ 'a\nb\r\nc'.splitlines() }} {{ '12'.isdigit() }} {{ 'ab'.isalpha() }}", {}),
    ("{{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ dict(a=1, b='x') }} {{ namespace(x=1).x }} {{ [1,2,3]|batch(2)|list }} {{ 'abc'|center(7) }}|", {}),
    ("{{ raise_exception('Custom failure: ' ~ n) }}", {"n": 3}),
    ("line 1\n{% if true %}\n{{ raise_exception('on line 3') }}\n{% endif %}", {}),
    ("{% set ns = namespace(_private=1) %}", {}),
    ("{{ x.y }}", {"x": None}),
    ("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }},{% endfor %}{% for a, b in [[1, 2, 3]] %}{% endfor %}", {}),
    ("{% for x in 5 %}{% endfor %}", {}),
    ("{{ x|first }}|{{ [] | first is defined }}", {"x": []}),
    ("{{ 'abc'.nosuchmethod }}|{{ 'abc'.nosuchmethod is defined }}", {}),
    ("{{ m.content.split('</think>')[-1].lstrip('\\n') }}|{{ m.content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}",
     {"m": {"content": "<think>\nreason\n</think>\n\nanswer"}}),
    ("{%- if tools %}T{% else %}N{% endif %}{{ tools is none }}{{ documents is defined }}", {"tools": None, "documents": None}),
    ("{{ messages[0]['role'] }}{{ messages[0].role }}{{ messages|length }}{{ (messages|length - 1) - 0 }}", {"messages": [{"role": "user"}]}),
    ("{% generation %}gen {{ 1 }}{% endgeneration %}", {}),
    # gpt-oss: a macro that sets a template variable only when it is not defined reads the outer one
    ("{% macro m() %}{% if x is not defined %}{% set x = 'dflt' %}{% endif %}{{ x }}{% endmacro %}[{{ m() }}][{{ x is defined }}]", {}),
    ("{% macro m() %}{% if x is not defined %}{% set x = 'dflt' %}{% endif %}{{ x }}{% endmacro %}[{{ m() }}][{{ x }}]", {"x": "given"}),
    ("{% macro t(s, req, flag=false) %}{% if s.type == 'array' %}{{ t(s['items'], req) }}[]{% else %}{{ s.type }}{{ flag }}{% endif %}{% endmacro %}{% set r = t({'type': 'array', 'items': {'type': 'array', 'items': {'type': 'int'}}}, []) %}{{ r }} {{ r|length }} {{ r == 'intFalse[][]' }}", {}),
    ("{{ \"a\nb\" + 'c\td' }}|{% for tool in tools %}{% set tool = tool.function %}{{ tool.name }}{% endfor %}|{{ tools[0].function.name }}",
     {"tools": [{"function": {"name": "f"}}, {"function": {"name": "g"}}]}),
    ("{{ t is iterable }} {{ t is not string }} {{ t is not mapping }} {{ t[0] is defined }} {{ s[0] is defined }} {{ t|join(' | ') }} {{ 'k' not in (d.required or []) }} {{ 'a' in (d.r or ['a']) }}",
     {"t": ["object", "null"], "s": "x", "d": {"required": None}}),
    ("{{ '<|channel|>final<|message|>' in m.content }} {{ 'thinking' in m }} {{ m.content|tojson }} {{ m.args|tojson }} {{ messages[1:]|length }}",
     {"m": {"content": "a \"q\" <|channel|>final<|message|>", "args": {"é": [1, None]}}, "messages": [1, 2, 3]}),
    ("{{ strftime_now('%Y-%m-%d %H:%M:%S %a %A %b %B %j %d/%m/%y %%') }}", {}),
    ("{{ 'a' ~ 'b' | upper }} {{ -2 | abs }} {{ not false and true }} {{ 2 * 3 + 1 }} {{ 2 + 3 * 2 ** 2 }} {{ (2 + 3) * 2 }} {{ 10 - 2 - 3 }} {{ 'x' if 1 > 2 else 'y' if 2 > 1 else 'z' }}", {}),
]


def snippet_goldens():
    from transformers.utils.chat_template_utils import _compile_jinja_template
    chat_template_utils.datetime = _FixedDatetime  # what strftime_now() calls
    cases = []
    for src, variables in SNIPPETS:
        case = {"template": src, "variables": variables}
        try:
            case["expected"] = _compile_jinja_template(src).render(**variables)
        except Exception as e:
            case["error"] = str(e)
            case["error_type"] = type(e).__name__
        cases.append(case)
    return {"generator": f"transformers {transformers.__version__}, jinja2 {jinja2.__version__}", "now": NOW.isoformat(),
            "snippets": cases}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    files = []
    for name, (tok_dir, overrides) in JINJA.items():
        src = (DATA / "templates" / f"{name}.jinja").read_text(encoding="utf-8")
        files.append((name, golden(name, load_tokenizer(tok_dir), f"templates/{name}.jinja", src, overrides)))
    for cfg in sorted((DATA / "tokenizers").glob("*/tokenizer_config.json")):
        if not json.loads(cfg.read_text(encoding="utf-8")).get("chat_template"):
            continue
        d = cfg.parent.name
        files.append((f"tokenizer-{d}", golden(d, load_tokenizer(d), f"tokenizers/{d}/tokenizer_config.json", None, {})))
    s = snippet_goldens()
    (OUT / "snippets.json").write_text(json.dumps(s, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"snippets.json: {len(s['snippets'])} snippets ({sum('error' in c for c in s['snippets'])} expect an error)")
    for fname, g in files:
        path = OUT / f"{fname}.json"
        path.write_text(json.dumps(g, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        errors = sum("error" in c for c in g["cases"])
        print(f"{path.relative_to(HERE.parent.parent)}: {len(g['cases'])} cases ({errors} expect an error)")


if __name__ == "__main__":
    main()
