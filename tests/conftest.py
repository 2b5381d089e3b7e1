"""Tiny randomly initialised backbones built in-process: the suite needs no download and runs fast.

`tiny_backbone(kind)` returns a folder holding a HF model + tokenizer that `build_reward_model`
accepts like any hub checkpoint: ``bert`` (WordPiece, text pairs), ``gpt2`` (absolute positions,
no BOS), ``llama`` (BOS added, pad token missing), ``qwen2`` (chat template, pad == EOS).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PRECISION_ENV = "REWARDLAB_MIXED_PRECISION"  # what `--mixed-precision auto` resolves to (rewardlab.train)
PRECISIONS = {"fp32": "no", "bf16": "bf16"}


def pytest_addoption(parser):
    parser.addoption(
        "--precision",
        choices=["both", *PRECISIONS],
        default="both",
        help="both (default): tests taking the `precision` fixture run once in fp32 and once with bf16 "
        "forced (bf16 autocast runs on any CPU, slowly without avx512_bf16), every other test in fp32; "
        "fp32 or bf16: every test, precision-parametrised or not, in that precision only.",
    )


def pytest_configure(config):
    # Pinned for the whole run (subprocesses inherit it), so no result depends on whether this machine
    # happens to have native bf16: `auto` would pick bf16 on one CPU and fp32 on the next.
    choice = config.getoption("precision")
    os.environ[PRECISION_ENV] = PRECISIONS.get(choice, "no")


def pytest_generate_tests(metafunc):
    if "precision" in metafunc.fixturenames:
        choice = metafunc.config.getoption("precision")
        names = list(PRECISIONS) if choice == "both" else [choice]
        metafunc.parametrize("precision", [PRECISIONS[n] for n in names], ids=names, indirect=True)


@pytest.fixture
def precision(request, monkeypatch):
    """The accelerate mixed-precision name this test runs under ("no" or "bf16"); `auto` follows it."""
    monkeypatch.setenv(PRECISION_ENV, request.param)
    return request.param


WORDS = (
    "the a an is are was be to of and in that have it for not on with he as you do at this but his by "
    "from they we say her she or will my one all would there their what so up out if about who get "
    "which go me when make can like time no just him know take people into year your good some could "
    "them see other than then now look only come its over think also back after use two how our work "
    "first well way even new want because any these give day most us hello world help answer question "
    "sorry cannot please thanks human assistant recipe book fix explain child cake bread python code"
).split()
CORPUS = [" ".join(WORDS[i : i + 12]) for i in range(0, len(WORDS), 3)] + ["0123456789 .,!?:;'\"-()\n"]

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _bpe_tokenizer(bos: bool, chat: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<s>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    if bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
        )
    kwargs = {"eos_token": "<|im_end|>" if chat else "<|endoftext|>"}
    if bos:
        kwargs["bos_token"] = "<s>"
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)
    if chat:
        fast.pad_token = fast.eos_token  # the collision rewardlab must repair
        fast.chat_template = CHATML
    return fast


def _wordpiece_tokenizer(folder: Path):
    from transformers import BertTokenizer

    vocab = (
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(WORDS)) + list("0123456789.,!?:;'\"-()")
    )
    vocab += sorted({c for w in WORDS for c in w}) + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    vocab = list(dict.fromkeys(vocab))
    return BertTokenizer(vocab={token: i for i, token in enumerate(vocab)})


def build_tiny_backbone(kind: str, folder: Path) -> Path:
    import torch
    from transformers import (
        AutoModelForCausalLM,
        BertConfig,
        BertModel,
        GPT2Config,
        LlamaConfig,
        Qwen2Config,
    )

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    small = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
    if kind == "bert":
        tok = _wordpiece_tokenizer(folder)
        cfg = BertConfig(vocab_size=len(tok), max_position_embeddings=256, **small)
        cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.0
        model = BertModel(cfg)
    else:
        tok = _bpe_tokenizer(bos=kind == "llama", chat=kind == "qwen2")
        if kind == "gpt2":
            cfg = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=256)
            cfg.resid_pdrop = cfg.embd_pdrop = cfg.attn_pdrop = 0.0
        elif kind == "llama":
            cfg = LlamaConfig(
                vocab_size=len(tok), num_key_value_heads=1, max_position_embeddings=256, **small
            )
        elif kind == "qwen2":
            cfg = Qwen2Config(
                vocab_size=len(tok), num_key_value_heads=1, max_position_embeddings=256, **small
            )
        else:
            raise ValueError(kind)
        cfg.eos_token_id = cfg.bos_token_id = tok.eos_token_id
        model = AutoModelForCausalLM.from_config(cfg)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory):
    cache: dict[str, Path] = {}

    def make(kind: str) -> str:
        if kind not in cache:
            cache[kind] = build_tiny_backbone(kind, tmp_path_factory.mktemp(f"tiny-{kind}"))
        return str(cache[kind])

    return make
