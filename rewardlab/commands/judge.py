"""`rewardlab judge`: a generative judge (a local causal LM or an OpenAI-compatible endpoint) as a reward.

    rewardlab judge config -o runs/judge                                     # SmolLM2, logits, cached
    rewardlab judge config -o runs/judge-api --endpoint http://127.0.0.1:8001 --api chat --mode text
    rewardlab judge score runs/judge rows.jsonl -o scored.jsonl              # pointwise, per-item errors
    rewardlab judge compare runs/judge pairs.jsonl -o verdicts.jsonl         # pairwise, both orders

A judge config is accepted wherever a reward-model folder is (diagnose, bon, drift, serve):
rewardlab.scoring.ensemble.load_scorer recognises judge.json. docs/judge.md explains it all.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rewardlab.commands.common import add_device_flags, quiet_libraries

VERBS = {"judge": "LLM-as-judge: write a judge config, score rows, compare pairs (docs/judge.md)."}
EXTRA = None


def cmd_config(args: argparse.Namespace) -> int:
    from rewardlab.config import config_from_args
    from rewardlab.judge.config import JudgeConfig, save_judge_config
    from rewardlab.progress import RichReporter

    cfg = config_from_args(JudgeConfig, args)
    file = save_judge_config(cfg, args.output)
    RichReporter().message(f"judge config ({cfg.backend_name}, {cfg.mode}) written to {file}")
    return 0


def _open(args: argparse.Namespace) -> Any:
    from rewardlab.judge.config import is_judge
    from rewardlab.judge.scorer import JudgeScorer

    if not is_judge(args.judge):
        raise FileNotFoundError(
            f"{args.judge}: not a judge config; write one with `rewardlab judge config -o DIR`"
        )
    quiet_libraries()
    return JudgeScorer.from_config(args.judge, device=args.device)


def _write(rows: list[dict[str, Any]], output: str | None) -> None:
    out = open(output, "w", encoding="utf-8") if output else sys.stdout
    try:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    finally:
        if output:
            out.close()


def cmd_score(args: argparse.Namespace) -> int:
    from rewardlab.data.score_rows import read_score_rows
    from rewardlab.judge.ratings import JudgeItemError
    from rewardlab.progress import RichReporter

    rows, prompts, responses = read_score_rows(args.input)
    judge = _open(args)
    reporter = RichReporter()
    reporter.start("judging", len(rows))
    rated = judge.rate(prompts, responses, reporter.advance)
    reporter.finish()
    failed = 0
    for row, r in zip(rows, rated, strict=True):
        if isinstance(r, JudgeItemError):
            row["error"], failed = str(r), failed + 1
        else:
            row["score"] = r
    _write(rows, args.output)
    cache = judge.cache
    hits = f"; cache {cache.hits} hits, {cache.misses} misses" if cache is not None else ""
    reporter.message(
        f"judged {len(rows)} rows, {failed} errors{hits}" + (f" → {args.output}" if args.output else "")
    )
    return 1 if failed == len(rows) and rows else 0


def _pair_rows(path: str) -> tuple[list[dict], list[Any], list[Any], list[Any], bool]:
    """Rows with prompt + chosen/rejected (labelled) or response_a/response_b (unlabelled)."""
    from rewardlab.data.readers import read_rows

    rows, p, x, y = [], [], [], []
    labelled = None
    for where, row in read_rows(path):
        keys = ("chosen", "rejected") if "chosen" in row else ("response_a", "response_b")
        if labelled is None:
            labelled = keys[0] == "chosen"
        if not all(isinstance(row.get(k), str | list) for k in keys):
            raise ValueError(f"{where}: needs 'chosen' and 'rejected' (or 'response_a' and 'response_b')")
        rows.append(row)
        p.append(row.get("prompt", ""))
        x.append(row[keys[0]])
        y.append(row[keys[1]])
    return rows, p, x, y, bool(labelled)


def cmd_compare(args: argparse.Namespace) -> int:
    from rewardlab.progress import RichReporter

    rows, prompts, xs, ys, labelled = _pair_rows(args.input)
    judge = _open(args)
    reporter = RichReporter()
    reporter.start("judging pairs (both orders)", len(rows))
    verdicts = judge.compare(prompts, xs, ys, reporter.advance)
    reporter.finish()
    for row, v in zip(rows, verdicts, strict=True):
        if v.error:
            row["error"] = v.error
        else:
            row.update(p_first=v.p_first, p_second=v.p_second, p=v.p, flipped=v.flipped)
    _write(rows, args.output)
    ok = [v for v in verdicts if v.error is None]
    flips = [v.flipped for v in ok if v.flipped is not None]
    line = f"judged {len(rows)} pairs, {len(rows) - len(ok)} errors"
    if flips:
        line += f"; verdict flips when A/B are swapped on {100 * sum(flips) / len(flips):.1f}%"
    if labelled and ok:
        acc = sum(1.0 if v.p > 0.5 else 0.5 if v.p == 0.5 else 0.0 for v in ok) / len(ok)
        line += f"; accuracy (both orders averaged) {100 * acc:.1f}%"
    reporter.message(line + (f" → {args.output}" if args.output else ""))
    return 0


def add_parser(sub: Any) -> None:
    from rewardlab.config import add_dataclass_flags
    from rewardlab.judge.config import JudgeConfig

    p = sub.add_parser("judge", help=VERBS["judge"], description=__doc__.split("\n\n")[0])
    jsub = p.add_subparsers(dest="judge_command", required=True)
    c = jsub.add_parser("config", help="Write judge.json (the templates' text and version included).")
    c.add_argument(
        "-o", "--output", required=True, metavar="PATH", help="Folder (judge.json inside) or .json file."
    )
    add_dataclass_flags(c, JudgeConfig, skip=("templates",))
    c.set_defaults(func=cmd_config)
    for verb, help_, io in (
        ("score", "Pointwise scores of prompt/response rows (as `rewardlab score` reads them).", "rows"),
        (
            "compare",
            "Pairwise verdicts, both orders, for prompt + chosen/rejected (or response_a/_b).",
            "pairs",
        ),
    ):
        s = jsub.add_parser(verb, help=help_)
        s.add_argument("judge", help="A judge config: judge.json or the folder holding it.")
        s.add_argument("input", help=f"JSONL of {io}.")
        s.add_argument("-o", "--output", default=None, help="Output JSONL (default: stdout).")
        add_device_flags(s, bf16=False)
        s.set_defaults(func=cmd_score if verb == "score" else cmd_compare)
