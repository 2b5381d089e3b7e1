"""Step-labelled math solutions from GSM8K by error injection, deterministic with a seed.

GSM8K (``../shared/data/gsm8k/{train,test}.jsonl``, read by path, never copied) gives a `question` and an
`answer`: one reasoning step per line with calculator annotations ``<<48/2=24>>24`` and a final
``#### 72``. Each line becomes a step; the final ``#### N`` line is the last step.

The error recipe (docs/prm.md): pick a step k that holds a checkable calculation, then one of

    arithmetic  the result is wrong, the expression right:   48/2 = <<48/2=25>>25
    operand     a number was copied wrong; result follows:   48/3 = <<48/3=16>>16
    operation   the wrong operation; result follows:         48*2 = <<48*2=96>>96

and either *propagate* the changed value (later calculations that use it are recomputed, so the final
answer changes, as when a model carries its own mistake forward) or not (later steps stay as in the
reference, so they contradict step k and the final answer may still be right). Steps before k are
labelled correct (1.0), steps from k on incorrect (0.0). The outcome label, for outcome reward models,
is 1.0 when the final answer equals the reference answer. The random choices come from a generator
seeded by (seed, question), so a problem's corruptions do not depend on which other problems are built.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import random
import re
from dataclasses import dataclass

from rewardlab.data.types import DataError, StepExample

ERROR_KINDS = ("arithmetic", "operand", "operation")
ANNOTATION = re.compile(r"<<([^=<>]+)=([^<>]+)>>")
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w])")
BINARY_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
SWAPS = {"+": "-*", "-": "+/", "*": "/+", "/": "*-"}


@dataclass
class GsmProblem:
    question: str
    steps: list[str]
    """Reasoning lines of the reference answer, then the final ``#### N`` line."""
    answer: str
    source: str = ""


@dataclass
class Corruption:
    steps: list[str]
    first_error: int
    kind: str
    propagated: bool
    answer: str


def read_gsm8k(path: str, limit: int = 0) -> list[GsmProblem]:
    """GSM8K rows of `path` (JSONL with question/answer); `limit` > 0 keeps the first that many."""
    from rewardlab.data.readers import read_rows

    out = []
    for source, row in read_rows(path):
        q, a = row.get("question"), row.get("answer")
        if not isinstance(q, str) or not isinstance(a, str):
            raise DataError(f"{source}: a GSM8K row needs string fields 'question' and 'answer'")
        out.append(parse_problem(q, a, source))
        if limit and len(out) >= limit:
            break
    return out


def parse_problem(question: str, answer: str, source: str = "") -> GsmProblem:
    lines = [line.strip() for line in answer.strip().split("\n") if line.strip()]
    if not lines or not lines[-1].startswith("####"):
        raise DataError(f"{source}: field 'answer' must end with a '#### N' line (GSM8K's final answer)")
    final = lines[-1][4:].strip().replace(",", "")
    return GsmProblem(question.strip(), lines[:-1] + [f"#### {final}"], final, source)


def final_answer(steps: list[str]) -> str:
    """The answer a solution ends on: after ``####`` in the last step, else the last number in it."""
    last = steps[-1] if steps else ""
    if "####" in last:
        return normalize_answer(last.split("####")[-1])
    nums = NUMBER.findall(last.replace(",", ""))
    return normalize_answer(nums[-1]) if nums else ""


def normalize_answer(text: str) -> str:
    text = text.strip().replace(",", "").replace("$", "").rstrip(".")
    try:
        return fmt(float(text))
    except ValueError:
        return text


def fmt(x: float) -> str:
    """A number as GSM8K writes it: integers without a point, others with at most 2 decimals."""
    if abs(x - round(x)) < 1e-9:
        return str(int(round(x)))
    return f"{x:.2f}".rstrip("0").rstrip(".")


def safe_eval(expr: str) -> float:
    """Evaluate + - * / on numbers and parentheses; anything else raises ValueError."""

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and type(node.op) in BINARY_OPS:
            return BINARY_OPS[type(node.op)](ev(node.left), ev(node.right))
        raise ValueError(f"not a plain calculation: {expr!r}")

    try:
        value = ev(ast.parse(expr.strip(), mode="eval"))
    except (SyntaxError, ZeroDivisionError, RecursionError) as e:
        raise ValueError(f"cannot evaluate {expr!r}: {e}") from e
    if not math.isfinite(value):
        raise ValueError(f"{expr!r} is not finite")
    return value


def _checkable(step: str) -> list[re.Match]:
    """The annotations of a step whose expression evaluates to the stated result."""
    out = []
    for m in ANNOTATION.finditer(step):
        try:
            value, stated = safe_eval(m.group(1)), float(m.group(2).replace(",", ""))
        except ValueError:
            continue
        if abs(value - stated) < 1e-6 or fmt(value) == fmt(stated):
            out.append(m)
    return out


def _perturb(x: float, rng: random.Random) -> float:
    """A plausible wrong value near x (off by a little, by a digit, or by a factor of ten)."""
    options = {x + 1, x - 1, x + 2, x - 2, x + 10, x - 10, x * 10}
    if x >= 10 and x % 10 == 0:
        options.add(x / 10)
    digits = fmt(x)
    if len(digits) >= 2 and digits.isdigit() and digits[-1] != digits[-2]:
        options.add(float(digits[:-2] + digits[-1] + digits[-2]))
    good = sorted(o for o in options if o != x and (o > 0 or x <= 0) and fmt(o) != fmt(x))
    return rng.choice(good)


def _change(expr: str, kind: str, rng: random.Random) -> str | None:
    """A wrong version of `expr` for the operand/operation kinds (None if it has nothing to change)."""
    if kind == "operand":
        nums = list(NUMBER.finditer(expr))
        if not nums:
            return None
        m = rng.choice(nums)
        return expr[: m.start()] + fmt(_perturb(float(m.group()), rng)) + expr[m.end() :]
    ops = [i for i, c in enumerate(expr) if c in SWAPS and i > 0 and expr[:i].rstrip()[-1:] not in "+-*/("]
    if not ops:
        return None
    i = rng.choice(ops)
    return expr[:i] + rng.choice(SWAPS[expr[i]]) + expr[i + 1 :]


def _visible_variants(expr: str) -> list[tuple[str, str]]:
    """(written form, how to turn a canonical expression into that form) pairs GSM8K uses."""
    spaced = re.sub(r"\s*([+\-*/])\s*", r" \1 ", expr).strip()
    return [
        (expr, ""),
        (spaced, "spaced"),
        (spaced.replace("*", "x"), "spaced-x"),
        (expr.replace("*", "x"), "x"),
    ]


def _written(expr: str, style: str) -> str:
    if style in ("spaced", "spaced-x"):
        expr = re.sub(r"\s*([+\-*/])\s*", r" \1 ", expr).strip()
    return expr.replace("*", "x") if style in ("spaced-x", "x") else expr


def _rewrite_step(step: str, m: re.Match, new_expr: str, new_value: float) -> str:
    """Replace one annotation and the result written after it; also the expression written before it."""
    expr, old = m.group(1), m.group(2)
    before, after = step[: m.start()], step[m.end() :]
    if after.startswith(old):
        after = fmt(new_value) + after[len(old) :]
    elif after.startswith("$" + old):
        after = "$" + fmt(new_value) + after[len(old) + 1 :]
    if new_expr != expr:
        for written, style in _visible_variants(expr):
            at = before.rfind(written)
            if at >= 0:
                before = before[:at] + _written(new_expr, style) + before[at + len(written) :]
                break
    return before + f"<<{new_expr}={fmt(new_value)}>>" + after


def _propagate(step: str, changed: dict[str, str]) -> tuple[str, dict[str, str]]:
    """Carry changed values into a later step: substitute them and recompute its calculations."""

    def sub(text: str) -> str:
        return NUMBER.sub(lambda n: changed.get(fmt(float(n.group())), n.group()), text)

    new_changes: dict[str, str] = {}
    out, last = [], 0
    for m in ANNOTATION.finditer(step):
        expr = sub(m.group(1))
        try:
            value = fmt(safe_eval(expr))
        except ValueError:
            value = m.group(2)
        old = m.group(2)
        if fmt_or(old) != value:
            new_changes[fmt_or(old)] = value
        out.append(sub(step[last : m.start()]))
        out.append(f"<<{expr}={value}>>")
        last = m.end()
        tail = step[last:]
        if tail.startswith(old):
            out.append(value)
            last += len(old)
    out.append(step[last:])
    text = "".join(out)
    # numbers after the last annotation (and in lines without one, e.g. "#### N") follow too
    changed = {**changed, **new_changes}
    tail_from = text.rfind(">>") + 2 if ">>" in text else 0
    text = text[:tail_from] + NUMBER.sub(
        lambda n: changed.get(fmt(float(n.group())), n.group()), text[tail_from:]
    )
    return text, new_changes


def fmt_or(text: str) -> str:
    try:
        return fmt(float(text.replace(",", "")))
    except ValueError:
        return text


def inject_error(
    problem: GsmProblem,
    rng: random.Random,
    kinds: tuple[str, ...] = ERROR_KINDS,
    p_propagate: float = 0.75,
) -> Corruption | None:
    """One corrupted copy of the reference solution (see the module docstring), or None if no step has a
    checkable calculation."""
    candidates = [i for i, s in enumerate(problem.steps[:-1]) if _checkable(s)]
    if not candidates:
        return None
    for _ in range(20):
        k = rng.choice(candidates)
        m = rng.choice(_checkable(problem.steps[k]))
        kind = rng.choice(kinds)
        old_value = safe_eval(m.group(1))
        if kind == "arithmetic":
            new_expr, new_value = m.group(1), _perturb(old_value, rng)
        else:
            changed_expr = _change(m.group(1), kind, rng)
            if changed_expr is None:
                continue
            try:
                new_expr, new_value = changed_expr, safe_eval(changed_expr)
            except ValueError:
                continue
        if fmt(new_value) == fmt(old_value) or (old_value > 0 and new_value <= 0):
            continue
        steps = list(problem.steps)
        steps[k] = _rewrite_step(steps[k], m, new_expr, new_value)
        propagated = rng.random() < p_propagate
        if propagated:
            changed = {fmt(old_value): fmt(new_value)}
            for j in range(k + 1, len(steps)):
                steps[j], more = _propagate(steps[j], changed)
                changed.update(more)
        return Corruption(steps, k, kind, propagated, final_answer(steps))
    return None


def problem_rng(seed: int, question: str, purpose: str = "") -> random.Random:
    return random.Random(f"{seed}:{purpose}:{question}")


def build_step_data(
    problems: list[GsmProblem],
    corruptions: int = 2,
    seed: int = 0,
    include_reference: bool = True,
    p_propagate: float = 0.75,
) -> list[StepExample]:
    """Per problem: the reference solution (all steps correct) and `corruptions` corrupted copies."""
    out = []
    for prob in problems:
        rng = problem_rng(seed, prob.question, "steps")
        meta = {"problem": prob.source, "gold": prob.answer}
        if include_reference:
            out.append(
                StepExample(
                    prob.question,
                    list(prob.steps),
                    [1.0] * len(prob.steps),
                    1.0,
                    prob.source,
                    {**meta, "kind": "reference"},
                )
            )
        for _ in range(corruptions):
            c = inject_error(prob, rng, p_propagate=p_propagate)
            if c is None:
                break
            labels: list[float | None] = [1.0 if i < c.first_error else 0.0 for i in range(len(c.steps))]
            info = {"kind": c.kind, "propagated": c.propagated, "first_error": c.first_error}
            outcome = 1.0 if c.answer == prob.answer else 0.0
            out.append(StepExample(prob.question, c.steps, labels, outcome, prob.source, {**meta, **info}))
    return out


def build_candidate_pools(
    problems: list[GsmProblem],
    size: int = 16,
    seed: int = 0,
    alpha: float = 2.0,
    beta: float = 2.0,
    p_propagate: float = 0.75,
) -> list[dict]:
    """Best-of-N pools: per problem, `size` candidates, each the reference with probability p (drawn
    per problem from Beta(alpha, beta), so some problems are easy and some hard), else a fresh
    corruption. Rows: {"prompt", "gold", "p_correct", "candidates": [{"completions", "answer",
    "correct", "kind"}]}."""
    pools = []
    for prob in problems:
        rng = problem_rng(seed, prob.question, "pool")
        p = rng.betavariate(alpha, beta)
        cands = []
        while len(cands) < size:
            c = None if rng.random() < p else inject_error(prob, rng, p_propagate=p_propagate)
            if c is None:
                steps, answer, kind = list(prob.steps), prob.answer, "reference"
            else:
                steps, answer = c.steps, c.answer
                kind = f"{c.kind}{'' if c.propagated else ' (not propagated)'}"
            cands.append(
                {"completions": steps, "answer": answer, "correct": answer == prob.answer, "kind": kind}
            )
        pools.append({"prompt": prob.question, "gold": prob.answer, "p_correct": p, "candidates": cands})
    return pools


def to_stepwise_row(ex: StepExample) -> dict:
    """A TRL stepwise row plus rewardlab's "outcome" and "meta" (TRL ignores extra columns)."""
    return {
        "prompt": ex.prompt,
        "completions": ex.steps,
        "labels": ex.labels,
        "outcome": ex.outcome,
        "meta": ex.meta,
    }


def write_jsonl(rows: list[dict], path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
