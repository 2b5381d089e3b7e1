"""The demo task as ratings data: the same prompts and policy responses as the ranking splits, each response
rated by a simulated annotator with a noisy score (``--objective regression``, docs/reward_kinds.md).

Two kinds of rows, both the ``ratings`` format (docs/formats.md):

- ``score``: one rating per response, the gold reward plus Gaussian noise of sd `RATING_NOISE`;
- ``attributes``: four ratings per response, each a part of the gold reward plus noise of sd
  ``RATING_NOISE / 2`` (so the four noises together have sd `RATING_NOISE`, like the one score), whose
  sum with weights 1 is the gold reward:

  =============  ==================================================================================
  helpfulness    on-topic content (capped, with diminishing returns), no answer, off-topic, filler,
                 repeated sentences
  politeness     a polite sentence, rude sentences
  correctness    factual errors
  verbosity      the length penalty beyond the free words
  =============  ==================================================================================

`RATING_NOISE` is chosen so that a pair ordered by two noisy ratings agrees with the gold ordering about
as often as the ranking annotators do: Gaussian noise of sd s on each rating orders a pair with
P = Φ(Δ / (s√2)), and the annotators' σ(Δ / τ) is closest to that at s ≈ 1.13 τ (logistic ≈ probit with
scale 1.6). Each row keeps ``gold`` (one gold reward per response), so evaluation reports gold agreement.
A test split can be written with ``noise=0`` (ratings = gold): its pairwise accuracy is then gold agreement.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from rewardlab.demo.gold import GOLD_WEIGHTS, gold_breakdown
from rewardlab.demo.task import TAU, demo_split_prompts, make_demo_groups

RATING_NOISE = round(1.13 * TAU, 3)
"""sd of a simulated rating's noise (module docstring: matched to the ranking annotators' temperature)."""
ATTRIBUTES = ("helpfulness", "politeness", "correctness", "verbosity")


def attribute_scores(prompt: str, response: str) -> dict[str, float]:
    """The gold reward of `response` split into `ATTRIBUTES` (their sum is `gold_reward`)."""
    b, w = gold_breakdown(prompt, response), GOLD_WEIGHTS
    helpfulness = (
        w.content * min(b.on_topic, w.content_cap)
        + w.extra_content * max(b.on_topic - w.content_cap, 0)
        + w.no_answer * (b.on_topic == 0)
        + w.off_topic * b.off_topic
        + w.filler * b.filler
        + w.repeat * b.repeat
    )
    return {
        "helpfulness": helpfulness,
        "politeness": w.polite * (b.polite > 0) + w.rude * b.rude,
        "correctness": w.error * b.error,
        "verbosity": w.length * max(b.words - w.free_words, 0) ** 2,
    }


def demo_ratings_rows(
    split: str, seed: int = 0, k: int = 4, noise: float = RATING_NOISE, attributes: bool = False
) -> list[dict]:
    """Ratings rows for a demo split (train, eval, test): the ranking split's prompts and responses, each
    response rated gold + N(0, noise²) (or per attribute, noise/2 each); the noise is drawn per (seed,
    prompt), so a prompt gets the same ratings in any call."""
    prompts = demo_split_prompts(seed)[split]
    groups = make_demo_groups(len(prompts), k=k, seed=seed, prompts=prompts)
    rows = []
    for g in groups:
        rng = random.Random(f"rewardlab-demo-ratings:{seed}:{g.prompt}")
        completions = []
        for response, gold in zip(g.responses, g.meta["gold"], strict=True):
            if attributes:
                parts = attribute_scores(g.prompt, response)
                noisy = {a: round(v + rng.gauss(0.0, noise / 2), 3) for a, v in parts.items()}
                completions.append({"text": response, "scores": noisy})
            else:
                completions.append({"text": response, "score": round(gold + rng.gauss(0.0, noise), 3)})
        rows.append(
            {"prompt": g.prompt, "completions": completions, "gold": g.meta["gold"], "subset": g.subset}
        )
    return rows


def write_demo_ratings(path: str | Path, rows: list[dict]) -> int:
    """Write rows as JSONL; returns the number written."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return len(rows)
