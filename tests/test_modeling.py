"""Pooling, padding, pad tokens, save/load: the places where reward models have gone wrong before."""

from __future__ import annotations

import json

import pytest
import torch

from rewardlab.data.batching import collate
from rewardlab.model.build import build_reward_model
from rewardlab.model.saved import load_reward_model, save_reward_model
from rewardlab.scoring.scorer import Scorer

PROMPT = "What is the answer to the question?"
RESPONSES = [" The answer is good.", " no", " Sorry, I cannot help with that question because it is long."]
DECODERS = ["gpt2", "llama", "qwen2"]


def _model(tiny_backbone, kind, **kw):
    torch.manual_seed(0)
    return build_reward_model(tiny_backbone(kind), max_length=64, **kw)


@pytest.mark.parametrize("kind", ["bert", *DECODERS])
def test_scores_do_not_depend_on_batch_neighbours(tiny_backbone, kind, precision):
    model, encoder, card = _model(tiny_backbone, kind)
    scorer = Scorer(model, encoder, card, bf16=precision == "bf16")
    together = scorer.score([PROMPT] * 3, RESPONSES)
    alone = [scorer.score([PROMPT], [r])[0] for r in RESPONSES]
    assert together == pytest.approx(alone, abs=1e-5 if precision == "no" else 2e-2)
    if precision == "no":  # the texts really score differently (bf16 rounds tiny BERT's spread away)
        assert len(set(round(x, 6) for x in together)) == 3


@pytest.mark.parametrize("kind", DECODERS)
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_left_and_right_padding_give_the_same_rewards(tiny_backbone, kind, pooling):
    model, encoder, _ = _model(tiny_backbone, kind, pooling=pooling)
    model.eval()
    items = [encoder.encode(PROMPT, r) for r in RESPONSES]
    pad = encoder.tokenizer.pad_token_id
    with torch.no_grad():
        right = model(**collate(items, pad, "right"))
        left = model(**collate(items, pad, "left"))
    assert torch.allclose(left, right, atol=1e-5)


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_a_pad_token_distinct_from_eos_is_added(tiny_backbone, kind):
    from transformers import AutoTokenizer

    original = AutoTokenizer.from_pretrained(tiny_backbone(kind))
    # llama has no pad token at all; qwen2 has pad == eos (the RLHFlow issue 49 collision)
    assert original.pad_token is None or original.pad_token_id == original.eos_token_id
    model, encoder, _ = _model(tiny_backbone, kind)
    tok = encoder.tokenizer
    assert tok.pad_token_id not in (tok.eos_token_id, tok.bos_token_id)
    assert model.config.pad_token_id == tok.pad_token_id
    assert model.hf_model.get_input_embeddings().num_embeddings >= len(tok)


def test_reward_is_read_at_eos_when_pad_would_equal_eos(tiny_backbone):
    """With pad == eos, transformers' pooling would skip the final EOS; rewardlab reads it."""
    model, encoder, _ = _model(tiny_backbone, "qwen2")
    model.eval()
    enc = encoder.encode(PROMPT, RESPONSES[0])
    assert enc.input_ids[-1] == encoder.tokenizer.eos_token_id
    ids = torch.tensor([enc.input_ids])
    with torch.no_grad():
        hidden = model.hf_model.model(ids).last_hidden_state
        expected = model.hf_model.score(hidden)[0, -1, 0]
        got = model(ids, torch.ones_like(ids))[0]
    assert got == pytest.approx(expected.item(), abs=1e-6)


@pytest.mark.parametrize("kind", ["bert", *DECODERS])
def test_saved_model_scores_identically_in_plain_transformers(tiny_backbone, kind, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model, encoder, card = _model(tiny_backbone, kind)
    with torch.no_grad():  # move the head off its init so a lost head would show
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_reward_model(model, encoder, card, tmp_path)
    ours = Scorer.from_pretrained(tmp_path).score([PROMPT] * 3, RESPONSES)

    hf = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()  # no num_labels needed
    tok = AutoTokenizer.from_pretrained(tmp_path)
    assert hf.config.num_labels == 1
    if kind == "bert":
        batch = tok([PROMPT] * 3, RESPONSES, padding=True, return_tensors="pt")
    else:
        batch = tok([PROMPT + r + tok.eos_token for r in RESPONSES], padding=True, return_tensors="pt")
    with torch.no_grad():
        theirs = hf(**batch).logits[:, 0].tolist()
    assert theirs == pytest.approx(ours, abs=1e-5)
    card_json = json.loads((tmp_path / "rewardlab.json").read_text())
    assert card_json["pooling"] == ("cls" if kind == "bert" else "last")
    assert card_json["versions"]["transformers"]


def test_mean_pooling_averages_over_response_tokens_only(tiny_backbone):
    model, encoder, _ = _model(tiny_backbone, "gpt2", pooling="mean")
    model.eval()
    enc = encoder.encode(PROMPT, RESPONSES[0])
    batch = collate([enc], encoder.tokenizer.pad_token_id)
    with torch.no_grad():
        hidden = model.hf_model.transformer(batch["input_ids"]).last_hidden_state[0]
        expected = model.hf_model.score(hidden[enc.response_start : enc.response_end].mean(0))[0]
        got = model(**batch)[0]
    assert got == pytest.approx(expected.item(), abs=1e-5)


@pytest.mark.parametrize("kind", ["bert", "gpt2"])
def test_mean_all_pooling_averages_every_real_token_and_survives_save(tiny_backbone, kind, tmp_path):
    """mean_all (sentence-transformers' pooling) reads the mean over every non-pad token, prompt and
    special tokens included, whatever the padding; the saved card brings it back for the Scorer."""
    model, encoder, card = _model(tiny_backbone, kind, pooling="mean_all")
    model.eval()
    items = [encoder.encode(PROMPT, r) for r in RESPONSES]
    batch = collate(items, encoder.tokenizer.pad_token_id)
    base = getattr(model.hf_model, model.hf_model.base_model_prefix)
    head = model.hf_model.score if kind == "gpt2" else model.hf_model.classifier
    with torch.no_grad():
        got = model(**batch)
        for i, e in enumerate(items):
            ids = torch.tensor([e.input_ids])
            kw = {"token_type_ids": torch.tensor([e.token_type_ids])} if e.token_type_ids else {}
            hidden = base(ids, **kw).last_hidden_state[0]
            assert got[i].item() == pytest.approx(head(hidden.mean(0))[0].item(), abs=1e-5)
        mean_resp = build_reward_model(tiny_backbone(kind), max_length=64, pooling="mean")[0]
        mean_resp.load_state_dict(model.state_dict())
        assert not torch.allclose(mean_resp.eval()(**batch), got)  # prompt tokens really count
    save_reward_model(model, encoder, card, tmp_path)
    loaded = Scorer.from_pretrained(tmp_path)
    assert loaded.model.pooling == "mean_all"
    assert loaded.score([PROMPT] * 3, RESPONSES) == pytest.approx(got.tolist(), abs=1e-5)


def test_loading_checks_the_card(tiny_backbone, tmp_path):
    model, encoder, card = _model(tiny_backbone, "gpt2")
    save_reward_model(model, encoder, card, tmp_path)
    raw = json.loads((tmp_path / "rewardlab.json").read_text())
    (tmp_path / "rewardlab.json").write_text(json.dumps({**raw, "format_version": 99}))
    with pytest.raises(ValueError, match="upgrade rewardlab"):
        load_reward_model(tmp_path)
    (tmp_path / "rewardlab.json").write_text(json.dumps({**raw, "pooling": "max"}))
    with pytest.raises(ValueError, match="pooling"):
        load_reward_model(tmp_path)
    (tmp_path / "rewardlab.json").unlink()
    with pytest.raises(FileNotFoundError, match="not saved by rewardlab"):
        load_reward_model(tmp_path)


def test_freeze_bottom_layers(tiny_backbone):
    model, _, _ = _model(tiny_backbone, "llama", freeze_layers=1)
    hf = model.hf_model
    assert not hf.model.embed_tokens.weight.requires_grad
    assert not any(p.requires_grad for p in hf.model.layers[0].parameters())
    assert all(p.requires_grad for p in hf.model.layers[1].parameters())
    assert hf.score.weight.requires_grad
    with pytest.raises(ValueError, match="exceeds"):
        _model(tiny_backbone, "llama", freeze_layers=5)


def test_lora_trains_and_saves_the_head(tiny_backbone, tmp_path):
    from transformers import AutoModelForSequenceClassification

    model, encoder, card = _model(tiny_backbone, "llama", lora_r=4)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_" in n for n in trainable)
    assert any("score" in n for n in trainable)
    assert not any("embed_tokens" in n for n in trainable)
    scorer = Scorer(model, encoder, card)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    before = scorer.score([PROMPT] * 3, RESPONSES)
    save_reward_model(model, encoder, card, tmp_path)
    hf = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert not any("lora" in k for k in hf.state_dict())
    after = Scorer.from_pretrained(tmp_path).score([PROMPT] * 3, RESPONSES)
    assert after == pytest.approx(before, abs=1e-4)


@pytest.mark.parametrize("kind", ["bert", *DECODERS])
def test_bf16_scores_stay_near_fp32_and_keep_the_order(tiny_backbone, kind):
    """bf16 autocast (what --bf16 and GPU users get) changes a reward by rounding only: close to fp32
    relative to the spread of the rewards, and every pair ordered as fp32 orders it."""
    import itertools

    # tiny random BERT's [CLS] barely varies between texts (rewards spread by 6e-5): read the mean
    model, encoder, card = _model(tiny_backbone, kind, pooling="mean" if kind == "bert" else "last")
    responses = RESPONSES + [" help me bake bread", " the python code is wrong", " thanks"]
    fp32 = Scorer(model, encoder, card).score([PROMPT] * len(responses), responses)
    bf16 = Scorer(model, encoder, card, bf16=True).score([PROMPT] * len(responses), responses)
    spread = max(fp32) - min(fp32)
    assert max(abs(a - b) for a, b in zip(fp32, bf16, strict=True)) < 0.1 * spread
    pairs = [
        (i, j)
        for i, j in itertools.combinations(range(len(fp32)), 2)
        if abs(fp32[i] - fp32[j]) > 0.1 * spread
    ]
    assert pairs and all((fp32[i] > fp32[j]) == (bf16[i] > bf16[j]) for i, j in pairs)
