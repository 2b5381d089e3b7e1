"""int8 dynamic quantisation for CPU scoring: the layers are really quantised and rewards stay close."""

from __future__ import annotations

import pytest
import torch
from torch.ao.nn.quantized.dynamic import Linear as QuantizedLinear

from rewardlab.model.build import build_reward_model
from rewardlab.model.saved import save_reward_model
from rewardlab.scoring.scorer import Scorer, quantize_dynamic_int8

PROMPTS = ["hello world, a question about python code"] * 6
RESPONSES = [" python code", " sorry I cannot help", " no", " the answer is 0123", " good bread", " the cake"]

# Measured on the tiny random backbones (hidden size 32) with a head of std 1 (rewards up to ~11), seeds
# 0-5: max |int8 - fp32| is 0.6-8.9% of the largest |reward| over GPT-2, Llama, Qwen2 and BERT.
# (MiniLM trained on HH, 120 texts: max |diff| 0.17, reward std 0.36; see benchmarks/score_vs_pipeline.py.)
REL_TOL = 0.1


def _model(tiny_backbone, kind):
    torch.manual_seed(0)
    model, encoder, card = build_reward_model(tiny_backbone(kind), max_length=64)
    head = model.hf_model.score if kind != "bert" else model.hf_model.classifier
    torch.nn.init.normal_(head.weight, std=1.0)
    return model, encoder, card


@pytest.mark.parametrize("kind,quantised", [("llama", 15), ("qwen2", 15), ("bert", 14), ("gpt2", 1)])
def test_int8_rewards_are_close_and_linears_are_quantised(tiny_backbone, kind, quantised):
    model, encoder, card = _model(tiny_backbone, kind)
    fp32 = Scorer(model, encoder, card, "cpu").score(PROMPTS, RESPONSES)
    scorer = Scorer(model, encoder, card, "cpu", quantize="int8")
    int8 = scorer.score(PROMPTS, RESPONSES)
    # every nn.Linear became an int8 one (GPT-2's attention/MLP are Conv1D: only its head is a Linear)
    assert sum(isinstance(m, QuantizedLinear) for m in scorer.model.modules()) == quantised
    assert not any(isinstance(m, torch.nn.Linear) for m in scorer.model.modules())
    assert any(isinstance(m, torch.nn.Linear) for m in model.modules())  # the fp32 model is untouched
    diff = max(abs(a - b) for a, b in zip(fp32, int8, strict=True))
    assert 1e-5 < diff < REL_TOL * max(abs(r) for r in fp32)  # changed (really int8), but only a little


def test_from_pretrained_quantises(tiny_backbone, tmp_path):
    model, encoder, card = _model(tiny_backbone, "llama")
    save_reward_model(model, encoder, card, tmp_path)
    scorer = Scorer.from_pretrained(tmp_path, device="cpu", quantize="int8")
    assert isinstance(scorer.model.hf_model.score, QuantizedLinear)
    fp32 = Scorer.from_pretrained(tmp_path, device="cpu").score(PROMPTS, RESPONSES)
    int8 = scorer.score(PROMPTS, RESPONSES)
    assert max(abs(a - b) for a, b in zip(fp32, int8, strict=True)) < REL_TOL * max(map(abs, fp32))


def test_int8_errors_name_the_flag(tiny_backbone):
    model, *_ = _model(tiny_backbone, "llama")
    with pytest.raises(ValueError, match="CPU only.*--device cpu"):
        quantize_dynamic_int8(model, torch.device("cuda"), "int8", bf16=False)
    with pytest.raises(ValueError, match="--quantize must be int8"):
        quantize_dynamic_int8(model, torch.device("cpu"), "int4", bf16=False)
    with pytest.raises(ValueError, match="--bf16"):
        quantize_dynamic_int8(model, torch.device("cpu"), "int8", bf16=True)


def test_score_verb_passes_quantize(tiny_backbone, tmp_path):
    import json

    from rewardlab.cli import main

    model, encoder, card = _model(tiny_backbone, "llama")
    save_reward_model(model, encoder, card, tmp_path / "rm")
    rows = tmp_path / "in.jsonl"
    rows.write_text(
        "".join(
            json.dumps({"prompt": p, "response": r}) + "\n" for p, r in zip(PROMPTS, RESPONSES, strict=True)
        )
    )
    for flags, scorer in (
        ([], Scorer.from_pretrained(tmp_path / "rm", device="cpu")),
        (["--quantize", "int8"], Scorer.from_pretrained(tmp_path / "rm", device="cpu", quantize="int8")),
    ):
        out = tmp_path / "out.jsonl"
        assert (
            main(["score", str(tmp_path / "rm"), str(rows), "-o", str(out), "--device", "cpu", *flags]) == 0
        )
        got = [json.loads(line)["reward"] for line in out.read_text().splitlines()]
        assert max(abs(a - b) for a, b in zip(got, scorer.score(PROMPTS, RESPONSES), strict=True)) < 1e-5


def test_choosing_int8_warns_that_it_reorders_pairs(tiny_backbone, tmp_path):
    """int8 reordered 28% of HH pairs in benchmarks/score_vs_pipeline.py: the CLI must say so when chosen."""
    import subprocess
    import sys

    model, encoder, card = _model(tiny_backbone, "llama")
    save_reward_model(model, encoder, card, tmp_path / "rm")
    rows = tmp_path / "in.jsonl"
    rows.write_text('{"prompt": "hello", "response": "world"}\n')
    base = [sys.executable, "-m", "rewardlab", "score", str(tmp_path / "rm"), str(rows), "--device", "cpu"]
    quiet = subprocess.run(base, capture_output=True, text=True, check=True)
    loud = subprocess.run([*base, "--quantize", "int8"], capture_output=True, text=True, check=True)
    assert "changes which response wins" not in quiet.stderr
    assert "--quantize int8 changes which response wins" in loud.stderr and "72%" in loud.stderr
