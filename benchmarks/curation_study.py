"""What `rewardlab curate` finds and what cleaning buys: the numbers of docs/curation.md.

Each step is one process and one run; take the lock per step, never across the study:

    S="python benchmarks/curation_study.py"; L="flock /tmp/rewardlab-heavy.lock"; W=runs/curation
    $S prepare --work $W                                              # data files, no model
    $L $S curate --work $W --task demo --noise 0.2 --seed 0          # one curate run
    $L $S train --work $W --task demo --variant cleaned --noise 0.2 --seed 0    # one training run
    $S contamination --work $W                                        # text checks only: seconds
    $S table --work $W                                                # the tables of the doc

Tasks (files written by `prepare` under --work, never in the repository):
- demo: the built-in demo task's train split (402 prompts, K = 4, as 2,412 pair rows) and test split
  (1,260 pairs), labelled by annotators with temperature --demo-tau (default 0.05: they follow the gold
  reward, so the flipped rows are the only noise; the default annotators, tau = 2, disagree with the gold
  reward on 28% of pairs, and a flip of such a pair makes it right, which caps the recall of flips near
  72%). Every row carries its gold rewards, so test gold agreement is reported.
- hh: /work/shared/data/hh-rlhf-harmless/train.jsonl (1,600 pairs) and test.jsonl (300 pairs).

Noise: --noise of the rows (seeded by --seed) get chosen and rejected swapped. `curate` runs
`rewardlab curate` on the noisy file (--folds, MiniLM, --max-length) and records precision and recall of
the flipped rows among the label_noise flags; `train` trains MiniLM on original / noisy / cleaned data
(one epoch, max length 128) and records test accuracy (and gold agreement for demo). Every step appends
one JSON line to WORK/results.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HH = Path("/work/shared/data/hh-rlhf-harmless")
MAX_LENGTH = 128
FOLDS = {"demo": 3, "hh": 2}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _pair_rows(groups: list) -> list[dict]:
    rows = []
    for g in groups:
        for w, lose in g.pairs:
            rows.append(
                {
                    "prompt": g.prompt,
                    "chosen": g.responses[w],
                    "rejected": g.responses[lose],
                    "gold": [g.meta["gold"][w], g.meta["gold"][lose]],
                }
            )
    return rows


def prepare(work: Path, demo_tau: float) -> None:
    from rewardlab.demo.task import demo_split_prompts, make_demo_groups

    work.mkdir(parents=True, exist_ok=True)
    prompts = demo_split_prompts()
    for split in ("train", "test"):
        groups = make_demo_groups(len(prompts[split]), prompts=prompts[split], tau=demo_tau)
        _write(work / f"demo-{split}-original.jsonl", _pair_rows(groups))
    _write(work / "hh-train-original.jsonl", _rows(HH / "train.jsonl"))
    _write(work / "hh-test-original.jsonl", _rows(HH / "test.jsonl"))
    for task in ("demo", "hh"):
        rows = _rows(work / f"{task}-train-original.jsonl")
        for noise in (0.1, 0.2, 0.3):
            for seed in range(5):  # seeds 3-4: HH at 20%, five seeds
                rng = random.Random(f"curation-study:{task}:{noise}:{seed}")
                flipped = sorted(rng.sample(range(len(rows)), round(noise * len(rows))))
                noisy = [dict(r) for r in rows]
                for i in flipped:
                    noisy[i]["chosen"], noisy[i]["rejected"] = noisy[i]["rejected"], noisy[i]["chosen"]
                    if "gold" in noisy[i]:
                        noisy[i]["gold"] = noisy[i]["gold"][::-1]
                name = f"{task}-train-noise{noise:g}-seed{seed}"
                _write(work / f"{name}.jsonl", noisy)
                (work / f"{name}.flipped.json").write_text(json.dumps([i + 1 for i in flipped]))
    test = _rows(work / "hh-test-original.jsonl")
    rng = random.Random("curation-study:contamination")
    injected = rng.sample(test, round(0.05 * len(test)))
    _write(work / "hh-train-contaminated.jsonl", _rows(work / "hh-train-original.jsonl") + injected)
    print(json.dumps({"step": "prepare", "work": str(work), "injected": len(injected)}))


def _record(work: Path, record: dict) -> None:
    with open(work / "results.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record))


PLAIN_CURATE = (1.0, 1, 1)
"""A curate run's (epochs, rounds, ensemble) when no option changes them."""


def _train_file(
    work: Path, task: str, variant: str, noise: float, seed: int, curate: tuple = PLAIN_CURATE
) -> Path:
    """The training file of a variant; `cleaned` is the output of the curate run with settings `curate`
    (epochs, rounds, ensemble)."""
    if variant == "original":
        return work / f"{task}-train-original.jsonl"
    name = _data_name(task, noise, seed)
    if variant == "noisy":
        return work / f"{name}.jsonl"
    return _curate_dir(work, task, noise, seed, *curate) / f"{name}.cleaned.jsonl"


def _data_name(task: str, noise: float, seed: int) -> str:
    return f"{task}-train-noise{noise:g}-seed{seed}" if noise else f"{task}-train-original"


def _curate_dir(
    work: Path, task: str, noise: float, seed: int, epochs: float, rounds: int, ensemble: int = 1
) -> Path:
    name = f"curate-{_data_name(task, noise, seed)}"
    name += f"-epochs{epochs:g}" if epochs != 1 else ""
    name += f"-rounds{rounds}" if rounds != 1 else ""
    return work / (name + (f"-ensemble{ensemble}" if ensemble != 1 else ""))


def recall_at_precision(work: Path, record: dict, precision: float = 0.6) -> float | None:
    """The most recall of flipped rows any P(label wrong) threshold reaches at >= `precision`: the
    issue's target read off the run's noise_scores.jsonl, whatever threshold the run used."""
    folder = _curate_dir(
        work,
        record["task"],
        record["noise"],
        record["seed"],
        record.get("epochs", 1.0),
        record.get("rounds", 1),
        record.get("ensemble", 1),
    )
    flips = work / f"{_data_name(record['task'], record['noise'], record['seed'])}.flipped.json"
    if not (folder / "noise_scores.jsonl").exists() or not flips.exists():
        return None
    flipped = set(json.loads(flips.read_text()))
    rows = [json.loads(line) for line in (folder / "noise_scores.jsonl").read_text().splitlines()]
    rows.sort(key=lambda r: -r["p_wrong"])
    hits, best = 0, 0.0
    for i, r in enumerate(rows, 1):
        hits += int(r["location"].rsplit(":", 1)[1]) in flipped
        if hits / i >= precision:
            best = hits / len(flipped)
    return best


def curate_step(
    work: Path,
    task: str,
    noise: float,
    seed: int,
    folds: int,
    epochs: float,
    rounds: int = 1,
    ensemble: int = 1,
) -> None:
    from rewardlab.curate.config import CurateConfig
    from rewardlab.curate.run import curate

    name = _data_name(task, noise, seed)
    cfg = CurateConfig(
        data=str(work / f"{name}.jsonl"),
        output=str(_curate_dir(work, task, noise, seed, epochs, rounds, ensemble)),
        against=[] if noise else [str(work / f"{task}-test-original.jsonl")],  # noise runs: noise only
        folds=folds,
        max_length=MAX_LENGTH,
        epochs=epochs,
        rounds=rounds,
        ensemble=ensemble,
        seed=seed,
    )
    t0 = time.perf_counter()
    result = curate(cfg)
    flagged = {int(f.location.rsplit(":", 1)[1]) for f in result.flags if f.reason == "label_noise"}
    record = {
        "step": "curate",
        "task": task,
        "noise": noise,
        "seed": seed,
        "folds": folds,
        "epochs": epochs,
        "rounds": rounds,
        "ensemble": ensemble,
        "rows": len(result.data.order),
        "flagged_noise": len(flagged),
        "dropped": len(result.dropped),
        "oof_accuracy": result.noise.oof_accuracy,
        "threshold": result.noise.threshold,
        "reasons": result.counts(),
        "wall_s": time.perf_counter() - t0,
    }
    flips = work / f"{name}.flipped.json"
    if flips.exists():
        flipped = set(json.loads(flips.read_text()))
        hits = len(flipped & flagged)
        record["flipped"] = len(flipped)
        record["precision"] = hits / len(flagged) if flagged else None
        record["recall"] = hits / len(flipped)
        top = sorted(result.noise.p_wrong, key=lambda loc: -result.noise.p_wrong[loc])[: len(flipped)]
        # the --flag-threshold 0.5 rule on the same scores: every row the fold model labels the other way
        half = {int(x.rsplit(":", 1)[1]) for x, p in result.noise.p_wrong.items() if p >= 0.5}
        record["half"] = {
            "flagged": len(half),
            "precision": len(flipped & half) / len(half) if half else None,
            "recall": len(flipped & half) / len(flipped),
        }
        record["recall_at_true_count"] = len(flipped & {int(x.rsplit(":", 1)[1]) for x in top}) / len(flipped)
    _record(work, record)


def train_step(
    work: Path, task: str, variant: str, noise: float, seed: int, curate: tuple = PLAIN_CURATE
) -> None:
    from rewardlab.config import TrainConfig
    from rewardlab.training.run import train

    data = _train_file(work, task, variant, noise, seed, curate)
    if not data.exists():
        raise SystemExit(f"{data}: not there; run the curate step with the same --epochs/--rounds/--ensemble")
    out = work / "models" / f"{task}-{variant}-noise{noise:g}-seed{seed}"
    cfg = TrainConfig(
        data=str(data),
        test_data=str(work / f"{task}-test-original.jsonl"),
        output_dir=str(out),
        max_length=MAX_LENGTH,
        batch_size=8,
        epochs=1.0,
        seed=seed,
        overwrite=True,
    )
    result = train(cfg)
    _record(
        work,
        {
            "step": "train",
            "task": task,
            "variant": variant,
            "noise": noise,
            "seed": seed,
            **({"curate": list(curate)} if variant == "cleaned" else {}),
            "train_pairs": result.train_pairs,
            "test_accuracy": result.test.accuracy if result.test else None,
            "gold_agreement": result.test.gold_agreement if result.test else None,
            "wall_s": result.wall_time_s,
        },
    )


def contamination_step(work: Path, model: str) -> None:
    """5% of the test rows appended to train; caught = flagged contamination against the test file. No
    label-noise scoring is needed (--folds 0: seconds), unless --model is given."""
    from rewardlab.curate.config import CurateConfig
    from rewardlab.curate.run import curate

    results = work / "results.jsonl"
    if results.exists() and '"step": "contamination"' in results.read_text():
        return  # measured already

    test = _rows(work / "hh-test-original.jsonl")
    train_rows = _rows(work / "hh-train-original.jsonl")
    cfg = CurateConfig(
        data=str(work / "hh-train-contaminated.jsonl"),
        output=str(work / "curate-contaminated"),
        against=[str(HH / "test.jsonl")],
        model=model or None,
        folds=0,
        max_length=MAX_LENGTH,
    )
    result = curate(cfg)
    injected = set(range(len(train_rows) + 1, len(train_rows) + 1 + round(0.05 * len(test))))
    caught = {int(f.location.rsplit(":", 1)[1]) for f in result.flags if f.reason == "contamination"}
    _record(
        work,
        {
            "step": "contamination",
            "injected": len(injected),
            "caught": len(injected & caught),
            "flagged_contamination": len(caught),
            "flagged_not_injected": len(caught - injected),
            "reasons": result.counts(),
        },
    )


def table(work: Path) -> None:
    records = [json.loads(line) for line in (work / "results.jsonl").read_text().splitlines()]

    def ms(values: list[float]) -> str:
        values = [v for v in values if v is not None]
        if not values:
            return "n/a"
        if len(values) == 1:
            return f"{100 * values[0]:.1f} (n=1)"
        return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f} (n={len(values)})"

    print(
        "| task | noise | folds x epochs | flagged | precision | recall | recall at true count | OOF acc. "
        "| P(wrong) >= 0.5: flagged | precision | recall | most recall at >= 60% precision |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    curates = [r for r in records if r["step"] == "curate"]

    def half(rs: list[dict], key: str) -> str:
        values = [r["half"][key] for r in rs if "half" in r]
        return f"{statistics.mean(values):.0f}" if values else "n/a"

    def setting(r: dict) -> tuple:
        return (r["task"], r["noise"], r.get("epochs", 1.0), r.get("rounds", 1), r.get("ensemble", 1))

    for task, noise, epochs, rounds, ensemble in sorted({setting(r) for r in curates}):
        rs = [r for r in curates if setting(r) == (task, noise, epochs, rounds, ensemble)]
        flagged = statistics.mean(r["flagged_noise"] for r in rs)
        print(
            f"| {task} | {noise:g} | {rs[0]['folds']} x {epochs:g}"
            + (f", {rounds} rounds" if rounds > 1 else "")
            + (f", ensemble of {ensemble}" if ensemble > 1 else "")
            + f" | {flagged:.0f} | "
            f"{ms([r.get('precision') for r in rs])} | {ms([r.get('recall') for r in rs])} | "
            f"{ms([r.get('recall_at_true_count') for r in rs])} | {ms([r['oof_accuracy'] for r in rs])} | "
            f"{half(rs, 'flagged')} | {ms([r.get('half', {}).get('precision') for r in rs])} | "
            f"{ms([r.get('half', {}).get('recall') for r in rs])} | "
            f"{ms([recall_at_precision(work, r) for r in rs])} |"
        )
    print()
    print("| task | noise | variant | test accuracy | gold agreement |")
    print("|---|---|---|---|---|")

    def label(r: dict) -> str:
        epochs, rounds, ensemble = r.get("curate", PLAIN_CURATE)
        extra = [f"{epochs:g} epochs"] * (epochs != 1) + [f"{rounds} rounds"] * (rounds != 1)
        extra += [f"ensemble of {ensemble}"] * (ensemble != 1)
        return r["variant"] + (f" ({', '.join(extra)})" if extra else "")

    trains = [r for r in records if r["step"] == "train"]
    keys = sorted({(r["task"], r["noise"], label(r)) for r in trains})
    for task, noise, variant in keys:
        rs = [r for r in trains if (r["task"], r["noise"], label(r)) == (task, noise, variant)]
        gold = ms([r["gold_agreement"] for r in rs]) if task == "demo" else "-"
        print(f"| {task} | {noise:g} | {variant} | {ms([r['test_accuracy'] for r in rs])} | {gold} |")
    for r in records:
        if r["step"] == "contamination":
            print(f"\ncontamination: {r}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("step", choices=["prepare", "curate", "train", "contamination", "table"])
    p.add_argument("--work", type=Path, default=Path("runs/curation"))
    p.add_argument("--task", choices=["demo", "hh"], default="demo")
    p.add_argument("--noise", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variant", choices=["original", "noisy", "cleaned"], default="noisy")
    p.add_argument("--folds", type=int, default=0, help="Default: 3.")
    p.add_argument("--epochs", type=float, default=1.0, help="curate: epochs of each fold model.")
    p.add_argument(
        "--rounds", type=int, default=1, help="curate: out-of-fold rounds (rewardlab curate --rounds)."
    )
    p.add_argument("--ensemble", type=int, default=1, help="curate: independent scorings averaged.")
    p.add_argument("--demo-tau", type=float, default=0.05)
    p.add_argument("--model", default="", help="contamination: the model that scores (any trained one).")
    a = p.parse_args(argv)
    if a.step == "prepare":
        prepare(a.work, a.demo_tau)
    elif a.step == "curate":
        curate_step(a.work, a.task, a.noise, a.seed, a.folds or FOLDS[a.task], a.epochs, a.rounds, a.ensemble)
    elif a.step == "train":
        train_step(a.work, a.task, a.variant, a.noise, a.seed, (a.epochs, a.rounds, a.ensemble))
    elif a.step == "contamination":
        contamination_step(a.work, a.model)
    else:
        table(a.work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
