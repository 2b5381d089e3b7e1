"""Truncation policy, special-token layout and chat rendering of `TextEncoder`."""

from __future__ import annotations

import pytest

from rewardlab.data.batching import batch_indices, encode_groups, token_budget_batches
from rewardlab.data.encoding import render_plain
from rewardlab.data.types import PreferenceGroup
from rewardlab.model.build import build_reward_model


def _encoder(tiny_backbone, kind, **kw):
    _, enc, _ = build_reward_model(tiny_backbone(kind), max_length=kw.pop("max_length", 64))
    for k, v in kw.items():
        setattr(enc, k, v)
    return enc


def test_bert_layout_matches_the_tokenizers_text_pair(tiny_backbone):
    enc = _encoder(tiny_backbone, "bert")
    e = enc.encode("what is the answer", "the answer is good")
    ref = enc.tokenizer("what is the answer", "the answer is good")
    assert e.input_ids == ref["input_ids"]
    assert e.token_type_ids == ref["token_type_ids"]
    assert enc.tokenizer.decode(e.input_ids[e.response_start : e.response_end]) == "the answer is good"


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_decoder_layout_is_prompt_plus_response_plus_eos(tiny_backbone, kind):
    enc = _encoder(tiny_backbone, kind)
    e = enc.encode("Human: hello\n\nAssistant:", " good help")
    tok = enc.tokenizer
    assert e.input_ids == tok("Human: hello\n\nAssistant: good help" + tok.eos_token)["input_ids"]
    assert e.input_ids[-1] == tok.eos_token_id
    assert tok.decode(e.input_ids[e.response_start : e.response_end]) == " good help"


def test_left_truncation_keeps_the_response_and_the_end_of_the_prompt(tiny_backbone):
    enc = _encoder(tiny_backbone, "gpt2", max_length=12)
    prompt = " ".join(f"w{i}" for i in range(40))
    e = enc.encode(prompt, " the end")
    tok = enc.tokenizer
    assert e.truncated and len(e.input_ids) == 12
    assert tok.decode(e.input_ids[e.response_start : e.response_end]) == " the end"
    assert prompt.endswith(tok.decode(e.input_ids[: e.response_start]))  # the prompt's tail survives


def test_overlong_response_keeps_its_end(tiny_backbone):
    enc = _encoder(tiny_backbone, "gpt2", max_length=8)
    e = enc.encode("question", " one two three four five six seven eight nine ten the end")
    assert e.response_start == 0 and len(e.input_ids) == 8
    assert enc.tokenizer.decode(e.input_ids[:-1]).endswith("the end")


def test_right_truncation_can_make_pairs_identical_and_it_is_reported(tiny_backbone):
    long_prompt = " ".join(["hello world"] * 30)
    group = PreferenceGroup(long_prompt, [" good answer", " bad answer"], [(0, 1)], source="f.jsonl:7")
    right = _encoder(tiny_backbone, "gpt2", max_length=16, truncation="right")
    _, report = encode_groups([group], right)
    assert report.pairs_cut == 1 and report.pairs_identical_after_cut == 1
    assert "f.jsonl:7" in " ".join(report.lines("right", 16))
    left = _encoder(tiny_backbone, "gpt2", max_length=16)
    _, report = encode_groups([group], left)
    assert report.pairs_cut == 1 and report.pairs_identical_after_cut == 0


@pytest.mark.parametrize("kind", ["gpt2", "bert"])
def test_left_truncation_cuts_a_groups_prompt_once(tiny_backbone, kind):
    """Every response of a training group keeps the same prompt tokens; `encode` alone would not."""
    enc = _encoder(tiny_backbone, kind, max_length=32)
    prompt = " ".join(f"word{i}" for i in range(40))
    responses = [" short", " a much longer answer with many more words in it", " mid length one"]
    alone = [enc.encode(prompt, r) for r in responses]
    group = enc.encode_group(prompt, responses)

    def prompt_ids(e):
        return e.input_ids[: e.response_start]

    assert len({tuple(prompt_ids(e)) for e in alone}) == 3  # cut differently one by one
    assert len({tuple(prompt_ids(e)) for e in group}) == 1  # one cut for the group
    assert all(e.truncated for e in group)
    longest = max(range(3), key=lambda k: len(alone[k].input_ids) - alone[k].response_start)
    assert group[longest] == alone[longest]  # the longest response fills the budget, as alone
    for g, a in zip(group, alone, strict=True):  # responses are whole, and end where they did
        assert g.input_ids[g.response_start :] == a.input_ids[a.response_start :]
        assert len(g.input_ids) <= 32


def test_an_overlong_response_does_not_erase_its_groups_prompt(tiny_backbone):
    enc = _encoder(tiny_backbone, "gpt2", max_length=24)
    prompt = " ".join(f"word{i}" for i in range(30))
    huge, short, other = " many" * 40, " ok", " fine thanks"
    group = enc.encode_group(prompt, [huge, short, other])
    assert group[0] == enc.encode(prompt, huge) and group[0].response_start <= 1  # no room for a prompt
    assert group[1].input_ids[: group[1].response_start] == group[2].input_ids[: group[2].response_start]
    assert group[1].response_start > 10


def test_right_truncation_of_a_group_is_the_per_response_cut(tiny_backbone):
    enc = _encoder(tiny_backbone, "gpt2", max_length=16, truncation="right")
    prompt, responses = " ".join(["hello world"] * 5), [" good answer here", " bad"]
    assert enc.encode_group(prompt, responses) == [enc.encode(prompt, r) for r in responses]


def test_chat_template_renders_messages_and_ends_at_eos(tiny_backbone):
    enc = _encoder(tiny_backbone, "qwen2")
    e = enc.encode([{"role": "user", "content": "hello"}], [{"role": "assistant", "content": "hi there"}])
    text = enc.tokenizer.decode(e.input_ids)
    assert text == "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\nhi there<|im_end|>"
    assert enc.tokenizer.decode(e.input_ids[e.response_start : e.response_end]) == "hi there"


def test_plain_template_without_a_chat_template(tiny_backbone):
    enc = _encoder(tiny_backbone, "gpt2")
    prompt, response = enc.render([{"role": "user", "content": "hello"}], "hi there")
    assert (
        prompt
        == "\n\nHuman: hello\n\nAssistant:"
        == render_plain([{"role": "user", "content": "hello"}], True)
    )
    assert response == " hi there"


def test_batch_order_is_independent_of_batch_size_without_length_grouping():
    lengths = list(range(20))
    by4 = [i for b in batch_indices(lengths, 4, seed=3, length_grouped=False) for i in b]
    by1 = [i for b in batch_indices(lengths, 1, seed=3, length_grouped=False) for i in b]
    assert by4 == by1 and sorted(by4) == lengths
    assert by4 != [i for b in batch_indices(lengths, 4, seed=3, epoch=1, length_grouped=False) for i in b]


def test_length_grouped_batches_cover_every_item_once_with_little_padding():
    import random

    lengths = [random.Random(i).randint(5, 200) for i in range(400)]
    batches = batch_indices(lengths, 8, seed=0)
    assert sorted(i for b in batches for i in b) == list(range(400))
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded < 1.1 * sum(lengths)


def test_token_budget_batches_respect_the_budget():
    lengths = [10, 200, 30, 50, 50, 5]
    batches = token_budget_batches(lengths, max_tokens=200)
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert all(len(b) * max(lengths[i] for i in b) <= 200 for b in batches)


def test_bert_text_without_prompt_is_one_segment(tiny_backbone):
    enc = _encoder(tiny_backbone, "bert")
    e = enc.encode_text("the answer is good")
    ref = enc.tokenizer("the answer is good")
    assert e.input_ids == ref["input_ids"] and e.token_type_ids == ref["token_type_ids"]
    assert (e.response_start, e.response_end) == (1, len(ref["input_ids"]) - 1)
