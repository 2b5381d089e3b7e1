"""The demo task: determinism, the gold reward's documented values, annotator noise, the noise ceiling,
splits, policy styles and the JSONL round trip. Hand-computed values use the default GoldWeights:
content +1 (first 3, then +0.3), no on-topic content -1, off-topic -0.4, filler -0.25, polite +0.5 once,
rude -1.2, error -1.2, repeat -0.5, length -0.002·(words - 50)² beyond 50 words.
"""

import json
import math
import random
import statistics

import pytest

from rewardlab.data.gold import expected_accuracy, gold_agreement, noise_ceiling, preference_probability
from rewardlab.data.types import PreferenceGroup
from rewardlab.demo.gold import gold_breakdown, gold_reward, parse_prompt
from rewardlab.demo.policy import sample_response, with_style
from rewardlab.demo.task import (
    SPLIT_KEYS,
    TAU,
    annotate_pair,
    demo_prompts,
    demo_split_prompts,
    demo_splits,
    make_demo_groups,
    sample_ranks,
    write_demo_jsonl,
)
from rewardlab.demo.text import DOMAINS

COOK = next(d for d in DOMAINS if d.name == "cook")
TRAVEL = next(d for d in DOMAINS if d.name == "travel")
PROMPT = "How do I make pancakes?"
C = [c.format(topic="pancakes") for c in COOK.content]  # on-topic content sentences
OFF = [c.format(topic="fried rice") for c in COOK.content]  # same task, another topic


@pytest.fixture(scope="module")
def splits():
    return demo_splits()


def _key(groups):
    return [(g.prompt, g.responses, g.pairs, g.ranks, g.meta["gold"]) for g in groups]


def test_same_seed_same_groups_other_seed_other_groups():
    a = make_demo_groups(12, seed=3)
    assert _key(a) == _key(make_demo_groups(12, seed=3))
    assert _key(a) != _key(make_demo_groups(12, seed=4))
    # A prompt's group depends only on (seed, prompt), not on how many prompts were asked for.
    bigger = {g.prompt: g for g in make_demo_groups(40, seed=3)}
    for g in a:
        if g.prompt in bigger:
            assert _key([g]) == _key([bigger[g.prompt]])


def test_every_prompt_and_content_sentence_parses_back():
    prompts = demo_prompts()
    assert len(prompts) == len(set(prompts)) == 8 * 36 * 3
    for d in DOMAINS:
        for topic in d.topics:
            for p in d.prompts:
                assert parse_prompt(p.format(topic=topic)) == (d.name, topic)
            own, other = d.prompts[0].format(topic=topic), TRAVEL.prompts[0].format(topic="Lisbon")
            for c in d.content:
                b = gold_breakdown(own, c.format(topic=topic))
                assert (b.on_topic, b.off_topic, b.unknown) == (1, 0, 0)
                if d.name != "travel":
                    assert gold_breakdown(other, c.format(topic=topic)).off_topic == 1


def test_gold_hand_values():
    """Each line: the response, then its hand-computed gold reward (all under 50 words)."""
    cases = [
        (f"{C[0]} {C[1]}", 2.0),  # two content sentences
        (f"Happy to help! {C[0]} {C[1]}", 2.5),  # + polite 0.5
        (f"Happy to help! {C[0]} {C[1]} Hope this helps!", 2.5),  # polite counts once
        (f"Ugh, fine. {C[0]} {C[1]}", 0.8),  # rude -1.2
        (f"{C[0]} {C[1]} The Moon is bigger than the Earth.", 0.8),  # error -1.2
        (f"{C[0]} It really depends on your situation.", 0.75),  # filler -0.25
        (f"{C[0]} {C[0]}", 0.5),  # repeat -0.5, counted once
        (f"{OFF[0]} {OFF[1]}", -1.8),  # no answer -1, off-topic 2 x -0.4
        (f"{C[0]} {OFF[1]}", 0.6),  # one stray off-topic sentence
        (f"{C[0]} Experts agree that pancakes was invented on the Moon in 1850.", -0.2),  # topic error
    ]
    for response, expected in cases:
        assert gold_breakdown(PROMPT, response).words <= 50
        assert gold_reward(PROMPT, response) == pytest.approx(expected), response


def test_gold_documented_orderings():
    base = f"{C[0]} {C[1]} {C[2]}"
    relevant, irrelevant = gold_reward(PROMPT, base), gold_reward(PROMPT, f"{OFF[0]} {OFF[1]} {OFF[2]}")
    assert relevant > irrelevant
    polite = gold_reward(PROMPT, f"Happy to help! {base}")
    rude = gold_reward(PROMPT, f"Obviously you should already know this. {base}")
    assert polite > relevant > rude
    assert gold_reward(PROMPT, f"{base} Bats are completely blind.") < relevant
    # Content has diminishing returns: the 4th and 5th sentences add 0.3 each (still under 50 words).
    five = " ".join(C[:5])
    assert gold_breakdown(PROMPT, five).words <= 50
    assert gold_reward(PROMPT, five) == pytest.approx(3.6)


def test_gold_length_penalty_is_quadratic_and_makes_length_non_monotone():
    """Padding with a sentence the task does not know only adds words: -0.002 (words - 50)²."""
    base = f"{C[0]} {C[1]}"
    n_base = len(base.split())
    for extra in (10, 40, 80):
        response = base + " " + " ".join(["blah"] * (extra - 1)) + " blah."
        words = n_base + extra
        assert gold_breakdown(PROMPT, response).unknown == 1
        expected = 2.0 - 0.002 * max(words - 50, 0) ** 2
        assert gold_reward(PROMPT, response) == pytest.approx(expected)
    # More content helps up to a point, then the length it brings costs more than it adds. For these
    # sentences (8-84 words for 1-10 of them): 7 sentences, 59 words → 3 + 4·0.3 - 0.002·9² = 4.038;
    # 10 sentences, 84 words → 3 + 7·0.3 - 0.002·34² = 2.788.
    by_count = [gold_reward(PROMPT, " ".join(C[:n])) for n in range(1, 11)]
    assert max(range(10), key=lambda i: by_count[i]) == 6
    assert by_count[6] == pytest.approx(4.038)
    assert by_count[-1] == pytest.approx(2.788)


def test_gold_on_prompts_outside_the_task():
    """Unknown prompt: a content sentence is on-topic when its topic occurs in the prompt text."""
    assert gold_reward("Tell me everything about pancakes, please", C[0]) == pytest.approx(1.0)
    assert gold_reward("Tell me about the weather", C[0]) == pytest.approx(-1.4)  # -1 no answer, -0.4
    assert math.isfinite(gold_reward("anything", "Some text a language model wrote. And more!"))


def test_annotator_agreement_with_gold_is_70_to_75_percent():
    """A few thousand independently labelled pairs of the default policy: labels agree with the gold
    ordering 68-77% of the time (TAU was calibrated for ~72.5%), for pairs and for rankings alike."""
    pairs = make_demo_groups(864, k=4, seed=11, as_rankings=False)
    rankings = make_demo_groups(864, k=4, seed=12)
    assert sum(g.num_pairs for g in pairs) == 864 * 6
    for groups in (pairs, rankings):
        assert 0.68 <= gold_agreement(groups) <= 0.77
        assert 0.68 <= noise_ceiling(groups) <= 0.77


def test_annotate_pair_probability():
    """Gold difference TAU·ln 3 → P(a preferred) = σ(ln 3) = 3/4; swapped → 1/4."""
    a = C[0]
    b = f"{C[0]} Cracking your knuckles causes arthritis."  # gold 1.0 vs -0.2
    delta = gold_reward(PROMPT, a) - gold_reward(PROMPT, b)
    assert delta == pytest.approx(1.2)
    rng = random.Random(0)
    n = 6000
    wins = sum(annotate_pair(PROMPT, a, b, rng, tau=1.2 / math.log(3)) == 0 for _ in range(n))
    assert wins / n == pytest.approx(0.75, abs=0.02)
    wins = sum(annotate_pair(PROMPT, b, a, rng, tau=1.2 / math.log(3)) == 0 for _ in range(n))
    assert wins / n == pytest.approx(0.25, abs=0.02)


def test_plackett_luce_ranks_have_the_documented_marginals():
    """gold/τ = [ln 3, 0, -ln 3] → weights [3, 1, 1/3]: P(item 0 ranked first) = 3 / (13/3) = 9/13;
    P(0 above 1) = σ(ln 3) = 3/4; P(1 above 2) = 3/4; P(0 above 2) = σ(2 ln 3) = 9/10."""
    tau = 2.0
    gold = [tau * math.log(3), 0.0, -tau * math.log(3)]
    rng = random.Random(1)
    draws = [sample_ranks(gold, rng, tau) for _ in range(20000)]
    assert all(sorted(r) == [1, 2, 3] for r in draws)
    freq = lambda cond: sum(map(cond, draws)) / len(draws)  # noqa: E731
    assert freq(lambda r: r[0] == 1) == pytest.approx(9 / 13, abs=0.015)
    assert freq(lambda r: r[0] < r[1]) == pytest.approx(0.75, abs=0.015)
    assert freq(lambda r: r[1] < r[2]) == pytest.approx(0.75, abs=0.015)
    assert freq(lambda r: r[0] < r[2]) == pytest.approx(0.9, abs=0.015)


def test_noise_ceiling_and_gold_agreement_by_hand():
    """Pair 1: gold difference τ·ln 3 → p = 3/4, max(p, 1-p) = 3/4; the label follows gold (agree 1).
    Pair 2: equal gold → 1/2; agreement counts the tie half. Ceiling (3/4 + 1/2)/2 = 5/8; agreement 3/4.
    Flipping pair 1's label leaves the ceiling (it depends on gold only) and makes agreement 1/4."""
    tau = 1.5
    g1 = PreferenceGroup("p", ["a", "b"], [(0, 1)], meta={"gold": [tau * math.log(3), 0.0], "tau": tau})
    g2 = PreferenceGroup("q", ["c", "d"], [(1, 0)], meta={"gold": [0.4, 0.4], "tau": tau})
    assert noise_ceiling([g1, g2]) == pytest.approx(5 / 8)
    assert gold_agreement([g1, g2]) == pytest.approx(3 / 4)
    flipped = PreferenceGroup("p", ["a", "b"], [(1, 0)], meta=dict(g1.meta))
    assert noise_ceiling([flipped, g2]) == pytest.approx(5 / 8)
    assert gold_agreement([flipped, g2]) == pytest.approx(1 / 4)
    # Without "tau" in meta the module's TAU is used.
    g3 = PreferenceGroup("r", ["e", "f"], [(0, 1)], meta={"gold": [TAU * math.log(3), 0.0]})
    assert noise_ceiling([g3]) == pytest.approx(3 / 4)
    assert preference_probability(0.0, TAU * math.log(3)) == pytest.approx(1 / 4)


def test_expected_accuracy():
    """Gold rewards reach exactly the ceiling; reversed gold 1 - ceiling; constant rewards 1/2.
    By hand (τ = 1.5): pair 1 p = 3/4 ordered right → 3/4; pair 2 equal gold → 1/2 either way → 5/8."""
    tau = 1.5
    g1 = PreferenceGroup("p", ["a", "b"], [(0, 1)], meta={"gold": [tau * math.log(3), 0.0], "tau": tau})
    g2 = PreferenceGroup("q", ["c", "d"], [(1, 0)], meta={"gold": [0.4, 0.4], "tau": tau})
    assert expected_accuracy([g1, g2], [[1.0, 0.0], [0.0, 1.0]]) == pytest.approx(5 / 8)
    assert expected_accuracy([g1, g2], [[0.0, 1.0], [0.0, 1.0]]) == pytest.approx((1 / 4 + 1 / 2) / 2)
    groups = make_demo_groups(30, seed=9)
    gold = [g.meta["gold"] for g in groups]
    assert expected_accuracy(groups, gold) == pytest.approx(noise_ceiling(groups))
    reversed_gold = [[-x for x in g] for g in gold]
    assert expected_accuracy(groups, reversed_gold) == pytest.approx(1 - noise_ceiling(groups))
    assert expected_accuracy(groups, [[0.0] * 4 for _ in groups]) == 0.5
    with pytest.raises(ValueError, match="one list per group"):
        expected_accuracy(groups, gold[:-1])


def test_noise_ceiling_needs_gold():
    group = PreferenceGroup("p", ["a", "b"], [(0, 1)], source="mine.jsonl:7")
    with pytest.raises(ValueError, match="mine.jsonl:7.*gold"):
        noise_ceiling([group])


def test_splits_are_disjoint_and_sized(splits):
    prompts = {name: {g.prompt for g in groups} for name, groups in splits.items()}
    assert set(splits) == {"train", "eval", "test"}
    assert not prompts["train"] & prompts["eval"] and not prompts["train"] & prompts["test"]
    assert not prompts["eval"] & prompts["test"]
    topics = {name: {parse_prompt(p) for p in ps} for name, ps in prompts.items()}
    assert not topics["train"] & topics["test"] and not topics["train"] & topics["eval"]
    pool = set(demo_split_prompts()["pool"])
    assert pool and not pool & (prompts["train"] | prompts["eval"] | prompts["test"])
    for name, n_keys in SPLIT_KEYS.items():
        assert len(splits[name]) == 3 * n_keys
    assert 1500 <= sum(g.num_pairs for g in splits["train"]) <= 3000
    for g in splits["train"]:
        assert len(g.responses) == len(set(g.responses)) == 4 and len(g.pairs) == 6
        assert sorted(g.ranks) == [1.0, 2.0, 3.0, 4.0] and len(g.meta["gold"]) == 4
        assert all(g.ranks[w] < g.ranks[r] for w, r in g.pairs)
        assert g.subset == parse_prompt(g.prompt)[0]
    for name in ("eval", "test"):
        assert 0.70 <= noise_ceiling(splits[name]) <= 0.76
    assert demo_split_prompts(seed=1)["test"] != demo_split_prompts()["test"]


def test_responses_are_short(splits):
    words = [len(r.split()) for g in splits["train"] for r in g.responses]
    assert 20 <= statistics.median(words) <= 60
    assert sum(w > 100 for w in words) / len(words) < 0.03


def test_policy_styles_shift_length_and_quality():
    prompts = demo_prompts()

    def stats(style):
        rng = random.Random(5)
        pairs = [(p, sample_response(p, rng, style)) for p in prompts[::3]]
        return (
            statistics.mean(len(r.split()) for _, r in pairs),
            statistics.mean(gold_reward(p, r) for p, r in pairs),
            statistics.pstdev(gold_breakdown(p, r).on_topic for p, r in pairs),
        )

    default, verbose, concise = stats(None), stats("verbose"), stats("concise")
    assert verbose[0] > default[0] + 20 and concise[0] < default[0] - 5
    assert verbose[1] < default[1]  # drifting to verbosity costs gold reward
    assert stats(with_style(temperature=2.0))[2] > default[2]  # hotter: more varied content counts
    with pytest.raises(ValueError, match="style"):
        sample_response(PROMPT, random.Random(0), "chatty")
    with pytest.raises(ValueError, match="demo_prompts"):
        sample_response("Write me a poem", random.Random(0))


def test_jsonl_rankings_round_trip(tmp_path, splits):
    groups = splits["eval"][:10]
    path = tmp_path / "demo.jsonl"
    assert write_demo_jsonl(path, groups) == 10
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert set(rows[0]) == {"prompt", "responses", "ranking", "subset", "gold", "tau"}
    for row, g in zip(rows, groups, strict=True):
        assert row["prompt"] == g.prompt and row["responses"] == g.responses
        assert row["ranking"] == [int(r) for r in g.ranks] and row["gold"] == g.meta["gold"]

    loading = pytest.importorskip("rewardlab.data.loading")
    if not hasattr(loading, "load_preferences"):
        pytest.skip("rewardlab.data.loading has no load_preferences yet")
    loaded, summary = loading.load_preferences(str(path))
    assert summary.format == "ranking" and len(loaded) == 10
    for a, b in zip(loaded, groups, strict=True):
        assert (a.prompt, a.responses, a.ranks) == (b.prompt, b.responses, b.ranks)
        assert sorted(a.pairs) == sorted(b.pairs)
        assert a.subset == b.subset and a.meta["gold"] == b.meta["gold"]
    assert noise_ceiling(loaded) == pytest.approx(noise_ceiling(groups))


def test_jsonl_pairwise_groups_become_pair_rows(tmp_path):
    groups = make_demo_groups(5, k=3, seed=2, as_rankings=False)
    assert all(g.ranks is None and len(g.pairs) == 3 for g in groups)
    path = tmp_path / "pairs.jsonl"
    assert write_demo_jsonl(path, groups) == 15
    row = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    g = groups[0]
    w, r = g.pairs[0]
    assert (row["chosen"], row["rejected"], row["gold"]) == (
        g.responses[w],
        g.responses[r],
        [g.meta["gold"][w], g.meta["gold"][r]],
    )
