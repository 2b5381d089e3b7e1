"""verl: its DisRM path (the default reward-model path) reproduced with transformers, and the
``compute_score`` adapter (in process and through ``rewardlab serve``), against the Scorer."""

from __future__ import annotations

import asyncio

import pytest
import torch
from integration_models import KINDS, chat_model, conversations, hf_last_token_rewards, max_abs_diff

from rewardlab.integrations.verl import compute_score, compute_score_sync
from rewardlab.scoring.scorer import Scorer

TOL = 1e-4


@pytest.fixture(scope="module")
def models(tiny_backbone, tmp_path_factory):
    from rewardlab.cli import main

    root = tmp_path_factory.mktemp("verl")
    out = {}
    for kind in KINDS:
        folder = chat_model(tiny_backbone, kind, root / kind)
        assert main(["export", folder, "--target", "vllm", "-o", str(root / f"{kind}-vllm")]) == 0
        out[kind] = (folder, str(root / f"{kind}-vllm"))
    return out


def policy_response_ids(tok, text: str) -> list[int]:
    """What a policy sharing the tokenizer generates: the response's tokens, then its EOS."""
    return tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]


def verl_disrm_scores(folder: str, pairs) -> list[float]:
    """verl/experimental/reward_loop/reward_loop.py: RewardLoopWorker._preprocess_reward_inputs decodes the
    response ids (special tokens kept), removes the EOS text, appends it as the assistant's message, renders
    apply_chat_template(chat, add_generation_prompt=False, tokenize=False) and strips a leading BOS text;
    compute_score_disrm posts it to vLLM /classify as ``input`` with activation off, where it is tokenised
    with add_special_tokens=True (CompletionRequestMixin's default), pooled at the last token, and
    ``data[-1].probs[-1]`` is the reward."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32).eval()
    ids = []
    for prompt, response in pairs:
        chat = list(prompt)
        rollout = tok.decode(policy_response_ids(tok, response[0]["content"]))
        rollout = rollout.replace(tok.eos_token, "")
        chat.append({"role": "assistant", "content": rollout})
        rm_prompt = tok.apply_chat_template(chat, add_generation_prompt=False, tokenize=False)
        if tok.bos_token is not None and rm_prompt.startswith(tok.bos_token):
            rm_prompt = rm_prompt[len(tok.bos_token) :]
        ids.append(tok(rm_prompt, add_special_tokens=True)["input_ids"])
    return hf_last_token_rewards(model, ids)  # activation False: the raw logit


@pytest.mark.parametrize("kind", KINDS)
def test_verl_disrm_reads_the_scorers_reward(models, kind):
    folder, exported = models[kind]
    pairs = conversations()
    expected = Scorer.from_pretrained(folder, device="cpu").score(
        [p for p, _ in pairs], [r for _, r in pairs]
    )
    got = verl_disrm_scores(exported, pairs)
    assert max_abs_diff(got, expected) < TOL and max(expected) - min(expected) > 0.1


def test_the_rewardlab_layout_would_shift_under_verl(tiny_backbone, tmp_path):
    """Negative control: the same weights read with the rewardlab layout (reward at the EOS, template's
    trailing newline stripped) differ from what verl computes: why export refuses that layout."""
    from rewardlab.model.saved import load_reward_model

    folder = chat_model(tiny_backbone, "qwen2", tmp_path / "q")
    model, encoder, card = load_reward_model(folder)
    from rewardlab.data.encoding import TextEncoder

    old = TextEncoder(encoder.tokenizer, max_length=128)
    pairs = conversations()
    shifted = Scorer(model, old, card, "cpu").score([p for p, _ in pairs], [r for _, r in pairs])
    assert max_abs_diff(shifted, verl_disrm_scores(folder, pairs)) > 0.05


@pytest.mark.parametrize("kind", KINDS)
def test_compute_score_in_process_equals_the_scorer(models, kind):
    folder, _ = models[kind]
    scorer = Scorer.from_pretrained(folder, device="cpu")
    tok = scorer.encoder.tokenizer
    for prompt, response in conversations():
        expected = scorer.score([prompt], [response])[0]
        # verl's NaiveRewardManager decodes the response ids; older versions keep the EOS text
        solution = tok.decode(policy_response_ids(tok, response[0]["content"]))
        got = asyncio.run(compute_score("ds", solution, None, {"prompt": prompt}, model=folder))
        assert got == pytest.approx(expected, abs=1e-6)
    plain = compute_score_sync("ds", " world", None, {"prompt": "hello"}, model=folder, normalize=True)
    card = scorer.card
    assert plain == pytest.approx(
        (scorer.score(["hello"], [" world"])[0] - card.reward_mean) / card.reward_std
    )


def test_compute_score_without_a_prompt_says_where_to_put_it(models):
    with pytest.raises(ValueError, match=r"extra_info\['prompt'\]"):
        asyncio.run(compute_score("ds", "hi", None, {}, model=models["qwen2"][0]))


def test_compute_score_through_rewardlab_serve(models):
    pytest.importorskip("uvicorn")
    from test_serve import LiveServer

    folder, _ = models["qwen2"]
    scorer = Scorer.from_pretrained(folder, device="cpu")
    prompt, response = conversations()[1]
    with LiveServer(scorer) as server:
        got = asyncio.run(
            compute_score("ds", response[0]["content"], None, {"prompt": prompt}, url=server.url)
        )
    assert got == pytest.approx(scorer.score([prompt], [response])[0], abs=1e-5)


def test_a_template_token_named_bos_is_cleared_so_verl_keeps_it(tiny_backbone, tmp_path):
    """SmolLM2's bos_token is ``<|im_start|>``, which its ChatML template writes and its tokenizer never
    adds: verl's _preprocess_reward_inputs strips it from the front of every conversation. The vLLM export
    clears that bos_token, and the DisRM path then reads the Scorer's reward."""
    from transformers import AutoTokenizer

    from rewardlab.cli import main

    folder = tmp_path / "smol-like"
    chat_model(tiny_backbone, "qwen2", folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.bos_token = "<|im_start|>"
    tok.save_pretrained(folder)
    pairs = conversations()
    expected = Scorer.from_pretrained(folder, device="cpu").score(
        [p for p, _ in pairs], [r for _, r in pairs]
    )
    assert max_abs_diff(verl_disrm_scores(str(folder), pairs), expected) > 0.05  # the first token lost
    out = tmp_path / "smol-like-vllm"
    assert main(["export", str(folder), "--target", "vllm", "-o", str(out)]) == 0
    assert AutoTokenizer.from_pretrained(out).bos_token is None
    assert max_abs_diff(verl_disrm_scores(str(out), pairs), expected) < TOL
    again = Scorer.from_pretrained(out, device="cpu").score([p for p, _ in pairs], [r for _, r in pairs])
    assert max_abs_diff(again, expected) < 1e-6
