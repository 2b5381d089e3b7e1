"""Turn one raw row of any supported preference format into one `PreferenceGroup`.

Five formats, named as users pass them to `--format` (docs/formats.md has an example of each):

    pairs           {"prompt", "chosen", "rejected", "margin"?}, strings
    transcript      {"chosen", "rejected"}: whole HH-RLHF transcripts sharing their conversation
    conversational  prompt/chosen/rejected as lists of {"role", "content"} messages
                    (or only chosen/rejected, split at their last common message)
    ranking         {"prompt", "responses": [...], "ranking": [...]}, rank 1 = best, equal = tie
    ratings         {"prompt", "completions": [{"text", "score"}, ...]}; a completion may also (or
                    instead) carry per-attribute "scores": {"helpfulness": 3, ...}

`detect_format` reads the keys; `convert_row` checks types and builds the group, raising
`DataError` with the row's location and the field at fault. A row that is well-formed but carries
no preference (chosen identical to rejected, every response tied) comes back as a drop reason,
not an error: the loader counts it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from rewardlab.data.readers import json_type
from rewardlab.data.types import DataError, Message, PreferenceGroup, Text

ASSISTANT_TURN = "\n\nAssistant:"
"""The HH-RLHF turn marker a transcript's prompt ends with."""

EXPECTED_KEYS: dict[str, tuple[str, ...]] = {
    "pairs": ("prompt", "chosen", "rejected"),
    "transcript": ("chosen", "rejected"),
    "conversational": ("chosen", "rejected"),
    "ranking": ("prompt", "responses", "ranking"),
    "ratings": ("prompt", "completions"),
}
"""Required keys of each format, in the order error messages list them."""

FORMATS = tuple(EXPECTED_KEYS)

_EXPECTS = {
    "pairs": "prompt, chosen, rejected as strings, optional margin",
    "transcript": "chosen, rejected as whole '\\n\\nHuman: ... \\n\\nAssistant: ...' transcripts",
    "conversational": "chosen, rejected (and optional prompt) as lists of {role, content} messages",
    "ranking": "prompt, responses (a list), ranking (one rank per response, 1 = best)",
    "ratings": "prompt, completions (a list of {text, score} or {text, scores: {attribute: number}})",
}

MAX_MARGIN = 1e6
"""Largest margin accepted (given, or a ratings score difference): beyond it -log σ(Δ - m) is m itself
in any float type, and near 1e38 it is infinity in float32, which would log as `Infinity`."""

DROP_IDENTICAL = "chosen identical to rejected"
DROP_ALL_TIED = "all responses tied, so no pair"
DROP_IDENTICAL_PAIR = "pair of identical responses ranked apart (pair dropped, row kept)"


@dataclass
class Converted:
    """What one row became: a group, or the reason it carries no preference."""

    group: PreferenceGroup | None
    drop_reason: str | None = None
    pairs_dropped: int = 0
    """Pairs removed from a kept group because both sides were the same text (`DROP_IDENTICAL_PAIR`)."""


def detect_format(row: dict) -> str | None:
    """The format a row's keys (and, for chosen/rejected, their types) point to; None if none fits.

    responses + ranking -> ranking; completions -> ratings; chosen + rejected -> conversational when
    prompt, chosen or rejected is a list, else pairs when there is a prompt, else transcript.
    """
    if "responses" in row and "ranking" in row:
        return "ranking"
    if "completions" in row:
        return "ratings"
    if "chosen" in row and "rejected" in row:
        if any(isinstance(row.get(key), list) for key in ("prompt", "chosen", "rejected")):
            return "conversational"
        return "pairs" if "prompt" in row else "transcript"
    return None


def why_format(row: dict, fmt: str) -> str:
    """What in `row` made `detect_format` answer `fmt`, naming the fields ("field 'chosen' is a list")."""
    if fmt == "conversational":
        lists = [key for key in ("prompt", "chosen", "rejected") if isinstance(row.get(key), list)]
        return f"field{'s' if len(lists) > 1 else ''} {', '.join(repr(k) for k in lists)} " + (
            "are lists" if len(lists) > 1 else "is a list"
        )
    if fmt == "transcript":
        return "it has chosen and rejected but no 'prompt'"
    if fmt == "pairs":
        return "prompt, chosen and rejected are not lists"
    if fmt == "ranking":
        return "it has 'responses' and 'ranking'"
    return "it has 'completions'"


def describe_formats() -> str:
    """One line per format with what it expects, for "cannot tell the format" errors."""
    return "; ".join(f"{name} ({_EXPECTS[name]})" for name in FORMATS)


def convert_row(row: dict, fmt: str, source: str, margin_scale: float = 1.0) -> Converted:
    """Convert one row, read as format `fmt`, into a group; raise DataError naming `source` and the field.

    `margin_scale` multiplies the score differences that become margins in the ratings format.
    """
    if fmt not in EXPECTED_KEYS:
        raise DataError(f"unknown format '{fmt}'; --format takes one of {', '.join(FORMATS)}")
    check = _Checker(row, fmt, source)
    converted = _CONVERTERS[fmt](check, margin_scale)
    if converted.group is not None:
        group = converted.group
        group.source = source
        group.subset = check.subset()
        group.meta = {**group.meta, **{k: v for k, v in row.items() if k not in check.used}}
    return converted


# --- per-format converters --------------------------------------------------------------------------


def _pairs(check: _Checker, margin_scale: float) -> Converted:
    prompt, chosen, rejected = check.string("prompt"), check.string("chosen"), check.string("rejected")
    margin = check.optional_margin("margin")
    if chosen == rejected:
        return Converted(None, DROP_IDENTICAL)
    margins = None if margin is None else [margin]
    return Converted(PreferenceGroup(prompt, [chosen, rejected], [(0, 1)], margins=margins))


def _transcript(check: _Checker, margin_scale: float) -> Converted:
    chosen, rejected = check.string("chosen"), check.string("rejected")
    if chosen == rejected:
        return Converted(None, DROP_IDENTICAL)
    split = split_transcript(chosen, rejected)
    if split is None:
        raise check.error(
            f"chosen and rejected share no '{ASSISTANT_TURN.strip()}' turn, so there is no common prompt to "
            "split off (format 'transcript' expects HH-style '\\n\\nHuman: ... \\n\\nAssistant: ...' "
            "transcripts that differ only after an Assistant turn begins; use format 'pairs' with an "
            "explicit prompt otherwise)"
        )
    prompt, chosen_response, rejected_response = split
    return Converted(PreferenceGroup(prompt, [chosen_response, rejected_response], [(0, 1)]))


def _conversational(check: _Checker, margin_scale: float) -> Converted:
    prompt = check.messages("prompt") if "prompt" in check.row else None
    chosen, rejected = check.messages("chosen"), check.messages("rejected")
    if prompt is not None:
        if chosen == rejected:
            return Converted(None, DROP_IDENTICAL)
        return Converted(PreferenceGroup(prompt, [chosen, rejected], [(0, 1)]))
    if chosen == rejected:
        return Converted(None, DROP_IDENTICAL)
    shared = split_messages(chosen, rejected)
    if shared == 0:
        raise check.error(
            "chosen and rejected differ from their first message, so there is no shared prompt (format "
            "'conversational' without 'prompt' splits at the last common message; add a 'prompt' field)"
        )
    for key, messages in (("chosen", chosen), ("rejected", rejected)):
        if len(messages) == shared:
            raise check.error(
                f"field '{key}' has no message after the {shared} it shares with the other side, so it holds "
                "no response (format 'conversational' splits at the last common message)"
            )
    return Converted(PreferenceGroup(chosen[:shared], [chosen[shared:], rejected[shared:]], [(0, 1)]))


def _ranking(check: _Checker, margin_scale: float) -> Converted:
    prompt = check.text("prompt")
    responses = check.text_list("responses")
    ranks = check.number_list("ranking", len(responses))
    pairs = [(i, j) for i in range(len(ranks)) for j in range(len(ranks)) if ranks[i] < ranks[j]]
    return _group_or_drop(prompt, responses, pairs, None, ranks=[float(r) for r in ranks])


def _ratings(check: _Checker, margin_scale: float) -> Converted:
    prompt = check.text("prompt")
    completions = check.value("completions", list, "a list of {text, score} objects")
    if len(completions) < 2:
        raise check.error(f"field 'completions' needs at least 2 completions, got {len(completions)}")
    texts, scores, attributes = [], [], []
    for i, completion in enumerate(completions):
        field = f"completions[{i}]"
        if not isinstance(completion, dict):
            got = json_type(completion)
            raise check.error(f"field '{field}' must be an object {{text, score}}, got {got}")
        texts.append(check.text(f"{field}.text", completion.get("text"), "text" in completion))
        if "scores" in completion:
            attributes.append(_attribute_scores(check, field, completion["scores"]))
        if "score" in completion or "scores" not in completion:
            scores.append(check.number(f"{field}.score", completion.get("score"), "score" in completion))
    if attributes and len(attributes) != len(texts):
        raise check.error("either every completion or none carries 'scores' (per-attribute ratings)")
    if len(scores) != len(texts):
        if len(scores):
            raise check.error("either every completion or none carries 'score'")
        # per-attribute ratings only: pairs by their mean (--objective regression re-ranks by its weights)
        scores = [sum(a.values()) / len(a) for a in attributes]
    pairs = [(i, j) for i in range(len(scores)) for j in range(len(scores)) if scores[i] > scores[j]]
    margins = [margin_scale * (float(scores[i]) - float(scores[j])) for i, j in pairs]
    for (i, j), margin in zip(pairs, margins, strict=True):
        if not margin <= MAX_MARGIN:  # also catches a difference that overflowed to infinity
            raise check.error(
                f"fields 'completions[{i}].score' and 'completions[{j}].score' differ by {margin:.3g} (times "
                f"the margin scale), above the largest margin {MAX_MARGIN:g}; rescale the scores"
            )
    converted = _group_or_drop(prompt, texts, pairs, margins)
    if converted.group is not None:
        converted.group.meta["scores"] = scores  # the raw ratings, for calibration and diagnostics
        if attributes:
            converted.group.meta["attribute_scores"] = attributes
    return converted


def _attribute_scores(check: _Checker, field: str, value: object) -> dict[str, float]:
    """A completion's per-attribute ratings: a non-empty object of finite numbers."""
    if not isinstance(value, dict) or not value:
        got = json_type(value)
        raise check.error(
            f"field '{field}.scores' must be a non-empty object {{attribute: number}}, got {got}"
        )
    return {str(k): float(check.number(f"{field}.scores.{k}", v, True)) for k, v in value.items()}


def _group_or_drop(
    prompt: Text,
    responses: list[Text],
    pairs: list[tuple[int, int]],
    margins: list[float] | None,
    ranks: list[float] | None = None,
) -> Converted:
    """A K-way group, minus pairs whose two texts are equal; dropped when no pair is left."""
    keep = [k for k, (i, j) in enumerate(pairs) if responses[i] != responses[j]]
    removed = len(pairs) - len(keep)
    if not keep:
        return Converted(None, DROP_ALL_TIED if removed == 0 else DROP_IDENTICAL)
    pairs = [pairs[k] for k in keep]
    margins = None if margins is None else [margins[k] for k in keep]
    group = PreferenceGroup(prompt, responses, pairs, margins=margins, ranks=ranks)
    return Converted(group, pairs_dropped=removed)


_CONVERTERS = {
    "pairs": _pairs,
    "transcript": _transcript,
    "conversational": _conversational,
    "ranking": _ranking,
    "ratings": _ratings,
}


# --- splitting implicit prompts -----------------------------------------------------------------------


def split_transcript(chosen: str, rejected: str) -> tuple[str, str, str] | None:
    """Split two HH transcripts into (prompt, chosen response, rejected response); None if impossible.

    The prompt is the text both share up to and including the last "\\n\\nAssistant:" that lies wholly
    inside their common prefix; each response is the rest of its transcript, kept verbatim (its
    leading space included), so prompt + response gives back the transcript exactly. When the two
    differ inside a turn ("Sure, here..." vs "Sure, there..."), the split falls back to the start of
    that assistant turn, so the shared words stay in both responses.
    """
    common = 0
    limit = min(len(chosen), len(rejected))
    while common < limit and chosen[common] == rejected[common]:
        common += 1
    boundary = chosen.rfind(ASSISTANT_TURN, 0, common)
    if boundary < 0:
        return None
    end = boundary + len(ASSISTANT_TURN)
    return chosen[:end], chosen[end:], rejected[end:]


def split_messages(chosen: list[Message], rejected: list[Message]) -> int:
    """How many leading messages the two conversations share (the implicit prompt's length)."""
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    return shared


# --- field checks with located messages ------------------------------------------------------------------


def check_messages(messages: list, key: str, source: str) -> None:
    """Raise DataError at `source` unless every item of `messages` is a {role, content} object of strings
    with a non-empty role; the error names the item ("field 'messages[1].content' ...")."""
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            got = json_type(message)
            raise DataError(f"{source}: field '{key}[{i}]' must be a {{role, content}} object, got {got}")
        for part in ("role", "content"):
            if not isinstance(message.get(part), str):
                got = "missing" if part not in message else f"a {json_type(message[part])}"
                raise DataError(f"{source}: field '{key}[{i}].{part}' must be a string, got {got}")
        if not message["role"].strip():
            raise DataError(f"{source}: field '{key}[{i}].role' is empty")


# --- the checker -----------------------------------------------------------------------------------------


class _Checker:
    """Reads fields of one row, remembering which were used and raising located, named errors."""

    def __init__(self, row: dict, fmt: str, source: str):
        self.row, self.fmt, self.source = row, fmt, source
        self.used: set[str] = {"subset"}

    def error(self, message: str) -> DataError:
        return DataError(f"{self.source}: {message}")

    def _expects(self) -> str:
        return f"(format '{self.fmt}' expects {', '.join(EXPECTED_KEYS[self.fmt])})"

    def _get(self, key: str, value: object, present: bool | None) -> object:
        if present is None:  # a top-level field
            self.used.add(key)
            present, value = key in self.row, self.row.get(key)
        if not present:
            raise self.error(f"field '{key}' is missing {self._expects()}")
        if value is None:
            raise self.error(f"field '{key}' is null {self._expects()}")
        return value

    def value(self, key: str, kind: type, what: str, value: object = None, present: bool | None = None):
        value = self._get(key, value, present)
        if not isinstance(value, kind):
            hint = ""
            if self.fmt == "pairs" and isinstance(value, list):
                hint = "; lists of messages are format 'conversational' (pass --format conversational)"
            raise self.error(f"field '{key}' must be {what}, got {json_type(value)} {self._expects()}{hint}")
        if (kind is str and not value.strip()) or (kind is list and not value):
            raise self.error(f"field '{key}' is empty {self._expects()}")
        return value

    def string(self, key: str, value: object = None, present: bool | None = None) -> str:
        return self.value(key, str, "a string", value, present)

    def messages(self, key: str, value: object = None, present: bool | None = None) -> list[Message]:
        messages = self.value(key, list, "a list of {role, content} messages", value, present)
        check_messages(messages, key, self.source)
        return messages

    def text(self, key: str, value: object = None, present: bool | None = None) -> Text:
        """A string, or a list of messages (ranking and ratings accept either)."""
        raw = self._get(key, value, present)
        if isinstance(raw, list):
            return self.messages(key, raw, True)
        return self.value(key, str, "a string or a list of messages", raw, True)

    def text_list(self, key: str) -> list[Text]:
        items = self.value(key, list, "a list of responses")
        if len(items) < 2:
            raise self.error(f"field '{key}' needs at least 2 responses, got {len(items)}")
        return [self.text(f"{key}[{i}]", item, True) for i, item in enumerate(items)]

    def number(self, key: str, value: object = None, present: bool | None = None) -> float:
        value = self._get(key, value, present)
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise self.error(f"field '{key}' must be a finite number, got {json_type(value)} {value!r:.40}")
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an integer of hundreds of digits: no float holds it
            finite = False
        if not finite:
            shown = (
                f"{str(value)[:20]}... ({len(str(value))} digits)" if isinstance(value, int) else repr(value)
            )
            raise self.error(f"field '{key}' must be a finite number, got {shown}")
        return value

    def number_list(self, key: str, length: int) -> list[float]:
        items = self.value(key, list, "a list of numbers")
        if len(items) != length:
            raise self.error(
                f"field '{key}' has {len(items)} entries but 'responses' has {length}; ranking[i] is the "
                "rank of responses[i] (1 = best)"
            )
        return [self.number(f"{key}[{i}]", item, True) for i, item in enumerate(items)]

    def optional_margin(self, key: str) -> float | None:
        self.used.add(key)
        if self.row.get(key) is None:
            return None
        margin = self.number(key, self.row[key], True)
        if margin < 0:
            raise self.error(
                f"field '{key}' must be >= 0 (the loss is -log sigmoid(r_w - r_l - margin)), got {margin}"
            )
        if margin > MAX_MARGIN:
            raise self.error(
                f"field '{key}' is {margin:.3g}, above the largest margin {MAX_MARGIN:g} (rewards are on a "
                "scale of a few units; rescale the margins)"
            )
        return float(margin)

    def subset(self) -> str | None:
        subset = self.row.get("subset")
        if subset is None or isinstance(subset, str):
            return subset
        raise self.error(f"field 'subset' must be a string, got {json_type(subset)}")
