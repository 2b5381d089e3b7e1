"""Saving from sharded weights, checked on CPU: FSDP2 (``fully_shard`` over gloo, one unit per transformer
block as configs/accelerate/fsdp-8gpu.yaml asks) on 2 processes, evaluated with Scorer between
training steps, gathered into a full state dict the way ``accelerator.get_state_dict`` does for FSDP2,
and saved by `save_reward_model`: the folder loads in plain transformers and scores as the sharded
model did.

accelerate itself only enables FSDP on accelerators, so this drives torch's FSDP2 directly; the
accelerate wiring is covered by tests/test_accelerate_configs.py and, on GPUs, not at all (docs/scaling.md).
Run as a script, this file is the worker that torchrun starts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from launch import HAVE_TORCHRUN, torchrun

PROMPTS = ["Human: hi\n\nAssistant:", "Human: help with bread?\n\nAssistant:", ""]
RESPONSES = [" Thanks, here is help.", " No.", "hello world answer question"]


def test_state_dict_argument_saves_what_the_model_holds(tiny_backbone, tmp_path):
    """Single process: passing the RewardModel's own state dict (keys 'hf_model.…') writes the same
    weights as the plain save, and the folder still loads in AutoModelForSequenceClassification."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    from rewardlab.model.build import build_reward_model
    from rewardlab.model.saved import save_reward_model

    model, encoder, card = build_reward_model(tiny_backbone("gpt2"), max_length=32)
    with torch.no_grad():
        model.hf_model.score.weight.fill_(0.25)  # distinct from a fresh random head
    save_reward_model(model, encoder, card, tmp_path / "plain")
    save_reward_model(model, encoder, card, tmp_path / "given", state_dict=model.state_dict())
    plain, given = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("plain", "given"))
    assert sorted(plain) == sorted(given)
    assert all(torch.equal(plain[k], given[k]) for k in plain)
    hf = AutoModelForSequenceClassification.from_pretrained(tmp_path / "given")
    assert hf.config.num_labels == 1 and torch.all(hf.score.weight == 0.25)


@pytest.mark.skipif(not HAVE_TORCHRUN, reason="torchrun not installed")
def test_fsdp2_sharded_model_evaluates_trains_and_saves_full_weights(tiny_backbone, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification

    from rewardlab.scoring.scorer import Scorer

    out = tmp_path / "saved"
    proc = torchrun([__file__, tiny_backbone("llama"), str(out)])
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads((out / "worker.json").read_text())
    assert report["sharded"] == ["hf_model.model.layers.0", "hf_model.model.layers.1", ""]
    assert report["before"] == pytest.approx(report["reference"], abs=1e-5)  # sharded eval = unsharded
    assert report["after"] != pytest.approx(report["before"], abs=1e-4)  # the training steps changed it

    scorer = Scorer.from_pretrained(out, device="cpu")  # what rewardlab eval/score/serve load
    assert scorer.score(PROMPTS, RESPONSES) == pytest.approx(report["after"], abs=1e-5)
    hf = AutoModelForSequenceClassification.from_pretrained(out)  # plain transformers, full shapes
    assert hf.num_parameters() == report["parameters"]
    assert isinstance(hf.score.weight, torch.nn.Parameter) and hf.score.weight.shape == (1, 32)


def _worker(backbone: str, out: str) -> None:
    """Each process: build, shard (FSDP2), score, train 2 steps, score, gather, rank 0 saves."""
    import torch
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from rewardlab.data.batching import collate
    from rewardlab.model.build import build_reward_model
    from rewardlab.model.saved import save_reward_model
    from rewardlab.scoring.scorer import Scorer

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)  # the same fresh head on both processes
    model, encoder, card = build_reward_model(backbone, max_length=48)
    reference = Scorer(model, encoder, card, device="cpu").score(PROMPTS, RESPONSES)
    parameters = sum(p.numel() for p in model.parameters())

    # What accelerate's TRANSFORMER_BASED_WRAP does with FSDP2: each block named by the model's
    # _no_split_modules becomes a unit, then the root.
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    blocks = set(model._no_split_modules or [])
    sharded = [name for name, m in model.named_modules() if type(m).__name__ in blocks]
    for name in sharded:
        fully_shard(model.get_submodule(name), mesh=mesh)
    fully_shard(model, mesh=mesh)
    sharded.append("")

    scorer = Scorer(model, encoder, card, device="cpu")
    before = scorer.score(PROMPTS, RESPONSES)  # evaluation between training steps, as train.py does
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    batch = collate(
        [encoder.encode(p, r) for p, r in zip(PROMPTS[:2], RESPONSES[:2], strict=True)],
        encoder.tokenizer.pad_token_id,
    )
    for _ in range(2):
        model.train()
        rewards = model(batch["input_ids"], batch["attention_mask"], None, batch["response_mask"])
        loss = -torch.nn.functional.logsigmoid(rewards[1] - rewards[0])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        scorer.score(PROMPTS[:1], RESPONSES[:1])
    after = scorer.score(PROMPTS, RESPONSES)

    # accelerate's get_state_dict for FSDP2 (accelerator.py): full, gathered on rank 0, on the CPU.
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, cpu_offload=True)
    state = get_model_state_dict(model, options=options)
    if rank == 0:
        save_reward_model(model, encoder, card, out, state_dict=state)
        report = {
            "reference": reference,
            "before": before,
            "after": after,
            "sharded": sharded,
            "parameters": parameters,
        }
        Path(out, "worker.json").write_text(json.dumps(report))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2])
