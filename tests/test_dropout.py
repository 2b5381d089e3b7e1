"""Dropout is off in reward models by default: the same text scores the same in train and eval mode."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from rewardlab.model.build import build_reward_model

WITH_DROPOUT = {
    "bert": {"hidden_dropout_prob": 0.2, "attention_probs_dropout_prob": 0.2},
    "gpt2": {"resid_pdrop": 0.2, "embd_pdrop": 0.2, "attn_pdrop": 0.2},
    "llama": {"attention_dropout": 0.2},
}


def _dropout_probs(model: torch.nn.Module) -> list[float]:
    return [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]


@pytest.mark.parametrize("kind", sorted(WITH_DROPOUT))
def test_dropout_off_by_default_and_train_mode_scores_equal_eval(tiny_backbone, tmp_path, kind):
    folder = tmp_path / kind
    shutil.copytree(tiny_backbone(kind), folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **WITH_DROPOUT[kind]}))

    kept, _, _ = build_reward_model(str(folder), dropout=True)
    off, encoder, _ = build_reward_model(str(folder))
    if kind == "llama":  # no nn.Dropout: a float the attention reads
        assert max(m.attention_dropout for m in kept.modules() if hasattr(m, "attention_dropout")) == 0.2
        assert all(m.attention_dropout == 0 for m in off.modules() if hasattr(m, "attention_dropout"))
    else:
        assert any(p > 0 for p in _dropout_probs(kept))
        assert all(p == 0 for p in _dropout_probs(off))
    assert all(getattr(off.hf_model.config, k) == 0 for k in WITH_DROPOUT[kind])

    enc = encoder.encode("hello world", "a good answer to the question")
    batch = {
        "input_ids": torch.tensor([enc.input_ids]),
        "attention_mask": torch.ones(1, len(enc.input_ids), dtype=torch.long),
    }
    if getattr(enc, "token_type_ids", None) is not None:
        batch["token_type_ids"] = torch.tensor([enc.token_type_ids])
    for model, same in ((off, True), (kept, False)):
        model.train()
        torch.manual_seed(0)
        first = model(**batch)
        torch.manual_seed(1)
        second = model(**batch)
        model.eval()
        assert torch.allclose(first, second, atol=1e-6) is same
        if same:
            assert torch.allclose(first, model(**batch), atol=1e-6)
