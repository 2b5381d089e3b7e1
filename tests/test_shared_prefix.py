"""The shared-prefix path scores and trains exactly like the plain padded path (rewardlab.data.packing)."""

from __future__ import annotations

import logging

import pytest
import torch

from rewardlab.data.batching import collate_groups, encode_groups
from rewardlab.data.encoding import Encoded
from rewardlab.data.packing import collate_shared_prefix, common_prefix_length, pack_groups, packed_length
from rewardlab.data.types import PreferenceGroup
from rewardlab.losses import grouped_bt
from rewardlab.model.build import build_reward_model
from rewardlab.model.reward_model import shared_prefix_rewards, shared_prefix_support
from rewardlab.scoring.scorer import Scorer

TOL = 1e-4
DECODERS = ("gpt2", "llama", "qwen2")

HH = "\n\nHuman: how do I bake bread at home\n\nAssistant: what flour?\n\nHuman: any flour\n\nAssistant:"
PROMPTS = [
    HH,  # a pair
    "hello world, a question about python code",  # K=4, different lengths
    # K=4 whose responses share their first words: the common prefix runs into the responses
    "explain the cake recipe",
    # longer than max_length=64 with the response: left truncation cuts the prompt differently per response
    " ".join(["the people we know make good bread and some cake"] * 6),
]
RESPONSES = [
    [" you need some bread flour and water", " sorry I cannot help"],
    [
        " python code",
        " sorry I cannot help with that question at all, please ask",
        " no",
        " the answer is 0123",
    ],
    [" the cake is good", " the cake is good and new", " the bread", " the cake"],
    [" a short one", " a much longer answer that eats into the prompt budget of this group", " ok", " no"],
]


def _model(tiny_backbone, kind, attn="sdpa", **kw):
    torch.manual_seed(0)
    model, encoder, card = build_reward_model(tiny_backbone(kind), max_length=64, **kw)
    model.hf_model.set_attn_implementation(attn)
    head = model.hf_model.score if kind != "bert" else model.hf_model.classifier
    torch.nn.init.normal_(head.weight, std=1.0)  # rewards of order 1-10, so 1e-4 is a strict tolerance
    return model, encoder, card


def _plain(scorer: Scorer) -> list[list[float]]:
    return [scorer.score([p] * len(rs), rs) for p, rs in zip(PROMPTS, RESPONSES, strict=True)]


def _close(a: list[list[float]], b: list[list[float]]) -> float:
    assert [len(x) for x in a] == [len(x) for x in b]
    return max(abs(x - y) for xs, ys in zip(a, b, strict=True) for x, y in zip(xs, ys, strict=True))


def test_common_prefix_length_by_hand():
    assert common_prefix_length([[1, 2, 3], [1, 2, 4, 5], [1, 2]]) == 2
    assert common_prefix_length([[1, 2, 3], [1, 2, 3]]) == 3
    assert common_prefix_length([[7, 2], [1, 2]]) == 0


def test_pack_layout_by_hand():
    """r0 = [1 2 3 9], r1 = [1 2 4 5 9]: prefix [1 2], row [1 2 | 3 9 | 4 5 9]."""
    r0 = Encoded([1, 2, 3, 9], None, 2, 3, False)
    r1 = Encoded([1, 2, 4, 5, 9], None, 2, 4, False)
    b = pack_groups([[r0, r1]], pad_id=0)
    assert b["input_ids"].tolist() == [[1, 2, 3, 9, 4, 5, 9]]
    assert b["position_ids"].tolist() == [[0, 1, 2, 3, 2, 3, 4]]
    assert b["pool_index"].tolist() == [3, 6]  # each response's EOS
    assert b["mean_index"].tolist() == [2, 4, 5] and b["mean_owner"].tolist() == [0, 1, 1]
    allowed = b["attention_mask"][0, 0].int().tolist()
    assert allowed == [
        [1, 0, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0, 0],
        [1, 1, 1, 1, 0, 0, 0],
        [1, 1, 0, 0, 1, 0, 0],  # r1 sees the prefix and itself, never r0
        [1, 1, 0, 0, 1, 1, 0],
        [1, 1, 0, 0, 1, 1, 1],
    ]
    # a second, shorter group is padded on the right; a pad sees only itself
    b2 = pack_groups([[r0, r1], [r0, r0]], pad_id=0)
    assert b2["input_ids"][1].tolist() == [1, 2, 3, 9, 0, 0, 0]  # identical responses share everything
    assert b2["pool_index"].tolist() == [3, 6, 7 + 3, 7 + 3]
    assert b2["attention_mask"][1, 0, 5].int().tolist() == [0, 0, 0, 0, 0, 1, 0]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("kind", DECODERS)
def test_shared_prefix_scores_equal_the_plain_path(tiny_backbone, kind, attn):
    model, encoder, card = _model(tiny_backbone, kind, attn)
    assert shared_prefix_support(model)[0], shared_prefix_support(model)[1]
    plain = _plain(Scorer(model, encoder, card, "cpu"))
    assert any(e.truncated for e in (encoder.encode(PROMPTS[3], r) for r in RESPONSES[3]))
    # every group in one forward (4 packed rows), and one group per forward
    for budget in (100_000, 1):
        shared = Scorer(model, encoder, card, "cpu", max_batch_tokens=budget).score_groups(PROMPTS, RESPONSES)
        assert _close(shared, plain) < TOL
    assert max(abs(r) for rs in plain for r in rs) > 0.5  # the tolerance is small next to the rewards


def test_a_training_groups_one_prompt_cut_lets_a_truncated_group_share_its_prompt(tiny_backbone):
    """Cut per response (scoring), a long group shares almost nothing; cut once (training), the whole
    kept prompt is shared, so the packed row is much shorter."""
    _, encoder, _ = _model(tiny_backbone, "llama")
    alone = [encoder.encode(PROMPTS[3], r) for r in RESPONSES[3]]
    group = encoder.encode_group(PROMPTS[3], RESPONSES[3])
    assert all(e.truncated for e in group)
    assert common_prefix_length([e.input_ids for e in alone]) <= 1
    assert common_prefix_length([e.input_ids for e in group]) >= group[0].response_start
    assert packed_length(group) < 0.6 * packed_length(alone)


def test_chat_messages_share_the_rendered_prompt(tiny_backbone):
    model, encoder, card = _model(tiny_backbone, "qwen2")
    scorer = Scorer(model, encoder, card, "cpu")
    prompt = [{"role": "user", "content": "how do I bake bread"}]
    responses = ["with flour", "sorry I cannot help with that"]
    groups = [encoder.encode(prompt, r) for r in responses]
    assert common_prefix_length([g.input_ids for g in groups]) >= len(
        encoder.tokenizer(encoder.render(prompt, responses[0])[0], add_special_tokens=False)["input_ids"]
    )
    assert _close(scorer.score_groups([prompt], [responses]), [scorer.score([prompt] * 2, responses)]) < TOL


def test_mean_pooling_matches(tiny_backbone):
    model, encoder, card = _model(tiny_backbone, "llama", pooling="mean")
    scorer = Scorer(model, encoder, card, "cpu")
    assert _close(scorer.score_groups(PROMPTS, RESPONSES), _plain(scorer)) < TOL


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_the_comparison_can_fail(tiny_backbone, kind):
    """Negative controls: letting responses see each other, or not restarting positions, changes rewards."""
    model, encoder, _ = _model(tiny_backbone, kind)
    groups = [[encoder.encode(PROMPTS[1], r) for r in RESPONSES[1]]]
    batch = pack_groups(groups, encoder.tokenizer.pad_token_id)
    with torch.no_grad():
        good = shared_prefix_rewards(model, batch)
        leaky = dict(batch, attention_mask=torch.ones_like(batch["attention_mask"]).tril())
        wrong_pos = dict(batch, position_ids=torch.arange(batch["input_ids"].shape[1])[None])
        assert (shared_prefix_rewards(model, leaky) - good)[1:].abs().max() > 1e-3
        assert (shared_prefix_rewards(model, wrong_pos) - good)[1:].abs().max() > 1e-3


def _groups():
    return [
        PreferenceGroup(PROMPTS[0], RESPONSES[0], [(0, 1)]),
        PreferenceGroup(PROMPTS[1], RESPONSES[1], [(0, 1), (0, 2), (3, 2), (1, 2)], margins=[0, 1, 0, 0.5]),
        PreferenceGroup(PROMPTS[3], RESPONSES[3], [(1, 0), (2, 3)]),
    ]


@pytest.mark.parametrize("kind,lora", [("gpt2", 0), ("llama", 0), ("qwen2", 0), ("llama", 4)])
def test_training_forward_and_gradients_match(tiny_backbone, kind, lora):
    model, encoder, _ = _model(tiny_backbone, kind, lora_r=lora)
    model.train()
    enc, _ = encode_groups(_groups(), encoder)
    pad = encoder.tokenizer.pad_token_id
    plain_b, shared_b = collate_groups(enc, pad), collate_shared_prefix(enc, pad)
    for key in ("pairs", "pair_group", "margins"):
        assert torch.equal(plain_b[key], shared_b[key])

    def grads(rewards, batch):
        model.zero_grad()
        grouped_bt(rewards, batch["pair_group"], batch["pairs"], batch["margins"]).backward()
        return rewards.detach(), {
            n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None
        }

    keys = ("input_ids", "attention_mask", "token_type_ids", "response_mask")
    r_plain, g_plain = grads(model(**{k: v for k, v in plain_b.items() if k in keys}), plain_b)
    r_shared, g_shared = grads(shared_prefix_rewards(model, shared_b), shared_b)
    assert r_shared.shape == r_plain.shape == (10,)
    assert (r_shared - r_plain).abs().max() < TOL
    assert g_plain.keys() == g_shared.keys() and len(g_plain) > 2  # the backbone trains, not only the head
    head = next(n for n in g_plain if "score" in n)
    assert g_plain[head].abs().max() > 1e-3
    for name in g_plain:
        assert torch.allclose(g_shared[name], g_plain[name], atol=1e-4, rtol=1e-3), name


def test_encoders_and_other_kernels_fall_back_with_a_reason(tiny_backbone, caplog):
    bert, encoder, card = _model(tiny_backbone, "bert")
    ok, why = shared_prefix_support(bert)
    assert not ok and "encoder" in why
    scorer = Scorer(bert, encoder, card, "cpu")
    with caplog.at_level(logging.INFO, logger="rewardlab.scoring.scorer"):
        assert _close(scorer.score_groups(PROMPTS[:2], RESPONSES[:2]), _plain(scorer)[:2]) < 1e-6
    assert "shared-prefix scoring off" in caplog.text and "encoder" in caplog.text
    model, *_ = _model(tiny_backbone, "llama")
    model.hf_model.config._attn_implementation = "flash_attention_2"
    assert "4D mask" in shared_prefix_support(model)[1]
    model.hf_model.config._attn_implementation = "sdpa"
    model.hf_model.config.layer_types = ["sliding_attention", "full_attention"]
    assert not shared_prefix_support(model)[0]
    with pytest.raises(ValueError, match="plain"):
        shared_prefix_rewards(model, pack_groups([[encoder.encode("a", "b")]], 0))
