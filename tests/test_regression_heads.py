"""--objective regression: ratings train a multi-attribute head through the one loop; the combined reward
is what plain transformers reads from the saved folder; serving returns the attributes; evaluation reports
per-attribute correlation next to pairwise accuracy; bad flags fail at config build naming the flag."""

from __future__ import annotations

import json
import random

import pytest
import torch

from rewardlab.config import ConfigError, TrainConfig
from rewardlab.data.types import DataError

ATTRS = ["helpfulness", "verbosity"]
WEIGHTS = [1.0, -0.5]
PROMPT = "Human: help me with bread?\n\nAssistant:"


def _ratings_file(path, n=16, seed=0, per_attribute=True):
    """Completions whose helpfulness is the count of 'good' words and verbosity their length: learnable."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        completions = []
        for _ in range(3):
            k, extra = rng.randint(0, 3), rng.randint(0, 4)
            text = " ".join(["good"] * k + ["the"] * extra + [f"bread {i}"])
            if per_attribute:
                completions.append({"text": text, "scores": {"helpfulness": k, "verbosity": extra / 2}})
            else:
                completions.append({"text": text, "score": k})
        rows.append({"prompt": f"help me with bread number {i}?", "completions": completions})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(path)


def _cfg(tiny_backbone, tmp_path, kind="bert", **kw):
    base = dict(
        backbone=tiny_backbone(kind),
        data=_ratings_file(tmp_path / "ratings.jsonl"),
        output_dir=str(tmp_path / "out"),
        objective="regression",
        attributes=ATTRS,
        attribute_weights=WEIGHTS,
        max_length=48,
        batch_size=4,
        lr=2e-3,
        warmup_ratio=0.0,
        eval_fraction=0.25,
        epochs=2,
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize(
    ("kw", "flag"),
    [
        ({"attributes": ["a", "b"]}, "--attributes"),  # without --objective regression
        ({"bt_weight": 1.0}, "--bt-weight"),
        ({"objective": "regression", "data": "x.jsonl", "attributes": ["a", "b"], "attribute_weights": [1.0]},
         "--attribute-weights"),
        ({"objective": "regression", "data": "x.jsonl", "attributes": ["a", "a"]}, "--attributes"),
        ({"objective": "regression", "data": "x.jsonl", "bt_weight": -1.0}, "--bt-weight"),
        ({"objective": "regression", "data": "x.jsonl", "attribute_weights": [0.0]}, "--attribute-weights"),
        ({"objective": "regression"}, "--data"),
        ({"objective": "regression", "data": "x.jsonl", "format": "pairs"}, "--format"),
        ({"objective": "regression", "data": "x.jsonl", "lora_r": 4}, "--lora-r"),
    ],
)  # fmt: skip
def test_flags_are_validated_at_config_build(kw, flag):
    with pytest.raises(ConfigError, match=flag):
        TrainConfig(**kw)


def test_losses_arithmetic():
    from rewardlab.losses import attribute_mse, scaled_bt

    pred, target = torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[0.0, 2.0], [0.0, 2.0]])
    assert attribute_mse(pred, target).item() == pytest.approx((1 + 0 + 0 + 4) / 4)
    rewards = torch.tensor([1.0, 0.0, 3.0])
    pairs, groups, gaps = torch.tensor([[0, 1], [2, 1]]), torch.tensor([0, 1]), torch.tensor([2.0, 0.5])
    sp = torch.nn.functional.softplus
    expected = (2.0 * sp(torch.tensor(-1.0)) + 0.5 * sp(torch.tensor(-3.0))) / 2
    assert scaled_bt(rewards, groups, pairs, gaps).item() == pytest.approx(expected.item())


def test_ratings_rows_with_per_attribute_scores_load_and_rank_by_the_combination(tmp_path):
    from rewardlab.training.regression import RegressionObjective

    row = {"prompt": "p", "completions": [
        {"text": "a", "scores": {"helpfulness": 3, "verbosity": 4}},   # combined 3 - 2 = 1
        {"text": "b", "scores": {"helpfulness": 2, "verbosity": 0}},   # combined 2
    ]}  # fmt: skip
    f = tmp_path / "r.jsonl"
    f.write_text(json.dumps(row) + "\n")
    obj = RegressionObjective(TrainConfig(objective="regression", data=str(f), attributes=ATTRS,
                                          attribute_weights=WEIGHTS))  # fmt: skip
    (g,), _ = obj.load(str(f), None)
    assert g.meta["targets"] == [[3.0, 4.0], [2.0, 0.0]]
    assert g.pairs == [(1, 0)] and g.margins == [pytest.approx(1.0)]  # b wins by the weights, a by the mean
    bad = tmp_path / "bad.jsonl"
    row["completions"][1]["scores"] = {"helpfulness": 2}
    bad.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match=r"r?bad.jsonl:1: field 'completions\[1\].scores' has no 'verbosity'"):
        obj.load(str(bad), None)


def _plain_transformers_scores(folder, kind, prompts, responses):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    hf = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    assert hf.config.num_labels == 1
    if kind == "bert":
        batch = tok(prompts, responses, padding=True, return_tensors="pt")
    else:
        batch = tok([p + r + tok.eos_token for p, r in zip(prompts, responses, strict=True)], padding=True,
                    return_tensors="pt")  # fmt: skip
    with torch.no_grad():
        return hf(**batch).logits[:, 0].tolist()


@pytest.mark.parametrize("kind", ["bert", "llama"])
def test_trained_regression_model_parity_with_plain_transformers(tiny_backbone, tmp_path, kind):
    from safetensors.torch import load_file

    from rewardlab.model.saved import ModelCard, load_reward_model, save_reward_model
    from rewardlab.scoring.scorer import Scorer
    from rewardlab.training.run import train

    result = train(_cfg(tiny_backbone, tmp_path, kind, bt_weight=0.5))
    out = tmp_path / "out"
    card = ModelCard.load(out)
    assert card.objective == "regression" and card.attributes == ATTRS and card.attribute_weights == WEIGHTS
    assert set(result.eval.attributes) == set(ATTRS) and result.eval.pairs > 0
    # a tiny model barely moves its head in two epochs: push the attribute head off it, so a wrong fold shows
    model, encoder, card = load_reward_model(out)
    with torch.no_grad():
        model.attribute_head.weight.add_(torch.randn_like(model.attribute_head.weight))
    out = tmp_path / "moved"
    save_reward_model(model, encoder, card, out)
    scorer = Scorer.from_pretrained(out, device="cpu")
    responses = [" good good the bread", " the the the the bread", " bread"]
    ours = scorer.score([PROMPT] * 3, responses)
    rewards, values = scorer.score_attributes([PROMPT] * 3, responses)
    assert rewards == pytest.approx(ours, abs=1e-5)
    assert rewards == pytest.approx([v[0] * WEIGHTS[0] + v[1] * WEIGHTS[1] for v in values], abs=1e-5)
    theirs = _plain_transformers_scores(out, kind, [PROMPT] * 3, responses)
    assert theirs == pytest.approx(ours, abs=1e-5)
    assert scorer.score_groups([PROMPT], [responses])[0] == pytest.approx(ours, abs=1e-5)  # llama: packed
    assert max(ours) - min(ours) > 1e-3  # the combined head really distinguishes them
    if kind == "bert":  # the exported folder (vLLM: a cross-encoder text pair) keeps the combined head
        from rewardlab.integrations.export import export_model

        export_model(out, "vllm", tmp_path / "exported")
        exported = _plain_transformers_scores(tmp_path / "exported", kind, [PROMPT] * 3, responses)
        assert exported == pytest.approx(ours, abs=1e-5)
    head = load_file(str(out / "attribute_head.safetensors"))
    assert tuple(head["weight"].shape) == (2, scorer.model.attribute_head.in_features)


def test_training_learns_the_attributes(tiny_backbone, tmp_path):
    from rewardlab.training.run import train

    result = train(_cfg(tiny_backbone, tmp_path, epochs=6, eval_fraction=0.25))
    # verbosity (how many filler words) is what a tiny random BERT learns in six epochs; r starts near 0
    verbosity = result.eval.attributes["verbosity"]
    assert verbosity["pearson"] is not None and verbosity["pearson"] > 0.5, result.eval.attributes
    lines = [json.loads(x) for x in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert any("eval_helpfulness_pearson" in r for r in lines)


def test_single_score_ratings_train_a_one_attribute_head(tiny_backbone, tmp_path):
    from rewardlab.model.saved import ModelCard
    from rewardlab.training.run import train

    data = _ratings_file(tmp_path / "single.jsonl", per_attribute=False)
    train(_cfg(tiny_backbone, tmp_path, data=data, attributes=[], attribute_weights=[], epochs=1))
    card = ModelCard.load(tmp_path / "out")
    assert card.attributes == ["score"] and card.attribute_weights == [1.0]


def test_serving_returns_the_attributes_in_extra_logs(tiny_backbone, tmp_path):
    from fastapi.testclient import TestClient

    from rewardlab.scoring.scorer import Scorer
    from rewardlab.serve.app import ServeSettings, create_app
    from rewardlab.training.run import train

    train(_cfg(tiny_backbone, tmp_path, epochs=1))
    scorer = Scorer.from_pretrained(tmp_path / "out", device="cpu")
    queries = ["good good bread", "the the bread"]
    with TestClient(create_app(scorer, ServeSettings())) as client:
        r = client.post("/get_reward", json={"query": queries})
        assert r.status_code == 200, r.text
        body = r.json()
    rewards, values = scorer.score_attributes(["", ""], queries)
    assert body["rewards"] == pytest.approx(rewards, abs=1e-5)
    for a, name in enumerate(ATTRS):
        assert body["extra_logs"][name] == pytest.approx([v[a] for v in values], abs=1e-5)


def test_eval_command_reports_attribute_correlations(tiny_backbone, tmp_path, capsys):
    from rewardlab.cli import main
    from rewardlab.training.run import train

    train(_cfg(tiny_backbone, tmp_path, epochs=1))
    test = _ratings_file(tmp_path / "test.jsonl", n=6, seed=1)
    assert main(["eval", str(tmp_path / "out"), test, "--json", "--device", "cpu", "--bootstrap", "10"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["attributes"]) == set(ATTRS) and "spearman" in result["attributes"]["verbosity"]
    assert result["pairs"] > 0 and 0 <= result["accuracy"] <= 1


def test_demo_ratings_attributes_sum_to_gold_and_noise_matches_the_annotators():
    import itertools

    from rewardlab.demo.gold import gold_reward
    from rewardlab.demo.ratings import attribute_scores, demo_ratings_rows

    rows = demo_ratings_rows("eval", attributes=True)
    for row in rows[:10]:
        for c in row["completions"]:
            parts = attribute_scores(row["prompt"], c["text"])
            assert sum(parts.values()) == pytest.approx(gold_reward(row["prompt"], c["text"]), abs=1e-9)
    clean = demo_ratings_rows("eval", noise=0.0)
    assert all([c["score"] for c in r["completions"]] == [round(g, 3) for g in r["gold"]] for r in clean)
    noisy = demo_ratings_rows("train")
    agree = total = 0
    for r in noisy:
        s, g = [c["score"] for c in r["completions"]], r["gold"]
        for i, j in itertools.combinations(range(len(s)), 2):
            if g[i] != g[j]:
                total += 1
                agree += (s[i] > s[j]) == (g[i] > g[j])
    assert 0.68 < agree / total < 0.80  # the ranking annotators agree with gold on about 72%
