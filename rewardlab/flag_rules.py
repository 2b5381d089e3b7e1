"""Flag combinations that config checks need but config.py does not spell out: each function returns the
problem as a message naming the flag (the caller raises `config.ConfigError`), or None. Imports nothing of
rewardlab, so `config`, `data.thinking` and the objectives share it without an import cycle."""

from __future__ import annotations

import math
from typing import Any


def thinking_problem(open_tag: str, close_tag: str) -> str | None:
    """--think-open / --think-close must be non-empty, distinct, and the open tag not inside the close."""
    for flag, tag in (("--think-open", open_tag), ("--think-close", close_tag)):
        if not isinstance(tag, str) or not tag.strip():
            return f"{flag} must be a non-empty tag (e.g. <think> / </think>), got {tag!r}"
    if open_tag == close_tag or open_tag in close_tag:
        return (
            f"--think-open {open_tag!r} must differ from --think-close {close_tag!r} and not occur inside it"
        )
    return None


def stray_regression_flag(cfg: Any) -> str | None:
    """A TrainConfig of another objective that sets an --objective regression flag."""
    for name, default in (("attributes", []), ("attribute_weights", []), ("bt_weight", 0.0)):
        if getattr(cfg, name) != default:
            flag = "--" + name.replace("_", "-")
            return f"{flag} applies to --objective regression only (got --objective {cfg.objective})"
    return None


def regression_problem(cfg: Any) -> str | None:
    """The flags of a TrainConfig with --objective regression, consistent together."""
    names, weights = list(cfg.attributes) or ["score"], list(cfg.attribute_weights)
    if any(not isinstance(n, str) or not n.strip() for n in names) or len(set(names)) != len(names):
        return f"--attributes must be distinct, non-empty names; got {cfg.attributes!r}"
    if weights and len(weights) != len(names):
        return (
            f"--attribute-weights has {len(weights)} weights but --attributes names {len(names)} "
            f"({', '.join(names)}); give one weight per attribute"
        )
    if any(not math.isfinite(w) for w in weights) or (weights and not any(weights)):
        return f"--attribute-weights must be finite numbers, not all 0; got {weights!r}"
    if not (math.isfinite(cfg.bt_weight) and cfg.bt_weight >= 0):
        return f"--bt-weight must be a finite number >= 0, got {cfg.bt_weight}"
    if cfg.data is None:
        return "--objective regression needs --data with ratings (docs/formats.md, docs/reward_kinds.md)"
    if cfg.lora_r:
        return "--lora-r is not supported with --objective regression yet; use --freeze-layers"
    if cfg.loss != "bt":
        return "--loss applies to --objective pairs; --objective regression uses --bt-weight"
    return None


def regression_weights(cfg: Any) -> tuple[list[str], list[float]]:
    """The attribute names and combination weights --objective regression trains (defaults filled in)."""
    names = list(cfg.attributes) or ["score"]
    return names, list(cfg.attribute_weights) or [1.0 / len(names)] * len(names)
