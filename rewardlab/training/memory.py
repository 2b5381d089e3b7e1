"""Training memory, estimated before the first step, so a run that cannot fit says so at start.

A CPU run that outgrows RAM is killed by the kernel with no message, often many steps in (the largest
length-grouped batch comes when it comes): SmolLM2-135M at 8 ranking rows x 4 responses x 384 tokens
needs more than 24 GiB and died at step 16. What training adds to the process is the weights, their
gradients, AdamW's two moments and the activations autograd keeps for the largest micro-batch; the
last is fitted to MiniLM's and SmolLM2's measured peaks (`benchmarks/train_memory.py` compares the
estimate with the measured peak of each shape).
"""

from __future__ import annotations

import heapq
import os
from dataclasses import dataclass
from typing import Any

HIDDEN_BYTES, INNER_BYTES = 46.0, 14.0
"""Bytes autograd keeps per token and transformer block, per unit of hidden width and of MLP width
(doubled for gated MLPs: SwiGLU keeps gate and up). Fitted to peak RSS under bf16 autocast, MiniLM
(38-45 KB a token-block) and SmolLM2-135M (71 KB); fp32 keeps less (benchmarks/train_memory.py)."""

GIB = 2**30


@dataclass
class MemoryEstimate:
    """What training adds to the process, in bytes, and where it goes."""

    weights: float
    gradients: float
    optimizer: float
    activations: float
    tokens: int
    """Tokens of the largest micro-batch (the activations' multiplier)."""

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations

    def line(self) -> str:
        parts = ("weights", "gradients", "optimizer", "activations")
        detail = ", ".join(f"{p} {getattr(self, p) / GIB:.2f}" for p in parts)
        return (
            f"memory: about {self.total / GIB:.1f} GiB for training ({detail} GiB; "
            f"{self.tokens} tokens in the largest micro-batch)"
        )


def estimate_training_memory(
    model: Any, largest_batch_tokens: int, checkpointing: bool = False
) -> MemoryEstimate:
    """Weights as loaded, gradients and AdamW moments of the trainable ones, and the activations of
    `largest_batch_tokens` through every block (with gradient checkpointing, each block's input plus one
    block's worth in backward)."""
    from rewardlab.model.reward_model import inner_hf

    params = list(model.parameters())
    trainable = [p for p in params if p.requires_grad]
    config = inner_hf(model).config
    config = getattr(config, "text_config", config)
    hidden = int(getattr(config, "hidden_size", 0) or getattr(config, "n_embd", 0))
    inner = int(getattr(config, "intermediate_size", 0) or getattr(config, "n_inner", 0) or 4 * hidden)
    layers = int(getattr(config, "num_hidden_layers", 0) or getattr(config, "n_layer", 0))
    gated = any("gate_proj" in name or "gate_up_proj" in name for name, _ in model.named_parameters())
    per_block = (HIDDEN_BYTES * hidden + INNER_BYTES * inner * (2 if gated else 1)) * largest_batch_tokens
    if checkpointing:  # each block keeps its input (fp32), one block at a time is recomputed
        activations = layers * 4 * hidden * largest_batch_tokens + per_block
    else:  # frozen bottom blocks measured no cheaper (MiniLM, --freeze-layers 2: 1.92 vs 2.16 GiB)
        activations = layers * per_block
    return MemoryEstimate(
        weights=sum(p.numel() * p.element_size() for p in params),
        gradients=sum(p.numel() * p.element_size() for p in trainable),
        optimizer=sum(2 * 4 * p.numel() for p in trainable),
        activations=activations,
        tokens=largest_batch_tokens,
    )


def largest_batch_tokens(lengths: Any, batch_size: int) -> int:
    """Tokens of the largest micro-batch the plan can make: the `batch_size` longest items together
    (length-grouped batches put them together; the padding between near-equal lengths is small)."""
    return sum(heapq.nlargest(batch_size, map(int, lengths)))


def available_memory(device: Any) -> tuple[float | None, str]:
    """Bytes free for this run on `device`, and where the figure comes from (None: unknown)."""
    import torch

    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return float(free), "free on the GPU"
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return float(info["MemAvailable"].split()[0]) * 1024, "MemAvailable"
    except (OSError, KeyError, ValueError):
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")), "available pages"
    except (ValueError, OSError, AttributeError):
        return None, "unknown"


def memory_warning(
    estimate: MemoryEstimate, available: float | None, where: str, resident: float = 0.0
) -> str | None:
    """A warning naming the flags that shrink the run, when the estimate, less what is already
    `resident` (the loaded weights, on CPU), exceeds what is free."""
    if available is None or estimate.total - resident <= available:
        return None
    return (
        f"warning: training needs about {estimate.total / GIB:.1f} GiB and {available / GIB:.1f} GiB is "
        f"free ({where}); it will likely run out of memory at the largest batch. Lower --batch-size "
        f"(raise --grad-accum to keep the step), lower --max-length, or add --gradient-checkpointing "
        f"(activations {estimate.activations / GIB:.1f} GiB of it) or --lora-r"
    )


def memory_check(model: Any, items: Any, cfg: Any, device: Any) -> list[str]:
    """The estimate's log line for this run, and a warning after it when it exceeds what is free (an
    upper bound for decoders that pack a shared prompt once per group, and per process when sharded)."""
    tokens = largest_batch_tokens(items.lengths, cfg.batch_size)
    estimate = estimate_training_memory(model, tokens, cfg.gradient_checkpointing)
    available, where = available_memory(device)
    resident = estimate.weights if device.type != "cuda" else 0.0  # loaded already, not in MemAvailable
    warning = memory_warning(estimate, available, where, resident)
    return [estimate.line(), warning] if warning else [estimate.line()]
