"""Step data: TRL stepwise, PRM800K and Math-Shepherd readers, and the GSM8K error-injection builder."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from rewardlab.data.gsm8k import (
    _checkable,
    _propagate,
    build_candidate_pools,
    build_step_data,
    final_answer,
    inject_error,
    parse_problem,
    read_gsm8k,
    safe_eval,
)
from rewardlab.data.steps import load_steps
from rewardlab.data.types import DataError

GSM8K_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "test.jsonl"

# Hand-written GSM8K-style problems (the real files stay outside the repo).
APPLES = parse_problem(
    "Tom has 3 apples and buys 4 more. Then he doubles them. How many apples does he have?",
    "Tom has 3+4 = <<3+4=7>>7 apples.\nHe doubles them: 7*2 = <<7*2=14>>14 apples.\n#### 14",
)
BOOKS = parse_problem(
    "A shelf holds 12 books. Ann takes 5 and Bo adds 9. Each book costs $3. What are the books worth?",
    "After Ann: 12-5 = <<12-5=7>>7 books.\nAfter Bo: 7+9 = <<7+9=16>>16 books.\n"
    "Worth: 16 x 3 = $<<16*3=48>>48.\n#### 48",
)


def _write(tmp_path, rows, name="steps.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_stepwise_soft_labels_stay_floats_and_bools_become_0_1(tmp_path):
    path = _write(tmp_path, [{"prompt": "q", "completions": ["a", "b", "c"], "labels": [True, 0.7, False]}])
    (ex,), summary = load_steps(path)
    assert ex.labels == [1.0, 0.7, 0.0]  # TRL's PRMTrainer would have made 0.7 a 0
    assert ex.first_error == 2 and ex.outcome_or_steps() == 0.0
    assert summary.format == "stepwise" and summary.labelled_steps == 3


def test_stepwise_errors_name_the_line_the_field_and_the_fix(tmp_path):
    rows = [
        {"prompt": "q", "completions": ["a", "b"], "labels": [True, True]},
        {"prompt": "q", "completions": ["a", "b"], "labels": [True]},
        {"prompt": "q", "completions": ["a"], "labels": [1.5]},
    ]
    with pytest.raises(DataError) as err:
        load_steps(_write(tmp_path, rows))
    text = str(err.value)
    assert "steps.jsonl:2: 2 completions (steps) but 1 labels; give one label per step" in text
    assert "steps.jsonl:3: labels[0]: a label must be true/false or a number in [0, 1], got 1.5" in text
    assert "steps.jsonl:1" not in text


def _prm800k_row():
    step = lambda text, rating: {"text": text, "rating": rating, "flagged": None}  # noqa: E731
    return {
        "question": {"problem": "What is 2+3*4?", "ground_truth_answer": "14"},
        "label": {
            "steps": [
                {
                    "completions": [step("Multiply first: 3*4 = 12.", 1)],
                    "human_completion": None,
                    "chosen_completion": 0,
                },
                {"completions": [step("I add things.", 0)], "human_completion": None, "chosen_completion": 0},
                {
                    "completions": [step("2+12 = 14, hmm.", 0), step("2+12 = 15.", -1)],
                    "human_completion": None,
                    "chosen_completion": None,
                },
            ],
            "finish_reason": "found_error",
        },
    }


@pytest.mark.parametrize(
    "neutral, labels",
    [("positive", [1.0, 1.0, 0.0]), ("negative", [1.0, 0.0, 0.0]), ("drop", [1.0, None, 0.0])],
)
def test_prm800k_trajectory_and_neutral_policy(tmp_path, neutral, labels):
    (ex,), _ = load_steps(_write(tmp_path, [_prm800k_row()]), neutral=neutral)
    # the trajectory ends on the step where labelling stopped: the completion rated -1
    assert ex.steps == ["Multiply first: 3*4 = 12.", "I add things.", "2+12 = 15."]
    assert ex.labels == labels
    assert ex.outcome == 0.0 and ex.prompt == "What is 2+3*4?"


def test_prm800k_bad_rating_is_reported_with_its_step(tmp_path):
    row = _prm800k_row()
    row["label"]["steps"][0]["completions"][0]["rating"] = 2
    with pytest.raises(
        DataError, match=r"steps.jsonl:1: label.steps\[0\]: rating must be -1, 0, \+1 or null"
    ):
        load_steps(_write(tmp_path, [row]))


def test_math_shepherd_tags_become_steps_and_labels(tmp_path):
    text = "Tom has 3 apples and buys 4. How many? Step 1: 3+4 = 7 ки\nStep 2: The answer is 8 ки"
    label = "Tom has 3 apples and buys 4. How many? Step 1: 3+4 = 7 +\nStep 2: The answer is 8 -"
    (ex,), summary = load_steps(_write(tmp_path, [{"input": text, "label": label, "task": "GSM8K"}]))
    assert summary.format == "math_shepherd"
    assert ex.prompt == "Tom has 3 apples and buys 4. How many?"
    assert ex.steps == ["Step 1: 3+4 = 7", "Step 2: The answer is 8"]
    assert ex.labels == [1.0, 0.0]
    bad = label.replace("7 +", "6 +")
    with pytest.raises(DataError, match="'label' does not match 'input' at step 1"):
        load_steps(_write(tmp_path, [{"input": text, "label": bad}], "bad.jsonl"))


def test_safe_eval_and_final_answer():
    assert safe_eval("(12-5)*3/2") == pytest.approx(10.5)
    with pytest.raises(ValueError):
        safe_eval("__import__('os')")
    assert final_answer(["x", "#### 1,234"]) == "1234"
    assert final_answer(["The answer is $12.50."]) == "12.5"


def test_propagation_recomputes_later_steps_by_hand():
    step = "He doubles them: 7*2 = <<7*2=14>>14 apples."
    text, changes = _propagate(step, {"7": "8"})
    assert text == "He doubles them: 8*2 = <<8*2=16>>16 apples."
    assert changes == {"14": "16"}
    assert _propagate("#### 14", {"14": "16"})[0] == "#### 16"


def test_injected_errors_label_steps_before_k_correct_and_from_k_on_wrong():
    seen = set()
    for seed in range(60):
        c = inject_error(BOOKS, random.Random(seed))
        assert c is not None
        k = c.first_error
        seen.add((c.kind, c.propagated))
        assert c.steps[:k] == BOOKS.steps[:k]
        assert c.steps[k] != BOOKS.steps[k]
        if c.propagated:
            # the changed value flows on: every later calculation is still arithmetically consistent
            assert all(len(_checkable(s)) == s.count("<<") for s in c.steps[k + 1 :])
            assert c.answer != BOOKS.answer  # every value in BOOKS feeds the final answer
        else:
            assert c.steps[k + 1 :] == BOOKS.steps[k + 1 :] and c.answer == "48"
        if c.kind == "arithmetic":
            assert not _checkable(c.steps[k])  # the stated result is wrong
        else:
            assert _checkable(c.steps[k])  # a consistent calculation of the wrong thing
    assert {kind for kind, _ in seen} == {"arithmetic", "operand", "operation"}
    assert {p for _, p in seen} == {True, False}


def test_builder_is_deterministic_and_per_problem():
    a = build_step_data([APPLES, BOOKS], corruptions=3, seed=7)
    b = build_step_data([BOOKS], corruptions=3, seed=7)
    assert [e.steps for e in a if e.prompt == BOOKS.question] == [e.steps for e in b]
    assert a == build_step_data([APPLES, BOOKS], corruptions=3, seed=7)
    assert a != build_step_data([APPLES, BOOKS], corruptions=3, seed=8)
    for e in a:
        if e.meta["kind"] == "reference":
            assert e.labels == [1.0] * len(e.steps) and e.outcome == 1.0
        else:
            k = e.meta["first_error"]
            assert e.labels == [1.0] * k + [0.0] * (len(e.steps) - k)
            assert e.outcome == (1.0 if final_answer(e.steps) == e.meta["gold"] else 0.0)


def test_candidate_pools_mix_references_and_corruptions():
    pools = build_candidate_pools([APPLES, BOOKS] * 10, size=16, seed=0, alpha=2, beta=2)
    assert all(len(p["candidates"]) == 16 for p in pools)
    cands = [c for p in pools for c in p["candidates"]]
    refs = [c for c in cands if c["kind"] == "reference"]
    assert 0 < len(refs) < len(cands)
    assert all(c["correct"] == (c["answer"] == p["gold"]) for p in pools for c in p["candidates"])


@pytest.mark.skipif(not GSM8K_TEST.exists(), reason="GSM8K not present at ../shared/data/gsm8k")
def test_real_gsm8k_rows_parse_and_most_get_an_error():
    problems = read_gsm8k(str(GSM8K_TEST), limit=50)
    assert len(problems) == 50 and all(p.steps[-1] == f"#### {p.answer}" for p in problems)
    data = build_step_data(problems, corruptions=1, seed=0)
    corrupted = [e for e in data if e.meta["kind"] != "reference"]
    assert len(corrupted) >= 45
