"""The built-in demo preference task: templated prompts, a toy policy, a KNOWN gold reward, noisy annotators.

It exists so every rewardlab verb runs with no arguments and no download, and so experiments that need
the truth (held-out accuracy against a noise ceiling, best-of-N overoptimization, drift) have it:
`gold_reward(prompt, response)` parses the response text back into features and scores them, so it
works on any string, including responses a trained policy or best-of-N produced. Pure Python, cheap to
import. The task, its features, weights and temperature are documented in docs/demo.md.

    groups = demo_splits()["train"]          # K = 4 rankings, gold scores in group.meta["gold"]
    noise_ceiling(demo_splits()["test"])     # the best pairwise accuracy any model can expect
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from rewardlab.data.types import PreferenceGroup
from rewardlab.demo.text import DOMAINS, ERROR_TEMPLATES, ERRORS, FILLER, POLITE, RUDE

TAU = 2.0
"""Annotator temperature: P(a preferred to b) = σ((g_a - g_b) / TAU). Set so that labels agree with the
gold ordering on about 72% of the default policy's pairs (docs/demo.md shows the calibration)."""

SPLIT_KEYS = {"train": 134, "eval": 20, "test": 70}
"""(domain, topic) keys per split; each key gives 3 prompts (its phrasings), each prompt one K=4 ranking
(6 pairs): train 402 prompts / 2,412 pairs, eval 60 / 360, test 210 / 1,260. The remaining 64 keys form
the unlabelled "pool" of `demo_split_prompts`, for best-of-N and drift experiments."""


# --- the gold reward ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoldWeights:
    """The gold reward's weights; `gold_reward` sums weight × feature (docs/demo.md, "Gold reward")."""

    content: float = 1.0
    """Each distinct on-topic content sentence, for the first `content_cap` of them."""
    content_cap: int = 3
    """How many content sentences earn the full `content` weight; later ones earn `extra_content`."""
    extra_content: float = 0.3
    """Each distinct on-topic content sentence beyond `content_cap` (diminishing returns)."""
    no_answer: float = -1.0
    """Once, when the response has no on-topic content sentence at all (it ignored the request)."""
    off_topic: float = -0.4
    """Each content sentence about another topic or task (irrelevant)."""
    filler: float = -0.25
    """Each vague filler sentence ("It really depends on your situation.")."""
    polite: float = 0.5
    """Once, when the response has at least one polite sentence ("Happy to help!")."""
    rude: float = -1.2
    """Each rude sentence ("Obviously you should already know this.")."""
    error: float = -1.2
    """Each factual error ("The Moon is bigger than the Earth.")."""
    repeat: float = -0.5
    """Each sentence that repeats an earlier one word for word (it earns nothing else)."""
    free_words: int = 50
    """Length up to this many words costs nothing."""
    length: float = -0.002
    """Times (words - free_words)², beyond `free_words`: padding hurts, and more and more."""


GOLD_WEIGHTS = GoldWeights()


@dataclass
class GoldBreakdown:
    """What `gold_reward` found in a response, and the total it gave."""

    on_topic: int = 0
    off_topic: int = 0
    filler: int = 0
    polite: int = 0
    rude: int = 0
    error: int = 0
    repeat: int = 0
    unknown: int = 0
    """Sentences the task does not know (e.g. from a real LM): they only count towards length."""
    words: int = 0
    total: float = 0.0


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def _alternation(templates: Sequence[str]) -> re.Pattern[str]:
    """One regex matching any template, capturing its {topic} in group t<i> (i = template index)."""
    parts = []
    for i, template in enumerate(templates):
        before, after = template.split("{topic}")
        parts.append(f"{re.escape(before)}(?P<t{i}>.+?){re.escape(after)}")
    return re.compile("|".join(parts), re.IGNORECASE)


@lru_cache(maxsize=1)
def _tables() -> tuple:
    prompts = [(d.name, p) for d in DOMAINS for p in d.prompts]
    content = [(d.name, c) for d in DOMAINS for c in d.content]
    fixed = {
        _norm(s): kind
        for kind, bank in (("polite", POLITE), ("rude", RUDE), ("filler", FILLER), ("error", ERRORS))
        for s in bank
    }
    return (
        prompts,
        _alternation([p for _, p in prompts]),
        content,
        _alternation([c for _, c in content]),
        _alternation(ERROR_TEMPLATES),
        fixed,
    )


def _match(pattern: re.Pattern[str], text: str) -> tuple[int, str] | None:
    m = pattern.fullmatch(text)
    if m is None or m.lastgroup is None:
        return None
    return int(m.lastgroup[1:]), m.group(m.lastgroup)


def parse_prompt(prompt: str) -> tuple[str, str] | None:
    """(domain, topic) of a demo prompt, or None when `prompt` is not one of the task's templates."""
    prompts, prompt_re, *_ = _tables()
    found = _match(prompt_re, " ".join(prompt.split()))
    return None if found is None else (prompts[found[0]][0], found[1])


def gold_breakdown(prompt: str, response: str, weights: GoldWeights = GOLD_WEIGHTS) -> GoldBreakdown:
    """Parse `response` into sentences, classify each, and score them (see `GoldWeights`).

    A content sentence is on-topic when its task and topic are the prompt's; for a prompt outside the
    task's templates, when its topic occurs in the prompt text.
    """
    _, _, content, content_re, error_re, fixed = _tables()
    target = parse_prompt(prompt)
    lowered_prompt = _norm(prompt)
    out = GoldBreakdown(words=len(response.split()))
    seen: set[str] = set()
    for sentence in _SENTENCE_END.split(response.strip()):
        key = _norm(sentence)
        if not key:
            continue
        if key in seen:
            out.repeat += 1
            continue
        seen.add(key)
        kind = fixed.get(key)
        if kind is not None:
            setattr(out, kind, getattr(out, kind) + 1)
        elif (found := _match(content_re, " ".join(sentence.split()))) is not None:
            domain, topic = content[found[0]][0], found[1].lower()
            if target is None:
                relevant = topic in lowered_prompt
            else:
                relevant = domain == target[0] and topic == target[1].lower()
            out.on_topic += relevant
            out.off_topic += not relevant
        elif _match(error_re, " ".join(sentence.split())) is not None:
            out.error += 1
        else:
            out.unknown += 1
    w = weights
    out.total = (
        w.content * min(out.on_topic, w.content_cap)
        + w.extra_content * max(out.on_topic - w.content_cap, 0)
        + w.no_answer * (out.on_topic == 0)
        + w.off_topic * out.off_topic
        + w.filler * out.filler
        + w.polite * (out.polite > 0)
        + w.rude * out.rude
        + w.error * out.error
        + w.repeat * out.repeat
        + w.length * max(out.words - w.free_words, 0) ** 2
    )
    return out


def gold_reward(prompt: str, response: str, weights: GoldWeights = GOLD_WEIGHTS) -> float:
    """The demo task's true reward of `response` to `prompt`, computed from the text alone."""
    return gold_breakdown(prompt, response, weights).total


# --- the policy ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyStyle:
    """How `sample_response` writes; shift it (or pick a preset in STYLES) to simulate a drifted policy."""

    content_weights: tuple[float, ...] = (
        0.06,
        0.18,
        0.28,
        0.24,
        0.14,
        0.07,
        0.03,
        0.006,
        0.003,
        0.0015,
        0.0005,
    )
    """Relative probability of writing 0, 1, 2, ... content sentences."""
    filler_weights: tuple[float, ...] = (0.5, 0.3, 0.13, 0.05, 0.02)
    """Relative probability of 0, 1, 2, ... vague filler sentences."""
    error_weights: tuple[float, ...] = (0.82, 0.14, 0.04)
    """Relative probability of 0, 1, 2 factual errors."""
    p_polite_open: float = 0.35
    """Probability of a polite opener ("Happy to help!")."""
    p_polite_close: float = 0.3
    """Probability of a polite closer ("Hope this helps!")."""
    p_rude: float = 0.12
    """Probability of a rude tone: a rude opener and a rude closer (replacing any polite ones)."""
    p_off_topic: float = 0.1
    """Probability that the whole answer is about another task and topic (a misread request)."""
    p_stray: float = 0.1
    """Probability of one off-topic content sentence among on-topic ones."""
    p_repeat: float = 0.04
    """Probability that one body sentence is repeated later (padding)."""
    temperature: float = 1.0
    """Sampling temperature over all the choices above: each weight w becomes w^(1/T) (a Bernoulli p is
    the pair (p, 1-p)), so T > 1 gives more varied, more extreme candidates and T < 1 more typical ones."""


STYLES: dict[str, PolicyStyle] = {
    "default": PolicyStyle(),
    # Long answers: more content, more filler and repetition (drift in length and style).
    "verbose": PolicyStyle(
        content_weights=(0.0, 0.02, 0.05, 0.1, 0.18, 0.22, 0.2, 0.14, 0.09),
        filler_weights=(0.1, 0.25, 0.3, 0.2, 0.15),
        p_polite_open=0.6,
        p_polite_close=0.6,
        p_repeat=0.4,
    ),
    # Short answers with little decoration.
    "concise": PolicyStyle(
        content_weights=(0.1, 0.35, 0.35, 0.15, 0.05),
        filler_weights=(0.8, 0.2),
        p_polite_open=0.15,
        p_polite_close=0.1,
        p_repeat=0.02,
    ),
    # Sloppy and curt: more errors, rudeness and misread requests.
    "careless": PolicyStyle(error_weights=(0.4, 0.4, 0.2), p_rude=0.4, p_off_topic=0.25, p_stray=0.3),
}


def with_style(base: str | PolicyStyle = "default", **changes: object) -> PolicyStyle:
    """A copy of a style with some fields changed, e.g. with_style(temperature=1.5) for best-of-N pools."""
    return replace(_style(base), **changes)


def _style(style: str | PolicyStyle | None) -> PolicyStyle:
    if style is None or isinstance(style, str):
        name = style or "default"
        if name not in STYLES:
            raise ValueError(f"unknown demo policy style '{name}'; choose one of {', '.join(STYLES)}")
        return STYLES[name]
    return style


def _choice_index(weights: Sequence[float], temperature: float, rng: random.Random) -> int:
    tempered = [w ** (1.0 / temperature) if w > 0 else 0.0 for w in weights]
    return rng.choices(range(len(tempered)), weights=tempered)[0]


def _coin(p: float, temperature: float, rng: random.Random) -> bool:
    return _choice_index((1.0 - p, p), temperature, rng) == 1


def sample_response(prompt: str, rng: random.Random, style: str | PolicyStyle | None = None) -> str:
    """One candidate response to a demo prompt, of varied quality; `style` names a STYLES preset or
    gives a PolicyStyle (default: STYLES["default"]). Deterministic given the state of `rng`."""
    style = _style(style)
    target = parse_prompt(prompt)
    if target is None:
        raise ValueError(
            f"sample_response writes answers to the demo task's prompts only, not {prompt!r}; "
            "take prompts from demo_prompts() or demo_split_prompts()"
        )
    domains = {d.name: d for d in DOMAINS}
    t = style.temperature
    domain, topic = domains[target[0]], target[1]
    if _coin(style.p_off_topic, t, rng):  # answers a different request altogether
        domain = rng.choice([d for d in DOMAINS if d.name != target[0]])
        topic = rng.choice(domain.topics)
    n_content = min(_choice_index(style.content_weights, t, rng), len(domain.content))
    body = [c.format(topic=topic) for c in rng.sample(domain.content, n_content)]
    if _coin(style.p_stray, t, rng):
        other = rng.choice([d for d in DOMAINS if d.name != domain.name])
        body.append(rng.choice(other.content).format(topic=rng.choice(other.topics)))
    n_filler = min(_choice_index(style.filler_weights, t, rng), len(FILLER))
    body += rng.sample(FILLER, n_filler)
    for _ in range(_choice_index(style.error_weights, t, rng)):
        if rng.random() < 0.5:
            body.append(rng.choice(ERRORS))
        else:
            body.append(rng.choice(ERROR_TEMPLATES).format(topic=topic))
    rng.shuffle(body)
    if not body:
        body.append(rng.choice(FILLER))
    if _coin(style.p_repeat, t, rng):
        i = rng.randrange(len(body))
        body.insert(rng.randrange(i + 1, len(body) + 1), body[i])
    opener = rng.choice(POLITE[:6]) if _coin(style.p_polite_open, t, rng) else None
    closer = rng.choice(POLITE[6:]) if _coin(style.p_polite_close, t, rng) else None
    if _coin(style.p_rude, t, rng):
        opener, closer = rng.choice(RUDE[:4]), rng.choice(RUDE[4:])
    return " ".join(s for s in [opener, *body, closer] if s)


# --- simulated annotators ---------------------------------------------------------------------------


def preference_probability(gold_a: float, gold_b: float, tau: float = TAU) -> float:
    """P(a preferred to b) = σ((gold_a - gold_b) / tau), the Bradley-Terry annotator."""
    x = (gold_a - gold_b) / tau
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def sample_ranks(gold: Sequence[float], rng: random.Random, tau: float = TAU) -> list[int]:
    """A Plackett-Luce ranking of items with rewards `gold` at temperature `tau`: rank[i], 1 = best.

    Sorting gold/tau + Gumbel noise draws the PL order, in which i lands above j with probability
    exactly σ((gold_i - gold_j) / tau), the same as `annotate_pair`.
    """
    keys = [g / tau - math.log(max(rng.expovariate(1.0), 1e-300)) for g in gold]
    order = sorted(range(len(gold)), key=lambda i: -keys[i])
    ranks = [0] * len(gold)
    for position, i in enumerate(order):
        ranks[i] = position + 1
    return ranks


def annotate_pair(prompt: str, response_a: str, response_b: str, rng: random.Random, tau: float = TAU) -> int:
    """A simulated annotator's choice between two responses: 0 if `response_a` is preferred, else 1."""
    p = preference_probability(gold_reward(prompt, response_a), gold_reward(prompt, response_b), tau)
    return 0 if rng.random() < p else 1


def annotate_ranking(
    prompt: str, responses: Sequence[str], rng: random.Random, tau: float = TAU
) -> list[int]:
    """A simulated annotator's ranking of `responses`: rank[i], 1 = best (Plackett-Luce, see sample_ranks)."""
    return sample_ranks([gold_reward(prompt, r) for r in responses], rng, tau)


# --- prompts, groups, splits -------------------------------------------------------------------------


def demo_prompts() -> list[str]:
    """Every demo prompt: each (domain, topic) key in each of its domain's phrasings, in a fixed order."""
    return [p.format(topic=t) for d in DOMAINS for t in d.topics for p in d.prompts]


def demo_split_prompts(seed: int = 0) -> dict[str, list[str]]:
    """Prompts of "train", "eval", "test" and the unlabelled "pool"; split by (domain, topic), so no topic
    is shared between splits. The split depends on `seed` only."""
    keys = [(d, t) for d in DOMAINS for t in d.topics]
    random.Random(f"rewardlab-demo-split:{seed}").shuffle(keys)
    out: dict[str, list[str]] = {}
    start = 0
    for name, n in [*SPLIT_KEYS.items(), ("pool", len(keys) - sum(SPLIT_KEYS.values()))]:
        out[name] = [p.format(topic=t) for d, t in keys[start : start + n] for p in d.prompts]
        start += n
    return out


def make_demo_groups(
    n_prompts: int,
    k: int = 4,
    seed: int = 0,
    as_rankings: bool = True,
    *,
    prompts: Sequence[str] | None = None,
    style: str | PolicyStyle | None = None,
    tau: float = TAU,
) -> list[PreferenceGroup]:
    """`n_prompts` groups of `k` distinct policy responses, labelled by simulated annotators.

    as_rankings=True: one Plackett-Luce ranking per group (`ranks`, and all C(k,2) pairs it implies).
    as_rankings=False: each of the C(k,2) pairs labelled independently by `annotate_pair` (k=2: classic
    pairs). Prompts are drawn with `seed` from `prompts` (default: all demo prompts); each group's
    responses and labels depend only on (seed, prompt), so a prompt gets the same group in any call.
    group.meta holds "gold" (one gold reward per response) and "tau"; group.subset is the task domain.
    """
    if k < 2:
        raise ValueError(f"k={k}: a preference group needs at least 2 responses")
    pool = list(prompts) if prompts is not None else demo_prompts()
    if n_prompts > len(pool):
        raise ValueError(f"n_prompts={n_prompts} but only {len(pool)} distinct prompts are available")
    chosen = random.Random(f"rewardlab-demo-prompts:{seed}").sample(pool, n_prompts)
    groups = []
    for i, prompt in enumerate(chosen):
        rng = random.Random(f"rewardlab-demo:{seed}:{prompt}")
        responses: list[str] = []
        for _ in range(50 * k):  # distinct responses; the policy repeats itself rarely
            candidate = sample_response(prompt, rng, style)
            if candidate not in responses:
                responses.append(candidate)
            if len(responses) == k:
                break
        gold = [gold_reward(prompt, r) for r in responses]
        if as_rankings:
            ranks: list[float] | None = [float(r) for r in sample_ranks(gold, rng, tau)]
            pairs = [(a, b) for a in range(k) for b in range(k) if ranks[a] < ranks[b]]
        else:
            ranks = None
            pairs = []
            for a in range(k):
                for b in range(a + 1, k):
                    win = rng.random() < preference_probability(gold[a], gold[b], tau)
                    pairs.append((a, b) if win else (b, a))
        domain = parse_prompt(prompt)
        groups.append(
            PreferenceGroup(
                prompt=prompt,
                responses=list(responses),
                pairs=pairs,
                ranks=ranks,
                subset=domain[0] if domain else None,
                source=f"demo:seed={seed}:{i}",
                meta={"gold": gold, "tau": tau},
            )
        )
    return groups


def demo_splits(seed: int = 0, k: int = 4) -> dict[str, list[PreferenceGroup]]:
    """ "train", "eval" (model selection) and "test" groups: K-way rankings on disjoint prompts and topics.

    Sized for the default `rewardlab train` (MiniLM, 2 CPU cores, a few minutes): see SPLIT_KEYS.
    """
    splits = demo_split_prompts(seed)
    return {
        name: make_demo_groups(len(splits[name]), k=k, seed=seed, prompts=splits[name]) for name in SPLIT_KEYS
    }


# --- the noise ceiling ---------------------------------------------------------------------------------


def _gold_of(group: PreferenceGroup) -> tuple[list[float], float]:
    gold = group.meta.get("gold")
    if not isinstance(gold, list) or len(gold) != len(group.responses):
        raise ValueError(
            f"{group.source or 'group'}: meta['gold'] must hold one gold reward per response; "
            "groups from make_demo_groups/demo_splits (or demo JSONL with its 'gold' field) have it"
        )
    return [float(g) for g in gold], float(group.meta.get("tau", TAU))


def noise_ceiling(groups: Sequence[PreferenceGroup]) -> float:
    """Expected pairwise accuracy of the gold reward itself against the annotators' labels.

    Mean over labelled pairs of max(p, 1-p), p = σ((g_a - g_b) / tau): the Bayes-optimal accuracy, so no
    reward model can expect to beat it on these pairs (ties in gold give 0.5).
    """
    values = []
    for group in groups:
        gold, tau = _gold_of(group)
        for a, b in group.pairs:
            p = preference_probability(gold[a], gold[b], tau)
            values.append(max(p, 1.0 - p))
    if not values:
        raise ValueError("noise_ceiling needs at least one labelled pair")
    return sum(values) / len(values)


def gold_agreement(groups: Sequence[PreferenceGroup]) -> float:
    """Fraction of labelled pairs whose winner has the higher gold reward (gold ties count half): the
    gold ordering's accuracy against the labels actually drawn; close to `noise_ceiling` on many pairs."""
    hits = []
    for group in groups:
        gold, _ = _gold_of(group)
        hits += [1.0 if gold[w] > gold[r] else 0.5 if gold[w] == gold[r] else 0.0 for w, r in group.pairs]
    if not hits:
        raise ValueError("gold_agreement needs at least one labelled pair")
    return sum(hits) / len(hits)


def expected_accuracy(groups: Sequence[PreferenceGroup], rewards: Sequence[Sequence[float]]) -> float:
    """A model's pairwise accuracy averaged over the annotators' noise instead of over one draw of labels.

    `rewards[i][j]` is the model's reward for groups[i].responses[j]. For each labelled pair the model
    orders a above b, it agrees with the annotator with probability σ((g_a - g_b) / tau) (1/2 on a tied
    reward). Gold rewards score exactly `noise_ceiling`, so the two compare directly, without the test
    labels' sampling noise (about ±1.3 points on the 1,260 test pairs).
    """
    if len(rewards) != len(groups):
        raise ValueError(f"{len(rewards)} reward lists for {len(groups)} groups; give one list per group")
    values = []
    for group, scores in zip(groups, rewards, strict=True):
        gold, tau = _gold_of(group)
        if len(scores) != len(gold):
            raise ValueError(f"{group.source or 'group'}: {len(scores)} rewards for {len(gold)} responses")
        for a, b in group.pairs:
            p = preference_probability(gold[a], gold[b], tau)
            values.append(0.5 if scores[a] == scores[b] else p if scores[a] > scores[b] else 1.0 - p)
    if not values:
        raise ValueError("expected_accuracy needs at least one labelled pair")
    return sum(values) / len(values)


def write_demo_jsonl(path: str | Path, groups: Sequence[PreferenceGroup]) -> int:
    """Write groups as JSONL for users to read and for `rewardlab.data.load_preferences`; returns rows.

    Groups with `ranks` (or K = 2) become ranking rows {"prompt", "responses", "ranking", "subset",
    "gold", "tau"} (ranking[i] = rank of responses[i], 1 = best); otherwise every group is written as
    one {"prompt", "chosen", "rejected", ...} row per pair, since one file holds one format.
    """
    as_ranking = all(g.ranks is not None or (len(g.responses) == 2 and len(g.pairs) == 1) for g in groups)
    rows = []
    for g in groups:
        extra = {
            k: v
            for k, v in (("subset", g.subset), ("gold", g.meta.get("gold")), ("tau", g.meta.get("tau")))
            if v is not None
        }
        if as_ranking:
            ranks = g.ranks if g.ranks is not None else [1 if i == g.pairs[0][0] else 2 for i in range(2)]
            ranking = [int(r) if float(r).is_integer() else r for r in ranks]
            rows.append({"prompt": g.prompt, "responses": g.responses, "ranking": ranking, **extra})
        else:
            gold = extra.pop("gold", None)
            for w, r in g.pairs:
                pair_gold = {"gold": [gold[w], gold[r]]} if gold is not None else {}
                rows.append(
                    {
                        "prompt": g.prompt,
                        "chosen": g.responses[w],
                        "rejected": g.responses[r],
                        **extra,
                        **pair_gold,
                    }
                )
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    Path(path).write_text(text, encoding="utf-8")
    return len(rows)
