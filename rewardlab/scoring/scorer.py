"""The one inference path: every reward rewardlab reports (eval, diagnostics, best-of-N, serving) comes
from `Scorer`, so padding, truncation and pooling are handled identically everywhere.

Texts are sorted by length and packed into batches under a padded-token budget (padding costs more
than batching saves when lengths vary), scored under ``torch.inference_mode`` (``no_grad`` for models
sharded by FSDP2 / ZeRO-3: `no_grad_for`), and returned in input order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from rewardlab.data.batching import collate, token_budget_batches
from rewardlab.data.encoding import Encoded, TextEncoder
from rewardlab.data.types import Text
from rewardlab.model.reward_model import RewardModel, pooled_hidden
from rewardlab.model.saved import ModelCard, load_reward_model
from rewardlab.scoring.metrics import sigmoid

log = logging.getLogger(__name__)


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def bf16_supported(device: torch.device) -> tuple[bool, str]:
    """Whether bf16 autocast pays off on this device, and why (logged by callers)."""
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, "CUDA device supports bf16" if ok else "CUDA device lacks bf16"
    if device.type == "cpu":
        ok = bool(getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")() in ("AVX512", "AMX"))
        ok = ok and _cpu_has_avx512_bf16()
        return ok, "CPU has avx512_bf16 (bf16 matmuls ~4x fp32)" if ok else "CPU lacks native bf16 matmuls"
    return False, f"bf16 autocast not used on {device.type}"


def attention_for(device: torch.device, bf16: bool, training: bool) -> tuple[str, str]:
    """The attention kernel to run, and why (logged by callers).

    Training on a CPU under bf16 autocast: eager attention, whose bf16 matmuls beat the backward of
    sdpa's CPU flash kernel (MiniLM forward+backward over length-grouped HH batches: 0.79-0.81x the time,
    benchmarks/kernels_ab.py on avx512_bf16; the bf16 profile had sdpa at 30% of the step). Everywhere
    else sdpa: forward-only scoring under bf16 was 1.54x slower with eager, fp32 training 1.24-1.39x,
    and on CUDA sdpa is flash / memory-efficient attention.
    """
    if device.type == "cpu" and bf16 and training:
        return (
            "eager",
            "training in bf16 on CPU: eager's bf16 matmuls beat sdpa's CPU backward (0.8x the time)",
        )
    return "sdpa", "fused attention kernels"


def use_attention(model: RewardModel, device: torch.device, bf16: bool, training: bool) -> str:
    """Switch `model` to the attention kernel `attention_for` picks, where the backbone supports it
    (the reward is the same; only the kernel differs). Returns the line to log."""
    impl, why = attention_for(device, bf16, training)
    hf = model.hf_model
    if getattr(hf.config, "_attn_implementation", None) == impl:
        return f"attention {impl} ({why})"
    try:
        hf.set_attn_implementation(impl)
    except (ValueError, ImportError, AttributeError) as e:  # a backbone without that kernel keeps its own
        return f"attention {hf.config._attn_implementation} (kept: {impl} unavailable: {e})"
    return f"attention {impl} ({why})"


def _cpu_has_avx512_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return "avx512_bf16" in f.read()
    except OSError:
        return False


class Scorer:
    """Score (prompt, response) pairs with a reward model, batched and length-sorted."""

    def __init__(
        self,
        model: RewardModel,
        encoder: TextEncoder,
        card: ModelCard | None = None,
        device: str | torch.device | None = None,
        max_batch_tokens: int | None = None,
        bf16: bool = False,
        quantize: str | None = None,
    ) -> None:
        self.model = model
        self.encoder = encoder
        self.card = card
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        # Padded tokens per forward pass. On CPU small batches win (cache-resident activations: 30 vs 21
        # texts/s at 512 vs 16k tokens, MiniLM on HH texts, 2 cores); accelerators want large ones.
        # Under bf16 on CPU the sweet spot is larger: 98 vs 68 texts/s at 2,048 vs 512 tokens (8,192: 87).
        cpu_budget = 2048 if bf16 else 512
        self.max_batch_tokens = max_batch_tokens or (cpu_budget if self.device.type == "cpu" else 16_384)
        self.bf16 = bf16
        self.model.to(self.device)
        if quantize is not None:
            self.model = quantize_dynamic_int8(self.model, self.device, quantize, bf16)
        self._shared_prefix: tuple[bool, str] | None = None

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        device: str | None = None,
        bf16: bool = False,
        max_batch_tokens: int | None = None,
        quantize: str | None = None,
    ) -> Scorer:
        dev = pick_device(device)
        # bf16 weights, not only autocast: a loaded model only scores, and casting fp32 weights to bf16 at
        # every op cost more than it saved (HH MiniLM on avx512_bf16: 43.8 texts/s under autocast, below
        # fp32's 47.2; benchmarks/score_vs_pipeline.py)
        dtype = torch.bfloat16 if bf16 and quantize is None else None
        model, encoder, card = load_reward_model(path, device=dev, dtype=dtype)
        return cls(model, encoder, card, dev, max_batch_tokens=max_batch_tokens, bf16=bf16, quantize=quantize)

    @property
    def pad_id(self) -> int:
        return self.encoder.tokenizer.pad_token_id

    def score(
        self,
        prompts: Sequence[Text],
        responses: Sequence[Text],
        on_progress: Callable[[int], Any] | None = None,
    ) -> list[float]:
        """Rewards for each (prompt, response), in input order."""
        if len(prompts) != len(responses):
            raise ValueError(f"got {len(prompts)} prompts but {len(responses)} responses")
        encoded = [self.encoder.encode(p, r) for p, r in zip(prompts, responses, strict=True)]
        return self.score_encoded(encoded, on_progress)

    def score_texts(
        self, texts: Sequence[str], on_progress: Callable[[int], Any] | None = None
    ) -> list[float]:
        """Rewards for whole texts with no separate prompt (e.g. full transcripts)."""
        return self.score([""] * len(texts), texts, on_progress)

    def score_encoded(
        self, encoded: Sequence[Encoded], on_progress: Callable[[int], Any] | None = None
    ) -> list[float]:
        return self._run(encoded, on_progress, per_token=False)

    def score_groups(
        self,
        prompts: Sequence[Text],
        response_lists: Sequence[Sequence[Text]],
        on_progress: Callable[[int], Any] | None = None,
    ) -> list[list[float]]:
        """Rewards for several responses to each prompt, in input order: ``out[i][k]`` scores
        ``(prompts[i], response_lists[i][k])`` exactly as `score` would (to float rounding)."""
        if len(prompts) != len(response_lists):
            raise ValueError(f"got {len(prompts)} prompts but {len(response_lists)} response lists")
        groups = [
            [self.encoder.encode(p, r) for r in rs] for p, rs in zip(prompts, response_lists, strict=True)
        ]
        return self.score_encoded_groups(groups, on_progress)

    def score_encoded_groups(
        self, groups: Sequence[Sequence[Encoded]], on_progress: Callable[[int], Any] | None = None
    ) -> list[list[float]]:
        """Score each group with its common token prefix encoded once (rewardlab.data.packing): one
        packed row per group, rows batched by packed length. Backbones that cannot take the packed
        layout (encoders, flash attention, ...) are scored on the plain path; the reason is logged once."""
        from rewardlab.data.packing import pack_groups, packed_length
        from rewardlab.model.reward_model import shared_prefix_support

        if self._shared_prefix is None:
            self._shared_prefix = shared_prefix_support(self.model)
            log.info(
                "shared-prefix scoring %s: %s",
                "on" if self._shared_prefix[0] else "off",
                self._shared_prefix[1],
            )
        if not self._shared_prefix[0]:
            flat = self.score_encoded([e for g in groups for e in g], on_progress)
            return _split(flat, [len(g) for g in groups])
        todo = [i for i, g in enumerate(groups) if g]
        out: list[list[float]] = [[] for _ in groups]
        was_training = self.model.training
        self.model.eval()
        try:
            with no_grad_for(self.model), self._autocast():
                lengths = [packed_length(groups[i]) for i in todo]
                for idx in token_budget_batches(lengths, self.max_batch_tokens):
                    chunk = [groups[todo[j]] for j in idx]
                    batch = {k: v.to(self.device) for k, v in pack_groups(chunk, self.pad_id).items()}
                    rewards = self.model(batch["input_ids"], batch["attention_mask"], packed=batch)
                    for j, scores in zip(idx, _split(rewards.float().tolist(), map(len, chunk)), strict=True):
                        out[todo[j]] = scores
                    if on_progress:
                        on_progress(sum(len(g) for g in chunk))
        finally:
            self.model.train(was_training)
        return out

    def score_steps(
        self,
        prompts: Sequence[str],
        step_lists: Sequence[Sequence[str]],
        on_progress: Callable[[int], Any] | None = None,
    ) -> list[list[float]]:
        """P(step correct) for every step of every solution (sigmoid of the head's logit).

        A process reward model (its card names a step marker) reads all steps of a solution in one pass
        at the markers (rewardlab.data.step_encoding); a step whose marker truncation cut scores NaN. Any
        other reward model scores each prefix ``steps[:i+1]`` as a whole solution, one pass per step.
        """
        from rewardlab.data.step_encoding import encode_steps, join_plain

        if len(prompts) != len(step_lists):
            raise ValueError(f"got {len(prompts)} prompts but {len(step_lists)} step lists")
        marker = self.card.step_marker if self.card else ""
        if not marker:
            flat = [
                (p, join_plain(steps[: i + 1]))
                for p, steps in zip(prompts, step_lists, strict=True)
                for i in range(len(steps))
            ]
            rewards = self.score([p for p, _ in flat], [r for _, r in flat], on_progress)
            out, i = [], 0
            for steps in step_lists:
                out.append([sigmoid(r) for r in rewards[i : i + len(steps)]])
                i += len(steps)
            return out
        items = [
            encode_steps(self.encoder, p, s, marker=marker) for p, s in zip(prompts, step_lists, strict=True)
        ]
        logits = self._run([it.encoded for it in items], on_progress, per_token=True)
        out = []
        for it, row in zip(items, logits, strict=True):
            probs = [float("nan")] * it.num_steps
            for step, pos in zip(it.steps, it.positions, strict=True):
                probs[step] = sigmoid(row[pos])
            out.append(probs)
        return out

    @property
    def attributes(self) -> list[str]:
        """The attribute names of a regression / multi-attribute model (its card); [] for a scalar one."""
        return list(getattr(self.card, "attributes", None) or [])

    def score_attributes(
        self,
        prompts: Sequence[Text],
        responses: Sequence[Text],
        on_progress: Callable[[int], Any] | None = None,
    ) -> tuple[list[float], list[list[float]]]:
        """(rewards, per-attribute values) of each (prompt, response), in input order, from one forward
        pass: ``rewards[i] == score(...)[i]`` is the card's combination of ``values[i]``."""
        if len(prompts) != len(responses):
            raise ValueError(f"got {len(prompts)} prompts but {len(responses)} responses")
        encoded = [self.encoder.encode(p, r) for p, r in zip(prompts, responses, strict=True)]
        return self.score_encoded_attributes(encoded, on_progress)

    def score_encoded_attributes(
        self, encoded: Sequence[Encoded], on_progress: Callable[[int], Any] | None = None
    ) -> tuple[list[float], list[list[float]]]:
        """`score_attributes` of texts already encoded."""
        if self.model.attribute_head is None:
            raise ValueError(
                "this reward model has no attribute head: it gives one reward (train with --objective "
                "regression for per-attribute scores)"
            )
        values = self._run(encoded, on_progress, per_token=False, attributes=True)
        weights = self.model.attribute_weights.tolist()
        rewards = [float(sum(w * v for w, v in zip(weights, row, strict=True))) for row in values]
        return rewards, values

    def embed(
        self,
        prompts: Sequence[Text],
        responses: Sequence[Text],
        on_progress: Callable[[int], Any] | None = None,
    ) -> list[list[float]]:
        """The pooled last hidden state the reward head reads, one vector per (prompt, response), in input
        order: the last real token (``last``), the pooler's dense+tanh of position 0 (``cls``), the
        response-token mean (``mean``) or the mean over all real tokens (``mean_all``).
        ``head(embed) == score`` for every pooling (rewardlab.drift)."""
        if len(prompts) != len(responses):
            raise ValueError(f"got {len(prompts)} prompts but {len(responses)} responses")
        encoded = [self.encoder.encode(p, r) for p, r in zip(prompts, responses, strict=True)]
        return self._run(encoded, on_progress, per_token=False, pooled=True)

    def _run(
        self,
        encoded: Sequence[Encoded],
        on_progress: Callable[[int], Any] | None,
        per_token: bool,
        pooled: bool = False,
        attributes: bool = False,
    ) -> list[Any]:
        """Batched forward passes in input order: one reward per text, or (per_token) one logit per token,
        or (pooled) the vector the head reads."""
        lengths = [len(e.input_ids) for e in encoded]
        out: list[Any] = [0.0] * len(encoded)
        was_training = self.model.training
        self.model.eval()
        try:
            with no_grad_for(self.model), self._autocast():
                for idx in token_budget_batches(lengths, self.max_batch_tokens):
                    batch = collate([encoded[i] for i in idx], self.pad_id)
                    batch = {k: v.to(self.device) for k, v in batch.items()}
                    if pooled:
                        rewards = _pooled_hidden(self.model, batch).float().tolist()
                    elif attributes:
                        rewards = self.model(**batch, attributes=True).float().tolist()
                    else:
                        rewards = self.model(**batch, per_token=per_token).float().tolist()
                    for i, r in zip(idx, rewards, strict=True):
                        out[i] = r
                    if on_progress:
                        on_progress(len(idx))
        finally:
            self.model.train(was_training)
        return out

    def _autocast(self) -> Any:
        if not self.bf16:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=torch.bfloat16)


def no_grad_for(model: torch.nn.Module) -> Any:
    """``torch.inference_mode``, or ``torch.no_grad`` for a model sharded by FSDP2 (DTensor parameters) or
    DeepSpeed ZeRO-3 (``ds_id``): gathering their shards under inference_mode leaves inference tensors
    that break the next training step ("Inplace update to inference tensor outside InferenceMode";
    pytorch/pytorch PR 197327, snowflakedb/ArcticTraining PR 265). Reproduced on CPU for FSDP2:
    tests/test_sharded_save.py."""
    first = next(model.parameters(), None)
    sharded = first is not None and (hasattr(first, "device_mesh") or hasattr(first, "ds_id"))
    return torch.no_grad() if sharded else torch.inference_mode()


def _pooled_hidden(model: RewardModel, batch: dict[str, Any]) -> torch.Tensor:
    """(batch, hidden): what `model`'s linear head reads, with the positions `RewardModel.forward` uses."""
    kwargs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
    kwargs["position_ids"] = (batch["attention_mask"].long().cumsum(-1) - 1).clamp(min=0)
    return pooled_hidden(model, kwargs, batch.get("response_mask"))


INT8_WARNING = (
    "--quantize int8 changes which response wins: on HH with MiniLM it ordered only 72% of pairs as fp32 "
    "does (benchmarks/score_vs_pipeline.py, pair_order_agreement_vs_fp32). Check that figure on your "
    "model and data before ranking with it; --bf16 keeps the order on CPUs with avx512_bf16 and on GPUs."
)


def quantize_dynamic_int8(model: RewardModel, device: torch.device, quantize: str, bf16: bool) -> RewardModel:
    """A copy of `model` whose nn.Linear layers run as int8 dynamic-quantised matmuls (weights int8 per
    output channel, activations quantised per tensor on the fly): a CPU-only speed-up for scoring at an
    accuracy cost benchmarks/score_vs_pipeline.py measures. Per-channel weights halve the error of
    per-tensor ones (MiniLM trained on HH, 120 texts: max |diff| 0.17 vs 0.33, reward std 0.36).
    GPT-2's Conv1D projections are not nn.Linear and stay fp32. torch.ao.quantization is deprecated in
    favour of torchao (not a dependency), so its deprecation warnings are silenced here."""
    import warnings

    if quantize != "int8":
        raise ValueError(f"--quantize must be int8 (or left out), got {quantize!r}")
    if device.type != "cpu":
        raise ValueError(f"--quantize int8 runs on CPU only, the model is on {device}; add --device cpu")
    if bf16:
        raise ValueError("--quantize int8 and --bf16 cannot be combined; choose one")
    from torch.ao.nn.quantized.dynamic import Linear as QuantizedLinear
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf = quantize_dynamic(
            model.hf_model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
        )
    count = sum(isinstance(m, QuantizedLinear) for m in hf.modules())
    log.info("int8 dynamic quantisation: %d linear layers quantised", count)
    log.warning(INT8_WARNING)
    if count <= 1:
        log.warning("--quantize int8: only %d linear layer(s) found; this backbone gains little", count)
    out = RewardModel(hf, model.pooling, model.is_encoder).eval()
    if model.attribute_head is not None:  # kept in fp32: one small matmul
        out.attribute_head, out.attribute_weights = model.attribute_head, model.attribute_weights
    return out


def _split(flat: Sequence[float], sizes: Any) -> list[list[float]]:
    out, i = [], 0
    for n in sizes:
        out.append(list(flat[i : i + n]))
        i += n
    return out
