"""PRMs and ORMs train through the one training loop, save a standard folder, and read back the same."""

from __future__ import annotations

import json
import random

import pytest
import torch

from rewardlab.config import TrainConfig
from rewardlab.data.step_encoding import STEP_MARKER, collate_steps, encode_step_examples, join_steps
from rewardlab.data.steps import load_steps
from rewardlab.scoring.scorer import Scorer
from rewardlab.training.run import train

GOOD = ["the answer is good", "thanks for the help", "the question is good", "you can see the book"]
BAD = ["no sorry cannot", "sorry no", "cannot help no"]


def _step_file(path, n=24, seed=0):
    """Solutions whose first 'sorry/no' step is wrong, and every step after it (the PRM labelling rule)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        steps, labels, wrong = [], [], False
        for _ in range(3):
            bad = rng.random() < 0.35
            steps.append(rng.choice(BAD if bad else GOOD))
            wrong = wrong or bad
            labels.append(0.0 if wrong else 1.0)
        rows.append(
            {
                "prompt": f"help me with the code number {i}?",
                "completions": steps,
                "labels": labels,
                "outcome": 0.0 if wrong else 1.0,
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _cfg(tiny_backbone, tmp_path, kind, objective, **kw):
    base = dict(
        backbone=tiny_backbone(kind),
        data=_step_file(tmp_path / "steps.jsonl"),
        output_dir=str(tmp_path / objective),
        objective=objective,
        max_length=64,
        batch_size=4,
        epochs=4,
        lr=2e-3,
        warmup_ratio=0.0,
        mixed_precision="auto",  # follows the `precision` fixture (or the pinned fp32)
        eval_fraction=0.0,
        length_grouped=False,
    )
    base.update(kw)
    return TrainConfig(**base)


def _losses(folder):
    return [
        json.loads(line)["loss"]
        for line in (folder / "metrics.jsonl").read_text().splitlines()
        if '"loss"' in line
    ]


@pytest.mark.parametrize("kind", ["bert", "llama"])
def test_prm_trains_saves_and_reads_steps_like_plain_transformers(tiny_backbone, tmp_path, kind, precision):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    cfg = _cfg(
        tiny_backbone, tmp_path, kind, "steps", eval_data=_step_file(tmp_path / "eval.jsonl", 8, seed=1)
    )
    result = train(cfg)
    out = tmp_path / "steps"
    losses = _losses(out)
    assert len(losses) == result.steps == 24
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.1
    assert result.train_pairs == 24 * 3  # the counted items are labelled steps
    assert result.eval is not None and result.eval.step_auroc is not None
    card = json.loads((out / "rewardlab.json").read_text())
    assert card["objective"] == "steps" and card["step_marker"] == STEP_MARKER and card["step_scores"]

    # plain transformers: the folder loads as a 1-label classifier; the card's recipe gives the scores
    hf = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    assert hf.config.num_labels == 1 and tok.convert_tokens_to_ids(STEP_MARKER) != tok.unk_token_id
    prompt, steps = "help me with the code?", [GOOD[0], BAD[0], GOOD[1]]
    if kind == "bert":
        enc = tok(prompt, join_steps(steps), return_tensors="pt")
        with torch.no_grad():
            h = hf.bert(**enc).last_hidden_state
            logits = hf.classifier(hf.bert.pooler.activation(hf.bert.pooler.dense(h)))[0, :, 0]
    else:
        enc = tok(prompt + join_steps(steps) + tok.eos_token, return_tensors="pt")
        with torch.no_grad():
            logits = hf.score(hf.model(**enc).last_hidden_state)[0, :, 0]
    at = enc["input_ids"][0] == tok.convert_tokens_to_ids(STEP_MARKER)
    manual = torch.sigmoid(logits[at]).tolist()
    (ours,) = Scorer.from_pretrained(str(out), device="cpu").score_steps([prompt], [steps])
    assert ours == pytest.approx(manual, abs=1e-5)


def test_orm_trains_on_outcomes_through_the_same_loop(tiny_backbone, tmp_path, precision):
    cfg = _cfg(
        tiny_backbone, tmp_path, "llama", "outcome", eval_data=_step_file(tmp_path / "e.jsonl", 8, seed=1)
    )
    result = train(cfg)
    losses = _losses(tmp_path / "outcome")
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.1
    assert result.train_pairs == 24  # one outcome label per solution
    assert result.eval.outcome_auroc is not None and result.eval.step_auroc is None
    card = json.loads((tmp_path / "outcome" / "rewardlab.json").read_text())
    assert card["objective"] == "outcome" and card["step_marker"] == ""


def test_soft_labels_reach_the_loss_unchanged(tiny_backbone, tmp_path):
    from rewardlab.model.build import build_reward_model

    path = tmp_path / "soft.jsonl"
    path.write_text(json.dumps({"prompt": "q", "completions": ["a", "b"], "labels": [0.7, 0.25]}) + "\n")
    examples, _ = load_steps(str(path))
    _, encoder, _ = build_reward_model(tiny_backbone("gpt2"), max_length=64, extra_tokens=[STEP_MARKER])
    items, _ = encode_step_examples(examples, encoder, "steps")
    batch = collate_steps(items, encoder.tokenizer.pad_token_id)
    assert batch["step_labels"].tolist() == pytest.approx([0.7, 0.25])
    assert batch["step_labels"].dtype == torch.float32


def test_truncated_steps_lose_their_labels_and_it_is_reported(tiny_backbone, tmp_path):
    rows = [
        {
            "prompt": "q " * 5,
            "completions": [f"the step {i} is good" for i in range(12)],
            "labels": [1.0] * 12,
        }
    ]
    (tmp_path / "long.jsonl").write_text(json.dumps(rows[0]) + "\n")
    cfg = _cfg(
        tiny_backbone, tmp_path, "gpt2", "steps", data=str(tmp_path / "long.jsonl"), epochs=1, max_length=32
    )
    result = train(cfg)
    line = next(x for x in result.data_lines if x.startswith("truncation"))
    assert "1/1 solutions cut" in line and "step labels lost" in line


def test_cli_round_trip_build_train_score_bon(tiny_backbone, tmp_path, capsys):
    from rewardlab.cli import main

    problems = tmp_path / "gsm.jsonl"
    rows = [
        {
            "question": f"Tom has {a} apples and buys {b} more, then doubles them. How many?",
            "answer": f"He has {a}+{b} = <<{a}+{b}={a + b}>>{a + b}.\n"
            f"Doubled: {a + b}*2 = <<{a + b}*2={2 * (a + b)}>>{2 * (a + b)}.\n#### {2 * (a + b)}",
        }
        for a, b in [(3, 4), (5, 6), (7, 9), (12, 30)]
    ]
    problems.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def run(*argv):
        assert main(list(argv)) == 0
        return json.loads(capsys.readouterr().out)

    built = run(
        "prm", "build-gsm8k", str(problems), "-o", str(tmp_path / "steps.jsonl"), "--corruptions", "2"
    )
    assert built["problems"] == 4 and built["solutions"] == 12
    pools = run("prm", "build-gsm8k", str(problems), "-o", str(tmp_path / "pools.jsonl"), "--pools", "4")
    assert pools["candidates"] == 16
    common = [
        "--data",
        str(tmp_path / "steps.jsonl"),
        "--backbone",
        tiny_backbone("gpt2"),
        "--max-length",
        "96",
        "--eval-fraction",
        "0",
        "--mixed-precision",
        "no",
        "--max-steps",
        "2",
        "--batch-size",
        "4",
    ]
    assert main(["prm", "train", *common, "--output-dir", str(tmp_path / "prm")]) == 0
    assert (
        main(["prm", "train", *common, "--objective", "outcome", "--output-dir", str(tmp_path / "orm")]) == 0
    )
    capsys.readouterr()
    scored = run(
        "prm", "score", str(tmp_path / "prm"), str(tmp_path / "steps.jsonl"), "-o", str(tmp_path / "s.jsonl")
    )
    assert scored["prm"] and scored["solutions"] == 12 and scored["step_auroc"] is not None
    first = json.loads((tmp_path / "s.jsonl").read_text().splitlines()[0])
    assert len(first["step_scores"]) == len(first["completions"]) == 3
    bon = run(
        "prm",
        "bon",
        str(tmp_path / "pools.jsonl"),
        "--prm",
        str(tmp_path / "prm"),
        "--orm",
        str(tmp_path / "orm"),
        "--n",
        "2,4",
        "--draws",
        "4",
    )
    methods = {p["method"] for p in bon["selection_accuracy"]}
    assert {"orm", "prm_product", "prm_min", "prm_last", "prm_mean", "majority", "random"} <= methods


def test_cli_trains_and_selects_on_real_solution_rows(tiny_backbone, tmp_path, capsys):
    """`rewardlab prm` reads gsm8k_solutions rows as training data (ORM and rule-3 PRM) and as pools."""
    from rewardlab.cli import main

    rows = []
    for a, b in [(3, 4), (5, 6), (7, 9), (12, 30), (2, 8), (6, 1)]:
        q = f"Tom has {a} apples and buys {b} more, then doubles them. How many?"
        s, d = a + b, 2 * (a + b)
        right = f"He has {a}+{b} = <<{a}+{b}={s}>>{s}.\nDoubled: {s}*2 = <<{s}*2={d}>>{d}.\nA: {d}"
        wrong = (
            f"He has {a}+{b} = <<{a}+{b}={s}>>{s}.\nDoubled: {s}*3 = <<{s}*3={3 * s}>>{3 * s}.\nA: {3 * s}"
        )
        rows.append(
            {
                "question": q,
                "ground_truth": right,
                "m1": {"solution": right, "is_correct": True},
                "m2": {"solution": wrong, "is_correct": False},
                "m3": {"solution": wrong, "is_correct": False},
            }
        )
    data = tmp_path / "solutions.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = ["--data", str(data), "--backbone", tiny_backbone("gpt2"), "--max-length", "96"]
    common += ["--eval-fraction", "0", "--mixed-precision", "no", "--max-steps", "2", "--batch-size", "4"]
    assert main(["prm", "train", *common, "--output-dir", str(tmp_path / "prm")]) == 0
    assert (
        main(["prm", "train", *common, "--objective", "outcome", "--output-dir", str(tmp_path / "orm")]) == 0
    )
    capsys.readouterr()
    argv = ["prm", "bon", str(data), "--prm", str(tmp_path / "prm"), "--orm", str(tmp_path / "orm")]
    assert main([*argv, "--n", "3", "--draws", "1"]) == 0
    bon = json.loads(capsys.readouterr().out)
    acc = {p["method"]: p["accuracy"] for p in bon["selection_accuracy"]}
    assert bon["pools"] == 6 and bon["candidates"] == 18
    assert acc["oracle"] == 1.0 and acc["majority"] == 0.0  # the two wrong copies always outvote
    assert acc["random"] == pytest.approx(1 / 3)
    assert {"weighted_orm", "weighted_prm_product", "prm_min"} <= set(acc)
    assert set(bon["within_problem_auroc"]) == {"orm", "prm_product", "prm_min", "prm_last", "prm_mean"}
