"""The ``chat_template`` layout tokenises exactly the template's text, and no layout doubles a BOS."""

from __future__ import annotations

import pytest
from integration_models import KINDS, LLAMA_TEMPLATE, chat_model, conversations

from rewardlab.data.encoding import PLAIN_CHAT_TEMPLATE, TextEncoder, render_plain
from rewardlab.model.build import build_reward_model
from rewardlab.model.saved import ModelCard, load_reward_model


@pytest.fixture(scope="module")
def models(tiny_backbone, tmp_path_factory):
    root = tmp_path_factory.mktemp("layout")
    return {kind: chat_model(tiny_backbone, kind, root / kind) for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_chat_template_ids_are_the_templates_text_tokenised_as_is(models, kind):
    _, encoder, card = load_reward_model(models[kind])
    assert card.layout == "chat_template" and encoder.layout_name == "chat_template"
    tok = encoder.tokenizer
    for prompt, response in conversations():
        text = tok.apply_chat_template(prompt + response, tokenize=False)
        enc = encoder.encode(prompt, response)
        assert enc.input_ids == tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(enc.input_ids[enc.response_start :]).lstrip().startswith(response[0]["content"])
        assert not enc.truncated
    # plain strings: prompt + response as they are (TRL's non-conversational reward-model path)
    enc = encoder.encode("Question: two and two?", " Four.")
    assert enc.input_ids == tok("Question: two and two? Four.", add_special_tokens=False)["input_ids"]


def test_chatml_is_read_after_the_end_of_turn(models):
    _, encoder, _ = load_reward_model(models["qwen2"])
    prompt, response = conversations()[0]
    enc = encoder.encode(prompt, response)
    # verl sends '...<|im_end|>\n' and vLLM reads its last token: the newline, not <|im_end|>
    assert encoder.tokenizer.convert_ids_to_tokens(enc.input_ids[-2:]) == ["<|im_end|>", "Ċ"]


def test_a_template_that_writes_the_bos_gets_one_bos(models):
    _, encoder, _ = load_reward_model(models["llama"])
    tok = encoder.tokenizer
    prompt, response = conversations()[0]
    ids = encoder.encode(prompt, response).input_ids
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    # left truncation keeps the BOS and the response's end
    short = TextEncoder(tok, max_length=24, layout="chat_template")
    cut = short.encode(*conversations()[1])
    assert cut.truncated and len(cut.input_ids) == 24
    assert cut.input_ids[0] == tok.bos_token_id and cut.input_ids[-1] == tok.eos_token_id
    # a whole templated text scored with no prompt (LLaMA-Factory's route) keeps its BOS too
    text = tok.apply_chat_template(conversations()[1][0] + conversations()[1][1], tokenize=False)
    whole = short.encode_text(text)
    assert whole.truncated and whole.input_ids[0] == tok.bos_token_id and len(whole.input_ids) == 24
    assert (
        TextEncoder(tok, layout="chat_template").encode_text(text).input_ids
        == tok(text, add_special_tokens=False)["input_ids"]
    )


def test_rewardlab_layout_no_longer_doubles_a_bos_the_text_carries(tiny_backbone):
    """Regression: an OpenRLHF query decoded with its BOS, or a template writing the BOS text, got the
    layout's BOS on top ([BOS, BOS, ...])."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_backbone("llama"))
    tok.add_special_tokens({"pad_token": "<|rewardlab_pad|>"})
    enc = TextEncoder(tok)
    bos = tok.bos_token_id
    for prompt, response in [("<s> hello", " world"), ("", "<s> hello world")]:
        ids = enc.encode(prompt, response).input_ids
        assert ids.count(bos) == 1 and ids[0] == bos
        assert ids == enc.encode(prompt.replace("<s>", ""), response.replace("<s>", "")).input_ids
    tok.chat_template = LLAMA_TEMPLATE
    ids = enc.encode(*conversations()[0]).input_ids
    assert ids.count(bos) == 1
    groups = enc.encode_group("<s> hello", [" world", " cake"])
    assert all(g.input_ids.count(bos) == 1 for g in groups)


@pytest.mark.parametrize("kind", KINDS)
def test_groups_encode_as_single_items_without_truncation(models, kind):
    _, encoder, _ = load_reward_model(models[kind])
    prompt = conversations()[1][0]
    responses = [[{"role": "assistant", "content": r}] for r in ("good", "the cake is good", "no")]
    assert encoder.encode_group(prompt, responses) == [encoder.encode(prompt, r) for r in responses]


def test_plain_template_is_installed_and_saved_for_a_tokenizer_without_one(models):
    _, encoder, _ = load_reward_model(models["gpt2"])
    assert encoder.tokenizer.chat_template == PLAIN_CHAT_TEMPLATE
    msgs = conversations()[0][0]
    head = encoder.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert head == render_plain(msgs, add_generation_prompt=True)


def test_chat_template_layout_is_refused_for_encoders(tiny_backbone):
    with pytest.raises(ValueError, match="chat_template is for decoders"):
        build_reward_model(tiny_backbone("bert"), layout="chat_template")


def test_cards_without_a_layout_mean_rewardlab_and_bad_layouts_are_named(tmp_path):
    ModelCard(layout="chat_template").save(tmp_path)
    assert ModelCard.load(tmp_path).layout == "chat_template"
    raw = (tmp_path / "rewardlab.json").read_text().replace('"layout": "chat_template",', "")
    (tmp_path / "rewardlab.json").write_text(raw)
    assert ModelCard.load(tmp_path).layout == "rewardlab"
    (tmp_path / "rewardlab.json").write_text(raw.replace('"pooling"', '"layout": "chat", "pooling"'))
    with pytest.raises(ValueError, match="layout 'chat'"):
        ModelCard.load(tmp_path)
