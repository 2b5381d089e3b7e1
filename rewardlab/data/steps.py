"""Step-labelled solutions for process reward models: read TRL stepwise, PRM800K and Math-Shepherd rows.

Every format becomes one `StepExample`: a prompt, its solution as a list of steps, one label per step
(a float in [0, 1], or None for a step that is in the text but carries no label), and optionally the
solution's outcome label (for outcome reward models). Formats (docs/prm.md has an example of each):

    stepwise       TRL's {"prompt", "completions": [step, ...], "labels": [bool | float, ...]},
                   plus rewardlab's optional "outcome" (bool | float); soft labels stay floats
                   (TRL's PRMTrainer casts 0.7 to 0; rewardlab never does); "labels" (or one label)
                   may be null for solutions that are only to be scored
    prm800k        OpenAI's PRM800K rows {"question": {"problem"}, "label": {"steps": [...]}}; the
                   trajectory is rebuilt as the README says; ratings +1 → 1.0, -1 → 0.0, and the
                   neutral 0 follows `neutral`: "positive" (Lightman et al. 2023), "negative" or "drop"
    math_shepherd  {"input", "label"}: the solution with a step tag (``ки``) after each step in
                   "input", and the same text with "+" or "-" in place of each tag in "label"
    gsm8k_solutions  {"question", "ground_truth", <name>: {"solution", "is_correct"}, ...}: real model
                   solutions of one problem (rewardlab.data.gsm8k_solutions); one row gives one
                   example per candidate, outcome from is_correct, step labels by rule 3
                   (rewardlab.data.step_labels)

`load_steps` validates a whole file and raises one `DataError` listing up to 20 problems with their
file:line and field, like `load_preferences` does for pairs.
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from dataclasses import dataclass, field

from rewardlab.data.readers import json_type, read_rows
from rewardlab.data.types import DataError, StepExample

STEP_FORMATS = ("stepwise", "prm800k", "math_shepherd", "gsm8k_solutions")
NEUTRAL_POLICIES = ("positive", "negative", "drop")
SHEPHERD_TAG = "ки"
SHEPHERD_QUESTION_END = "Step 1:"
MAX_ERRORS = 20


@dataclass
class StepSummary:
    """What loading a step file did: rows read, solutions and labelled steps kept, steps unlabelled."""

    path: str
    format: str
    rows_read: int = 0
    solutions: int = 0
    steps: int = 0
    labelled_steps: int = 0
    positive_steps: float = 0.0
    dropped: Counter = field(default_factory=Counter)

    def lines(self) -> list[str]:
        share = self.positive_steps / self.labelled_steps if self.labelled_steps else 0.0
        out = [
            f"{self.path}: {self.rows_read} rows read as '{self.format}', {self.solutions} solutions, "
            f"{self.labelled_steps}/{self.steps} steps labelled ({100 * share:.0f}% positive)"
        ]
        out += [f"  {reason}: {n}" for reason, n in self.dropped.most_common()]
        return out


def steps_hash(examples: list[StepExample]) -> str:
    """sha256 of the solutions' canonical JSON in order (prompt, steps, labels, outcome; not the source)."""
    import hashlib
    import json

    digest = hashlib.sha256()
    for ex in examples:
        record = [ex.prompt, ex.steps, ex.labels, ex.outcome]
        digest.update(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
    return digest.hexdigest()


def detect_step_format(row: dict) -> str | None:
    if "question" in row and "ground_truth" in row:
        return "gsm8k_solutions"
    steps = row.get("completions")
    if "prompt" in row and isinstance(steps, list) and all(isinstance(x, str) for x in steps):
        return "stepwise"
    if {"question", "label"} <= row.keys() and isinstance(row.get("label"), dict):
        return "prm800k"
    if {"input", "label"} <= row.keys():
        return "math_shepherd"
    return None


def load_steps(
    path: str, format: str | None = None, neutral: str = "positive", split: str | None = None
) -> tuple[list[StepExample], StepSummary]:
    """Read and validate every row of `path` (any container `read_rows` reads) into `StepExample`s."""
    if format is not None and format not in STEP_FORMATS:
        raise DataError(f"unknown step format '{format}'; --format takes one of {', '.join(STEP_FORMATS)}")
    if neutral not in NEUTRAL_POLICIES:
        raise DataError(f"--prm800k-neutral must be one of {NEUTRAL_POLICIES}, got {neutral!r}")
    problems: list[str] = []
    examples: list[StepExample] = []
    summary = StepSummary(path=path, format=format or "")
    for source, row in read_rows(path, split, on_error=lambda err: problems.append(str(err))):
        summary.rows_read += 1
        fmt = format or detect_step_format(row)
        if fmt is None:
            problems.append(
                f"{source}: cannot tell the step format from keys {', '.join(map(str, row)) or '(none)'}; "
                "expected stepwise (prompt, completions, labels), prm800k (question, label), "
                "math_shepherd (input, label) or gsm8k_solutions (question, ground_truth, candidates); "
                "rename the fields or pass --format"
            )
            continue
        summary.format = summary.format or fmt
        if fmt == "gsm8k_solutions":  # one row holds several solutions
            from rewardlab.data.gsm8k_solutions import convert_row, to_step_examples

            try:
                examples.extend(to_step_examples(convert_row(row, source)))
            except DataError as err:
                problems.extend(str(err).split("\n  "))
            continue
        try:
            ex = convert_step_row(row, fmt, source, neutral)
        except DataError as err:
            problems.append(str(err))
            continue
        if ex is None:
            summary.dropped["prm800k rows marked bad_problem/give_up with no labelled step"] += 1
            continue
        examples.append(ex)
    if problems:
        shown = "\n  ".join(problems[:MAX_ERRORS])
        more = f"\n  ... and {len(problems) - MAX_ERRORS} more" if len(problems) > MAX_ERRORS else ""
        raise DataError(f"{path}: {len(problems)} problem(s) in the step data; fix these:\n  {shown}{more}")
    if not examples:
        raise DataError(f"{path}: no usable solutions")
    summary.solutions = len(examples)
    summary.steps = sum(len(e.steps) for e in examples)
    labelled = [y for e in examples for y in e.labels if y is not None]
    summary.labelled_steps, summary.positive_steps = len(labelled), sum(labelled)
    unlabelled = summary.steps - summary.labelled_steps
    if unlabelled:
        summary.dropped["steps without a label (kept in the text, not in the loss)"] = unlabelled
    return examples, summary


def convert_step_row(row: dict, format: str, source: str, neutral: str = "positive") -> StepExample | None:
    """One raw row → `StepExample`; raises DataError naming `source` and the field at fault."""
    if format == "stepwise":
        return _stepwise(row, source)
    if format == "prm800k":
        return _prm800k(row, source, neutral)
    if format == "math_shepherd":
        return _math_shepherd(row, source)
    raise DataError(f"{source}: unknown step format {format!r}")


def _label(value: object, where: str) -> float:
    """bool → 1.0/0.0; a number in [0, 1] stays the float it is (soft labels are kept)."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, numbers.Real) and math.isfinite(float(value)) and 0.0 <= float(value) <= 1.0:
        return float(value)
    raise DataError(f"{where}: a label must be true/false or a number in [0, 1], got {value!r}")


def _string(row: dict, key: str, source: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        got = "missing" if key not in row else f"{json_type(value)} {str(value)[:40]!r}"
        raise DataError(f"{source}: field '{key}' must be a non-empty string, got {got}")
    return value


def _stepwise(row: dict, source: str) -> StepExample:
    prompt = _string(row, "prompt", source)
    steps, labels = row.get("completions"), row.get("labels")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) and s.strip() for s in steps):
        raise DataError(f"{source}: field 'completions' must be a non-empty list of non-empty step strings")
    if labels is None:  # unlabelled solutions, e.g. candidates to score
        labels = [None] * len(steps)
    if not isinstance(labels, list):
        raise DataError(f"{source}: field 'labels' must be a list with one label per step")
    if len(labels) != len(steps):
        raise DataError(
            f"{source}: {len(steps)} completions (steps) but {len(labels)} labels; give one label per step"
        )
    parsed = [None if y is None else _label(y, f"{source}: labels[{i}]") for i, y in enumerate(labels)]
    outcome = row.get("outcome")
    out = None if outcome is None else _label(outcome, f"{source}: field 'outcome'")
    meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
    return StepExample(prompt, list(steps), list(parsed), out, source, meta)


def _prm800k(row: dict, source: str, neutral: str) -> StepExample | None:
    question, label = row.get("question"), row.get("label")
    if not isinstance(question, dict) or not isinstance(question.get("problem"), str):
        raise DataError(f"{source}: field 'question.problem' must be the problem text")
    if not isinstance(label, dict) or not isinstance(label.get("steps"), list):
        raise DataError(f"{source}: field 'label.steps' must be the list of labelled steps")
    steps: list[str] = []
    labels: list[float | None] = []
    for i, step in enumerate(label["steps"]):
        where = f"{source}: label.steps[{i}]"
        completions = step.get("completions") if isinstance(step, dict) else None
        if not isinstance(completions, list):
            raise DataError(f"{where}.completions must be a list of {{text, rating}}")
        chosen, human = step.get("chosen_completion"), step.get("human_completion")
        if chosen is not None:
            if not isinstance(chosen, int) or not 0 <= chosen < len(completions):
                raise DataError(f"{where}.chosen_completion {chosen!r} is not an index into completions")
            text = _completion(completions[chosen], f"{where}.completions[{chosen}]")
            rating, last = completions[chosen].get("rating"), False
        elif human is not None:  # phase 1: a labeller-written step, +1 by construction
            text = human.get("text") if isinstance(human, dict) else human
            if not isinstance(text, str):
                raise DataError(f"{where}.human_completion must be a string or {{text}}")
            rating, last = 1, False
        else:  # labelling stopped here: the step the trajectory ends on is the first one rated -1
            if not completions:
                break
            pick = next((j for j, c in enumerate(completions) if c.get("rating") == -1), 0)
            text = _completion(completions[pick], f"{where}.completions[{pick}]")
            rating, last = completions[pick].get("rating"), True
        if rating not in (-1, 0, 1, None):
            raise DataError(f"{where}: rating must be -1, 0, +1 or null, got {rating!r}")
        steps.append(text)
        labels.append(_rating(rating, neutral))
        if last:
            break
    if not steps or all(y is None for y in labels):
        return None
    finish = label.get("finish_reason")
    outcome = {"solution": 1.0, "found_error": 0.0}.get(finish) if isinstance(finish, str) else None
    return StepExample(question["problem"], steps, labels, outcome, source, {"finish_reason": finish})


def _completion(c: object, where: str) -> str:
    if not isinstance(c, dict) or not isinstance(c.get("text"), str):
        raise DataError(f"{where} must be an object with a 'text' string")
    return c["text"]


def _rating(rating: int | None, neutral: str) -> float | None:
    if rating is None:
        return None
    if rating == 0:
        return {"positive": 1.0, "negative": 0.0, "drop": None}[neutral]
    return 1.0 if rating == 1 else 0.0


def _math_shepherd(row: dict, source: str, tag: str = SHEPHERD_TAG) -> StepExample:
    text, marked = _string(row, "input", source), _string(row, "label", source)
    pieces = text.split(tag)
    if len(pieces) < 2:
        raise DataError(f"{source}: field 'input' has no step tag {tag!r}; each step must end with it")
    labels: list[float | None] = []
    pos = 0
    for i, piece in enumerate(pieces[:-1]):
        pos += len(piece)
        if marked[pos - len(piece) : pos] != piece or pos >= len(marked) or marked[pos] not in "+-":
            raise DataError(
                f"{source}: field 'label' does not match 'input' at step {i + 1}: 'label' must be 'input' "
                f"with '+' or '-' in place of each {tag!r}"
            )
        labels.append(1.0 if marked[pos] == "+" else 0.0)
        pos += 1
    if pieces[-1].strip():
        raise DataError(
            f"{source}: field 'input' has text after the last step tag {tag!r}; end each step with it"
        )
    head = pieces[0]
    cut = head.find(SHEPHERD_QUESTION_END)
    if cut < 0:
        raise DataError(
            f"{source}: cannot find where the question ends in 'input' (expected {SHEPHERD_QUESTION_END!r} "
            "before the first step); convert the row to the stepwise format instead"
        )
    prompt = head[:cut].strip()
    steps = [head[cut:].strip()] + [p.strip() for p in pieces[1:-1]]
    if not prompt or any(not s for s in steps):
        raise DataError(f"{source}: an empty question or step in 'input'")
    return StepExample(prompt, steps, labels, None, source, {"task": row.get("task")})
