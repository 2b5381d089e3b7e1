"""PRM mechanics: the step marker, truncation that keeps labels with their steps, losses, aggregation,
step metrics and best-of-N selection, with hand-derived values."""

from __future__ import annotations

import math

import pytest
import torch

from rewardlab.data.step_encoding import STEP_MARKER, collate_steps, encode_steps, join_steps
from rewardlab.data.steps import StepExample
from rewardlab.losses import outcome_bce, step_bce
from rewardlab.model.build import build_reward_model
from rewardlab.prm.best_of_n import Pool, pick, pick_expected, selection_accuracy
from rewardlab.prm.evaluate import aggregate, evaluate_step_scores
from rewardlab.scoring.metrics import auroc
from rewardlab.scoring.scorer import Scorer

PROMPT = "What is the answer to the question?"
STEPS = ["the answer is good", "no sorry", "the question is good", "thanks for the help"]


def _prm(tiny_backbone, kind, **kw):
    torch.manual_seed(0)
    return build_reward_model(
        tiny_backbone(kind), max_length=kw.pop("max_length", 96), extra_tokens=[STEP_MARKER], **kw
    )


def test_aggregations_by_hand():
    ps = [0.9, 0.5, 0.8]
    assert aggregate(ps, "product") == pytest.approx(0.36)
    assert aggregate(ps, "min") == 0.5
    assert aggregate(ps, "last") == 0.8
    assert aggregate(ps, "mean") == pytest.approx(2.2 / 3)
    assert aggregate([0.9, math.nan, 0.5], "product") == pytest.approx(0.45)  # a truncated step is skipped
    with pytest.raises(ValueError, match="aggregation must be one of"):
        aggregate(ps, "max")


def test_auroc_by_hand():
    assert auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == pytest.approx(0.75)
    assert auroc([0.5, 0.5], [True, False]) == 0.5  # ties count half
    assert auroc([0.2, 0.3], [True, True]) is None


def test_step_bce_keeps_soft_labels():
    """logit ln 3 → p = 0.75. Label 0.7: -(0.7 ln 0.75 + 0.3 ln 0.25) = 0.617266; label 1: -ln 0.75 = 0.287682

    With the 0.7 cast to 0 (TRL's PRMTrainer) the first term would be -ln 0.25 = 1.386294.
    """
    logits = torch.tensor([[0.0, math.log(3), 0.0], [0.0, 0.0, math.log(3)]])
    batch = {
        "step_rows": torch.tensor([0, 1]),
        "step_cols": torch.tensor([1, 2]),
        "step_labels": torch.tensor([0.7, 1.0]),
    }
    loss, acc = step_bce(logits, batch)
    assert loss.item() == pytest.approx((0.617266 + 0.287682) / 2, abs=1e-5)
    assert acc.item() == 1.0
    rewards = torch.tensor([math.log(3), 0.0, 5.0])
    loss, _ = outcome_bce(rewards, {"outcomes": torch.tensor([0.7, math.nan, 1.0])})
    assert loss.item() == pytest.approx((0.617266 + math.log1p(math.exp(-5))) / 2, abs=1e-5)


def test_step_metrics_by_hand():
    examples = [
        StepExample("q", ["a", "b", "c"], [1.0, 0.0, 0.0]),
        StepExample("q", ["a", "b", "c"], [1.0, 1.0, 0.0]),
        StepExample("q", ["a", "b"], [1.0, 0.0]),
        StepExample("q", ["a"], [1.0]),
    ]
    scores = [[0.9, 0.2, 0.3], [0.9, 0.4, 0.45], [0.3, 0.2], [0.8]]
    r = evaluate_step_scores(examples, scores, [aggregate(s) for s in scores])
    # lowest step == first error: yes, no (1 vs 2), yes; first step < 0.5 == first error: yes, no, no (0 vs 1)
    assert r.first_error_accuracy == pytest.approx(2 / 3)
    assert r.first_below_half_accuracy == pytest.approx(1 / 3)
    # 9 labelled steps; >= 0.5 agrees with the label on: .9 .2 .3 | .9 .45 | .2 | .8 = 7, wrong on .4 and .3
    assert r.step_accuracy == pytest.approx(7 / 9)
    assert r.labelled_steps == 9 and r.solutions == 4


@pytest.mark.parametrize("kind", ["bert", "gpt2", "qwen2"])
def test_one_marker_per_step_in_the_response_only(tiny_backbone, kind):
    model, encoder, _ = _prm(tiny_backbone, kind)
    item = encode_steps(encoder, PROMPT, STEPS, [1.0, 0.0, 0.0, 0.0])
    mid = encoder.tokenizer.convert_tokens_to_ids(STEP_MARKER)
    ids = item.encoded.input_ids
    assert [i for i, t in enumerate(ids) if t == mid] == item.positions
    assert len(item.positions) == 4 and item.steps == [0, 1, 2, 3]
    assert all(item.encoded.response_start <= p < item.encoded.response_end for p in item.positions)
    # the marker ends each step: decoding the text before marker j gives steps 0..j
    text = encoder.tokenizer.decode(ids[item.encoded.response_start : item.positions[1]])
    assert "sorry" in text and "question" not in text
    with pytest.raises(ValueError, match="contains the step marker"):
        encode_steps(encoder, PROMPT, ["a" + STEP_MARKER])


@pytest.mark.parametrize("truncation", ["left", "right"])
def test_truncation_keeps_labels_with_their_own_steps(tiny_backbone, truncation):
    model, encoder, _ = _prm(tiny_backbone, "gpt2", max_length=40, truncation=truncation)
    steps = [f"step {w} is good" for w in ("one", "two", "three", "four", "five", "six", "seven", "eight")]
    labels = [i / 10 for i in range(8)]
    item = encode_steps(encoder, PROMPT, steps, labels)
    assert item.encoded.truncated and 0 < len(item.positions) < 8
    kept = item.steps
    if truncation == "left":
        assert kept == list(range(8 - len(kept), 8))  # the latest steps survive
        assert item.labels[0] is None  # the first surviving step lost the start of its text
        assert item.labels[1:] == [labels[j] for j in kept[1:]]
    else:
        assert kept == list(range(len(kept)))  # the earliest steps survive, each whole
        assert item.labels == [labels[j] for j in kept]


def test_per_token_head_matches_the_pooled_reward(tiny_backbone):
    for kind, read_at in (("bert", "first"), ("llama", "last")):
        model, encoder, _ = _prm(tiny_backbone, kind)
        model.eval()
        items = [encode_steps(encoder, PROMPT, STEPS[: n + 1]) for n in range(3)]
        batch = collate_steps(items, encoder.tokenizer.pad_token_id)
        with torch.no_grad():
            pooled = model(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
            tokens = model(
                batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"), per_token=True
            )
        lengths = batch["attention_mask"].sum(1)
        at = torch.zeros_like(lengths) if read_at == "first" else lengths - 1
        assert torch.allclose(tokens[torch.arange(3), at], pooled, atol=1e-5), kind


@pytest.mark.parametrize("kind", ["bert", "qwen2"])
def test_score_steps_reads_the_training_positions_and_is_batch_invariant(tiny_backbone, kind):
    model, encoder, card = _prm(tiny_backbone, kind)
    card.step_marker = STEP_MARKER
    scorer = Scorer(model, encoder, card)
    solutions = [STEPS, STEPS[:2], STEPS[1:]]
    together = scorer.score_steps([PROMPT] * 3, solutions)
    alone = [scorer.score_steps([PROMPT], [s])[0] for s in solutions]
    assert [len(s) for s in together] == [4, 2, 3]
    for a, b in zip(together, alone, strict=True):
        assert a == pytest.approx(b, abs=1e-5)
    # the same logits the training batch reads
    items = [encode_steps(encoder, PROMPT, s, [1.0] * len(s)) for s in solutions]
    batch = collate_steps(items, encoder.tokenizer.pad_token_id)
    model.eval()
    with torch.no_grad():
        tok = model(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"), per_token=True)
    trained_view = torch.sigmoid(tok[batch["step_rows"], batch["step_cols"]]).tolist()
    assert trained_view == pytest.approx([p for s in together for p in s], abs=1e-5)


def test_orm_step_scores_are_prefix_scores(tiny_backbone):
    torch.manual_seed(0)
    model, encoder, card = build_reward_model(tiny_backbone("llama"), max_length=96)
    scorer = Scorer(model, encoder, card)
    (got,) = scorer.score_steps([PROMPT], [STEPS[:3]])
    prefixes = ["\n".join(STEPS[: i + 1]) for i in range(3)]
    want = [1 / (1 + math.exp(-r)) for r in scorer.score([PROMPT] * 3, prefixes)]
    assert got == pytest.approx(want, abs=1e-6)


def _pool():
    return Pool(
        "q",
        [["a"], ["b"], ["b"], ["c"]],
        answers=["1", "2", "2", "3"],
        gold="2",
        scores={
            "orm": [1.0, 3.0, 3.0, 0.0],
            "prm_product": [0.9, 0.1, 0.1, 0.9],
            "prm_min": [0.9, 0.9, 0.2, 0.1],
        },
    )


def test_best_of_n_selection_by_hand():
    p = _pool()
    assert pick_expected(p, range(4), "orm") == 1.0  # both top scores are correct
    assert pick_expected(p, range(4), "prm_product") == 0.0  # ties between two wrong answers
    assert pick_expected(p, range(4), "prm_min") == 0.5  # a tie between a wrong and a right candidate
    assert pick_expected(p, range(4), "majority") == 1.0  # "2" has two votes
    assert pick_expected(p, [0, 1], "majority") == 0.5  # one vote each: a coin flip
    # weighted by PRM product: "1" 0.9, "2" 0.2, "3" 0.9 → a tie of two wrong answers
    assert pick_expected(p, range(4), "weighted_prm_product") == 0.0
    assert pick_expected(p, range(4), "random") == 0.5
    assert pick(p, "orm") == 1 and pick(p, "majority") == 1


def test_selection_accuracy_over_subsets():
    pools = [_pool()]
    pools[0].scores.update({k: [0.5] * 4 for k in ("prm_last", "prm_mean")})
    points = {(pt.method, pt.n): pt.accuracy for pt in selection_accuracy(pools, [4], draws=8)}
    assert points["orm", 4] == 1.0 and points["random", 4] == 0.5
    assert points["prm_last", 4] == 0.5  # all tied: the random baseline, not the first index


def test_join_steps_is_the_documented_layout():
    assert join_steps(["a ", " b"]) == f"a{STEP_MARKER}\nb{STEP_MARKER}"
