"""Real TRL: ``GRPOTrainer._calculate_rewards`` scores the same batch with the exported folder as a
reward model (TRL's own tokenisation and pooling) and with rewardlab's reward functions; all equal the
Scorer. The trainer is built without ``__init__`` (no policy, no dataset): only the attributes that
method reads are set, so what runs is TRL's code, unchanged."""

from __future__ import annotations

import types

import pytest
import torch
from integration_models import KINDS, chat_model, conversations, max_abs_diff

pytest.importorskip("trl")

from rewardlab.integrations.trl import AsyncRewardlabReward, RewardlabReward  # noqa: E402
from rewardlab.scoring.scorer import Scorer  # noqa: E402

TOL = 1e-4


@pytest.fixture(scope="module")
def models(tiny_backbone, tmp_path_factory):
    from rewardlab.cli import main

    root = tmp_path_factory.mktemp("trl")
    out = {}
    for kind in KINDS:
        folder = chat_model(tiny_backbone, kind, root / kind)
        assert main(["export", folder, "--target", "trl", "-o", str(root / f"{kind}-trl")]) == 0
        out[kind] = (folder, str(root / f"{kind}-trl"))
    return out


def grpo_calculate_rewards(reward_funcs, processing_classes, prompts, completions, completion_ids):
    """Run trl/trainer/grpo_trainer.py GRPOTrainer._calculate_rewards on a bare trainer object."""
    from accelerate import Accelerator
    from transformers import TrainerState
    from trl import GRPOTrainer
    from trl.trainer.utils import shutdown_event_loop_in_daemon, start_event_loop_in_daemon

    trainer = object.__new__(GRPOTrainer)
    trainer.accelerator = Accelerator(cpu=True)
    trainer.args = types.SimpleNamespace(device=torch.device("cpu"), report_to=[])
    trainer.is_deepspeed_enabled = False
    trainer.state = TrainerState()
    trainer.reward_funcs = reward_funcs
    trainer.reward_processing_classes = processing_classes
    trainer.reward_func_names = [getattr(f, "__name__", "rm") for f in reward_funcs]
    trainer._log_completion_extra = lambda *a, **k: None
    trainer._log_metric = lambda *a, **k: None
    trainer.environments = None
    trainer.chat_template_kwargs = {}
    thread, loop, ready = start_event_loop_in_daemon(name="test-trl")
    ready.wait()
    trainer.async_loop = loop
    try:
        inputs = [{"prompt": p, "completion": c} for p, c in zip(prompts, completions, strict=True)]
        out = trainer._calculate_rewards(inputs, prompts, completions, completion_ids)
    finally:
        shutdown_event_loop_in_daemon(thread, loop)
    return out.T.tolist()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("conversational", [True, False])
def test_trl_reward_model_path_and_rewardlab_functions_equal_the_scorer(models, kind, conversational):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder, exported = models[kind]
    scorer = Scorer.from_pretrained(folder, device="cpu")
    if conversational:
        prompts = [p for p, _ in conversations()]
        completions = [r for _, r in conversations()]
    else:
        prompts = ["Question: how do I fix python code?\nAnswer:", "explain bread.", "hello"]
        completions = [" please explain the question", " bread is good", " world, who are you"]
    tok = AutoTokenizer.from_pretrained(exported)
    completion_ids = [
        tok(c if isinstance(c, str) else c[0]["content"], add_special_tokens=False)["input_ids"]
        for c in completions
    ]
    # TRL loads a reward model from a path like this (grpo_trainer.py, GRPOTrainer.__init__)
    rm = AutoModelForSequenceClassification.from_pretrained(exported, num_labels=1).eval()
    rm.config.pad_token_id = tok.pad_token_id
    funcs = [rm, RewardlabReward(scorer), AsyncRewardlabReward(scorer)]
    by_model, by_func, by_async = grpo_calculate_rewards(
        funcs, [tok, None, None], prompts, completions, completion_ids
    )
    expected = scorer.score(prompts, completions)
    assert max_abs_diff(by_model, expected) < TOL
    assert max_abs_diff(by_func, expected) < 1e-6 and max_abs_diff(by_async, expected) < 1e-6
    assert max(expected) - min(expected) > 0.1


def test_completion_ids_alone_are_decoded_and_normalize_uses_the_card(models):
    folder, _ = models["qwen2"]
    scorer = Scorer.from_pretrained(folder, device="cpu")
    reward = RewardlabReward(scorer)
    prompts = [p for p, _ in conversations()]
    texts = [r[0]["content"] for _, r in conversations()]
    ids = [scorer.encoder.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert reward(prompts, completion_ids=ids) == pytest.approx(
        reward(prompts, [r for _, r in conversations()])
    )
    raw = reward(prompts, [r for _, r in conversations()])
    card = scorer.card
    normed = RewardlabReward(scorer, normalize=True)(prompts, [r for _, r in conversations()])
    assert normed == pytest.approx([(r - card.reward_mean) / card.reward_std for r in raw])
    with pytest.raises(ValueError, match="completion_ids"):
        reward(prompts)
