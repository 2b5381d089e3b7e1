"""The built-in demo preference task: templated prompts, a toy policy, a KNOWN gold reward, noisy annotators.

It exists so every rewardlab verb runs with no arguments and no download, and so experiments that need
the truth (held-out accuracy against a noise ceiling, best-of-N overoptimization, drift) have it:
`demo.gold.gold_reward(prompt, response)` parses the response text back into features and scores them,
so it works on any string, including responses a trained policy or best-of-N produced. Pure Python, cheap
to import. The task, its features, weights and temperature are documented in docs/demo.md. Here: the
simulated annotators and the prompts, groups and splits; the policy is demo.policy, the gold-aware
metrics (noise ceiling, expected accuracy) are rewardlab.data.gold, for any group carrying a gold reward.

    groups = demo_splits()["train"]          # K = 4 rankings, gold scores in group.meta["gold"]
    noise_ceiling(demo_splits()["test"])     # rewardlab.data.gold: the best accuracy any model can expect
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from pathlib import Path

from rewardlab.data.gold import DEFAULT_TAU, preference_probability
from rewardlab.data.types import PreferenceGroup
from rewardlab.demo.gold import gold_reward, parse_prompt
from rewardlab.demo.policy import PolicyStyle, sample_response
from rewardlab.demo.text import DOMAINS

TAU = DEFAULT_TAU
"""Annotator temperature: P(a preferred to b) = σ((g_a - g_b) / TAU). Set so that labels agree with the
gold ordering on about 72% of the default policy's pairs (docs/demo.md shows the calibration)."""

SPLIT_KEYS = {"train": 134, "eval": 20, "test": 70}
"""(domain, topic) keys per split; each key gives 3 prompts (its phrasings), each prompt one K=4 ranking
(6 pairs): train 402 prompts / 2,412 pairs, eval 60 / 360, test 210 / 1,260. The remaining 64 keys form
the unlabelled "pool" of `demo_split_prompts`, for best-of-N and drift experiments."""


# --- simulated annotators ---------------------------------------------------------------------------


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
