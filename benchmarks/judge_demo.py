"""The SmolLM2 judge next to a trained MiniLM reward model on the demo task, whose gold reward is known
(docs/judge.md has the numbers). Each stage is one run; run each under the CPU lock on its own:

    L="flock /tmp/rewardlab-heavy.lock .venv/bin/python"
    $L -m rewardlab train --output-dir runs/judge-demo/minilm          # the RM, `rewardlab train` defaults
    $L benchmarks/judge_demo.py config                                 # runs/judge-demo/judge/judge.json
    $L benchmarks/judge_demo.py diagnose judge                         # pointwise + A/B-swap probe
    $L benchmarks/judge_demo.py diagnose minilm
    $L benchmarks/judge_demo.py bon judge                              # best-of-16 pools, gold attached
    $L benchmarks/judge_demo.py bon minilm
    $L benchmarks/judge_demo.py overopt                                # both proxies, one plot
    .venv/bin/python benchmarks/judge_demo.py table                    # the markdown table + results.json

`diagnose` is `rewardlab diagnose MODEL demo:test --limit P` (the first P test prompts, K = 4, 6 labelled
pairs each) through the library, plus a dump of every response's score and length so `table` can also
say how often each scorer prefers the longer response. The judge's results are cached on disk
(runs/judge-demo/judge/judge-cache.sqlite), so a stage stopped by a timeout resumes where it was.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

OUT = Path("runs/judge-demo")
MODELS = {"judge": OUT / "judge", "minilm": OUT / "minilm"}


def stage_config(args: argparse.Namespace) -> None:
    from rewardlab.judge.config import JudgeConfig, save_judge_config

    file = save_judge_config(JudgeConfig(model="smollm2"), MODELS["judge"])
    print(f"wrote {file}")  # noqa: T201


def _test_groups(limit: int) -> list:
    from rewardlab.demo import task as demo

    prompts = demo.demo_split_prompts()["test"]
    return demo.make_demo_groups(len(prompts), prompts=prompts)[:limit]


def stage_diagnose(args: argparse.Namespace) -> None:
    from rewardlab.commands.common import quiet_libraries
    from rewardlab.demo.gold import gold_reward
    from rewardlab.diagnose.diagnosis import diagnose
    from rewardlab.diagnose.report import write_report
    from rewardlab.progress import RichReporter
    from rewardlab.scoring.ensemble import load_scorer

    quiet_libraries()
    groups = _test_groups(args.prompts)
    scorer = load_scorer(MODELS[args.model], device="cpu")
    d = diagnose(
        scorer,
        groups,
        RichReporter(),
        model=args.model,
        data=f"demo:test (first {args.prompts})",
        probe_prompts=args.probe_prompts,
        n_boot=1000,
        gold=gold_reward,
        position_pairs=args.pairs,
    )
    out = OUT / f"diagnosis-{args.model}"
    write_report(d, out)
    raw = {"rewards": d.raw.rewards, "lengths": d.raw.lengths, "seconds": d.seconds}
    (out / "raw.json").write_text(json.dumps(raw))
    print(f"{args.model}: {d.accuracy.overall.line()}; report in {out}")  # noqa: T201


def stage_bon(args: argparse.Namespace) -> None:
    from rewardlab.cli import main

    code = main(
        ["bon", str(MODELS[args.model]), "--policy", "demo", "--prompts", "demo-pool", "--limit",
         str(args.bon_prompts), "--n", str(args.n), "--temperature", "1.5", "--gold", "demo",
         "--device", "cpu", "-o", str(OUT / f"bon-{args.model}.jsonl")]
    )  # fmt: skip
    sys.exit(code)


def stage_overopt(args: argparse.Namespace) -> None:
    from rewardlab.cli import main

    code = main(
        ["overopt", f"SmolLM2 judge={OUT / 'bon-judge.jsonl'}", f"MiniLM RM={OUT / 'bon-minilm.jsonl'}",
         f"oracle (gold picks)={OUT / 'bon-minilm.jsonl'}@gold", "--out-dir", str(OUT / "overopt"),
         "--title", "best-of-n on the demo task: SmolLM2 judge vs MiniLM RM"]
    )  # fmt: skip
    sys.exit(code)


def _longer_pick(groups: list, rewards: list, lengths: list) -> float:
    """How often the score prefers the longer response of a labelled pair (unequal lengths; ties half)."""
    hits, n = 0.0, 0
    for g, r, ln in zip(groups, rewards, lengths, strict=True):
        for w, lo in g.pairs:
            if ln[w] == ln[lo]:
                continue
            long_, short = (w, lo) if ln[w] > ln[lo] else (lo, w)
            hits += 1.0 if r[long_] > r[short] else 0.5 if r[long_] == r[short] else 0.0
            n += 1
    return hits / n if n else math.nan


def stage_table(args: argparse.Namespace) -> None:
    from rewardlab.data.gold import noise_ceiling

    groups = _test_groups(args.prompts)
    results: dict = {"prompts": len(groups), "pairs": sum(len(g.pairs) for g in groups)}
    results["noise_ceiling"] = noise_ceiling(groups)
    gold = [g.meta["gold"] for g in groups]
    for name in MODELS:
        folder = OUT / f"diagnosis-{name}"
        if not (folder / "report.json").is_file():
            continue
        rep = json.loads((folder / "report.json").read_text())
        raw = json.loads((folder / "raw.json").read_text())
        results[name] = {
            "accuracy": rep["accuracy"]["overall"]["accuracy"],
            "ci": [rep["accuracy"]["overall"]["ci_low"], rep["accuracy"]["overall"]["ci_high"]],
            "gold_agreement": rep["noise"]["model_vs_gold"],
            "spearman_length": rep["length"]["spearman"],
            "acc_chosen_longer": rep["length"]["split"]["chosen_longer"],
            "acc_chosen_shorter": rep["length"]["split"]["chosen_shorter"],
            "length_controlled": rep["length"]["split"]["length_controlled"],
            "labels_longer_wins": rep["length"]["longer_wins"],
            "prefers_longer": _longer_pick(groups, raw["rewards"], raw["lengths"]),
            "ece": rep["calibration"]["ece"],
            "seconds": raw["seconds"],
            "probes": {p["name"]: p["frac_rises"] for p in rep["probes"]},
            "position": rep.get("position"),
        }
        results.setdefault("gold_prefers_longer", _longer_pick(groups, gold, raw["lengths"]))
    overopt = OUT / "overopt" / "overopt.json"
    if overopt.is_file():
        results["overopt"] = json.loads(overopt.read_text())
    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    print(json.dumps({k: v for k, v in results.items() if k != "overopt"}, indent=1))  # noqa: T201


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stage", choices=["config", "diagnose", "bon", "overopt", "table"])
    ap.add_argument("model", nargs="?", choices=list(MODELS), default="judge")
    ap.add_argument("--prompts", type=int, default=20, help="Demo test prompts (6 labelled pairs each).")
    ap.add_argument("--pairs", type=int, default=120, help="Pairs judged in both orders (position probe).")
    ap.add_argument("--probe-prompts", type=int, default=5, help="Prompts each hacking probe edits.")
    ap.add_argument("--bon-prompts", type=int, default=12, help="demo-pool prompts for best-of-n.")
    ap.add_argument("--n", type=int, default=16, help="Candidates per prompt for best-of-n.")
    args = ap.parse_args()
    {"config": stage_config, "diagnose": stage_diagnose, "bon": stage_bon, "overopt": stage_overopt}.get(
        args.stage, stage_table
    )(args)


if __name__ == "__main__":
    main()
