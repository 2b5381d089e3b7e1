"""How a solution's steps become tokens for a process reward model (PRM): the step-end marker, the text
layout, the marker positions that survive truncation, and training batches of labelled steps.

A PRM is an ordinary rewardlab reward model (same backbone, same scalar head, same saved folder) that
is read at more than one place: the solution's steps are joined as ``step 1<M>\\nstep 2<M>...`` where
``<M>`` is `STEP_MARKER`, a special token added to the tokenizer, and the head's logit at each marker
token is that step's score (sigmoid → P(step correct)). The text is built by `join_steps` and tokenised
by `TextEncoder` in training and at inference alike, for encoders and decoders, so the marker can never
differ between the two. The prompt carries no marker and no label.

    training:   train(cfg with objective="steps") → prm.objective.StepObjective → `losses.step_bce`
    inference:  Scorer.score_steps(prompts, step_lists) → probabilities per step → `prm.evaluate.aggregate`

An outcome reward model (ORM, objective="outcome") reads the whole solution, ``join_plain(steps)``, at
the usual pooled position and is trained with `losses.outcome_bce`; its step scores are the scores of the
solution's prefixes. docs/prm.md explains the choices.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rewardlab.data.encoding import Encoded, TextEncoder
from rewardlab.data.steps import StepExample

STEP_MARKER = "<|rewardlab_step|>"
STEP_SCORES_HOWTO = (
    "sigmoid of the head applied to the last hidden state at each step-marker token (encoders: the "
    "pooler's dense+tanh, then the classifier), for the response '\\n'.join(step + step_marker); "
    "rewardlab: Scorer.score_steps"
)
"""Written into a PRM's rewardlab.json (`step_scores`) so the folder can be read without rewardlab."""


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
