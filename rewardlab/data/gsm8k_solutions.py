"""The `gsm8k_solutions` format: real model solutions to GSM8K problems, labelled by final-answer
correctness (OpenAI's ``example_model_solutions.jsonl``; ``../shared/data/gsm8k/model_solutions_dev.jsonl``).

One row is one problem:

    {"question": "...", "ground_truth": "reference steps, one a line\\nA: 18",
     "6b_finetuning": {"solution": "step\\nstep\\nA: 26", "is_correct": false}, ...}

The candidates are every field whose value is an object with a "solution" string (the field name is the
candidate's name, e.g. which model wrote it), or a "candidates" list of such objects. A solution (and the
reference) is one step per line; its last line states the final answer as ``A: N`` or ``#### N``, and that
line is the last step. "is_correct" is optional: when absent it is the final answer equal to the reference's.

The same rows serve as best-of-N pools (`rewardlab.prm.best_of_n.read_pools`) and as training data
(`rewardlab.data.steps.load_steps`): every candidate becomes a `StepExample` with its outcome (for an
ORM) and step labels from the reference's intermediate values (for a PRM; `rewardlab.data.step_labels`).

Validation names file:line and the field: a problem with no candidates, a reference without a final
answer, a candidate without a final answer that is labelled correct or not labelled at all, an
"is_correct" that contradicts the answers. A candidate without a final-answer line that is labelled
incorrect (a generation cut off mid-sentence: 8 of 2636 in the dev file) is kept, as a wrong answer no
other candidate votes with, since dropping it would make best-of-N easier than sampling was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rewardlab.data.gsm8k import normalize_answer
from rewardlab.data.step_labels import (
    StepVerdict,
    annotation_values,
    reference_values,
    rule3_labels,
    value_key,
)
from rewardlab.data.types import DataError, StepExample

FORMAT = "gsm8k_solutions"
FINAL = re.compile(r"^\s*(?:A:|####)\s*(.+?)\s*$")
MAX_ERRORS = 20
"""Problems listed in one DataError, as `load_steps` does."""
NO_ANSWER = "<no answer>"
"""Prefix of the answer of a candidate with no final-answer line; each such answer is unique."""


@dataclass
class SolutionCandidate:
    name: str
    steps: list[str]
    answer: str
    """The normalised final answer, or ``<no answer> name`` when the solution states none."""
    correct: bool


@dataclass
class SolutionProblem:
    """One problem: question, the reference steps and answer, and the candidates to choose among."""

    question: str
    reference: list[str]
    gold: str
    candidates: list[SolutionCandidate]
    source: str = ""
    meta: dict = field(default_factory=dict)


def is_solutions_row(row: dict) -> bool:
    """Whether a row looks like this format (for format detection)."""
    return "question" in row and "ground_truth" in row


def split_solution(text: str) -> tuple[list[str], str | None]:
    """A solution's steps (non-empty lines) and its final answer (None when the last line states none)."""
    steps = [line.strip() for line in text.strip().split("\n") if line.strip()]
    m = FINAL.match(steps[-1]) if steps else None
    return steps, (normalize_answer(m.group(1)) if m else None)


def convert_row(row: dict, source: str) -> SolutionProblem:
    """One row → `SolutionProblem`; raises one DataError listing every problem of the row."""
    problems: list[str] = []
    question, truth = row.get("question"), row.get("ground_truth")
    if not isinstance(question, str) or not question.strip():
        problems.append(f"{source}: field 'question' must be a non-empty string")
    reference, gold = split_solution(truth) if isinstance(truth, str) else ([], None)
    if gold is None:
        problems.append(
            f"{source}: field 'ground_truth' must be the reference solution ending in an 'A: N' "
            "(or '#### N') line"
        )
    named = [(k, v) for k, v in row.items() if isinstance(v, dict) and "solution" in v]
    listed = row.get("candidates")
    if isinstance(listed, list):
        named += [(f"candidates[{i}]", c) for i, c in enumerate(listed)]
    if not named:
        problems.append(
            f"{source}: no candidates: give fields holding {{'solution', 'is_correct'}} objects "
            "(e.g. '6b_finetuning') or a 'candidates' list of them"
        )
    candidates = []
    for name, c in named:
        where = f"{source}: {name}"
        text, label = (c.get("solution"), c.get("is_correct")) if isinstance(c, dict) else (None, None)
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{where}.solution must be a non-empty string")
            continue
        if label is not None and not isinstance(label, bool):
            problems.append(f"{where}.is_correct must be true or false, got {label!r}")
            continue
        steps, answer = split_solution(text)
        if answer is None:
            if label is not False:
                problems.append(
                    f"{where}.solution has no final answer: its last line must be 'A: N' (or '#### N'); "
                    'a cut-off generation is kept only when labelled "is_correct": false'
                )
                continue
            answer = f"{NO_ANSWER} {name}"
        right = gold is not None and answer == gold
        if label is not None and label != right and gold is not None:
            problems.append(
                f"{where}.is_correct is {str(label).lower()} but its answer {answer!r} "
                f"{'equals' if right else 'differs from'} the reference answer {gold!r}"
            )
            continue
        candidates.append(SolutionCandidate(name, steps, answer, right if label is None else label))
    if problems:
        raise DataError("\n  ".join(problems))
    assert isinstance(question, str) and gold is not None
    return SolutionProblem(question.strip(), reference, gold, candidates, source)


def read_solution_problems(path: str) -> list[SolutionProblem]:
    """Every row of `path`, validated; one DataError lists up to 20 problems with file:line."""
    from rewardlab.data.readers import read_rows

    errors: list[str] = []
    out = []
    for source, row in read_rows(path, on_error=lambda err: errors.append(str(err))):
        try:
            out.append(convert_row(row, source))
        except DataError as err:
            errors.extend(str(err).split("\n  "))
    if errors:
        shown = "\n  ".join(errors[:MAX_ERRORS])
        more = f"\n  ... and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
        raise DataError(f"{path}: {len(errors)} problem(s) in the {FORMAT} data; fix these:\n  {shown}{more}")
    return out


def label_candidates(problem: SolutionProblem, with_correct_routes: bool = False) -> list[StepVerdict]:
    """Rule-3 step labels for every candidate (`rewardlab.data.step_labels`). With
    `with_correct_routes`, the values of the problem's correct candidates count as reference values too."""
    reference = reference_values(problem.reference, problem.question, problem.gold)
    extra: set[str] = set()
    if with_correct_routes:
        extra = {
            value_key(v)
            for c in problem.candidates
            if c.correct
            for s in c.steps
            for v in annotation_values(s)
        }
    return [rule3_labels(c.steps, c.correct, reference, extra) for c in problem.candidates]


def to_step_examples(problem: SolutionProblem, with_correct_routes: bool = False) -> list[StepExample]:
    """One `StepExample` per candidate: rule-3 step labels, the outcome, and meta (problem, name, answer)."""
    out = []
    for c, verdict in zip(problem.candidates, label_candidates(problem, with_correct_routes), strict=True):
        meta = {
            "problem": problem.source,
            "candidate": c.name,
            "answer": c.answer,
            "gold": problem.gold,
            "label_rule": verdict.reason,
        }
        labels: list[float | None] = list(verdict.labels)
        out.append(StepExample(problem.question, c.steps, labels, float(c.correct), problem.source, meta))
    return out
