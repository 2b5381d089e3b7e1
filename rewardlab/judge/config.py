"""The judge config: one JSON file (``judge.json``) that names the judge model or endpoint, how it
scores, and the full text and version of each prompt template, so a judge is a file you can pass
wherever rewardlab takes a reward-model folder (`is_judge` recognises it) and rerun later unchanged.

    rewardlab judge config -o runs/judge                        # SmolLM2-135M-Instruct, logits
    rewardlab judge config -o runs/judge-api --endpoint http://127.0.0.1:8001 --api chat --mode text
    rewardlab diagnose runs/judge demo                          # a folder holding judge.json, or the file

Each field is documented once, here; `rewardlab judge config` generates its flags from this dataclass.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from rewardlab.config import ConfigError, check_choices, check_range, doc

JUDGE_FILE = "judge.json"
JUDGE_FORMAT = 1
MARKER = "rewardlab_judge"
"""Key every judge config carries (its format version): how `is_judge` tells it from other JSON."""


@dataclass
class JudgeConfig:
    """A generative judge: which model answers, how its answer becomes a score, and with which prompts."""

    model: str = doc(
        "Local judge: a causal LM folder, hub name in the cache, .gguf file, or the packaged smollm2 "
        "(SmolLM2-135M-Instruct).",
        "smollm2",
    )
    endpoint: str | None = doc(
        "OpenAI-compatible server URL (http://host:port, with or without /v1) instead of a local model.",
        None,
    )
    endpoint_model: str = doc("The `model` field sent to the endpoint.", "default")
    api: Literal["completions", "chat"] = doc(
        "Endpoint API: completions (/v1/completions, log-probabilities or text) or chat "
        "(/v1/chat/completions, text replies only).",
        "completions",
    )
    mode: Literal["logits", "text"] = doc(
        "logits: scores from the label tokens' probabilities (expected rating, P(A) vs P(B)); text: "
        "greedy reply parsed by the stated rule (endpoints without log-probabilities).",
        "logits",
    )
    pointwise_template: str = doc("Pointwise template: a shipped name or a file.", "pointwise-v1")
    pairwise_template: str = doc("Pairwise template: a shipped name or a file.", "pairwise-v1")
    max_length: int = doc("Local judge: longest prompt in tokens; a longer one is an item error.", 2048)
    max_batch_tokens: int = doc("Local judge: padded tokens per forward pass.", 4096)
    bf16: bool = doc("Local judge: bf16 weights.", False)
    timeout_s: float = doc("Endpoint: seconds one HTTP request may take.", 30.0)
    retries: int = doc(
        "Endpoint: retries after a failed request (timeout, connection error, HTTP 429/5xx); a reply "
        "that arrives but cannot be parsed is not retried.",
        2,
    )
    concurrency: int = doc("Endpoint: requests in flight at once.", 4)
    top_logprobs: int = doc("Endpoint, logits mode: top log-probabilities asked for per token.", 20)
    max_tokens: int = doc("Text mode: tokens the judge may write.", 16)
    cache: str | None = doc(
        "Result cache (SQLite) path; relative paths are next to judge.json. Empty: no cache.",
        "judge-cache.sqlite",
    )
    errors: Literal["raise", "nan"] = doc(
        "When an item fails inside diagnose/bon/serve/drift: raise (stop, listing the items) or nan "
        "(that item's score is NaN). `rewardlab judge score` always writes per-item errors.",
        "raise",
    )
    templates: dict[str, Any] = field(default_factory=dict)
    """Written by `save`: each template's full text, name, version and SHA-256 (what was actually used)."""

    def __post_init__(self) -> None:
        check_choices(self)
        check_range(self, "max_length", low=8)
        check_range(self, "max_batch_tokens", low=8)
        check_range(self, "timeout_s", low=0, low_open=True)
        check_range(self, "retries", low=0)
        check_range(self, "concurrency", low=1)
        check_range(self, "top_logprobs", low=1)
        check_range(self, "max_tokens", low=1)
        if self.api == "chat" and self.mode == "logits":
            raise ConfigError(
                "--api chat gives text replies only: add --mode text, or use --api completions for logits"
            )

    @property
    def backend_name(self) -> str:
        return f"endpoint {self.endpoint} ({self.api})" if self.endpoint else f"local {self.model}"


def config_path(path: str | Path) -> Path:
    """The judge.json a path means: the file itself, or judge.json inside a folder."""
    p = Path(path)
    return p / JUDGE_FILE if p.is_dir() else p


def is_judge(path: str | Path) -> bool:
    """Whether `path` is a judge config (a JSON file with the marker key) or a folder holding judge.json."""
    p = config_path(path)
    if not p.is_file() or p.suffix != ".json":
        return False
    try:
        return MARKER in json.loads(p.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return False


def save_judge_config(cfg: JudgeConfig, path: str | Path) -> Path:
    """Write `cfg` with the text of both templates; `path` is a folder (judge.json inside) or a .json file."""
    from rewardlab.judge.templates import load_template

    p = Path(path)
    file = p if p.suffix == ".json" else p / JUDGE_FILE
    file.parent.mkdir(parents=True, exist_ok=True)
    templates = {
        "pointwise": load_template(cfg.pointwise_template, "pointwise").to_dict(),
        "pairwise": load_template(cfg.pairwise_template, "pairwise").to_dict(),
    }
    record = {MARKER: JUDGE_FORMAT, **asdict(cfg), "templates": templates}
    file.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return file


def load_judge_config(path: str | Path) -> tuple[JudgeConfig, Path]:
    """The config and the judge.json it came from. The templates recorded in the file are the ones used
    (not whatever the named template file says now), so a saved judge reproduces its prompts."""
    file = config_path(path)
    raw = json.loads(file.read_text("utf-8"))
    if raw.get(MARKER, 0) > JUDGE_FORMAT:
        raise ValueError(f"{file}: judge format {raw[MARKER]} is newer than this rewardlab; upgrade")
    unknown = set(raw) - set(JudgeConfig.__dataclass_fields__) - {MARKER}
    if unknown:
        raise ValueError(f"{file}: unknown fields {', '.join(sorted(unknown))}")
    try:
        cfg = JudgeConfig(**{k: v for k, v in raw.items() if k != MARKER})
    except (TypeError, ConfigError) as e:
        raise ValueError(f"{file}: {e}") from e
    return cfg, file
