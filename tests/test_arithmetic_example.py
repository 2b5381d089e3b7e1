"""examples/arithmetic_overopt.py: questions carry their true answers; pairs put a right answer over a
wrong one except for the flipped fraction."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

from rewardlab.bon.best_of_n import gsm8k_correct

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "arithmetic_overopt.py"
spec = importlib.util.spec_from_file_location("arithmetic_overopt", EXAMPLE)
arith = importlib.util.module_from_spec(spec)
spec.loader.exec_module(arith)


def test_questions_and_answers_agree():
    rng = random.Random(0)
    for _ in range(200):
        question, answer = arith.arithmetic_question(rng)
        expr = question.removeprefix("What is ").removesuffix("?").replace("times", "*")
        assert eval(expr) == answer  # noqa: S307 (our own generated arithmetic)


def test_prompts_are_gsm8k_shaped_and_distinct(tmp_path):
    arith.write_prompts(tmp_path, n_train=30, n_test=10, seed=1)
    lines = [x for f in ("train", "test") for x in (tmp_path / f"{f}.jsonl").read_text().splitlines()]
    rows = [json.loads(x) for x in lines]
    assert len(rows) == 40 and len({r["question"] for r in rows}) == 40
    r = rows[0]
    truth = r["answer"].removeprefix("#### ")
    assert gsm8k_correct(f"so the answer is {truth}", r["answer"]) == 1.0


def test_pairs_right_over_wrong_with_the_stated_noise(tmp_path):
    samples = tmp_path / "samples.jsonl"
    rows = [
        {"prompt": f"q{i}", "responses": [f"right {i}", f"wrong {i}a", f"wrong {i}b"], "gold": [1, 0, 0]}
        for i in range(500)
    ] + [{"prompt": "all wrong", "responses": ["x", "y"], "gold": [0, 0]}]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "pairs.jsonl"
    counts = arith.noisy_pairs(samples, out, per_prompt=1, noise=0.2, seed=0)
    pairs = [json.loads(x) for x in out.read_text().splitlines()]
    assert counts["prompts"] == 501 and counts["prompts_with_pairs"] == 500 and len(pairs) == 500
    flipped = sum(p["chosen"].startswith("wrong") for p in pairs)
    assert flipped == counts["flipped"] and 0.15 < flipped / 500 < 0.25
    assert all({p["chosen"].split()[0], p["rejected"].split()[0]} == {"right", "wrong"} for p in pairs)
