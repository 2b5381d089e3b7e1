"""OpenRLHF: its in-process reward model reproduced on an exported folder, the ``reward_func`` file
adapter, and ``rewardlab serve``'s /get_reward (with extra_logs) and LLaMA-Factory's route, against the
Scorer."""

from __future__ import annotations

import pytest
import torch
from integration_models import KINDS, MEAN, STD, chat_model, conversations, max_abs_diff

from rewardlab.integrations.openrlhf import make_reward_func, turn_end
from rewardlab.scoring.scorer import Scorer

TOL = 1e-4


@pytest.fixture(scope="module")
def models(tiny_backbone, tmp_path_factory):
    root = tmp_path_factory.mktemp("openrlhf")
    return {kind: chat_model(tiny_backbone, kind, root / kind) for kind in KINDS}


def rollout(tok, prompt_msgs, response_text):
    """OpenRLHF's rollout of one prompt: the dataset renders the prompt with add_generation_prompt=True
    (openrlhf/datasets/prompts_dataset.py, preprocess_data); SingleTurnAgentExecutor.execute
    (openrlhf/utils/agent.py) tokenises it with add_special_tokens=False, appends the generated ids (here
    the response and the policy's EOS) and decodes the whole with skip_special_tokens=False as the query."""
    prompt = tok.apply_chat_template(prompt_msgs, tokenize=False, add_generation_prompt=True)
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    # the policy generates the response as the template lays it out after the generation prompt
    # (the plain template's ": " + content starts with a space), then stops at its EOS
    full = tok.apply_chat_template(
        prompt_msgs + [{"role": "assistant", "content": response_text}], tokenize=False
    )
    generated = full[len(prompt) : len(full) - len(turn_end(tok))]
    action_ids = tok(generated, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    sequence = prompt_ids + action_ids
    return prompt, sequence, tok.decode(sequence, skip_special_tokens=False)


def openrlhf_rewards(folder: str, sequences: list[list[int]]) -> list[float]:
    """openrlhf/models/model.py, _get_reward_model's RewardModel.forward (no packing): the base model with
    position_ids = cumsum(mask) - 1 (masked positions 1), ``value_head`` (nn.Linear(hidden, 1, bias=False),
    loaded by its default value_head_prefix) at the last attended token, then (r - mean) / std from
    config.json under --normalize_reward. Sequences are right-padded into one batch."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(folder)
    base = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
    weight = load_file(f"{folder}/model.safetensors")["value_head.weight"]
    head = torch.nn.Linear(config.hidden_size, 1, bias=False)
    head.weight.data.copy_(weight)
    width = max(map(len, sequences))
    ids = torch.tensor([s + [0] * (width - len(s)) for s in sequences])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences])
    position_ids = mask.long().cumsum(-1) - 1
    position_ids.masked_fill_(mask == 0, 1)
    with torch.no_grad():
        hidden = base(ids, attention_mask=mask, position_ids=position_ids)["last_hidden_state"]
        values = head(hidden).squeeze(-1)
    eos_indices = mask.size(1) - 1 - mask.long().fliplr().argmax(dim=1, keepdim=True)
    reward = values.gather(dim=1, index=eos_indices).squeeze(1)
    return ((reward - config.mean) / config.std).tolist()


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_openrlhf_in_process_reward_model_equals_the_scorer(models, kind, tmp_path):
    from rewardlab.cli import main

    out = tmp_path / "orl"
    assert main(["export", models[kind], "--target", "openrlhf", "-o", str(out)]) == 0
    scorer = Scorer.from_pretrained(models[kind], device="cpu")
    tok = scorer.encoder.tokenizer
    pairs = conversations()
    sequences = [rollout(tok, p, r[0]["content"])[1] for p, r in pairs]
    raw = scorer.score([p for p, _ in pairs], [r for _, r in pairs])
    expected = [(r - MEAN) / STD for r in raw]
    assert max_abs_diff(openrlhf_rewards(str(out), sequences), expected) < TOL
    assert max(expected) - min(expected) > 0.05


@pytest.mark.parametrize("kind", KINDS)
def test_reward_func_file_completes_the_turn_and_equals_the_scorer(models, kind):
    scorer = Scorer.from_pretrained(models[kind], device="cpu")
    tok = scorer.encoder.tokenizer
    reward_func = make_reward_func(models[kind])
    pairs = conversations()
    expected = scorer.score([p for p, _ in pairs], [r for _, r in pairs])
    for (p, r), want in zip(pairs, expected, strict=True):
        prompt, _, query = rollout(tok, p, r[0]["content"])
        out = reward_func([query + tok.pad_token * 2], [prompt], [None])  # padding as batches decode it
        assert float(out["rewards"][0]) == pytest.approx(want, abs=1e-5)
        assert out["extra_logs"]["truncated"].tolist() == [0.0]
    if kind == "qwen2":
        assert turn_end(tok) == "<|im_end|>\n"


def test_get_reward_and_llamafactory_route_on_a_chat_template_model(models):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from rewardlab.serve.app import ServeSettings, create_app

    scorer = Scorer.from_pretrained(models["qwen2"], device="cpu")
    tok = scorer.encoder.tokenizer
    pairs = conversations()
    expected = scorer.score([p for p, _ in pairs], [r for _, r in pairs])
    rollouts = [rollout(tok, p, r[0]["content"]) for p, r in pairs]
    long_query = rollouts[0][2][: -len(tok.eos_token)] + " the cake" * 100 + tok.eos_token
    with TestClient(create_app(scorer, ServeSettings(model_id="tiny"))) as client:
        r = client.post(
            "/get_reward",
            json={
                "query": [q for _, _, q in rollouts] + [long_query],
                "prompts": [p for p, _, _ in rollouts] + [rollouts[0][0]],  # one per query (else 422)
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert max_abs_diff(body["rewards"][:3], expected) < 1e-5
        assert body["extra_logs"]["truncated"] == [0.0, 0.0, 0.0, 1.0]
        lengths = [len(scorer.encoder.encode(p, r).input_ids) for p, r in pairs]
        assert body["extra_logs"]["num_tokens"] == [float(n) for n in lengths] + [128.0]
        texts = [tok.apply_chat_template(p + r, tokenize=False) for p, r in pairs]
        r = client.post("/v1/score/evaluation", json={"model": "tiny", "messages": texts})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["object"] == "score.evaluation" and body["model"] == "tiny"
        assert max_abs_diff(body["scores"], expected) < 1e-5
