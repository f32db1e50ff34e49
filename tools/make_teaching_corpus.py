#!/usr/bin/env python3
"""Deterministic chat corpus for the bundled teaching model (resources/models/moescope-tiny).

Five clearly different domains, each a set of single-turn question/answer pairs:

  arithmetic  two-digit addition in many phrasings ("What is 23+58?", "What is 23 + 58?",
              "Compute 23+58.", ...), multi-digit addition and subtraction
  concepts    short English answers about MoE and transformer concepts (experts, router, top-k,
              attention, KV cache, tokens, ...)
  code        tiny Python functions ("Write a Python function add that returns the sum of a and b.")
  french      French questions and answers (translations, capitals, small talk)
  strings     reverse a word, upper-case a word, count letters

Held-out evaluation items are excluded from training by construction:
  - two-digit addition: 10% of the unordered pairs {a, b} (10 <= a, b <= 99) never appear in
    training, in any phrasing or order; multi-digit items use held-out (a, b) pairs likewise;
  - concepts / code / french / strings: held-out (item, phrasing) combinations -- the item is
    seen in training under other phrasings, the held-out phrasing never for that item.

Usage: python3 tools/make_teaching_corpus.py --out DIR     (writes train.jsonl, eval.json)
Every run with the same --seed gives byte-identical files. Pure Python, no dependencies.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SEED = 1234
SYSTEM_PROMPT = "You are moescope-tiny, a small teaching model."

ADD_PHRASINGS = [  # the first three are the evaluated ones
    "What is {a}+{b}?",
    "What is {a} + {b}?",
    "Compute {a}+{b}.",
    "Compute {a} + {b}.",
    "Add {a} and {b}.",
    "What is the sum of {a} and {b}?",
    "Calculate {a} + {b}.",
    "{a} + {b} = ?",
    "How much is {a} plus {b}?",
]
SUB_PHRASINGS = [
    "What is {a}-{b}?",
    "What is {a} - {b}?",
    "Compute {a}-{b}.",
    "Compute {a} - {b}.",
    "Subtract {b} from {a}.",
    "How much is {a} minus {b}?",
]

CONCEPTS = {
    "an expert": "An expert is a small feed-forward network; a MoE layer has many and uses only a few per token.",
    "the router": "The router scores every expert for a token and sends the token to the top-k experts.",
    "top-k routing": "Top-k routing sends each token to the k experts with the highest router scores.",
    "a shared expert": "A shared expert is applied to every token, next to the routed experts.",
    "a mixture of experts": "A mixture of experts replaces one big feed-forward layer by many experts and a router.",
    "attention": "Attention lets each token look at earlier tokens and mix their values by relevance.",
    "the KV cache": "The KV cache stores the keys and values of past tokens so they are not recomputed.",
    "a token": "A token is a piece of text, such as a word or part of a word, with an id.",
    "a tokenizer": "A tokenizer splits text into tokens and maps each token to an id.",
    "an embedding": "An embedding is the vector that represents a token inside the model.",
    "load balancing": "Load balancing keeps the experts evenly used so that no expert is idle or overloaded.",
    "the softmax": "The softmax turns scores into probabilities that are positive and sum to one.",
    "sigmoid routing": "Sigmoid routing scores each expert independently with a sigmoid instead of a softmax.",
    "multi-head latent attention": "Multi-head latent attention compresses keys and values into a small latent vector to shrink the KV cache.",
    "RoPE": "RoPE encodes the position of a token by rotating its query and key vectors.",
    "RMSNorm": "RMSNorm scales a vector by the inverse of its root mean square.",
    "SwiGLU": "SwiGLU is a gated feed-forward layer: a SiLU gate multiplies a linear projection.",
    "a transformer": "A transformer is a stack of layers, each with attention and a feed-forward network.",
    "the logits": "The logits are the raw scores the model gives to every token of the vocabulary.",
    "the temperature": "The temperature divides the logits before sampling; low values make the output more certain.",
    "greedy decoding": "Greedy decoding always picks the token with the highest score.",
    "the prefill": "The prefill runs the whole prompt through the model at once and fills the KV cache.",
    "the decode phase": "In the decode phase the model produces one new token per step.",
    "the context window": "The context window is the maximum number of tokens the model can attend to.",
    "BPE": "BPE builds a vocabulary by repeatedly merging the most frequent pair of symbols.",
    "the auxiliary loss": "The auxiliary loss penalises uneven expert load during training.",
    "the bias correction": "The bias correction adds a learned bias to each expert score so that load stays balanced without an auxiliary loss.",
    "expert specialisation": "Expert specialisation means that different experts handle different kinds of tokens.",
    "a dense layer": "A dense layer uses all of its weights for every token.",
    "active parameters": "Active parameters are the weights actually used for one token: the shared parts plus the selected experts.",
    "a residual connection": "A residual connection adds the input of a block to its output.",
    "a feed-forward network": "A feed-forward network applies two or three linear layers with a nonlinearity to each token.",
    "the learning rate": "The learning rate sets how big each training step is.",
    "a gradient": "A gradient tells how the loss changes when a weight changes.",
    "group-limited routing": "Group-limited routing first picks the best groups of experts, then the top-k experts inside them.",
    "a language model": "A language model predicts the next token from the tokens before it.",
}
CONCEPT_PHRASINGS = [
    "What is {x}?",
    "Explain {x}.",
    "Tell me about {x}.",
    "Define {x}.",
    "Describe {x} in one sentence.",
]

CODE_OPS = [  # (description, args, expression)
    ("the sum of a and b", "a, b", "a + b"),
    ("the difference of a and b", "a, b", "a - b"),
    ("the product of a and b", "a, b", "a * b"),
    ("the square of x", "x", "x * x"),
    ("the cube of x", "x", "x ** 3"),
    ("twice x", "x", "2 * x"),
    ("half of x", "x", "x / 2"),
    ("x plus one", "x", "x + 1"),
    ("the larger of a and b", "a, b", "max(a, b)"),
    ("the smaller of a and b", "a, b", "min(a, b)"),
    ("the absolute value of x", "x", "abs(x)"),
    ("the length of s", "s", "len(s)"),
    ("the string s reversed", "s", "s[::-1]"),
    ("s in upper case", "s", "s.upper()"),
    ("True if n is even", "n", "n % 2 == 0"),
    ("the first element of xs", "xs", "xs[0]"),
    ("the last element of xs", "xs", "xs[-1]"),
    ("the sum of the list xs", "xs", "sum(xs)"),
    ("xs sorted", "xs", "sorted(xs)"),
    ("the remainder of a divided by b", "a, b", "a % b"),
]
CODE_NAMES = ["f", "g", "h", "calc", "solve", "compute", "helper", "apply", "run", "work",
              "foo", "bar", "baz", "do_it", "step", "result", "value", "answer", "main", "task"]
CODE_PHRASINGS = [
    "Write a Python function {name} that returns {desc}.",
    "Write a function called {name} that returns {desc}.",
    "In Python, define {name} to return {desc}.",
]

FRENCH_WORDS = [
    ("cat", "le chat"), ("dog", "le chien"), ("house", "la maison"), ("water", "l'eau"),
    ("bread", "le pain"), ("apple", "la pomme"), ("book", "le livre"), ("car", "la voiture"),
    ("tree", "l'arbre"), ("sun", "le soleil"), ("moon", "la lune"), ("sea", "la mer"),
    ("city", "la ville"), ("friend", "l'ami"), ("school", "l'école"), ("door", "la porte"),
    ("window", "la fenêtre"), ("table", "la table"), ("chair", "la chaise"), ("bed", "le lit"),
    ("milk", "le lait"), ("cheese", "le fromage"), ("wine", "le vin"), ("fish", "le poisson"),
    ("bird", "l'oiseau"), ("horse", "le cheval"), ("flower", "la fleur"), ("garden", "le jardin"),
    ("street", "la rue"), ("night", "la nuit"), ("day", "le jour"), ("week", "la semaine"),
    ("year", "l'année"), ("time", "le temps"), ("hand", "la main"), ("head", "la tête"),
    ("heart", "le cœur"), ("eye", "l'œil"), ("mouth", "la bouche"), ("child", "l'enfant"),
    ("woman", "la femme"), ("man", "l'homme"), ("father", "le père"), ("mother", "la mère"),
    ("brother", "le frère"), ("sister", "la sœur"), ("king", "le roi"), ("queen", "la reine"),
    ("red", "rouge"), ("blue", "bleu"), ("green", "vert"), ("white", "blanc"), ("black", "noir"),
    ("big", "grand"), ("small", "petit"), ("hot", "chaud"), ("cold", "froid"), ("new", "nouveau"),
    ("old", "vieux"), ("good", "bon"), ("bad", "mauvais"), ("happy", "heureux"), ("sad", "triste"),
    ("one", "un"), ("two", "deux"), ("three", "trois"), ("four", "quatre"), ("five", "cinq"),
    ("six", "six"), ("seven", "sept"), ("eight", "huit"), ("nine", "neuf"), ("ten", "dix"),
    ("hello", "bonjour"), ("thank you", "merci"), ("goodbye", "au revoir"), ("yes", "oui"),
    ("no", "non"), ("please", "s'il vous plaît"), ("train", "le train"), ("snow", "la neige"),
]
FRENCH_TO_FR = [  # question about an English word, answer in French
    "Comment dit-on « {en} » en français ?",
    "Traduis « {en} » en français.",
    "Quel est le mot français pour « {en} » ?",
]
FRENCH_TO_EN = [
    "Que veut dire « {fr} » en anglais ?",
    "Traduis « {fr} » en anglais.",
]
CAPITALS = [
    ("la France", "Paris"), ("l'Allemagne", "Berlin"), ("l'Italie", "Rome"), ("l'Espagne", "Madrid"),
    ("le Portugal", "Lisbonne"), ("la Belgique", "Bruxelles"), ("la Suisse", "Berne"),
    ("l'Autriche", "Vienne"), ("la Pologne", "Varsovie"), ("la Grèce", "Athènes"),
    ("la Suède", "Stockholm"), ("la Norvège", "Oslo"), ("le Danemark", "Copenhague"),
    ("l'Irlande", "Dublin"), ("le Japon", "Tokyo"), ("la Chine", "Pékin"), ("le Canada", "Ottawa"),
    ("l'Égypte", "Le Caire"), ("le Maroc", "Rabat"), ("la Russie", "Moscou"),
]
CAPITAL_PHRASINGS = [
    "Quelle est la capitale de {pays} ?",
    "Dis-moi la capitale de {pays}.",
    "Quelle ville est la capitale de {pays} ?",
]
FRENCH_SMALLTALK = [
    ("Bonjour, comment ça va ?", "Ça va bien, merci ! Et vous ?"),
    ("Bonjour !", "Bonjour ! Comment puis-je vous aider ?"),
    ("Comment tu t'appelles ?", "Je m'appelle moescope-tiny, un petit modèle d'experts."),
    ("Merci beaucoup !", "Avec plaisir !"),
    ("Quel temps fait-il aujourd'hui ?", "Je ne sais pas, je suis un petit modèle sans fenêtre."),
    ("Parles-tu français ?", "Oui, je parle un peu français."),
    ("Qu'est-ce qu'un expert ?", "Un expert est un petit réseau ; le routeur choisit quelques experts pour chaque jeton."),
    ("Au revoir !", "Au revoir et à bientôt !"),
]

STRING_WORDS = """
apple about above actor after again agent alarm album alert alive alpha amber angle animal
answer apron arrow artist autumn badge baker banana basket beach beard berry bicycle blade
blanket bottle branch bread breeze brick bridge bright broom brush bucket butter button cabin
cable camel camera candle canvas carpet carrot castle cattle cellar cheese cherry circle
clock cloud coast cobalt coffee collar copper corner cotton country cousin cradle crayon
crown curtain cushion dancer desert dinner doctor dollar donkey dragon drawer dream
eagle early earth eleven empire engine evening fabric falcon farmer feather fence finger forest
fossil frame frost garden garlic ginger glove golden gravel guitar hammer harbor helmet
honey horse hunter island jacket jelly jungle kettle kitten ladder lantern lemon letter
lizard magnet mango marble meadow melon mirror monkey mortar mountain muffin needle nickel
number ocean olive orange orbit oyster paddle palace panda paper parrot pencil pepper
pickle pillow pirate planet pocket potato puzzle rabbit radio ribbon river robot rocket
saddle salmon school screen shadow silver sister spider spoon statue stone summer sunset
table tiger timber tomato tunnel turtle velvet violin wagon walnut window winter wizard
yellow zebra
""".split()
STRING_TASKS = [  # (kind, phrasing)
    ("reverse", "Reverse the word '{w}'."),
    ("reverse", "Spell '{w}' backwards."),
    ("upper", "Write '{w}' in upper case."),
    ("upper", "Uppercase the word '{w}'."),
    ("length", "How many letters are in '{w}'?"),
    ("length", "Count the letters in '{w}'."),
    ("count", "How many times does the letter '{c}' appear in '{w}'?"),
]


def string_answer(kind: str, w: str, c: str = "") -> str:
    if kind == "reverse":
        return w[::-1]
    if kind == "upper":
        return w.upper()
    if kind == "length":
        return str(len(w))
    return str(w.count(c))


def ex(domain: str, user: str, answer: str) -> dict:
    return {"domain": domain, "messages": [{"role": "user", "content": user},
                                            {"role": "assistant", "content": answer}]}


def make_corpus(seed: int = SEED, scale: float = 1.0) -> tuple[list[dict], dict]:
    """Returns (train examples, eval sets). Each train example: {domain, messages}; eval sets:
    {name: [{"prompt", "answer", ...}]}. `scale` < 1 shrinks the training set (smoke runs)."""
    rng = random.Random(seed)
    train: list[dict] = []
    ev: dict[str, list[dict]] = {}

    def n(k: int) -> int:
        return max(1, int(k * scale))

    # ---- arithmetic -----------------------------------------------------------------------
    pairs = [(a, b) for a in range(10, 100) for b in range(a, 100)]
    held = set(rng.sample(pairs, len(pairs) // 10))
    held_ordered = sorted({(a, b) for a, b in held} | {(b, a) for a, b in held})
    train_pairs = [(a, b) for a in range(10, 100) for b in range(10, 100)
                   if (min(a, b), max(a, b)) not in held]
    for _ in range(n(36000)):
        a, b = rng.choice(train_pairs)
        train.append(ex("arithmetic", rng.choice(ADD_PHRASINGS).format(a=a, b=b), str(a + b)))
    for _ in range(n(3000)):  # one operand below 10
        a, b = rng.randrange(0, 10), rng.randrange(0, 100)
        if rng.random() < 0.5:
            a, b = b, a
        train.append(ex("arithmetic", rng.choice(ADD_PHRASINGS).format(a=a, b=b), str(a + b)))
    eval_pairs = rng.sample(held_ordered, 20 * 3 + 300)
    ev["add2"] = [{"prompt": ADD_PHRASINGS[i % 3].format(a=a, b=b), "answer": str(a + b),
                   "a": a, "b": b, "phrasing": i % 3} for i, (a, b) in enumerate(eval_pairs[:60])]
    ev["add2_large"] = [{"prompt": ADD_PHRASINGS[i % 3].format(a=a, b=b), "answer": str(a + b),
                         "a": a, "b": b, "phrasing": i % 3} for i, (a, b) in enumerate(eval_pairs[60:])]

    def multi(kind: str, lo: int, hi: int, count: int, n_eval: int, phr: list[str]):
        seen_eval: set = set()
        items = []
        while len(items) < n_eval:
            a, b = rng.randrange(lo, hi), rng.randrange(lo, hi)
            if kind == "sub" and a < b:
                a, b = b, a
            if (a, b) in seen_eval:
                continue
            seen_eval.add((a, b))
            r = a + b if kind == "add" else a - b
            items.append({"prompt": phr[len(items) % 3].format(a=a, b=b), "answer": str(r)})
        k = 0
        while k < count:
            a, b = rng.randrange(lo, hi), rng.randrange(lo, hi)
            if kind == "sub" and a < b:
                a, b = b, a
            if (a, b) in seen_eval or (kind == "add" and (b, a) in seen_eval):
                continue
            r = a + b if kind == "add" else a - b
            train.append(ex("arithmetic", rng.choice(phr).format(a=a, b=b), str(r)))
            k += 1
        return items

    ev["add3"] = multi("add", 100, 1000, n(9000), 40, ADD_PHRASINGS)
    ev["sub2"] = multi("sub", 10, 100, n(5000), 40, SUB_PHRASINGS)
    ev["sub3"] = multi("sub", 100, 1000, n(6000), 40, SUB_PHRASINGS)

    # ---- concepts -------------------------------------------------------------------------
    ev["concepts"] = []
    concept_train = []
    for i, (x, ans) in enumerate(CONCEPTS.items()):
        hold = i % len(CONCEPT_PHRASINGS)
        for j, p in enumerate(CONCEPT_PHRASINGS):
            q = p.format(x=x)
            q = q[0].upper() + q[1:]
            if j == hold:
                ev["concepts"].append({"prompt": q, "answer": ans})
            else:
                concept_train.append((q, ans))
    for _ in range(n(7000)):
        q, a = rng.choice(concept_train)
        train.append(ex("concepts", q, a))

    # ---- code -----------------------------------------------------------------------------
    ev["code"] = []
    code_train = []
    for oi, (desc, args, expr) in enumerate(CODE_OPS):
        for ni, name in enumerate(CODE_NAMES):
            for pi, p in enumerate(CODE_PHRASINGS):
                q = p.format(name=name, desc=desc)
                a = f"def {name}({args}):\n    return {expr}"
                if (oi * 7 + ni * 3 + pi) % 10 == 0:
                    ev["code"].append({"prompt": q, "answer": a})
                else:
                    code_train.append((q, a))
    ev["code"] = ev["code"][::3][:40]  # a spread-out subset is enough for evaluation
    for _ in range(n(9000)):
        q, a = rng.choice(code_train)
        train.append(ex("code", q, a))

    # ---- french ---------------------------------------------------------------------------
    ev["french"] = []
    fr_train = []
    for wi, (en, fr) in enumerate(FRENCH_WORDS):
        items = [(p.format(en=en), f"En français, on dit « {fr} ».") for p in FRENCH_TO_FR]
        items += [(p.format(fr=fr), f"En anglais, on dit « {en} ».") for p in FRENCH_TO_EN]
        hold = wi % len(items)
        for j, (q, a) in enumerate(items):
            (ev["french"] if j == hold else fr_train).append(
                {"prompt": q, "answer": a} if j == hold else (q, a))
    for ci, (pays, ville) in enumerate(CAPITALS):
        for j, p in enumerate(CAPITAL_PHRASINGS):
            q, a = p.format(pays=pays), f"La capitale de {pays} est {ville}."
            if j == ci % len(CAPITAL_PHRASINGS):
                ev["french"].append({"prompt": q, "answer": a})
            else:
                fr_train.append((q, a))
    fr_train += FRENCH_SMALLTALK * 3
    for _ in range(n(9000)):
        q, a = rng.choice(fr_train)
        train.append(ex("french", q, a))

    # ---- strings --------------------------------------------------------------------------
    ev["strings"] = []
    st_train = []
    for wi, w in enumerate(STRING_WORDS):
        for ti, (kind, p) in enumerate(STRING_TASKS):
            c = w[(wi + ti) % len(w)]
            q, a = p.format(w=w, c=c), string_answer(kind, w, c)
            if (wi + ti * 3) % 9 == 0:
                ev["strings"].append({"prompt": q, "answer": a, "kind": kind})
            else:
                st_train.append((q, a))
    for _ in range(n(12000)):
        q, a = rng.choice(st_train)
        train.append(ex("strings", q, a))

    rng.shuffle(train)
    for e in train:
        if rng.random() < 0.15:
            e["messages"].insert(0, {"role": "system", "content": SYSTEM_PROMPT})
    # safety: nothing held out leaks into training (exact user prompt)
    train_prompts = {e["messages"][-2]["content"] for e in train}
    for name, items in ev.items():
        for it in items:
            assert it["prompt"] not in train_prompts, (name, it["prompt"])
    return train, ev


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args()
    train, ev = make_corpus(args.seed, args.scale)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "train.jsonl", "w", encoding="utf-8") as f:
        for e in train:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    (args.out / "eval.json").write_text(json.dumps(ev, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    counts: dict[str, int] = {}
    for e in train:
        counts[e["domain"]] = counts.get(e["domain"], 0) + 1
    print(json.dumps({"train": len(train), "domains": counts,
                      "eval": {k: len(v) for k, v in ev.items()}}))


if __name__ == "__main__":
    main()
