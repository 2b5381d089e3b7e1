"""Ensemble rules on hand-computed inputs, the ensemble folder round trip, and member training."""

from __future__ import annotations

import json

import pytest

from rewardlab.scoring.ensemble import EnsembleCard, EnsembleScorer, combine, is_ensemble, load_scorer
from rewardlab.training.ensemble import bootstrap_rows, train_ensemble

MEMBERS = [[1.0, 2.0], [3.0, 0.0], [2.0, 4.0]]


def test_mean_min_uwo_by_hand():
    assert combine(MEMBERS, "mean") == pytest.approx([2.0, 2.0])
    assert combine(MEMBERS, "min") == pytest.approx([1.0, 0.0])
    # column 0: 1, 3, 2 -> mean 2, population variance (1 + 1 + 0) / 3 = 2/3
    # column 1: 2, 0, 4 -> mean 2, population variance (0 + 4 + 4) / 3 = 8/3
    assert combine(MEMBERS, "uwo", lam=0.5) == pytest.approx([2 - 1 / 3, 2 - 4 / 3])
    assert combine(MEMBERS, "uwo", lam=0.0) == pytest.approx(combine(MEMBERS, "mean"))
    with pytest.raises(ValueError, match="not one of"):
        combine(MEMBERS, "max")


def test_uwo_prefers_the_response_members_agree_on():
    # same mean (2), but members disagree about response 1: uwo and min rank response 0 first
    members = [[2.0, 0.0], [2.0, 4.0]]
    assert combine(members, "mean") == [2.0, 2.0]
    assert combine(members, "uwo", 1.0) == pytest.approx([2.0, -2.0])
    assert combine(members, "min") == [2.0, 0.0]


def test_bootstrap_rows_resample_with_tags():
    lines = [json.dumps({"prompt": f"p{i}", "chosen": "a", "rejected": "b"}) for i in range(20)]
    a, b = bootstrap_rows(lines, seed=3), bootstrap_rows(lines, seed=3)
    assert a == b and len(a) == 20
    rows = [json.loads(x) for x in a]
    assert [r["bootstrap_draw"] for r in rows] == list(range(20))
    prompts = [r["prompt"] for r in rows]
    assert set(prompts) <= {f"p{i}" for i in range(20)}
    assert len(set(prompts)) < 20  # with replacement: P(no repeat in 20 draws) = 20!/20^20 ~ 2e-8
    assert bootstrap_rows(lines, seed=4) != a


def _save_member(tiny_backbone, folder, seed, mean, std):
    import torch

    from rewardlab.model.build import build_reward_model
    from rewardlab.model.saved import save_reward_model

    torch.manual_seed(seed)
    model, encoder, card = build_reward_model(tiny_backbone("bert"), max_length=64)
    card.reward_mean, card.reward_std = mean, std
    save_reward_model(model, encoder, card, folder)


def test_ensemble_folder_scores_like_its_members(tiny_backbone, tmp_path):
    from rewardlab.scoring.scorer import Scorer

    _save_member(tiny_backbone, tmp_path / "ens" / "member-0", 0, 0.5, 2.0)
    _save_member(tiny_backbone, tmp_path / "ens" / "member-1", 1, -1.0, 0.5)
    EnsembleCard(["member-0", "member-1"], rule="uwo", lam=0.7).save(tmp_path / "ens")
    assert is_ensemble(tmp_path / "ens") and not is_ensemble(tmp_path / "ens" / "member-0")

    prompts = ["help me with bread", "explain python code", "a question"]
    responses = ["here is good help", "no", "thanks for the question, the answer is 4"]
    ens = load_scorer(tmp_path / "ens", device="cpu")
    assert isinstance(ens, EnsembleScorer)
    r0 = Scorer.from_pretrained(tmp_path / "ens" / "member-0", device="cpu").score(prompts, responses)
    r1 = Scorer.from_pretrained(tmp_path / "ens" / "member-1", device="cpu").score(prompts, responses)
    z0 = [(r - 0.5) / 2.0 for r in r0]  # each member standardised by its own card
    z1 = [(r + 1.0) / 0.5 for r in r1]
    assert ens.score_members(prompts, responses) == [pytest.approx(z0), pytest.approx(z1)]
    want = [(a + b) / 2 - 0.7 * ((a - b) / 2) ** 2 for a, b in zip(z0, z1, strict=True)]
    assert ens.score(prompts, responses) == pytest.approx(want)
    want_min = [min(a, b) for a, b in zip(z0, z1, strict=True)]
    assert ens.with_rule("min").score(prompts, responses) == pytest.approx(want_min)
    assert isinstance(load_scorer(tmp_path / "ens" / "member-0", device="cpu"), Scorer)


def test_ensemble_card_errors_name_the_fix(tmp_path):
    (tmp_path / "ensemble.json").write_text(json.dumps({"members": ["m"], "rule": "median"}))
    with pytest.raises(ValueError, match="rule 'median'"):
        EnsembleCard.load(tmp_path)
    EnsembleCard(["missing"]).save(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing"):
        EnsembleScorer.from_pretrained(tmp_path)


def _pairs(path, n):
    topics = ["bread", "cake", "python", "code", "book", "recipe"]
    rows = [
        {
            "prompt": f"help me with {topics[i % 6]} number {i}?",
            "chosen": " thanks, here is good help.",
            "rejected": " no.",
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_train_ensemble_members_differ(tiny_backbone, tmp_path, precision):
    from safetensors.torch import load_file

    from rewardlab.config import TrainConfig

    cfg = TrainConfig(
        backbone=tiny_backbone("bert"),
        data=_pairs(tmp_path / "train.jsonl", 8),
        eval_data=_pairs(tmp_path / "eval.jsonl", 4),
        output_dir=str(tmp_path / "ens"),
        max_length=32,
        batch_size=4,
        max_steps=2,
        lr=1e-3,
        warmup_ratio=0.0,
        mixed_precision="auto",
        length_grouped=False,
    )
    result = train_ensemble(cfg, k=2, how="both", rule="min")
    card = EnsembleCard.load(tmp_path / "ens")
    assert card.members == ["member-0", "member-1"] and card.seeds == [0, 1] and card.rule == "min"
    boot = (tmp_path / "ens" / "data" / "train-bootstrap-1.jsonl").read_text().splitlines()
    assert len(boot) == 8 and all("bootstrap_draw" in json.loads(line) for line in boot)
    member_cfg = json.loads((tmp_path / "ens" / "member-1" / "train_config.json").read_text())
    assert member_cfg["data"].endswith("train-bootstrap-1.jsonl") and member_cfg["seed"] == 1
    w0 = load_file(str(tmp_path / "ens" / "member-0" / "model.safetensors"))
    w1 = load_file(str(tmp_path / "ens" / "member-1" / "model.safetensors"))
    assert any(not (w0[k] == w1[k]).all() for k in w0)
    assert len(result.members) == 2
    with pytest.raises(ValueError, match="--eval-data"):
        train_ensemble(TrainConfig(data="x.jsonl", output_dir=str(tmp_path / "e2")), k=2)


def test_ensemble_train_cli(tiny_backbone, tmp_path):
    from rewardlab.cli import main

    out = tmp_path / "ens"
    args = [
        "ensemble",
        "train",
        "--k",
        "2",
        "--how",
        "seeds",
        "--rule",
        "uwo",
        "--lam",
        "0.3",
        "--backbone",
        tiny_backbone("bert"),
        "--data",
        _pairs(tmp_path / "t.jsonl", 8),
        "--eval-data",
        _pairs(tmp_path / "e.jsonl", 4),
        "--output-dir",
        str(out),
        "--max-steps",
        "1",
        "--batch-size",
        "4",
        "--max-length",
        "32",
        "--mixed-precision",
        "no",
    ]
    assert main(args) == 0
    card = EnsembleCard.load(out)
    assert (card.rule, card.lam, card.how, card.seeds) == ("uwo", 0.3, "seeds", [0, 1])
    assert isinstance(load_scorer(out, device="cpu"), EnsembleScorer)
