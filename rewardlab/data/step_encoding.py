"""Process reward models: the step-end marker, per-step losses, step-score aggregation and step metrics.

A PRM is an ordinary rewardlab reward model (same backbone, same scalar head, same saved folder) that
is read at more than one place: the solution's steps are joined as ``step 1<M>\\nstep 2<M>...`` where
``<M>`` is `STEP_MARKER`, a special token added to the tokenizer, and the head's logit at each marker
token is that step's score (sigmoid → P(step correct)). The text is built by `join_steps` and tokenised
by `TextEncoder` in training and at inference alike, for encoders and decoders, so the marker can never
differ between the two. The prompt carries no marker and no label.

    training:   train(cfg with objective="steps") → compute_loss → `step_bce` (soft labels stay floats)
    inference:  Scorer.score_steps(prompts, step_lists) → probabilities per step → `aggregate`

An outcome reward model (ORM, objective="outcome") reads the whole solution, ``join_plain(steps)``, at
the usual pooled position and is trained with `outcome_bce`; its step scores are the scores of the
solution's prefixes. docs/prm.md explains the choices.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rewardlab.data.encoding import Encoded, TextEncoder
from rewardlab.data.steps import StepExample
from rewardlab.scoring.metrics import auroc

STEP_MARKER = "<|rewardlab_step|>"
STEP_SCORES_HOWTO = (
    "sigmoid of the head applied to the last hidden state at each step-marker token (encoders: the "
    "pooler's dense+tanh, then the classifier), for the response '\\n'.join(step + step_marker); "
    "rewardlab: Scorer.score_steps"
)
"""Written into a PRM's rewardlab.json (`step_scores`) so the folder can be read without rewardlab."""
AGGREGATIONS = ("product", "min", "last", "mean")
OBJECTIVES = ("pairs", "steps", "outcome")


def join_steps(steps: Sequence[str], marker: str = STEP_MARKER) -> str:
    """The response text a PRM reads: each step (stripped) followed by the marker, one step per line."""
    return "\n".join(f"{s.strip()}{marker}" for s in steps)


def join_plain(steps: Sequence[str]) -> str:
    """The response text an ORM reads: the steps (stripped), one per line, no marker."""
    return "\n".join(s.strip() for s in steps)


def marker_id(encoder: TextEncoder, marker: str = STEP_MARKER) -> int:
    """The marker's token id; fails with the fix when the tokenizer lacks it."""
    tid = encoder.tokenizer.convert_tokens_to_ids(marker)
    if tid is None or tid == encoder.tokenizer.unk_token_id:
        raise ValueError(
            f"the tokenizer has no step marker {marker!r}; build the model with "
            f"build_reward_model(..., extra_tokens=[{marker!r}]) (rewardlab prm train does)"
        )
    return tid


@dataclass
class EncodedSteps:
    """A tokenised solution and where each surviving step marker sits."""

    encoded: Encoded
    positions: list[int]
    """Token index of each step marker that survived truncation, in step order."""
    steps: list[int]
    """The step each position belongs to."""
    labels: list[float | None]
    """Label of each position's step; None when unlabelled or when truncation cut the step's text."""
    num_steps: int
    outcome: float | None = None

    @property
    def num_tokens(self) -> int:
        return len(self.encoded.input_ids)


@dataclass
class StepTruncationReport:
    """How many solutions truncation touched and how many step labels it removed (never silently)."""

    solutions: int = 0
    solutions_cut: int = 0
    labels: int = 0
    labels_lost: int = 0
    examples: list[str] = field(default_factory=list)

    def lines(self, policy: str, max_length: int) -> list[str]:
        if not self.solutions_cut:
            return [f"truncation: nothing longer than max_length={max_length}"]
        where = f" (e.g. {', '.join(self.examples[:3])})" if self.examples else ""
        if not self.labels:  # outcome objective: no step labels to lose
            cut = f"{self.solutions_cut}/{self.solutions}"
            return [f"truncation ({policy}, max_length={max_length}): {cut} solutions cut"]
        return [
            f"truncation ({policy}, max_length={max_length}): {self.solutions_cut}/{self.solutions} "
            f"solutions "
            f"cut; {self.labels_lost}/{self.labels} step labels lost with their step's text{where}"
        ]


def encode_steps(
    encoder: TextEncoder,
    prompt: str,
    steps: Sequence[str],
    labels: Sequence[float | None] | None = None,
    outcome: float | None = None,
    marker: str = STEP_MARKER,
) -> EncodedSteps:
    """Tokenise a solution for a PRM and locate its markers; a step whose text truncation cut loses its label.

    With ``left`` truncation the earliest steps go first, with ``right`` the latest; either way the
    labels stay with their own steps (positions are matched against the untruncated token list).
    """
    mid = marker_id(encoder, marker)
    for i, s in enumerate(steps):
        if marker in s or marker in prompt:
            raise ValueError(f"step {i} or the prompt contains the step marker {marker!r}; remove it")
    labels = list(labels) if labels is not None else [None] * len(steps)
    text = join_steps(steps, marker)
    enc = encoder.encode(prompt, text)
    kept = enc.response_end - enc.response_start
    full = encoder.tokenizer(text, add_special_tokens=False)["input_ids"] if enc.truncated else None
    if full is None or len(full) == kept:
        positions = [i for i in range(enc.response_start, enc.response_end) if enc.input_ids[i] == mid]
        return EncodedSteps(
            enc, positions, list(range(len(positions))), labels[: len(positions)], len(steps), outcome
        )
    marks = [i for i, t in enumerate(full) if t == mid]
    offset = len(full) - kept if encoder.truncation == "left" else 0
    positions, which, kept_labels = [], [], []
    for j, m in enumerate(marks):
        if not offset <= m < offset + kept:
            continue
        text_start = marks[j - 1] + 1 if j else 0
        positions.append(enc.response_start + m - offset)
        which.append(j)
        kept_labels.append(labels[j] if text_start >= offset else None)
    return EncodedSteps(enc, positions, which, kept_labels, len(steps), outcome)


def encode_step_examples(
    examples: Sequence[StepExample],
    encoder: TextEncoder,
    objective: str,
    on_progress: Callable[[int], Any] | None = None,
) -> tuple[list[EncodedSteps], StepTruncationReport]:
    """Encode solutions for the ``steps`` (markers) or ``outcome`` (plain text) objective."""
    report = StepTruncationReport()
    out = []
    for ex in examples:
        if objective == "steps":
            item = encode_steps(encoder, ex.prompt, ex.steps, ex.labels, ex.outcome_or_steps())
            lost = sum(y is not None for y in ex.labels) - sum(y is not None for y in item.labels)
            report.labels += sum(y is not None for y in ex.labels)
        else:
            enc = encoder.encode(ex.prompt, join_plain(ex.steps))
            item = EncodedSteps(enc, [], [], [], len(ex.steps), ex.outcome_or_steps())
            lost = 0
        report.solutions += 1
        if item.encoded.truncated:
            report.solutions_cut += 1
            if lost and len(report.examples) < 5:
                report.examples.append(ex.source)
        report.labels_lost += lost
        out.append(item)
        if on_progress:
            on_progress(1)
    return out, report


def collate_steps(items: Sequence[EncodedSteps], pad_id: int) -> dict[str, Any]:
    """A training batch: padded tokens plus (row, column, label) of every labelled step, and outcomes."""
    import torch

    from rewardlab.data.batching import collate

    batch = collate([it.encoded for it in items], pad_id)
    rows, cols, ys = [], [], []
    for r, it in enumerate(items):
        for pos, y in zip(it.positions, it.labels, strict=True):
            if y is not None:
                rows.append(r)
                cols.append(pos)
                ys.append(y)
    batch["step_rows"] = torch.tensor(rows, dtype=torch.long)
    batch["step_cols"] = torch.tensor(cols, dtype=torch.long)
    batch["step_labels"] = torch.tensor(ys, dtype=torch.float32)
    outcomes = [math.nan if it.outcome is None else it.outcome for it in items]
    batch["outcomes"] = torch.tensor(outcomes, dtype=torch.float32)
    return batch


def step_bce(token_logits: Any, batch: dict[str, Any]) -> tuple[Any, Any]:
    """Mean binary cross-entropy over the labelled steps of a batch (soft targets), and step accuracy."""
    import torch.nn.functional as F

    logits = token_logits[batch["step_rows"], batch["step_cols"]]
    y = batch["step_labels"].to(logits.dtype)
    if not len(y):  # every step of this micro-batch lost its label: no signal, but keep the graph
        return token_logits.sum() * 0.0, token_logits.new_tensor(0.0)
    loss = F.binary_cross_entropy_with_logits(logits, y)
    return loss, ((logits.detach() > 0) == (y >= 0.5)).float().mean()


def outcome_bce(rewards: Any, batch: dict[str, Any]) -> tuple[Any, Any]:
    """Pointwise binary cross-entropy of the solution reward against its outcome label, and accuracy."""
    import torch.nn.functional as F

    y = batch["outcomes"].to(rewards.dtype)
    keep = ~y.isnan()
    if not keep.any():
        return rewards.sum() * 0.0, rewards.new_tensor(0.0)
    loss = F.binary_cross_entropy_with_logits(rewards[keep], y[keep])
    return loss, ((rewards[keep].detach() > 0) == (y[keep] >= 0.5)).float().mean()


def aggregate(step_probs: Sequence[float], how: str = "product") -> float:
    """One solution score from per-step probabilities (NaN steps, lost to truncation, are skipped).

    product: P(every step correct) if steps were independent (Lightman et al.); min: the weakest
    step; last: the final step alone; mean: the average step.
    """
    ps = [p for p in step_probs if not math.isnan(p)]
    if how not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {how!r}")
    if not ps:
        return math.nan
    if how == "product":
        return math.prod(ps)
    if how == "min":
        return min(ps)
    if how == "last":
        return ps[-1]
    return sum(ps) / len(ps)


@dataclass
class StepEvalResult:
    """How well step scores and solution scores match step labels and outcomes."""

    solutions: int
    labelled_steps: int
    step_accuracy: float | None
    """Share of labelled steps where (score >= 0.5) agrees with (label >= 0.5)."""
    step_auroc: float | None
    first_error_accuracy: float | None
    """Solutions with a wrong step: share whose lowest-scoring step is the first wrong one."""
    first_below_half_accuracy: float | None
    """Solutions with a wrong step: share whose first step scored < 0.5 is the first wrong one."""
    outcome_auroc: float | None
    outcome_accuracy: float | None
    solution_score: str
    """What scored whole solutions: the PRM's aggregation, or 'reward' for an ORM."""
    reward_mean: float = 0.0
    reward_std: float = 1.0

    @property
    def accuracy(self) -> float:
        """The figure model selection maximises: step AUROC when steps were scored, else outcome AUROC."""
        value = self.step_auroc if self.step_auroc is not None else self.outcome_auroc
        return -1.0 if value is None else value

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        def pct(x: float | None) -> str:
            return "n/a" if x is None else f"{100 * x:.1f}%"

        def num(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.3f}"

        return (
            f"step AUROC {num(self.step_auroc)}, step accuracy {pct(self.step_accuracy)}, first-error "
            f"accuracy {pct(self.first_error_accuracy)}; outcome AUROC {num(self.outcome_auroc)} "
            f"({self.solution_score}) on {self.solutions} solutions / {self.labelled_steps} labelled steps"
        )


def evaluate_step_scores(
    examples: Sequence[StepExample],
    step_scores: Sequence[Sequence[float]] | None,
    solution_scores: Sequence[float],
    solution_score: str = "product",
) -> StepEvalResult:
    """Step and outcome metrics from probabilities per step (or None) and one score per solution."""
    acc = auc = first = first_half = None
    labelled = sum(y is not None for ex in examples for y in ex.labels)
    if step_scores is not None:
        pairs = [
            (p, y)
            for ex, ps in zip(examples, step_scores, strict=True)
            for p, y in zip(ps, ex.labels, strict=True)
            if y is not None and not math.isnan(p)
        ]
        if pairs:
            acc = sum((p >= 0.5) == (y >= 0.5) for p, y in pairs) / len(pairs)
            auc = auroc([p for p, _ in pairs], [y >= 0.5 for _, y in pairs])
        hits = hits_half = n = 0
        for ex, ps in zip(examples, step_scores, strict=True):
            k = ex.first_error
            if k is None:
                continue
            valid = [i for i, p in enumerate(ps) if not math.isnan(p)]
            if not valid:
                continue
            n += 1
            hits += min(valid, key=lambda i: ps[i]) == k
            hits_half += next((i for i in valid if ps[i] < 0.5), None) == k
        first, first_half = (hits / n, hits_half / n) if n else (None, None)
    outcomes = [(s, ex.outcome_or_steps()) for ex, s in zip(examples, solution_scores, strict=True)]
    outcomes = [(s, y) for s, y in outcomes if y is not None and not math.isnan(s)]
    o_auc = auroc([s for s, _ in outcomes], [y >= 0.5 for _, y in outcomes]) if outcomes else None
    o_acc = sum((s >= 0.5) == (y >= 0.5) for s, y in outcomes) / len(outcomes) if outcomes else None
    finite = [s for s in solution_scores if not math.isnan(s)]
    mean = sum(finite) / len(finite) if finite else 0.0
    std = math.sqrt(sum((s - mean) ** 2 for s in finite) / len(finite)) if finite else 1.0
    return StepEvalResult(
        len(examples), labelled, acc, auc, first, first_half, o_auc, o_acc, solution_score, mean, std or 1.0
    )


def evaluate_steps(
    scorer: Any,
    examples: Sequence[StepExample],
    aggregation: str = "product",
    score_steps: bool | None = None,
    on_progress: Callable[[int], Any] | None = None,
) -> StepEvalResult:
    """Score held-out solutions with `scorer` (PRM or ORM) and compute `StepEvalResult`.

    A PRM scores every step in one pass and its solution score is `aggregation` of them. An ORM scores
    the whole solution (sigmoid of the reward); with ``score_steps`` (default: only for PRMs) it also
    scores every prefix, which costs one pass per step.
    """
    is_prm = bool(scorer.card and scorer.card.step_marker)
    score_steps = is_prm if score_steps is None else score_steps
    prompts = [ex.prompt for ex in examples]
    steps = [ex.steps for ex in examples]
    per_step = scorer.score_steps(prompts, steps, on_progress) if score_steps else None
    if is_prm:
        assert per_step is not None
        solution = [aggregate(ps, aggregation) for ps in per_step]
        name = aggregation
    else:
        rewards = scorer.score(prompts, [join_plain(s) for s in steps])
        solution = [1 / (1 + math.exp(-r)) for r in rewards]
        name = "reward"
    return evaluate_step_scores(examples, per_step, solution, name)
