"""Cheap flags users ask about; flagged, never dropped by default (``--drop`` can add them).

- truncated: the length policy hides what tells a pair apart: both sides encode to the same ids, or
  both responses lose tokens of their own (under ``left`` truncation a response longer than the budget
  keeps only its end; under ``right`` the end is cut), so the model never reads either in full.
- empty: a response with no letter or digit ("...", "-", an empty message).
- boilerplate: a response from a short list of placeholders (lorem ipsum, [deleted], N/A, ...), or the
  same normalised response answering at least max(5, 1%) of the distinct prompts.
- refusal: the chosen response refuses ("I'm sorry, but I can't...") a prompt that holds none of a
  short list of harm cues (weapons, drugs, violence, crime, self-harm...). A refusal of a harmful
  prompt is what harmlessness data wants, so it is not flagged.
"""

from __future__ import annotations

import copy
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from rewardlab.curate.duplicates import normalize
from rewardlab.curate.flags import Flag
from rewardlab.data.types import PreferenceGroup, Text

PLACEHOLDERS = re.compile(
    r"^(lorem ipsum.*|\[deleted\]|\[removed\]|n/?a|none|null|todo|tbd|test|placeholder|<response>|"
    r"response|answer|\.\.\.|no comment)$"
)
REFUSAL = re.compile(
    r"\b(i'?m sorry,? but|i am sorry,? but|i (cannot|can'?t|won'?t|will not|am unable to|'m unable to|"
    r"am not able to|'m not able to) (help|assist|provide|do|answer|comply|fulfil|fulfill|support)|"
    r"as an ai( language model)?,? i (cannot|can'?t|don'?t|do not)|i must decline|i'?m not comfortable)"
)
HARM_CUES = re.compile(
    r"\b(kill|murder|bomb|weapon|gun|shoot|stab|poison|drug|meth|cocaine|heroin|steal|rob|hack|"
    r"illegal|suicide|self-harm|hurt|harm|attack|abuse|racist|slur|nazi|terror|explosive|fraud|"
    r"launder|porn|sex|rape|cheat|revenge|violence|violent|threat|torture|kidnap|smuggl|counterfeit)"
)


def _flat(text: Text) -> str:
    if isinstance(text, list):
        return " ".join(str(m.get("content", "")) for m in text)
    return text


def truncated(groups: Sequence[PreferenceGroup], encoder: Any) -> list[Flag]:
    full = copy.copy(encoder)
    full.max_length = 10**9
    flags = []
    for g in groups:
        enc = [encoder.encode(g.prompt, r) for r in g.responses]
        whole = [full.encode(g.prompt, r) for r in g.responses]
        cut = [
            (e.response_end - e.response_start) < (w.response_end - w.response_start)
            for e, w in zip(enc, whole, strict=True)
        ]
        for w, lose in g.pairs:
            if enc[w].input_ids == enc[lose].input_ids:
                why = (
                    f"both sides encode to the same {len(enc[w].input_ids)} ids at max length "
                    f"{encoder.max_length}"
                )
            elif cut[w] and cut[lose]:
                why = (
                    f"both responses are cut by {encoder.truncation} truncation at max length "
                    f"{encoder.max_length} "
                    f"({whole[w].response_end - whole[w].response_start} and "
                    f"{whole[lose].response_end - whole[lose].response_start} response tokens)"
                )
            else:
                continue
            flags.append(Flag(g.source, "truncated", 1.0, why))
            break
    return flags


def empty_and_boilerplate(groups: Sequence[PreferenceGroup]) -> list[Flag]:
    prompts_of: dict[str, set[str]] = defaultdict(set)
    for g in groups:
        p = normalize(g.prompt)
        for r in g.responses:
            prompts_of[normalize(r)].add(p)
    n_prompts = len({normalize(g.prompt) for g in groups})
    common = max(5, int(0.01 * n_prompts))
    flags = []
    for g in groups:
        for k, r in enumerate(g.responses):
            text = normalize(_flat(r))
            if not re.search(r"\w", text):
                flags.append(Flag(g.source, "empty", 1.0, f"response {k} has no letter or digit: {text!r}"))
                break
            if PLACEHOLDERS.match(text.strip(" .!")):
                flags.append(
                    Flag(g.source, "boilerplate", 1.0, f"response {k} is a placeholder: {text[:60]!r}")
                )
                break
            seen = len(prompts_of[normalize(r)])
            if seen >= common:
                flags.append(
                    Flag(
                        g.source,
                        "boilerplate",
                        seen / max(1, n_prompts),
                        f"response {k} answers {seen} distinct prompts: {text[:60]!r}",
                    )
                )
                break
    return flags


def refusals(groups: Sequence[PreferenceGroup]) -> list[Flag]:
    flags = []
    for g in groups:
        prompt = normalize(_flat(g.prompt) if isinstance(g.prompt, list) else g.prompt)
        if HARM_CUES.search(prompt):
            continue
        winners = Counter(w for w, _ in g.pairs)
        if not winners:
            continue
        best = winners.most_common(1)[0][0]
        text = normalize(_flat(g.responses[best]))
        match = REFUSAL.search(text)
        if match:
            flags.append(
                Flag(
                    g.source, "refusal", 1.0, f"chosen refuses ({match.group(0)!r}) a prompt with no harm cue"
                )
            )
    return flags
