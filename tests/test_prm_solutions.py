"""Real model solutions: the gsm8k_solutions format, rule-3 step labels, by-problem folds, selection rules."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rewardlab.data.folds import problem_folds, split_fold
from rewardlab.data.gsm8k_solutions import NO_ANSWER, label_candidates, read_solution_problems
from rewardlab.data.step_labels import reference_values, rule3_labels
from rewardlab.data.steps import load_steps
from rewardlab.data.types import DataError
from rewardlab.prm.best_of_n import (
    Pool,
    available_methods,
    pick,
    pick_expected,
    read_pools,
    selection_accuracy,
    vote_weights,
    within_problem_auroc,
)

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "model_solutions_dev.jsonl"

QUESTION = (
    "Janet's ducks lay 16 eggs per day. She eats 3 and bakes with 4. She sells the rest at $2. How much?"
)
TRUTH = "She sells 16 - 3 - 4 = <<16-3-4=9>>9 eggs.\nShe makes 9 * 2 = $<<9*2=18>>18.\nA: 18"
RIGHT = "3 + 4 = <<3+4=7>>7 are used\n16 - 7 = <<16-7=9>>9 are sold\n2 * 9 = $<<2*9=18>>18\nA: 18"
WRONG_EARLY = "16 - 3 = <<16-3=12>>12 left\n12 * 2 = $<<12*2=24>>24\nA: 24"
WRONG_LATE = "She sells 16 - 3 - 4 = <<16-3-4=9>>9 eggs.\nShe makes 9 * 3 = $<<9*3=27>>27.\nA: 27"


def _row(**candidates):
    return {"question": QUESTION, "ground_truth": TRUTH, **candidates}


def _write(tmp_path, rows, name="solutions.jsonl"):
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


def _sol(text, correct):
    return {"solution": text, "is_correct": correct}


def test_rows_become_candidates_with_answers_outcomes_and_rule3_labels(tmp_path):
    path = _write(
        tmp_path, [_row(a=_sol(RIGHT, True), b=_sol(WRONG_EARLY, False), c=_sol(WRONG_LATE, False))]
    )
    examples, summary = load_steps(path)
    assert summary.format == "gsm8k_solutions" and len(examples) == 3
    right, early, late = examples
    assert right.steps[-1] == "A: 18" and right.outcome == 1.0 and right.labels == [1.0] * 4
    assert early.outcome == 0.0 and early.labels == [0.0, 0.0, 0.0]  # 16-3=12 is an arithmetic slip
    assert early.meta["label_rule"] == "arithmetic"
    assert late.labels == [1.0, 0.0, 0.0] and late.meta["label_rule"] == "off-reference"  # 27 is not in it
    (pool,) = read_pools(path)
    assert pool.gold == "18" and pool.answers == ["18", "24", "27"] and pool.correct == [True, False, False]


def test_format_errors_name_file_line_and_field(tmp_path):
    rows = [
        _row(a=_sol(RIGHT, True)),
        {"question": QUESTION, "ground_truth": TRUTH},  # no candidates
        _row(a=_sol("16 - 3 = <<16-3=13>>13 eggs left", True)),  # no final answer, labelled correct
        _row(a=_sol("16 - 3 = <<16-3=13>>13", None)),  # no final answer, no label
        "{not json",
        _row(a=_sol(WRONG_LATE, True)),  # is_correct contradicts the answers
        {"question": QUESTION, "ground_truth": "no final line", "a": _sol(RIGHT, True)},
    ]
    path = _write(tmp_path, rows)
    for read in (read_solution_problems, load_steps):
        with pytest.raises(DataError) as err:
            read(path)
        msg = str(err.value)
        assert "solutions.jsonl:2: no candidates" in msg
        assert "solutions.jsonl:3: a.solution has no final answer" in msg
        assert "solutions.jsonl:4: a.solution has no final answer" in msg
        assert "solutions.jsonl:5" in msg  # bad JSON, with its line
        assert "solutions.jsonl:6: a.is_correct is true but its answer '27'" in msg
        assert "solutions.jsonl:7: field 'ground_truth'" in msg
        assert "solutions.jsonl:1" not in msg


def test_cut_off_generation_labelled_wrong_is_kept_as_an_answer_nobody_votes_with(tmp_path):
    cut = "16 - 3 = <<16-3=13>>13 eggs left and then"
    path = _write(tmp_path, [_row(a=_sol(cut, False), b=_sol(cut, False), c=_sol(RIGHT, True))])
    (problem,) = read_solution_problems(path)
    a, b, _ = problem.candidates
    assert a.answer.startswith(NO_ANSWER) and a.answer != b.answer and not a.correct
    (pool,) = read_pools(path)
    assert pick_expected(pool, range(3), "majority") == pytest.approx(1 / 3)  # three one-vote answers


def test_rule3_blames_the_first_disagreeing_step_or_the_final_answer():
    ref = reference_values(TRUTH.split("\n"), QUESTION, "18")
    assert {"9", "18", "16", "3", "4", "2"} <= ref
    # a wrong route whose values all occur in the reference: the final answer takes the blame
    steps = ["16 - 3 - 4 = <<16-3-4=9>>9", "9 * 2 = <<9*2=18>>18 then minus 16", "A: 2"]
    verdict = rule3_labels(steps, correct=False, reference=ref)
    assert verdict.labels == [1.0, 1.0, 0.0] and verdict.reason == "final answer"
    # a valid re-ordering (3+4=7) is blamed as off-reference: the documented failure mode ...
    reordered = ["3 + 4 = <<3+4=7>>7", "16 - 7 = <<16-7=9>>9", "9 * 3 = <<9*3=27>>27", "A: 27"]
    assert rule3_labels(reordered, False, ref).first_error == 0
    # ... which the values of the problem's correct candidates repair
    assert rule3_labels(reordered, False, ref, extra_values={"7", "9", "18"}).first_error == 2
    # steps without annotations are never judged
    prose = ["She sells the rest", "so she makes 24 dollars", "A: 24"]
    assert rule3_labels(prose, False, ref).first_error == 2
    assert rule3_labels(reordered, True, ref).labels == [1.0] * 4


def test_correct_routes_option_uses_the_problem_s_correct_candidates():
    from rewardlab.data.gsm8k_solutions import convert_row

    reordered = "3 + 4 = <<3+4=7>>7\n16 - 7 = <<16-7=9>>9\n9 * 3 = <<9*3=27>>27\nA: 27"
    problem = convert_row(_row(a=_sol(RIGHT, True), b=_sol(reordered, False)), "x:1")
    assert [v.first_error for v in label_candidates(problem)] == [None, 0]
    assert [v.first_error for v in label_candidates(problem, with_correct_routes=True)] == [None, 2]


def test_problem_folds_leak_nothing_and_cover_every_problem_once():
    questions = [f"problem {i % 37} text" for i in range(37 * 4)]  # 4 candidates each, interleaved
    folds = problem_folds(questions, 5, seed=3)
    assert folds == problem_folds(list(reversed(questions)), 5, seed=3)[::-1]  # order does not matter
    assert folds != problem_folds(questions, 5, seed=4)
    held_out_once: list[str] = []
    for k in range(5):
        train, held = split_fold(questions, folds, k)
        assert not set(train) & set(held)  # no question text on both sides
        assert len(train) + len(held) == len(questions)
        held_out_once += sorted(set(held))
    assert sorted(held_out_once) == sorted(set(questions))  # each problem held out exactly once
    sizes = [len(set(split_fold(questions, folds, k)[1])) for k in range(5)]
    assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError, match="k >= 2"):
        problem_folds(questions, 1)


def _hand_pool():
    # gold "2"; candidates: two right ones (answer 2) with low scores, two wrong ones that agree (answer 5)
    return Pool(
        "q",
        [["a"], ["b"], ["c"], ["d"], ["e"]],
        answers=["2", "2", "5", "5", "7"],
        gold="2",
        scores={
            "orm": [2.0, 2.0, -3.0, -3.0, 4.0],  # the top one is wrong, but the right answer's mass is larger
            "prm_min": [0.9, 0.8, 0.3, 0.3, 0.2],
        },
    )


def test_selection_rules_on_a_hand_built_pool():
    p = _hand_pool()
    assert available_methods([p]) == [
        "orm", "prm_min", "majority", "weighted_orm", "weighted_prm_min", "random", "oracle"
    ]  # fmt: skip
    assert pick_expected(p, range(5), "orm") == 0.0  # argmax picks the lone 7
    assert pick_expected(p, range(5), "prm_min") == 1.0
    assert pick_expected(p, range(5), "majority") == 0.5  # 2 and 5 tie at two votes
    # sigmoid weights: "2" gets 2*0.88=1.76, "7" 0.98, "5" 2*0.047: the right answer wins
    assert pick_expected(p, range(5), "weighted_orm") == 1.0
    assert pick_expected(p, range(5), "weighted_prm_min") == 1.0
    assert pick_expected(p, range(5), "random") == pytest.approx(0.4)  # the expectation, not one draw
    assert pick_expected(p, range(5), "oracle") == 1.0 and pick_expected(p, [2, 3, 4], "oracle") == 0.0
    assert pick(p, "weighted_orm") == 0 and pick(p, "orm") == 4 and pick(p, "oracle") == 0


def test_weighted_vote_weights_are_never_negative():
    # raw ORM logits would let negative scores vote *against* an answer (-0.8 + -0.8 < -1); sigmoid
    # makes every vote >= 0, so two fairly scored candidates outvote one poorly scored candidate
    p = Pool("q", [["a"], ["b"], ["c"]], ["2", "5", "5"], "5", scores={"orm": [-1.0, -0.8, -0.8]})
    assert pick_expected(p, range(3), "weighted_orm") == 1.0


def test_selection_accuracy_has_oracle_and_a_bootstrap_interval_over_problems():
    pools = [_hand_pool(), _hand_pool()]
    pools[1].gold = "5"
    points = {pt.method: pt for pt in selection_accuracy(pools, [5], draws=1)}
    assert points["oracle"].accuracy == 1.0 and points["random"].accuracy == pytest.approx(0.4)
    maj = points["majority"]
    assert maj.accuracy == 0.5 and maj.ci_low <= maj.accuracy <= maj.ci_high
    orm = points["orm"]  # 0 on both problems: a degenerate interval
    assert orm.accuracy == orm.ci_low == orm.ci_high == 0.0


def test_within_problem_auroc_ignores_which_problems_are_easy():
    # every candidate of the easy problem outscores every candidate of the hard one (pooled AUROC is
    # high), yet inside each problem the wrong candidate scores higher: selection would always fail
    easy = Pool("easy", [["a"], ["b"]], ["1", "2"], "1", scores={"orm": [5.0, 6.0]})
    hard = Pool("hard", [["a"], ["b"]], ["1", "2"], "1", scores={"orm": [-6.0, -5.0]})
    assert within_problem_auroc([easy, hard], "orm") == 0.0
    hard.scores["orm"] = [-5.0, -5.0]
    assert within_problem_auroc([easy, hard], "orm") == 0.25  # one loss, one tie
    assert within_problem_auroc([Pool("q", [["a"]], ["1"], "1", scores={"orm": [1.0]})], "orm") is None


@pytest.mark.skipif(not DEV.exists(), reason="model solutions not present at ../shared/data/gsm8k")
def test_real_dev_file_reads_and_gives_the_documented_baselines():
    pools = read_pools(str(DEV))
    assert len(pools) == 659 and all(len(p.candidates) == 4 for p in pools)
    points = {pt.method: pt.accuracy for pt in selection_accuracy(pools, [4], draws=1, n_boot=10)}
    # the figures for this file: random 39.2%, majority 50.4%, oracle 69.0%
    assert points["random"] == pytest.approx(0.392, abs=0.001)
    assert points["majority"] == pytest.approx(0.504, abs=0.001)
    assert points["oracle"] == pytest.approx(0.690, abs=0.001)
    examples, _ = load_steps(str(DEV))
    assert len(examples) == 2636 and sum(e.outcome for e in examples) == 1032


def test_bradley_terry_votes_do_not_depend_on_a_shift_of_the_rewards():
    # a BT reward means only its differences: sigmoid weights would change the pick with the offset
    # (at +10 every weight is ~1 and the vote is a plain majority; at -10 the top candidate dominates)
    base = [2.0, 0.0, 0.0, -3.0]
    for shift in (-10.0, 0.0, 10.0):
        p = Pool("q", [["a"], ["b"], ["c"], ["d"]], ["7", "5", "5", "9"], "7")
        p.scores["bt"] = [x + shift for x in base]
        p.scores["orm"] = [x + shift for x in base]
        # softmax: "7" gets e^2 = 7.39 against "5"'s 2 votes of e^0: the top candidate's answer wins
        assert pick_expected(p, range(4), "weighted_bt") == 1.0 and pick(p, "weighted_bt") == 0
        assert vote_weights("bt", p.scores["bt"]) == pytest.approx(
            [1.0, math.exp(-2), math.exp(-2), math.exp(-5)]
        )
    assert pick_expected(p, range(4), "weighted_orm") == 0.0  # shifted by +10, sigmoid votes = majority
    assert vote_weights("bt", [float("nan"), 1.0]) == [0.0, 1.0]
