"""OpenRLHF: a ``reward_func(queries, prompts, labels)`` file that scores in process, no server.

    export REWARDLAB_MODEL=runs/rm
    python -m openrlhf.cli.train_ppo_ray ... --remote_rm_url "$(python -c \
        'import rewardlab.integrations.openrlhf as m; print(m.__file__)')"

OpenRLHF's ``SingleTurnAgentExecutor`` (openrlhf/utils/agent.py) loads a ``--remote_rm_url`` ending in
``.py`` and calls its ``reward_func([query], [prompt], [label])`` in a worker thread, where
``query = tokenizer.decode(prompt_ids + action_ids, skip_special_tokens=False)``: the templated prompt
with its BOS text, the response, and the policy's EOS (and pad) text. `split_queries` turns that back
into what the model was trained on (``rewardlab serve``'s ``/get_reward`` uses it too):

- ``rewardlab`` layout: pad and EOS strings stripped from both ends (the layout appends its own EOS; a
  BOS the prompt carries is not doubled), the query cut at the prompt so left truncation cuts the prompt;
- ``chat_template`` layout: the text is kept as the template renders it: a response that ended with the
  EOS gets the template's whole end of turn instead (ChatML: ``<|im_end|>`` -> ``<|im_end|>\\n``), so the
  reward is read at the same token as in training, verl and TRL.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewardlab.integrations.local import normalized, scorer_for


def turn_end(tokenizer: Any) -> str:
    """What the chat template writes after an assistant message's content (ChatML ``<|im_end|>\\n``,
    the plain template the EOS), found by rendering a probe conversation."""
    probe = "rewardlab-probe-7f3a"
    user = [{"role": "user", "content": "q"}]
    full = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": probe}], tokenize=False)
    at = full.rfind(probe)
    return full[at + len(probe) :] if at >= 0 else ""


def strip_special(text: str, tokens: Sequence[str | None]) -> str:
    """Remove pad/EOS token strings from both ends of an OpenRLHF query (the encoder adds EOS itself).

    OpenRLHF's own server calls ``str.strip(pad_token)``, which strips *characters* of the token
    string (so ``"</s>"`` also eats a trailing ``"s"``); this removes whole tokens only.
    """
    tokens = [t for t in tokens if t]
    changed = True
    while changed:
        changed = False
        for t in tokens:
            if text.endswith(t):
                text, changed = text[: -len(t)], True
            if text.startswith(t):
                text, changed = text[len(t) :], True
    return text


def split_queries(
    tokenizer: Any, layout: str, queries: Sequence[str], prompts: Sequence[str] | None = None
) -> tuple[list[str], list[str]]:
    """(prompts, responses) as the model's layout expects them, from OpenRLHF queries (module docstring)."""
    pad, eos = tokenizer.pad_token, tokenizer.eos_token
    given = list(prompts) if prompts is not None and len(prompts) == len(queries) else [""] * len(queries)
    out_p, out_r = [], []
    if layout == "chat_template":
        end = turn_end(tokenizer)
        for p, q in zip(given, queries, strict=True):
            q = _strip_end(q, [pad])
            if eos and q.endswith(eos):
                q = q[: -len(eos)] + end
            p = _strip_end(p, [pad]) if p and q.startswith(_strip_end(p, [pad])) else ""
            out_p.append(p)
            out_r.append(q[len(p) :])
        return out_p, out_r
    for p, q in zip(given, queries, strict=True):
        q = strip_special(q, (pad, eos))
        p = strip_special(p, (pad, eos)) if p else ""
        if p and q.startswith(p):
            out_p.append(p)
            out_r.append(q[len(p) :])
        else:
            out_p.append("")
            out_r.append(q)
    return out_p, out_r


def _strip_end(text: str, tokens: Sequence[str | None]) -> str:
    changed = True
    while changed:
        changed = False
        for t in tokens:
            if t and text.endswith(t):
                text, changed = text[: -len(t)], True
    return text


def make_reward_func(
    model: str | Path | None = None, normalize: bool = False, device: str | None = None
) -> Any:
    """A ``reward_func(queries, prompts, labels)`` for `model` (default: $REWARDLAB_MODEL)."""

    def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any] = ()) -> dict:
        import torch

        scorer, lock = scorer_for(model, device)
        p, r = split_queries(scorer.encoder.tokenizer, scorer.encoder.layout_name, queries, prompts)
        encoded = [scorer.encoder.encode(a, b) for a, b in zip(p, r, strict=True)]
        with lock:
            raw = scorer.score_encoded(encoded)
        rewards = normalized(raw, scorer.card, normalize)
        return {
            "rewards": torch.tensor(rewards),
            "scores": torch.tensor(rewards),
            "extra_logs": {
                "raw_reward": torch.tensor(raw),
                "truncated": torch.tensor([float(e.truncated) for e in encoded]),
                "num_tokens": torch.tensor([float(len(e.input_ids)) for e in encoded]),
            },
        }

    return reward_func


def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any] = ()) -> dict:
    """OpenRLHF's entry point: scores with the model folder in $REWARDLAB_MODEL (loaded once)."""
    return make_reward_func()(queries, prompts, labels)
