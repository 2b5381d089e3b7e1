"""`rewardlab drift`: has the policy drifted from what the reward model knows? (a thin layer)

    rewardlab drift runs/demo --reference ref.jsonl --current cur.jsonl
    rewardlab drift runs/ens --reference ref.jsonl --current cur.jsonl --select 50 --select-by mix

Writes report.md, report.html, report.json (default: MODEL/drift) and, with --select K, select.jsonl in
the annotation app's import format. The work is in rewardlab.drift; docs/drift.md explains it.
Exit status: 0 fine, 0 watch, 3 retrain (so a scheduled job can act on it).

    rewardlab retrain runs/demo --new labelled.jsonl --old train.jsonl --replay 0.3 -o runs/demo-2

continues training with replay of old data (rewardlab.training.retrain).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rewardlab.commands.common import add_device_flags, quiet_libraries

VERBS = {
    "drift": "Compare the current policy's responses with the reference: reward shift, OOD fraction, "
    "classifier AUROC, ensemble disagreement; verdict retrain/watch/fine (docs/drift.md).",
    "retrain": "Continue training a reward model on new comparisons with replay of old data; accuracy on "
    "old and new held-out sets before and after (docs/drift.md).",
}
EXTRA = None
RETRAIN_EXIT = 3


def cmd_drift(args: argparse.Namespace) -> int:
    from rewardlab.config import from_namespace
    from rewardlab.drift.detect import Thresholds, drift, read_samples, select
    from rewardlab.drift.report import write_drift_report
    from rewardlab.progress import RichReporter
    from rewardlab.scoring.ensemble import load_scorer

    quiet_libraries()
    reporter = RichReporter()
    thresholds = from_namespace(Thresholds, args)
    reference, current = read_samples(args.reference), read_samples(args.current)
    scorer = load_scorer(args.model, device=args.device)
    result = drift(
        scorer,
        reference,
        current,
        thresholds,
        reporter,
        model=args.model,
        reference_name=args.reference,
        current_name=args.current,
        seed=args.seed,
    )
    model = Path(args.model)
    out = Path(
        args.output or (model.parent if model.is_file() else model) / "drift"
    )  # judge.json: its folder
    files = write_drift_report(result, out)
    reporter.message(f"[bold]verdict: {result.verdict}[/bold] ({'; '.join(result.reasons)})")
    reporter.message(f"report: {files.html}  (also {files.markdown.name}, {files.json.name})")
    if args.select:
        rows = select(result, current, args.select, by=args.select_by)
        path = out / "select.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        reporter.message(f"{len(rows)} prompts to annotate: {path}  (rewardlab annotate import {path})")
    return RETRAIN_EXIT if result.verdict == "retrain" else 0


def cmd_retrain(args: argparse.Namespace) -> int:
    from rewardlab.progress import RichReporter
    from rewardlab.training.retrain import RetrainConfig, retrain

    quiet_libraries()
    reporter = RichReporter()
    cfg = RetrainConfig(
        model=args.model,
        new_data=args.new,
        old_data=args.old,
        output_dir=args.output,
        replay=args.replay,
        old_test=args.old_test,
        new_test=args.new_test,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        max_steps=args.max_steps,
        seed=args.seed,
    )
    result = retrain(cfg, reporter)
    for name in result.before:
        b, a = result.before[name]["accuracy"], result.after[name]["accuracy"]
        reporter.message(f"{name} held-out accuracy: {100 * b:.1f}% before -> {100 * a:.1f}% after")
    reporter.message(f"model and retrain.json in {result.output_dir}")
    return 0


def add_parser(subparsers: Any) -> None:
    from rewardlab.config import add_dataclass_arguments
    from rewardlab.drift.detect import SELECT_BY, Thresholds

    p = subparsers.add_parser(
        "drift",
        help=VERBS["drift"],
    )
    p.add_argument(
        "model",
        help="Reward-model folder (or an ensemble folder, for disagreement; or a local judge's judge.json).",
    )
    p.add_argument(
        "--reference",
        required=True,
        metavar="REF",
        help="JSONL of prompt + response(s): the training data or training-time policy samples.",
    )
    p.add_argument("--current", required=True, metavar="CUR", help="JSONL of the current policy's responses.")
    p.add_argument(
        "--select",
        type=int,
        default=0,
        metavar="K",
        help="Write the K current prompts most worth annotating to DIR/select.jsonl.",
    )
    p.add_argument(
        "--select-by",
        choices=SELECT_BY,
        default="ood",
        help="Rank prompts by Mahalanobis distance, ensemble disagreement, or both (mix).",
    )
    p.add_argument(
        "-o", "--output", metavar="DIR", default=None, help="Report folder (default: MODEL/drift)."
    )
    p.add_argument("--seed", type=int, default=0, help="Seed of the calibration split and CV folds.")
    add_device_flags(p, bf16=False)
    add_dataclass_arguments(p, Thresholds)
    p.set_defaults(func=cmd_drift)

    r = subparsers.add_parser(
        "retrain",
        help=VERBS["retrain"],
    )
    r.add_argument("model", help="Saved reward-model folder to continue from.")
    r.add_argument("--new", required=True, help="New comparisons (JSONL, docs/formats.md).")
    r.add_argument("--old", required=True, help="The old training data (same format as --new).")
    r.add_argument("--replay", type=float, default=0.3, help="Fraction of old rows mixed in (default 0.3).")
    r.add_argument("--old-test", default=None, help="Held-out set of the old distribution.")
    r.add_argument("--new-test", default=None, help="Held-out set of the new distribution.")
    r.add_argument("-o", "--output", required=True, metavar="DIR", help="Folder for the retrained model.")
    r.add_argument("--epochs", type=float, default=1.0, help="Passes over the mix (default 1).")
    r.add_argument("--lr", type=float, default=5e-5, help="Peak learning rate (default 5e-5).")
    r.add_argument("--batch-size", type=int, default=4, help="Prompts per batch (default 4).")
    r.add_argument("--max-steps", type=int, default=0, help="Stop after N optimizer steps (0: no limit).")
    r.add_argument("--seed", type=int, default=0, help="Seed of the replay sample and the data order.")
    r.set_defaults(func=cmd_retrain)
