"""Best-of-N: N candidates per prompt, scored by a reward model (or an ensemble), the best one kept.

Candidates come from a file, from the built-in demo policy (`rewardlab.demo.policy.sample_response`), or
from any Hugging Face causal LM (a folder, a cached hub name, a .gguf file, or the packaged ``smollm2``)
sampled with a temperature and a per-prompt seed; LM generations are cached on disk, one file per
(model, prompt, sampling settings), so a rerun never generates twice. Gold scores for the
overoptimization study (`rewardlab.overopt`) come from one of three sources: ``demo`` (the demo task's
known gold reward), ``gsm8k`` (1 if the response's final number equals the reference answer, else 0), or
a folder holding a bigger/better "gold" reward model that scores the same samples (Gao et al. 2022).

    rewardlab bon runs/rm --policy demo --prompts demo-pool --n 16 --gold demo -o runs/bon.jsonl
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rewardlab.bon.answers import final_number, gsm8k_correct  # noqa: F401  (public here too)
from rewardlab.config import ConfigError, check_range, doc
from rewardlab.data.thinking import ThinkingFlags, use_thinking
from rewardlab.progress import Reporter
from rewardlab.scoring.rules import RewardRuleFlags, score_groups_with_rule

DEMO_PROMPT_SETS = ("demo-pool", "demo-test", "demo-eval")


@dataclass
class Candidates:
    """One prompt and its candidate responses; `meta` carries the row's other fields (e.g. "answer")."""

    prompt: str
    responses: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)


def _read_jsonl(path: str | Path) -> list[tuple[int, dict]]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append((i, json.loads(line)))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{i}: not valid JSON ({e})") from e
    return rows


def read_prompts(source: str, limit: int = 0) -> list[Candidates]:
    """Prompts to generate for: a demo set (demo-pool, demo-test, demo-eval) or a JSONL file with
    "prompt" (or GSM8K's "question"; its "answer" is kept in meta for the gsm8k gold)."""
    if source in DEMO_PROMPT_SETS:
        from rewardlab.demo.task import demo_split_prompts

        out = [Candidates(p) for p in demo_split_prompts()[source.split("-", 1)[1]]]
    else:
        out = []
        for i, row in _read_jsonl(source):
            prompt = row.get("prompt", row.get("question"))
            if not isinstance(prompt, str):
                raise ValueError(f"{source}:{i}: needs a string 'prompt' (or 'question') field")
            meta = {k: v for k, v in row.items() if k not in ("prompt", "question")}
            out.append(Candidates(prompt, meta=meta))
    return out[:limit] if limit else out


def read_candidates(path: str | Path) -> list[Candidates]:
    """Candidates from JSONL: {"prompt", "responses": [...]} rows, or {"prompt", "response"} rows grouped by
    prompt (in order of first appearance). Other fields of a prompt's first row go to meta."""
    by_prompt: dict[str, Candidates] = {}
    for i, row in _read_jsonl(path):
        prompt = row.get("prompt")
        if not isinstance(prompt, str):
            raise ValueError(f"{path}:{i}: needs a string 'prompt' field")
        if "responses" in row:
            responses = row["responses"]
        elif "response" in row:
            responses = [row["response"]]
        else:
            raise ValueError(f"{path}:{i}: needs 'responses' (a list) or 'response' (a string)")
        if not isinstance(responses, list) or not all(isinstance(r, str) for r in responses):
            raise ValueError(f"{path}:{i}: 'responses' must be a list of strings")
        extra = {k: v for k, v in row.items() if k not in ("prompt", "responses", "response")}
        cand = by_prompt.setdefault(prompt, Candidates(prompt, meta=extra))
        cand.responses.extend(responses)
    if not by_prompt:
        raise ValueError(f"{path}: no candidate rows")
    return list(by_prompt.values())


@dataclass
class Sampling:
    """How candidates are generated (the sampling flags of `rewardlab bon`)."""

    policy: str = doc(
        "demo (the demo task's policy) or a causal LM: folder, hub name, .gguf, or smollm2.", "demo"
    )
    n: int = doc("Candidates generated per prompt.", 16)
    temperature: float = doc("Sampling temperature.", 1.0)
    top_p: float = doc("Nucleus sampling (LM policies).", 1.0)
    max_new_tokens: int = doc("LM policies: tokens per response.", 256)
    seed: int = doc("Sampling seed (each prompt derives its own).", 0)
    style: str = doc("Demo policy style preset (rewardlab.demo.policy.STYLES).", "default")

    def __post_init__(self) -> None:
        check_range(self, "n", low=1)
        check_range(self, "temperature", low=0)
        check_range(self, "top_p", low=0, low_open=True)
        if self.top_p > 1:
            raise ConfigError(f"--top-p must be at most 1, got {self.top_p}")
        check_range(self, "max_new_tokens", low=1)


def _prompt_seed(seed: int, prompt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{prompt}".encode()).digest()[:4], "big")


def generate_demo(prompts: Sequence[Candidates], sampling: Sampling) -> list[Candidates]:
    """`sampling.n` demo-policy responses per prompt at `sampling.temperature` (repeats allowed: they are
    genuine draws of the policy, which the best-of-n estimator must see)."""
    from rewardlab.demo.policy import sample_response, with_style

    style = with_style(sampling.style, temperature=sampling.temperature)
    out = []
    for c in prompts:
        rng = random.Random(_prompt_seed(sampling.seed, c.prompt))
        responses = [sample_response(c.prompt, rng, style) for _ in range(sampling.n)]
        out.append(Candidates(c.prompt, responses, c.meta))
    return out


def _cache_file(cache_dir: Path, model_id: str, prompt: str, sampling: Sampling) -> Path:
    key = json.dumps(
        [
            model_id,
            prompt,
            sampling.n,
            sampling.temperature,
            sampling.top_p,
            sampling.max_new_tokens,
            sampling.seed,
        ]
    )
    return cache_dir / (hashlib.sha256(key.encode()).hexdigest()[:24] + ".json")


def generate_lm(
    prompts: Sequence[Candidates],
    sampling: Sampling,
    cache_dir: str | Path,
    reporter: Reporter | None = None,
    device: str | None = None,
) -> list[Candidates]:
    """Sample `sampling.n` responses per prompt from a causal LM, reading and writing the disk cache.

    Each prompt is sampled with its own seed (from sampling.seed and the prompt), so a cached prompt and
    a fresh one give the same text whatever else is in the run. Chat models get their chat template.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardlab.model.build import resolve_backbone
    from rewardlab.scoring.scorer import pick_device

    reporter = reporter or Reporter()
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    path, gguf = resolve_backbone(sampling.policy)
    model_id = f"{path}::{gguf}" if gguf else str(path)
    out: list[Candidates | None] = [None] * len(prompts)
    todo = []
    for i, c in enumerate(prompts):
        file = _cache_file(cache, model_id, c.prompt, sampling)
        if file.is_file():
            out[i] = Candidates(c.prompt, json.loads(file.read_text(encoding="utf-8"))["responses"], c.meta)
        else:
            todo.append(i)
    reporter.message(f"generation: {len(prompts) - len(todo)} prompts cached in {cache}, {len(todo)} to go")
    if todo:
        kw = {"gguf_file": gguf} if gguf else {}
        tokenizer = AutoTokenizer.from_pretrained(path, **kw)
        dev = pick_device(device)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **kw).to(dev).eval()
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        reporter.start("generating", len(todo))
        for i in todo:
            c = prompts[i]
            if getattr(tokenizer, "chat_template", None):
                text = tokenizer.apply_chat_template(
                    [{"role": "user", "content": c.prompt}], tokenize=False, add_generation_prompt=True
                )
                ids = tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids.to(dev)
            else:
                ids = tokenizer(c.prompt, return_tensors="pt").input_ids.to(dev)
            torch.manual_seed(_prompt_seed(sampling.seed, c.prompt))
            with torch.inference_mode():
                gen = model.generate(
                    ids,
                    attention_mask=torch.ones_like(ids),
                    do_sample=True,
                    temperature=sampling.temperature,
                    top_p=sampling.top_p,
                    max_new_tokens=sampling.max_new_tokens,
                    num_return_sequences=sampling.n,
                    pad_token_id=pad,
                )
            responses = tokenizer.batch_decode(gen[:, ids.shape[1] :], skip_special_tokens=True)
            responses = [r.strip() for r in responses]
            file = _cache_file(cache, model_id, c.prompt, sampling)
            payload = {
                "model": model_id,
                "prompt": c.prompt,
                "sampling": asdict(sampling),
                "responses": responses,
            }
            tmp = file.with_suffix(".tmp")
            tmp.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
            tmp.replace(file)
            out[i] = Candidates(c.prompt, responses, c.meta)
            reporter.advance(1)
        reporter.finish()
    return [c for c in out if c is not None]


# --- gold sources ----------------------------------------------------------------------------------


def gold_scores(
    source: str,
    candidates: Sequence[Candidates],
    device: str | None = None,
    on_progress: Callable[[int], Any] | None = None,
) -> list[list[float]]:
    """Gold reward of every candidate: 'demo', 'gsm8k' (needs meta['answer']) or a reward-model folder."""
    if source == "demo":
        from rewardlab.demo.gold import gold_reward

        return [[gold_reward(c.prompt, r) for r in c.responses] for c in candidates]
    if source == "gsm8k":
        missing = [c.prompt[:40] for c in candidates if "answer" not in c.meta]
        if missing:
            raise ValueError(f"--gold gsm8k needs an 'answer' field per prompt; missing for {missing[:3]}")
        return [[gsm8k_correct(r, str(c.meta["answer"])) for r in c.responses] for c in candidates]
    if not Path(source).is_dir():
        raise ValueError(f"--gold {source!r}: use 'demo', 'gsm8k', or a reward-model (or ensemble) folder")
    from rewardlab.scoring.ensemble import load_scorer

    return score_flat(load_scorer(source, device), candidates, on_progress)


def score_flat(
    scorer: Any, candidates: Sequence[Candidates], on_progress: Callable[[int], Any] | None = None
) -> list[list[float]]:
    """Score every candidate in one batched call, returned per prompt."""
    prompts = [c.prompt for c in candidates for _ in c.responses]
    responses = [r for c in candidates for r in c.responses]
    return _unflatten(scorer.score(prompts, responses, on_progress), candidates)


def _unflatten(flat: Sequence[float], candidates: Sequence[Candidates]) -> list[list[float]]:
    out, start = [], 0
    for c in candidates:
        out.append([float(x) for x in flat[start : start + len(c.responses)]])
        start += len(c.responses)
    return out


# --- selection --------------------------------------------------------------------------------------


@dataclass
class BonRow:
    """One prompt's best-of-N outcome, as written to the output JSONL."""

    prompt: str
    responses: list[str]
    scores: list[float]
    best: int
    best_response: str
    best_score: float
    member_scores: list[list[float]] | None = None
    """Per-member scores (member-major) when the scorer is an ensemble, for `rewardlab overopt`."""
    gold: list[float] | None = None
    best_gold: float | None = None
    meta: dict = field(default_factory=dict)
    rm_scores: list[float] | None = None  # --reward-fn: the RM's own scores (`scores`: the combined ones)
    rule_scores: list[float | None] | None = None  # --reward-fn: the hook's values (null: no opinion)


def select_best(
    candidates: Sequence[Candidates],
    scores: Sequence[Sequence[float]],
    gold: Sequence[Sequence[float]] | None = None,
    member_scores: Sequence[Sequence[Sequence[float]]] | None = None,
) -> list[BonRow]:
    """The highest-scoring candidate per prompt (the first on ties)."""
    rows = []
    for i, c in enumerate(candidates):
        s = list(scores[i])
        if not s:
            raise ValueError(f"prompt {c.prompt[:60]!r} has no candidates")
        best = max(range(len(s)), key=lambda j: (s[j], -j))
        g = list(gold[i]) if gold is not None else None
        rows.append(
            BonRow(
                c.prompt,
                list(c.responses),
                s,
                best,
                c.responses[best],
                s[best],
                [list(m) for m in member_scores[i]] if member_scores is not None else None,
                g,
                g[best] if g is not None else None,
                dict(c.meta),
            )
        )
    return rows


def score_candidates(
    scorer: Any, candidates: Sequence[Candidates], on_progress: Callable[[int], Any] | None = None
) -> tuple[list[list[float]], list[list[list[float]]] | None]:
    """Per-prompt scores, and per-prompt member scores ([prompt][member][candidate]) for an ensemble."""
    prompts = [c.prompt for c in candidates for _ in c.responses]
    responses = [r for c in candidates for r in c.responses]
    if hasattr(scorer, "score_members"):
        from rewardlab.scoring.ensemble import combine

        members = scorer.score_members(prompts, responses, on_progress)
        flat = combine(members, scorer.card.rule, scorer.card.lam)
        per_member = [_unflatten(m, candidates) for m in members]
        grouped = [[per_member[k][i] for k in range(len(members))] for i in range(len(candidates))]
        return _unflatten(flat, candidates), grouped
    return _unflatten(scorer.score(prompts, responses, on_progress), candidates), None


def write_rows(rows: Sequence[BonRow], path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            record = {k: v for k, v in asdict(row).items() if v is not None}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


@dataclass
class BonConfig:
    """Everything `rewardlab bon` needs; each field is a flag (`rewardlab.config.add_dataclass_flags`)."""

    model: str = doc("Reward-model folder or ensemble folder (ensemble.json) that picks.", positional=True)
    output: str = doc("Output JSONL: all scores, the pick, gold if any.", short="-o")
    candidates: str | None = doc(
        "JSONL of candidates ({prompt, responses} or {prompt, response} rows); skips generation.", None
    )
    prompts: str = doc(
        "demo-pool, demo-test, demo-eval, or a JSONL with 'prompt' (or GSM8K 'question'/'answer').",
        "demo-pool",
    )
    limit: int = doc("Use the first N prompts only (0: all).", 0)
    sampling: Sampling = field(default_factory=Sampling)
    cache_dir: str = doc("Where LM generations are cached.", "runs/bon-cache")
    gold: str | None = doc(
        "Gold scores for `rewardlab overopt`: demo, gsm8k, or a 'gold' reward-model folder.", None
    )
    device: str | None = doc("cpu, cuda, mps (default: best available).", None)
    bf16: bool = doc("Score under bf16 autocast.", False)
    thinking: ThinkingFlags = field(default_factory=ThinkingFlags)
    rules: RewardRuleFlags = field(default_factory=RewardRuleFlags)

    def __post_init__(self) -> None:
        check_range(self, "limit", low=0)


@dataclass
class BonSummary:
    prompts: int
    candidates: int
    mean_best_score: float
    mean_score: float
    mean_best_gold: float | None
    mean_gold: float | None
    texts_per_s: float
    """Proxy scoring throughput: candidates per second (an ensemble of k runs k models per candidate)."""
    output: str
    notes: list[str] = field(default_factory=list)  # what --strip-thinking and --reward-fn did


def run_bon(cfg: BonConfig, reporter: Reporter | None = None) -> BonSummary:
    """Read or generate candidates, score them, attach gold scores, select, write JSONL."""
    import time

    from rewardlab.scoring.ensemble import load_scorer

    reporter = reporter or Reporter()
    if cfg.candidates:
        cands = read_candidates(cfg.candidates)
        cands = cands[: cfg.limit] if cfg.limit else cands
    else:
        prompts = read_prompts(cfg.prompts, cfg.limit)
        if cfg.sampling.policy == "demo":
            cands = generate_demo(prompts, cfg.sampling)
        else:
            cands = generate_lm(prompts, cfg.sampling, cfg.cache_dir, reporter, cfg.device)
    total = sum(len(c.responses) for c in cands)
    scorer = load_scorer(cfg.model, cfg.device, bf16=cfg.bf16)
    stripper = use_thinking(scorer, cfg.thinking)
    rule = cfg.rules.load()
    members = len(getattr(scorer, "scorers", [scorer]))
    reporter.start("scoring", total * members)
    t0 = time.perf_counter()
    rule_parts, member_scores = None, None
    if rule is not None:
        scores, *rule_parts = score_groups_with_rule(
            scorer, rule, [(c.prompt, c.responses) for c in cands], reporter.advance
        )
    else:
        scores, member_scores = score_candidates(scorer, cands, reporter.advance)
    elapsed = time.perf_counter() - t0
    reporter.finish()
    gold = None
    if cfg.gold:
        reporter.start("gold", total if Path(cfg.gold).is_dir() else None)
        gold = gold_scores(cfg.gold, cands, cfg.device, reporter.advance)
        reporter.finish()
    rows = select_best(cands, scores, gold, member_scores)
    notes = [stripper.line()] if stripper is not None else []
    if rule_parts is not None:
        for row, rm_row, rule_row in zip(rows, *rule_parts, strict=True):
            row.rm_scores, row.rule_scores = rm_row, rule_row
        judged = sum(v is not None for r in rule_parts[1] for v in r)
        notes.append(f"--reward-fn {rule.spec} ({rule.how}, w={rule.weight:g}): {judged}/{total} judged")
    write_rows(rows, cfg.output)
    n_rows = len(rows)
    return BonSummary(
        n_rows,
        total,
        sum(r.best_score for r in rows) / n_rows,
        sum(sum(r.scores) for r in rows) / total,
        sum(r.best_gold for r in rows if r.best_gold is not None) / n_rows if gold else None,
        sum(sum(r.gold) for r in rows if r.gold is not None) / total if gold else None,
        total / elapsed if elapsed > 0 else float("inf"),
        cfg.output,
        notes,
    )
