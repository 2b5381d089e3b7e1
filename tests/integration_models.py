"""Tiny ``chat_template`` reward models and conversations shared by tests/test_integrations_*.py.

`chat_model(tiny_backbone, kind, folder)` saves a reward model built with ``layout="chat_template"``
whose head is scaled up so rewards are O(1) and differ clearly between inputs (a parity test of
near-zero rewards would pass whatever token was read). ``llama`` gets a Llama-2/3-style template that
writes the BOS text itself and closes the assistant turn with the EOS (the double-BOS case); ``qwen2``
keeps ChatML (the turn ends with ``<|im_end|>\\n``, pad == EOS repaired); ``gpt2`` has no template and
gets rewardlab's plain one.
"""

from __future__ import annotations

from pathlib import Path

import torch

MEAN, STD = 0.5, 2.0
KINDS = ("gpt2", "llama", "qwen2")

LLAMA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
    "{% if m['role'] == 'assistant' %}{{ eos_token }}{% else %}<|im_end|>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

PROMPTS = [
    [{"role": "user", "content": "how do I fix python code?"}],
    [
        {"role": "system", "content": "you are a good assistant"},
        {"role": "user", "content": "explain bread"},
        {"role": "assistant", "content": "bread is made from"},
        {"role": "user", "content": "and cake?"},
    ],
    [{"role": "user", "content": "hello"}],
]
RESPONSES = ["please explain the question", "cake is good, thanks", "hello world, who are you"]


def chat_model(tiny_backbone, kind: str, folder: Path, max_length: int = 128, **build) -> str:
    """Save a ``chat_template`` reward model of `kind` under `folder` (once) and return its path."""
    from transformers import AutoTokenizer

    from rewardlab.model.build import build_reward_model
    from rewardlab.model.reward_model import score_head
    from rewardlab.model.saved import save_reward_model

    if (folder / "rewardlab.json").exists():
        return str(folder)
    backbone = tiny_backbone(kind)
    if kind == "llama":
        tok = AutoTokenizer.from_pretrained(backbone)
        tok.chat_template = LLAMA_TEMPLATE
        templated = folder.parent / f"{folder.name}-backbone"
        if not templated.exists():
            import shutil

            shutil.copytree(backbone, templated)
            tok.save_pretrained(templated)
        backbone = str(templated)
    model, encoder, card = build_reward_model(
        backbone, max_length=max_length, layout="chat_template", **build
    )
    torch.manual_seed(1)
    with torch.no_grad():
        head = score_head(model.hf_model)
        head.weight.normal_(0, 1.0)
    card.reward_mean, card.reward_std, card.reward_stats_from = MEAN, STD, "test fixture"
    save_reward_model(model, encoder, card, folder)
    return str(folder)


def conversations() -> list[tuple[list[dict], list[dict]]]:
    """(prompt messages, response messages) pairs."""
    return [(p, [{"role": "assistant", "content": r}]) for p, r in zip(PROMPTS, RESPONSES, strict=True)]


def hf_last_token_rewards(model, input_ids: list[list[int]]) -> list[float]:
    """One sequence at a time through the plain transformers model, head read at the last token: what
    an engine that batches without padding (vLLM's LastPool) computes."""
    out = []
    with torch.no_grad():
        for ids in input_ids:
            logits = model(input_ids=torch.tensor([ids])).logits
            out.append(float(logits[0, 0]))
    return out


def max_abs_diff(a, b) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))
