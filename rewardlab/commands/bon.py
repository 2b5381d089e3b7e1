"""CLI verbs for best-of-N, the overoptimization study and ensembles (thin: flags → config → one call).

    rewardlab bon runs/rm --policy demo --prompts demo-pool --n 64 --temperature 1.5 --gold demo -o bon.jsonl
    rewardlab overopt bon.jsonl --proxy scores --out-dir runs/overopt
    rewardlab ensemble train --k 3 --how seeds --output-dir runs/ens     # + any `rewardlab train` flag

The recipe, numbers and plots are in docs/overoptimization.md.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rewardlab.commands.common import add_device_flags, quiet_libraries

VERBS = {
    "bon": "Best-of-N: generate or read candidates, score, pick the best (JSONL).",
    "overopt": "Gold vs proxy best-of-n curves, Gao et al. fits, plot + JSON.",
    "ensemble": "Reward-model ensembles (mean / min = WCO / uwo = mean - λ·var).",
}
EXTRA = None


def cmd_bon(args: argparse.Namespace) -> int:
    from rewardlab.bon.best_of_n import BonConfig, Sampling, run_bon
    from rewardlab.progress import RichReporter

    quiet_libraries()
    sampling = Sampling(
        args.policy, args.n, args.temperature, args.top_p, args.max_new_tokens, args.seed, args.style
    )
    cfg = BonConfig(
        args.model,
        args.output,
        args.candidates,
        args.prompts,
        args.limit,
        sampling,
        args.cache_dir,
        args.gold,
        args.device,
        args.bf16,
    )
    reporter = RichReporter()
    s = run_bon(cfg, reporter)
    reporter.message(
        f"best-of-{args.n if not args.candidates else 'N'} over {s.prompts} prompts ({s.candidates} "
        f"candidates, scored at {s.texts_per_s:.1f} candidates/s): mean proxy {s.mean_score:.3f} → "
        f"best {s.mean_best_score:.3f}"
    )
    if s.mean_gold is not None:
        reporter.message(f"gold: mean {s.mean_gold:.3f} → at the proxy's pick {s.mean_best_gold:.3f}")
    reporter.message(f"rows written to {s.output}")
    return 0


def _fmt(x: float) -> str:
    return "inf" if x == float("inf") else f"{x:.3g}"


def cmd_overopt(args: argparse.Namespace) -> int:
    from rewardlab.bon.overopt import OveroptConfig, run_overopt
    from rewardlab.progress import RichReporter

    forms = args.fit.split(",")
    cfg = OveroptConfig(
        args.pools,
        args.proxy or ["scores"],
        args.lam,
        args.max_n,
        forms,
        args.out_dir,
        args.title,
        args.bootstrap,
    )
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
    result = train_ensemble(cfg, args.k, args.how, args.rule, args.lam, reporter)
    for i, r in enumerate(result.members):
        line = r.test.line() if r.test else (r.eval.line() if r.eval else "")
        reporter.message(f"member {i} (seed {result.card.seeds[i]}): {r.wall_time_s:.0f} s; {line}")
    reporter.message(
        f"ensemble of {len(result.members)} ({result.card.how}, rule {result.card.rule}) in "
        f"{result.wall_time_s:.0f} s → {result.output_dir}"
    )
    return 0


def add_parser(sub: Any) -> None:
    from rewardlab.config import TrainConfig, add_dataclass_arguments

    p = sub.add_parser("bon", help=VERBS["bon"])
    p.add_argument("model", help="Reward-model folder or ensemble folder (ensemble.json) that picks.")
    p.add_argument("-o", "--output", required=True, help="Output JSONL: all scores, the pick, gold if any.")
    p.add_argument(
        "--candidates",
        default=None,
        help="JSONL of candidates ({prompt, responses} or {prompt, response} rows); skips generation.",
    )
    p.add_argument(
        "--prompts",
        default="demo-pool",
        help="demo-pool, demo-test, demo-eval, or a JSONL with 'prompt' (or GSM8K 'question'/'answer').",
    )
    p.add_argument("--limit", type=int, default=0, help="Use the first N prompts only (0: all).")
    p.add_argument(
        "--policy",
        default="demo",
        help="demo (the demo task's policy) or a causal LM: folder, hub name, .gguf, or smollm2.",
    )
    p.add_argument("--n", type=int, default=16, help="Candidates generated per prompt.")
    p.add_argument("--temperature", type=float, default=1.0, help="Sampling temperature.")
    p.add_argument("--top-p", type=float, default=1.0, help="Nucleus sampling (LM policies).")
    p.add_argument("--max-new-tokens", type=int, default=256, help="LM policies: tokens per response.")
    p.add_argument("--seed", type=int, default=0, help="Sampling seed (each prompt derives its own).")
    p.add_argument(
        "--style", default="default", help="Demo policy style preset (rewardlab.demo.policy.STYLES)."
    )
    p.add_argument("--cache-dir", default="runs/bon-cache", help="Where LM generations are cached.")
    p.add_argument(
        "--gold",
        default=None,
        help="Gold scores for `rewardlab overopt`: demo, gsm8k, or a 'gold' reward-model folder.",
    )
    add_device_flags(p)
    p.set_defaults(func=cmd_bon)

    p = sub.add_parser("overopt", help=VERBS["overopt"])
    p.add_argument(
        "pools",
        nargs="+",
        help="`rewardlab bon` outputs with gold scores: PATH, NAME=PATH, or NAME=PATH@PROXY.",
    )
    p.add_argument(
        "--proxy",
        action="append",
        default=None,
        help="Proxy that picks (repeatable): scores, member:K, mean, min, uwo, gold (oracle). "
        "Default: scores.",
    )
    p.add_argument("--lam", type=float, default=1.0, help="λ of the uwo rule (mean - λ·variance).")
    p.add_argument("--max-n", type=int, default=None, help="Largest n (default: the pool size).")
    p.add_argument(
        "--fit", default="bon", help="Fitted forms, comma-separated: bon (d(α-βd)), rl (d(α-β log d))."
    )
    p.add_argument("--bootstrap", type=int, default=1000, help="Prompt resamples for the 95%% bands.")
    p.add_argument("--out-dir", default="runs/overopt", help="Where overopt.png and overopt.json go.")
    p.add_argument("--title", default="", help="Plot title.")
    p.add_argument("--json", action="store_true", help="Also print the JSON.")
    p.set_defaults(func=cmd_overopt)

    p = sub.add_parser("ensemble", help=VERBS["ensemble"])
    esub = p.add_subparsers(dest="ensemble_command", required=True)
    t = esub.add_parser("train", help="Train k members with `rewardlab train`'s loop and save one folder.")
    add_dataclass_arguments(t, TrainConfig)
    t.add_argument("--k", type=int, default=3, help="Number of members.")
    t.add_argument(
        "--how", default="seeds", help="seeds (seed+i, same data), bootstrap (resampled prompts) or both."
    )
    t.add_argument("--rule", default="mean", help="Default combination: mean, min (WCO), uwo.")
    t.add_argument("--lam", type=float, default=1.0, help="λ of uwo.")
    t.set_defaults(func=cmd_ensemble_train)
