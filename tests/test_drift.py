"""Drift statistics on synthetic embeddings with a known shift (and none), hand-derived values, the
verdict, selection in the annotation import format, `Scorer.embed`, and a tiny `rewardlab drift` run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rewardlab.data.types import DataError
from rewardlab.drift.detect import Sample, Thresholds, read_samples, select, verdict
from rewardlab.drift.signals import (
    Disagreement,
    Gaussian,
    ScoreDrift,
    classifier_auroc,
    disagreement,
    ks_2samp,
    ood_drift,
    score_drift,
)
from rewardlab.scoring.metrics import auroc


def _gauss(seed: int, n: int = 400, d: int = 16, shift: float = 0.0, dims: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d))
    x[:, :dims] += shift
    return x


def test_ks_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=300), rng.normal(0.3, 1, size=200)
    d, p = ks_2samp(a, b)
    ref = stats.ks_2samp(a, b, method="asymp")
    assert d == pytest.approx(ref.statistic, abs=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=0.1)
    assert ks_2samp([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == (0.0, 1.0)


def test_score_drift_hand_values():
    ref = [0.0, 1.0, 2.0, 3.0]  # mean 1.5, sample std sqrt(5/3)
    std = math.sqrt(5 / 3)
    s = score_drift(ref, [x + std for x in ref])
    assert s.ref_std == pytest.approx(std)
    assert s.mean_shift == pytest.approx(1.0)
    assert s.ks_stat == pytest.approx(0.5)  # the ECDFs differ by 2 of 4 steps at x = 1.29 .. 2
    assert score_drift(ref, ref).mean_shift == 0.0


def test_mahalanobis_hand_computed():
    x = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])  # mean 0, cov diag(2/3, 8/3)
    g = Gaussian.fit(x, shrinkage=0.0)
    assert g.mahalanobis(np.array([[1.0, 2.0]]))[0] == pytest.approx(math.sqrt(1.5 + 1.5))
    # shrinkage 0.5 toward (trace/2)·I = 5/3: cov diag(7/6, 13/6)
    g = Gaussian.fit(x, shrinkage=0.5)
    assert g.mahalanobis(np.array([[1.0, 2.0]]))[0] == pytest.approx(math.sqrt(6 / 7 + 24 / 13))


def test_ood_threshold_holds_its_false_positive_rate_and_catches_a_shift():
    fractions = [ood_drift(_gauss(s), _gauss(100 + s), fpr=0.05, seed=s).cur_fraction for s in range(20)]
    assert 0.03 <= float(np.mean(fractions)) <= 0.07  # a fresh sample of the reference: ~fpr beyond
    shifted = ood_drift(_gauss(0), _gauss(1, shift=3.0, dims=4), fpr=0.05)
    assert shifted.cur_fraction > 0.9
    assert shifted.n_calibrate == 120 and shifted.n_fit == 280


def test_auroc_hand_value_with_tie():
    # pairs (pos, neg): 0.9>0.5, 0.9>0.1, 0.5=0.5 (half), 0.5>0.1 -> 3.5 / 4
    assert auroc([0.9, 0.5, 0.5, 0.1], [True, True, False, False]) == pytest.approx(0.875)


def test_classifier_auroc_half_without_shift_high_with_shift():
    none = [classifier_auroc(_gauss(s, 200), _gauss(50 + s, 200), seed=s) for s in range(3)]
    assert all(0.38 < a < 0.62 for a in none)
    assert abs(float(np.mean(none)) - 0.5) < 0.06
    # a mean shift of 1.5 in one coordinate: the best possible AUROC is Φ(1.5 / √2) = 0.856
    best = 0.5 * (1 + math.erf(1.5 / 2))
    assert best - 0.07 < classifier_auroc(_gauss(0, 200), _gauss(1, 200, shift=1.5, dims=1)) <= best + 0.03


def test_disagreement_ratio():
    d = disagreement([[0.0, 0.0], [2.0, 2.0]], [[0.0, 0.0], [4.0, 6.0]])  # stds 1,1 vs 2,3
    assert (d.ref_mean_std, d.cur_mean_std, d.ratio) == (1.0, 2.5, 2.5)
    assert d.cur_std == [2.0, 3.0]


def _ood(frac: float) -> object:
    return ood_drift(_gauss(0, 40, 2), _gauss(1, 10, 2), fpr=0.05).__class__(0.05, 1.0, frac, 28, 12, [], [])


def test_verdict_levels_and_configurable_thresholds():
    calm = ScoreDrift(0, 1, 0.1, 1, 0.1, 0.05, 0.5)
    assert verdict(Thresholds(), calm, _ood(0.06), 0.52, None)[0] == "fine"
    v, reasons = verdict(Thresholds(), calm, _ood(0.06), 0.65, None)
    assert v == "watch" and "AUROC 0.650" in reasons[0]
    assert verdict(Thresholds(), calm, _ood(0.40), 0.52, None)[0] == "retrain"
    assert verdict(Thresholds(retrain_ood_excess=0.5), calm, _ood(0.40), 0.52, None)[0] == "watch"
    dis = Disagreement(1.0, 2.5, 2.5, [])
    assert verdict(Thresholds(), calm, _ood(0.06), 0.52, dis)[0] == "retrain"
    ks = ScoreDrift(0, 1, 0.1, 1, 0.1, 0.2, 1e-4)
    assert verdict(Thresholds(), ks, _ood(0.06), 0.52, None)[0] == "watch"


def test_select_groups_by_prompt_in_import_format():
    from rewardlab.drift.detect import DriftResult

    cur = [Sample("p1", "a"), Sample("p1", "b"), Sample("p2", "c"), Sample("p2", "d"), Sample("p3", "e")]
    ood = _ood(0.0)
    ood.cur_scores = [1.0, 5.0, 3.0, 2.0, 9.0]  # p3 is most novel but has one response: cannot be ranked
    r = DriftResult(
        "m", "r", "c", 5, 5, Thresholds(), score_drift([0, 1], [0, 1]), ood, 0.5, None, "fine", [], [], []
    )
    rows = select(r, cur, 1)
    assert rows == [{"prompt": "p1", "responses": ["a", "b"], "drift_score": 5.0}]
    assert [row["prompt"] for row in select(r, cur, 5)] == ["p1", "p2"]
    with pytest.raises(ValueError, match="ensemble"):
        select(r, cur, 1, by="disagreement")


def test_read_samples_formats_and_errors(tmp_path):
    f = tmp_path / "x.jsonl"
    rows = [
        {"prompt": "a", "response": "r1"},
        {"prompt": "b", "responses": ["r2", "r3"]},
        {"prompt": "c", "candidates": [{"text": "r4", "score": 1}]},
        {"prompt": "d", "chosen": "r5", "rejected": "r6"},
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert [(s.prompt, s.response) for s in read_samples(f)] == [
        ("a", "r1"),
        ("b", "r2"),
        ("b", "r3"),
        ("c", "r4"),
        ("d", "r5"),
        ("d", "r6"),
    ]
    f.write_text('{"prompt": "a", "response": "r"}\n{"prompt": "b"}\n')
    with pytest.raises(DataError, match=r"x\.jsonl:2"):
        read_samples(f)


def test_embed_is_what_the_head_reads(tiny_backbone):
    import torch

    from rewardlab.drift.detect import rewards_from_embeddings
    from rewardlab.model.build import build_reward_model
    from rewardlab.model.reward_model import score_head
    from rewardlab.scoring.scorer import Scorer

    for kind, pooling in (("gpt2", "auto"), ("bert", "auto"), ("llama", "mean")):
        model, enc, card = build_reward_model(tiny_backbone(kind), pooling=pooling)
        scorer = Scorer(model, enc, card, "cpu")
        prompts, responses = ["hello world", "a"], ["the answer is good for you", "no"]
        emb = torch.tensor(scorer.embed(prompts, responses))
        assert emb.shape == (2, model.config.hidden_size)
        head = score_head(model.hf_model)(emb)[:, 0].tolist()
        assert head == pytest.approx(scorer.score(prompts, responses), abs=1e-5)
        once = rewards_from_embeddings(scorer, emb.numpy().astype(float), prompts, responses)
        assert once == pytest.approx(scorer.score(prompts, responses), abs=1e-5)


def test_cli_end_to_end(tiny_backbone, tmp_path):
    from rewardlab.cli import main
    from rewardlab.model.build import build_reward_model
    from rewardlab.model.saved import save_reward_model

    model, enc, card = build_reward_model(tiny_backbone("gpt2"))
    save_reward_model(model, enc, card, tmp_path / "rm")
    ref, cur = tmp_path / "ref.jsonl", tmp_path / "cur.jsonl"
    words = "the a good answer help explain recipe bread cake python code book".split()
    rng = np.random.default_rng(0)
    with open(ref, "w") as f:
        for i in range(40):
            f.write(
                json.dumps({"prompt": f"question {i}", "response": " ".join(rng.choice(words, 6))}) + "\n"
            )
    with open(cur, "w") as f:
        for i in range(15):
            f.write(
                json.dumps({"prompt": f"ask {i}", "responses": ["sorry " * 20, "cannot please " * 15]}) + "\n"
            )
    out = tmp_path / "drift"
    code = main(
        [
            "drift",
            str(tmp_path / "rm"),
            "--reference",
            str(ref),
            "--current",
            str(cur),
            "--select",
            "4",
            "-o",
            str(out),
            "--device",
            "cpu",
        ]
    )
    report = json.loads((out / "report.json").read_text())
    assert code == (3 if report["verdict"] == "retrain" else 0)
    assert report["n_ref"] == 40 and report["n_cur"] == 30
    assert report["auroc"] > 0.9  # long repeated apologies vs short word salad: trivially separable
    assert "Drift:" in (out / "report.md").read_text() and (out / "report.html").exists()
    rows = [json.loads(line) for line in (out / "select.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(len(r["responses"]) == 2 and r["prompt"].startswith("ask") for r in rows)


def test_replay_mix_counts():
    from rewardlab.training.retrain import replay_mix

    new, old = [f"n{i}" for i in range(5)], [f"o{i}" for i in range(10)]
    mixed = replay_mix(new, old, 0.3, seed=1)
    assert len(mixed) == 8 and set(new) <= set(mixed) and sum(m.startswith("o") for m in mixed) == 3
    assert mixed == replay_mix(new, old, 0.3, seed=1)
    assert sorted(replay_mix(new, old, 0.0)) == sorted(new)
    with pytest.raises(ValueError, match="--replay"):
        replay_mix(new, old, 1.5)


def test_retrain_continues_from_the_saved_model(tiny_backbone, tmp_path, precision):
    from rewardlab.model.build import build_reward_model
    from rewardlab.model.saved import save_reward_model
    from rewardlab.scoring.scorer import Scorer
    from rewardlab.training.retrain import RetrainConfig, retrain

    model, enc, card = build_reward_model(tiny_backbone("gpt2"))
    save_reward_model(model, enc, card, tmp_path / "rm")

    def write(path, start, n):
        with open(path, "w") as f:
            for i in range(start, start + n):
                f.write(
                    json.dumps({"prompt": f"question {i}", "chosen": "good answer help", "rejected": "no"})
                    + "\n"
                )

    write(tmp_path / "old.jsonl", 0, 20)
    write(tmp_path / "new.jsonl", 100, 10)
    write(tmp_path / "test.jsonl", 200, 5)
    cfg = RetrainConfig(
        model=str(tmp_path / "rm"),
        new_data=str(tmp_path / "new.jsonl"),
        old_data=str(tmp_path / "old.jsonl"),
        output_dir=str(tmp_path / "re"),
        replay=0.5,
        old_test=str(tmp_path / "test.jsonl"),
        new_test=str(tmp_path / "test.jsonl"),
        lr=0.0,
        max_steps=1,
        batch_size=4,
    )
    result = retrain(cfg)
    assert (result.new_rows, result.replayed_rows) == (10, 10)
    # lr 0: the retrained model is the saved one, head included (a fresh head would score differently)
    before = Scorer.from_pretrained(tmp_path / "rm", device="cpu").score(["q"], ["good answer"])
    after = Scorer.from_pretrained(tmp_path / "re", device="cpu").score(["q"], ["good answer"])
    assert after == pytest.approx(before, abs=1e-5)
    assert result.before["old"]["accuracy"] == pytest.approx(result.after["old"]["accuracy"])
    assert json.loads((tmp_path / "re" / "retrain.json").read_text())["replayed_rows"] == 10
    assert (tmp_path / "re" / "retrain.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _prompted(seed: int, n_prompts: int = 100, per: int = 2, d: int = 16) -> tuple[np.ndarray, list[str]]:
    """Responses of one prompt share a centre: siblings are near-duplicates, as with real policies."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_prompts, d))
    x = np.repeat(centres, per, axis=0) + 0.1 * rng.normal(size=(n_prompts * per, d))
    return x, [f"{seed}:{i}" for i in range(n_prompts) for _ in range(per)]


def test_grouped_splits_keep_the_null_honest_with_sibling_responses():
    fractions = []
    for s in range(10):
        (ref, rg), (cur, _) = _prompted(s), _prompted(100 + s)
        fractions.append(ood_drift(ref, cur, fpr=0.05, seed=s, ref_groups=rg).cur_fraction)
    assert 0.02 <= float(np.mean(fractions)) <= 0.09
    (ref, rg), (cur, cg) = _prompted(0), _prompted(1)
    assert 0.38 < classifier_auroc(ref, cur, groups=rg + cg) < 0.62
    with pytest.raises(ValueError, match="group labels"):
        classifier_auroc(ref, cur, groups=rg)


def test_drift_with_an_ensemble_reports_disagreement(tiny_backbone, tmp_path):
    import torch

    from rewardlab.drift.detect import drift
    from rewardlab.model.build import build_reward_model
    from rewardlab.model.saved import save_reward_model
    from rewardlab.scoring.ensemble import EnsembleCard, EnsembleScorer

    for i in range(2):
        torch.manual_seed(i)  # members differ in their fresh heads
        model, enc, card = build_reward_model(tiny_backbone("gpt2"))
        save_reward_model(model, enc, card, tmp_path / "ens" / f"member-{i}")
    EnsembleCard(members=["member-0", "member-1"], normalize=False).save(tmp_path / "ens")
    ens = EnsembleScorer.from_pretrained(tmp_path / "ens", device="cpu")
    ref = [Sample(f"q{i}", f"the good answer {i % 7}") for i in range(30)]
    cur = [Sample(f"p{i // 2}", "sorry " * (3 + i)) for i in range(20)]
    r = drift(ens, ref, cur, seed=0)
    members = np.asarray(ens.score_members([s.prompt for s in cur], [s.response for s in cur]))
    assert r.disagreement is not None
    assert r.disagreement.cur_std == pytest.approx(members.std(0).tolist(), abs=1e-6)
    assert r.cur_rewards == pytest.approx(members.mean(0).tolist(), abs=1e-6)  # the "mean" rule
    rows = select(r, cur, 3, by="mix")
    assert len(rows) == 3 and all(len(row["responses"]) == 2 for row in rows)
