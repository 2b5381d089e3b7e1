"""The pre-flight memory estimate: what it counts, and that training says it (and warns) before step 1."""

from __future__ import annotations

import pytest
from test_train import _cfg, _Messages

from rewardlab.model.build import build_reward_model
from rewardlab.training import memory
from rewardlab.training.memory import (
    estimate_training_memory,
    largest_batch_tokens,
    memory_warning,
)
from rewardlab.training.run import train


def test_estimate_counts_weights_gradients_and_adam_of_what_trains(tiny_backbone):
    model, _, _ = build_reward_model(tiny_backbone("bert"), max_length=32)
    n = sum(p.numel() for p in model.parameters())
    full = estimate_training_memory(model, 1000)
    assert full.weights == full.gradients == 4 * n  # fp32 weights, all trainable
    assert full.optimizer == 2 * 4 * n
    # activations grow with the tokens of the largest batch; frozen weights take no gradient or moments
    assert estimate_training_memory(model, 2000).activations == pytest.approx(2 * full.activations)
    model_frozen, _, _ = build_reward_model(tiny_backbone("bert"), max_length=32, freeze_layers=1)
    frozen = estimate_training_memory(model_frozen, 1000)
    assert frozen.gradients < full.gradients and frozen.optimizer < full.optimizer
    assert estimate_training_memory(model, 1000, checkpointing=True).activations < full.activations


def test_largest_batch_is_the_longest_items_together():
    assert largest_batch_tokens([5, 90, 7, 60, 30], batch_size=2) == 150
    assert largest_batch_tokens([5, 9], batch_size=4) == 14


def test_warning_only_when_the_estimate_exceeds_what_is_free():
    est = memory.MemoryEstimate(weights=1e9, gradients=1e9, optimizer=2e9, activations=4e9, tokens=4096)
    assert memory_warning(est, 9e9, "MemAvailable") is None
    assert memory_warning(est, None, "unknown") is None
    assert memory_warning(est, 7e9, "MemAvailable", resident=1e9) is None  # the weights are loaded already
    text = memory_warning(est, 2**32, "MemAvailable")
    assert "7.5 GiB" in text and "4.0 GiB is free" in text
    for flag in ("--batch-size", "--grad-accum", "--max-length", "--gradient-checkpointing"):
        assert flag in text


def test_training_states_the_estimate_and_warns_when_it_cannot_fit(tiny_backbone, tmp_path, monkeypatch):
    messages = _Messages()
    train(_cfg(tiny_backbone, tmp_path, max_steps=1, output_dir=str(tmp_path / "a")), messages)
    line = next(m for m in messages.lines if m.startswith("memory: about"))
    assert "tokens in the largest micro-batch" in line
    assert not any("run out of memory" in m for m in messages.lines)  # a tiny model fits anywhere

    monkeypatch.setattr(memory, "available_memory", lambda device: (1024.0, "MemAvailable"))
    tight = _Messages()
    train(_cfg(tiny_backbone, tmp_path, max_steps=1, output_dir=str(tmp_path / "b")), tight)
    warning = next(m for m in tight.lines if "run out of memory" in m)
    assert warning.startswith("warning:") and "--batch-size" in warning
    estimate_at = next(i for i, m in enumerate(tight.lines) if m.startswith("memory: about"))
    assert tight.lines.index(warning) == estimate_at + 1


def test_gated_mlps_keep_twice_the_inner_width(tiny_backbone):
    """SwiGLU blocks (Llama, Qwen2: gate_proj and up_proj) keep two inner-width tensors, GELU one."""
    llama, _, _ = build_reward_model(tiny_backbone("llama"), max_length=32)
    c = llama.hf_model.config
    per_token = c.num_hidden_layers * (
        memory.HIDDEN_BYTES * c.hidden_size + memory.INNER_BYTES * 2 * c.intermediate_size
    )
    assert estimate_training_memory(llama, 100).activations == pytest.approx(100 * per_token)
