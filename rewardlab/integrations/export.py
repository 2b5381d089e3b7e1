"""``rewardlab export MODEL --target T -o OUT``: a folder engine T loads as is and scores like the Scorer.

What is written, for every target, into OUT's ``config.json``:
- ``problem_type: "regression"``: vLLM's classify pooler applies a sigmoid to a one-label head unless the
  config says regression (vllm/model_executor/layers/pooler/activations.py,
  ``get_classification_activation_function``), which would squash every reward into (0, 1);
- ``mean`` / ``std``: the card's reward statistics, which OpenRLHF's reward model reads from the config
  for ``--normalize_reward`` (openrlhf/models/model.py, ``_get_reward_model``); 0 / 1 when none were kept;
- encoders for vLLM: ``sbert_ce_default_activation_function`` = Identity, so ``/score`` (a cross-encoder
  text pair, the layout the model was trained on) returns the raw reward
  (``get_cross_encoder_activation_function`` in the same file).

``openrlhf`` also gets ``value_head.weight`` (a copy of the linear head OpenRLHF's reward model looks up
by its default ``value_head_prefix``) next to ``score.weight``, so the one folder still loads in
transformers and vLLM. A tokenizer without a chat template gets `PLAIN_CHAT_TEMPLATE` (the
``chat_template`` layout installs it when the model is built, so it is normally there already). For
vLLM and SGLang, a ``bos_token`` that the template writes but the tokenizer never adds is cleared
(`_forget_template_bos`: verl would strip it).

It refuses, exits 2 and writes nothing where the target cannot reproduce the reward (`check`): a process
reward model, mean pooling, an encoder in an engine that scores one string, a decoder trained with the
``rewardlab`` layout (every target tokenises the chat template's text as is), a head with a bias for
OpenRLHF, a template whose assistant turn continues past the EOS for OpenRLHF's in-process model, and a
tokenizer that adds its own BOS for reward-bench (which tokenises with special tokens on). Each refusal
names what to use instead.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TARGETS = ("vllm", "sglang", "openrlhf", "trl", "reward-bench")
SINGLE_STRING = ("sglang", "openrlhf", "trl", "reward-bench")
"""Targets that score one string per sequence (no text pair)."""

IDENTITY = "torch.nn.modules.linear.Identity"


class ExportRefused(ValueError):
    """The target cannot reproduce this model's reward; the message says why and what to use instead."""


@dataclass
class ExportResult:
    target: str
    output_dir: str
    config_changes: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "output_dir": self.output_dir,
            "config_changes": self.config_changes,
            "notes": self.notes,
        }


def check(model_dir: str | Path, target: str) -> list[str]:
    """Raise `ExportRefused` if `target` cannot reproduce the model's reward; else the caller's notes."""
    from transformers import AutoConfig, AutoTokenizer

    from rewardlab.data.encoding import PLAIN_CHAT_TEMPLATE
    from rewardlab.integrations.openrlhf import turn_end
    from rewardlab.model.reward_model import MEAN_POOLINGS
    from rewardlab.model.saved import ModelCard

    if target not in TARGETS:
        raise ValueError(f"--target must be one of {', '.join(TARGETS)}, got {target!r}")
    card = ModelCard.load(model_dir)
    config = AutoConfig.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    alt = "score it with `rewardlab serve` or the rewardlab.integrations adapters (docs/integrations.md)"
    if card.step_marker:
        raise ExportRefused(
            f"a process reward model's step scores are read at every step marker {card.step_marker!r} "
            f"(Scorer.score_steps); {target} reads one score per sequence. Serve it with `rewardlab serve` "
            "(POST /score_steps)"
        )
    if card.pooling in MEAN_POOLINGS:
        what = "response tokens" if card.pooling == "mean" else "all tokens through the head"
        raise ExportRefused(
            f"the model pools the mean over {what}, which only rewardlab computes; {target} reads "
            "the last token (vLLM's MEAN pooling averages every token, prompt included). Retrain with "
            f"--pooling last, or {alt}"
        )
    notes: list[str] = []
    if card.strip_thinking:
        notes.append(
            f"trained with --strip-thinking: {target} does not read rewardlab.json, so remove "
            f"{card.think_open}...{card.think_close} traces from responses before sending them "
            "(docs/reward_kinds.md has the rules)"
        )
    if card.is_encoder:
        if target in SINGLE_STRING:
            raise ExportRefused(
                f"this encoder was trained on a (prompt, response) text pair ([CLS] prompt [SEP] response "
                f"[SEP]); {target} scores one string per sequence and would lose the pair. Use vLLM's "
                "/score, which takes a text pair for cross-encoders (`rewardlab export --target vllm`, then "
                f"text_1=prompt, text_2=response), or {alt}"
            )
        notes.append(
            "vLLM: send (prompt, response) to /score as text_1/text_2 (the cross-encoder text pair); "
            "/classify with one string would not reproduce the reward"
        )
        return notes
    if card.layout != "chat_template":
        raise ExportRefused(
            "this decoder was trained with the rewardlab layout: its reward is read at an EOS rewardlab "
            f"appends after the response; {target} tokenises the chat template's text (or prompt + "
            "completion) as is and appends nothing, so it would read a different token. Train with the "
            f"chat_template layout (build_reward_model(..., layout='chat_template')), or {alt}"
        )
    if target == "openrlhf":
        head = getattr(config, "architectures", None)
        if _head_has_bias(model_dir):
            raise ExportRefused(
                f"the head of {head} has a bias; OpenRLHF's value_head is nn.Linear(hidden, 1, bias=False) "
                f"and would drop it. {alt}"
            )
        template = getattr(tok, "chat_template", None) or PLAIN_CHAT_TEMPLATE
        tok.chat_template = template
        end = turn_end(tok)
        if end != (tok.eos_token or ""):
            raise ExportRefused(
                f"the chat template ends an assistant turn with {end!r}, after the EOS {tok.eos_token!r}; "
                "OpenRLHF's in-process reward model scores prompt_ids + action_ids, which stop at the "
                "policy's EOS, so it would read the reward one token early. Use --remote_rm_url with "
                "rewardlab/integrations/openrlhf.py (reward_func) or `rewardlab serve` (/get_reward): both "
                "complete the turn as the template does"
            )
        notes.append("OpenRLHF in process feeds the policy's token ids: the policy must share this tokenizer")
    added = _auto_special_tokens(tok)
    if target == "reward-bench" and added:
        raise ExportRefused(
            f"this tokenizer adds {added} to every text by itself; reward-bench tokenises the templated "
            "conversation with add_special_tokens on (rewardbench/models/pipeline.py), so it would see "
            f"{added} the model was not trained with (a second BOS where the template writes one). {alt}"
        )
    if added and target in ("vllm", "sglang"):
        notes.append(
            f"the tokenizer adds {added} to plain text: send chat `messages` (tokenised without extra "
            "special tokens), or text with add_special_tokens=false; verl's DisRM path strips the BOS text "
            "and lets the server add it back, which also matches"
        )
    return notes


def export_model(model_dir: str | Path, target: str, output_dir: str | Path) -> ExportResult:
    """Write the export (module docstring); nothing is written when `check` refuses."""
    from rewardlab.model.saved import CARD_NAME, ModelCard

    model_dir, out = Path(model_dir), Path(output_dir)
    if not (model_dir / CARD_NAME).exists():
        raise FileNotFoundError(f"{model_dir} has no {CARD_NAME}: not a model saved by rewardlab")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty; choose another -o or remove it")
    notes = check(model_dir, target)
    card = ModelCard.load(model_dir)
    changes: dict[str, Any] = {
        "problem_type": "regression",
        "num_labels": 1,
        "mean": float(card.reward_mean),
        "std": float(card.reward_std) if card.reward_std > 0 else 1.0,
    }
    if card.is_encoder:
        changes["sbert_ce_default_activation_function"] = IDENTITY
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        shutil.copytree(model_dir, staging, dirs_exist_ok=True)
        config_file = staging / "config.json"
        config = json.loads(config_file.read_text())
        config.update(changes)
        config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        if not card.is_encoder:
            _ensure_chat_template(staging)
            if target in ("vllm", "sglang") and _forget_template_bos(staging):
                notes.append(
                    "bos_token cleared in the exported tokenizer: it is the template's own first token and "
                    "is never added by the tokenizer, so verl's DisRM path would strip it from every "
                    "conversation (reward_loop.py, _preprocess_reward_inputs) and nothing would add it back"
                )
        if target == "openrlhf":
            _add_value_head(staging)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(target, str(out), changes, notes)


def _ensure_chat_template(folder: Path) -> None:
    from transformers import AutoTokenizer

    from rewardlab.data.encoding import PLAIN_CHAT_TEMPLATE

    tok = AutoTokenizer.from_pretrained(folder)
    if not getattr(tok, "chat_template", None):
        tok.chat_template = PLAIN_CHAT_TEMPLATE
        tok.save_pretrained(folder)


def _forget_template_bos(folder: Path) -> bool:
    """Clear a ``bos_token`` that the chat template writes but the tokenizer never adds (SmolLM2:
    ``<|im_start|>``). verl's DisRM path strips a leading BOS text before sending the conversation to
    vLLM/SGLang and relies on the server's tokenizer to add it back; with such a tokenizer nothing does,
    and the reward model sees the conversation without its first token. The ids of the ``chat_template``
    layout do not depend on ``bos_token``, so the Scorer's reward is unchanged."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    bos = tok.bos_token
    if not bos or _auto_special_tokens(tok):
        return False
    probe = tok.apply_chat_template([{"role": "user", "content": "q"}], tokenize=False)
    if not probe.startswith(bos):
        return False
    tok.bos_token = None
    tok.save_pretrained(folder)
    return True


def _weight_files(folder: Path) -> dict[str, str]:
    """Tensor name -> safetensors file, for a single-file or a sharded save."""
    index = folder / "model.safetensors.index.json"
    if index.exists():
        return dict(json.loads(index.read_text())["weight_map"])
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        return dict.fromkeys(f.keys(), "model.safetensors")


def _head_key(names: dict[str, str]) -> str:
    for key in ("score.weight", "classifier.weight"):
        if key in names:
            return key
    raise ExportRefused("no linear head (score.weight / classifier.weight) found in the weights")


def _head_has_bias(folder: Path) -> bool:
    names = _weight_files(folder)
    return _head_key(names).replace(".weight", ".bias") in names


def _add_value_head(folder: Path) -> None:
    """Copy the head to ``value_head.weight`` in the file that holds it (index updated when sharded)."""
    from safetensors.torch import load_file, save_file

    names = _weight_files(folder)
    key = _head_key(names)
    file = folder / names[key]
    tensors = load_file(str(file))
    tensors["value_head.weight"] = tensors[key].clone()
    save_file(tensors, str(file), metadata={"format": "pt"})
    index = folder / "model.safetensors.index.json"
    if index.exists():
        data = json.loads(index.read_text())
        data["weight_map"]["value_head.weight"] = names[key]
        index.write_text(json.dumps(data, indent=2) + "\n")


def _auto_special_tokens(tok: Any) -> list[str]:
    """Special tokens the tokenizer adds to a text by itself (e.g. Llama's BOS)."""
    with_specials = tok("hello", add_special_tokens=True)["input_ids"]
    without = tok("hello", add_special_tokens=False)["input_ids"]
    if with_specials == without:
        return []
    extra = [i for i in with_specials if i not in without]
    return tok.convert_ids_to_tokens(extra)
