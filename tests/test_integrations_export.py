"""`rewardlab export`: what it writes, what it refuses, and vLLM / reward-bench parity on the result.

vLLM and reward-bench are not installed here: their code paths are reproduced with transformers, each
test naming the file and function it mirrors (docs/integrations.md lists which engine was checked how).
"""

from __future__ import annotations

import json

import pytest
import torch
from integration_models import (
    KINDS,
    MEAN,
    STD,
    chat_model,
    conversations,
    hf_last_token_rewards,
    max_abs_diff,
)

from rewardlab.cli import main
from rewardlab.scoring.scorer import Scorer

TOL = 1e-4


@pytest.fixture(scope="module")
def models(tiny_backbone, tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    return {kind: chat_model(tiny_backbone, kind, root / kind) for kind in KINDS}


@pytest.fixture(scope="module")
def bert_model(tiny_backbone, tmp_path_factory):
    from rewardlab.model.build import build_reward_model
    from rewardlab.model.reward_model import score_head
    from rewardlab.model.saved import save_reward_model

    model, encoder, card = build_reward_model(tiny_backbone("bert"), max_length=64)
    torch.manual_seed(2)
    with torch.no_grad():  # a random BERT pools nearly the same vector for every text: spread it out
        score_head(model.hf_model).weight.normal_(0, 1.0)
        model.hf_model.bert.pooler.dense.weight.normal_(0, 0.2)
    path = tmp_path_factory.mktemp("export-bert") / "bert"
    save_reward_model(model, encoder, card, path)
    return str(path)


def export(model: str, target: str, out) -> int:
    return main(["export", model, "--target", target, "-o", str(out)])


def vllm_activation(config):
    """vllm/model_executor/layers/pooler/activations.py, get_classification_activation_function: identity
    for problem_type "regression", else PoolerClassify, a sigmoid when num_labels < 2."""
    if getattr(config, "problem_type", "") == "regression":
        return lambda x: x
    assert config.num_labels < 2
    return lambda x: float(torch.sigmoid(torch.tensor(x)))


def vllm_classify_chat(folder: str, conversations_: list[list[dict]]) -> list[float]:
    """vLLM ``POST /classify`` with ``messages`` (ClassificationChatRequest): the chat template rendered
    with add_generation_prompt=False and tokenised with add_special_tokens=False (the defaults of
    vllm/frontend/entrypoints/pooling/base/protocol.py, ChatRequestOptionsMixin); one unpadded sequence
    per request, LastPool (model_executor/layers/pooler/seqwise/methods.py), then the activation."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32).eval()
    texts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=False) for c in conversations_]
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    act = vllm_activation(AutoConfig.from_pretrained(folder))
    return [act(r) for r in hf_last_token_rewards(model, ids)]


@pytest.mark.parametrize("kind", KINDS)
def test_vllm_export_scores_like_the_scorer(models, kind, tmp_path):
    out = tmp_path / "vllm"
    assert export(models[kind], "vllm", out) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["problem_type"] == "regression" and config["num_labels"] == 1
    assert (config["mean"], config["std"]) == (MEAN, STD)
    scorer = Scorer.from_pretrained(models[kind], device="cpu")
    pairs = conversations()
    expected = scorer.score([p for p, _ in pairs], [r for _, r in pairs])
    got = vllm_classify_chat(str(out), [p + r for p, r in pairs])
    assert max_abs_diff(got, expected) < TOL
    assert max(expected) - min(expected) > 0.1  # rewards that differ: a wrong token would show
    # without the export, vLLM would squash the reward with a sigmoid
    squashed = vllm_classify_chat(models[kind], [p + r for p, r in pairs])
    assert max_abs_diff(squashed, expected) > 0.1 and all(0 < s < 1 for s in squashed)
    # the exported folder is still a rewardlab model with the same scores
    again = Scorer.from_pretrained(out, device="cpu").score([p for p, _ in pairs], [r for _, r in pairs])
    assert max_abs_diff(again, expected) < 1e-6


def test_vllm_text_input_needs_add_special_tokens_false_for_a_bos_tokenizer(models, tmp_path):
    """/classify with ``input`` text tokenises with add_special_tokens=True by default
    (CompletionRequestMixin): a BOS tokenizer whose template writes the BOS sees it twice."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(models["llama"])
    text = tok.apply_chat_template(conversations()[0][0] + conversations()[0][1], tokenize=False)
    default = tok(text)["input_ids"]
    assert default[:2] == [tok.bos_token_id] * 2
    scorer = Scorer.from_pretrained(models["llama"], device="cpu")
    assert (
        tok(text, add_special_tokens=False)["input_ids"]
        == scorer.encoder.encode(*conversations()[0]).input_ids
    )


def test_encoder_exports_for_vllm_score_with_a_text_pair(bert_model, tmp_path):
    """vLLM ``/score`` for a cross-encoder: ``tokenizer(text_1, text_2)``, the architecture's CLS pooler and
    classifier, then get_cross_encoder_activation_function (activations.py), which reads
    ``sbert_ce_default_activation_function``: Identity after the export, a sigmoid before."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path / "bert-vllm"
    assert export(bert_model, "vllm", out) == 0
    config = AutoConfig.from_pretrained(out)
    assert config.sbert_ce_default_activation_function == "torch.nn.modules.linear.Identity"
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    pairs = [("how do I fix python code?", " please explain"), ("the cake", " sorry, I cannot help")]
    with torch.no_grad():
        got = [float(model(**tok(a, b, return_tensors="pt")).logits[0, 0]) for a, b in pairs]
    expected = Scorer.from_pretrained(bert_model, device="cpu").score(
        [a for a, _ in pairs], [b for _, b in pairs]
    )
    assert max_abs_diff(got, expected) < TOL and abs(expected[0] - expected[1]) > 1e-3
    # one string (what /classify, TRL or reward-bench would send) loses the pair: a different reward
    with torch.no_grad():
        single = [float(model(**tok(a + b, return_tensors="pt")).logits[0, 0]) for a, b in pairs]
    assert max_abs_diff(single, expected) > 1e-3


def reward_bench_scores(folder: str, conversations_: list[list[dict]]) -> list[float]:
    """rewardbench/models/pipeline.py, RewardBenchPipeline.__call__: the templated conversations (its
    prepare_dialogue_from_tokenizer renders apply_chat_template(..., tokenize=False)) tokenised together
    with truncation=True, max_length=2048, padding=True and the default add_special_tokens=True; the
    model's logits, column 0."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32).eval()
    samples = [tok.apply_chat_template(c, tokenize=False) for c in conversations_]
    inputs = tok(samples, truncation=True, max_length=2048, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**inputs).logits[:, 0].tolist()


@pytest.mark.parametrize("kind", ["gpt2", "qwen2"])
def test_reward_bench_export_scores_like_the_scorer(models, kind, tmp_path):
    out = tmp_path / "rb"
    assert export(models[kind], "reward-bench", out) == 0
    pairs = conversations()
    expected = Scorer.from_pretrained(models[kind], device="cpu").score(
        [p for p, _ in pairs], [r for _, r in pairs]
    )
    got = reward_bench_scores(str(out), [p + r for p, r in pairs])  # one padded batch of unequal lengths
    assert max_abs_diff(got, expected) < TOL


@pytest.mark.parametrize(
    "target, fixture, build, reason",
    [
        ("vllm", "qwen2", {"pooling": "mean"}, "mean over response tokens"),
        ("vllm", "qwen2", {"pooling": "mean_all"}, "mean over all tokens"),
        ("trl", "bert", {}, "vLLM's /score"),
        ("reward-bench", "bert", {}, "text pair"),
        ("vllm", "qwen2", {"layout": "rewardlab"}, "rewardlab layout"),
        ("openrlhf", "qwen2", {}, "after the EOS"),
        ("reward-bench", "llama", {}, "add_special_tokens on"),
    ],
)
def test_export_refuses_what_the_target_cannot_reproduce(
    target, fixture, build, reason, models, bert_model, tiny_backbone, tmp_path, capsys
):
    if fixture == "bert":
        model = bert_model
    elif build:
        from rewardlab.model.build import build_reward_model
        from rewardlab.model.saved import save_reward_model

        layout = build.pop("layout", "chat_template")
        m, e, c = build_reward_model(tiny_backbone(fixture), layout=layout, **build)
        model = str(tmp_path / "model")
        save_reward_model(m, e, c, model)
    else:
        model = models[fixture]
    out = tmp_path / "out"
    assert export(model, target, out) == 2
    err = capsys.readouterr().err
    assert "rewardlab export: error:" in err and reason in err
    assert not out.exists() and not any(p.name.startswith(".out-") for p in tmp_path.iterdir())


def test_openrlhf_export_adds_the_value_head(models, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "orl"
    assert export(models["llama"], "openrlhf", out) == 0
    weights = load_file(str(out / "model.safetensors"))
    assert torch.equal(weights["value_head.weight"], weights["score.weight"])


def test_export_does_not_overwrite_a_folder(models, tmp_path, capsys):
    out = tmp_path / "full"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert export(models["qwen2"], "trl", out) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
