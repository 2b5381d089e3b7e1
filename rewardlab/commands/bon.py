"""CLI verbs for best-of-N, the overoptimization study and ensembles (thin: flags → config → one call).

    rewardlab bon runs/rm --policy demo --prompts demo-pool --n 64 --temperature 1.5 --gold demo -o bon.jsonl
    rewardlab overopt bon.jsonl --proxy scores --out-dir runs/overopt
    rewardlab ensemble train --k 3 --how seeds --output-dir runs/ens     # + any `rewardlab train` flag

The recipe, numbers and plots are in docs/overoptimization.md.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any, Literal

from rewardlab.commands.common import quiet_libraries
from rewardlab.config import ConfigError, check_choices, doc

VERBS = {
    "bon": "Best-of-N: generate or read candidates, score, pick the best (JSONL).",
    "overopt": "Gold vs proxy best-of-n curves, Gao et al. fits, plot + JSON.",
    "ensemble": "Reward-model ensembles (mean / min = WCO / uwo = mean - λ·var).",
}
EXTRA = None


@dataclass
class EnsembleFlags:
    """How `rewardlab ensemble train` builds its members (the flags it adds to `rewardlab train`'s)."""

    k: int = doc("Number of members.", 3)
    how: Literal["seeds", "bootstrap", "both"] = doc(
        "seeds (seed+i, same data), bootstrap (resampled prompts) or both.", "seeds"
    )
    rule: Literal["mean", "min", "uwo"] = doc("Default combination: mean, min (WCO), uwo.", "mean")
    lam: float = doc("λ of uwo.", 1.0)

    def __post_init__(self) -> None:
        check_choices(self)
        if self.k < 2:
            raise ConfigError(f"--k {self.k}: an ensemble needs at least 2 members")


def cmd_bon(args: argparse.Namespace) -> int:
    from rewardlab.bon.best_of_n import BonConfig, run_bon
    from rewardlab.config import config_from_args
    from rewardlab.progress import RichReporter

    quiet_libraries()
    cfg = config_from_args(BonConfig, args)
    reporter = RichReporter()
    s = run_bon(cfg, reporter)
    reporter.message(
        f"best-of-{args.n if not args.candidates else 'N'} over {s.prompts} prompts ({s.candidates} "
        f"candidates, scored at {s.texts_per_s:.1f} candidates/s): mean proxy {s.mean_score:.3f} → "
        f"best {s.mean_best_score:.3f}"
    )
    if s.mean_gold is not None:
        reporter.message(f"gold: mean {s.mean_gold:.3f} → at the proxy's pick {s.mean_best_gold:.3f}")
    for note in s.notes:
        reporter.message(note)
    reporter.message(f"rows written to {s.output}")
    return 0


def _fmt(x: float) -> str:
    return "inf" if x == float("inf") else f"{x:.3g}"


def cmd_overopt(args: argparse.Namespace) -> int:
    from rewardlab.bon.overopt import OveroptConfig, run_overopt
    from rewardlab.config import config_from_args
    from rewardlab.progress import RichReporter

    cfg = config_from_args(OveroptConfig, args)
    curves = run_overopt(cfg)
    say = RichReporter().message
    for c in curves:
        n = c.n
        gain = [g - c.gold_mean[0] for g in c.gold_mean]
        say(f"[bold]{c.name}[/bold]: {c.prompts} prompts, pool {c.pool_size}, n = 1..{n[-1]}")
        say(
            f"  proxy {c.proxy_mean[0]:.3f} → {c.proxy_mean[-1]:.3f}; gold {c.gold_mean[0]:.3f} → "
            f"{c.gold_mean[-1]:.3f} (measured peak {c.gold_mean[c.gold_peak_n - 1]:.3f} at "
            f"n={c.gold_peak_n}, gain {max(gain):+.3f})"
        )
        for form, f in c.fits.items():
            say(
                f"  fit {form}: α={f.alpha:.3f} β={f.beta:.3f} d*={_fmt(f.d_star)} n*={_fmt(f.n_star)} "
                f"R*={_fmt(f.r_star)} R²={f.r2:.3f} rmse={f.rmse:.3g}"
            )
    say(f"plot and JSON in {args.out_dir}/overopt.png, overopt.json")
    if args.json:
        print(json.dumps(json.loads(open(f"{args.out_dir}/overopt.json").read()), indent=1))  # noqa: T201
    return 0


def cmd_ensemble_train(args: argparse.Namespace) -> int:
    from rewardlab.config import TrainConfig, from_namespace
    from rewardlab.progress import RichReporter
    from rewardlab.training.ensemble import train_ensemble

    quiet_libraries()
    reporter = RichReporter()
    cfg = from_namespace(TrainConfig, args)
    ens = from_namespace(EnsembleFlags, args)
    result = train_ensemble(cfg, ens.k, ens.how, ens.rule, ens.lam, reporter)
    for i, r in enumerate(result.members):
        line = r.test.line() if r.test else (r.eval.line() if r.eval else "")
        reporter.message(f"member {i} (seed {result.card.seeds[i]}): {r.wall_time_s:.0f} s; {line}")
    reporter.message(
        f"ensemble of {len(result.members)} ({result.card.how}, rule {result.card.rule}) in "
        f"{result.wall_time_s:.0f} s → {result.output_dir}"
    )
    return 0


def add_parser(sub: Any) -> None:
    from rewardlab.bon.best_of_n import BonConfig
    from rewardlab.bon.overopt import OveroptConfig
    from rewardlab.config import TrainConfig, add_dataclass_flags

    p = sub.add_parser("bon", help=VERBS["bon"])
    add_dataclass_flags(p, BonConfig)
    p.set_defaults(func=cmd_bon)

    p = sub.add_parser("overopt", help=VERBS["overopt"])
    add_dataclass_flags(p, OveroptConfig)
    p.add_argument("--json", action="store_true", help="Also print the JSON.")
    p.set_defaults(func=cmd_overopt)

    p = sub.add_parser("ensemble", help=VERBS["ensemble"])
    esub = p.add_subparsers(dest="ensemble_command", required=True)
    t = esub.add_parser("train", help="Train k members with `rewardlab train`'s loop and save one folder.")
    add_dataclass_flags(t, TrainConfig)
    add_dataclass_flags(t, EnsembleFlags)
    t.set_defaults(func=cmd_ensemble_train)
