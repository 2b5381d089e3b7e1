"""Verifiers on real GSM8K model solutions: ORM and PRM best-of-4 by problem-level cross-validation.

    B="python benchmarks/prm_verifiers.py --out runs/prmv"
    $B folds --k 3                      # fold files of ../shared/data/gsm8k/model_solutions_dev.jsonl
    $B injected                         # injected-error train data (GSM8K train) and eval data (test \\ dev)
    flock /tmp/rewardlab-heavy.lock $B run --signal orm --fold 0     # ... one run per fold and signal
    flock /tmp/rewardlab-heavy.lock $B run --signal inj              # trained once, scores every fold
    $B report > runs/prmv/report.md
    $B injected-ci runs/prmv/minilm_inj/model_all   # step AUROC on injected errors, bootstrap interval
    flock /tmp/rewardlab-heavy.lock $B lm-score --backbone smollm2   # zero-training reference (no fit)
    $B compare smollm2-e3_pair minilm-e3_pair   # A - B paired over the problems both scored

Signals (all through `rewardlab.training.run.train`, the one loop):

    orm   an ORM on the real outcome labels (is_correct) of the training folds' solutions
    pair  an ORM on the same labels as within-problem preferences: per training problem, a ranking row
          (correct solutions rank 1, wrong ones 2) for the Bradley-Terry objective, so the loss only
          sees differences between solutions of one problem (what selection needs), never which
          problems are hard
    prm   a PRM on rule-3 step labels of the same solutions (rewardlab.data.step_labels)
    inj   a PRM on injected-error steps from GSM8K *train* (`rewardlab prm build-gsm8k`); it never sees a
          dev problem, so one model scores every fold
    lm    no training: a causal LM's mean log-probability of the solution given the question
          (`lm-score`), the floor a trained verifier must clear

Folds are by problem (rewardlab.data.folds): a fold's model trains on the other folds' problems and
scores the held-out ones, so every problem is scored out of fold exactly once. The PRM aggregation used
for a fold is the one with the best argmax selection accuracy on the *other* folds' problems (their
out-of-fold scores), never on the held-out problems themselves. `report` prints best-of-4 selection
accuracy with 95% bootstrap intervals over problems, paired differences (weighted vote - majority,
argmax - random), outcome AUROC, and step AUROC on rule-3 labels and on injected errors (GSM8K test
problems that are not in the dev file). Nothing here is written inside the repository but --out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data" / "gsm8k"
if not SHARED.exists():  # a worktree beside the main checkout
    SHARED = Path("/work/shared/data/gsm8k")
DEV = SHARED / "model_solutions_dev.jsonl"
SIGNALS = {
    "orm": "ORM, real outcomes",
    "pair": "ORM, within-problem pairs",
    "prm": "PRM, rule-3 steps",
    "inj": "PRM, injected errors",
    "lm": "no training: the LM's mean log-probability of the solution",
}
REWARD_SIGNALS = ("orm", "pair", "lm")
"""Signals whose model scores a whole solution (a reward); the others score steps (a PRM)."""


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def cmd_folds(args: argparse.Namespace) -> None:
    from rewardlab.data.folds import problem_folds

    rows = _jsonl(Path(args.data))
    folds = problem_folds([r["question"] for r in rows], args.k, args.seed)
    for k in range(args.k):
        _write(
            args.out / "folds" / f"train{k}.jsonl", [r for r, f in zip(rows, folds, strict=True) if f != k]
        )
        _write(args.out / "folds" / f"test{k}.jsonl", [r for r, f in zip(rows, folds, strict=True) if f == k])
    meta = {
        "data": str(args.data),
        "k": args.k,
        "seed": args.seed,
        "sizes": [folds.count(k) for k in range(args.k)],
    }
    (args.out / "folds" / "meta.json").write_text(json.dumps(meta))
    print(json.dumps(meta))  # noqa: T201


def cmd_injected(args: argparse.Namespace) -> None:
    from rewardlab.data.gsm8k import build_step_data, read_gsm8k, to_stepwise_row

    dev_questions = {r["question"].strip() for r in _jsonl(DEV)}
    train = read_gsm8k(str(SHARED / "train.jsonl"), limit=args.train_problems)
    test = [p for p in read_gsm8k(str(SHARED / "test.jsonl")) if p.question not in dev_questions]
    test = test[: args.eval_problems]
    rows_train = [to_stepwise_row(e) for e in build_step_data(train, args.corruptions, seed=0)]
    rows_eval = [to_stepwise_row(e) for e in build_step_data(test, 2, seed=1)]
    _write(args.out / "injected" / "train.jsonl", rows_train)
    _write(args.out / "injected" / "eval.jsonl", rows_eval)
    info = {"train_solutions": len(rows_train), "eval_problems": len(test), "eval_solutions": len(rows_eval)}
    print(json.dumps(info))  # noqa: T201


def _ranking_file(out: Path, fold: str) -> Path:
    """The training folds' problems that have both a right and a wrong solution, as ranking rows."""
    from rewardlab.data.gsm8k_solutions import read_solution_problems
    from rewardlab.data.step_encoding import join_plain

    rows = []
    for problem in read_solution_problems(str(out / "folds" / f"train{fold}.jsonl")):
        ranks = [1 if c.correct else 2 for c in problem.candidates]
        if len(set(ranks)) == 2:
            responses = [join_plain(c.steps) for c in problem.candidates]
            rows.append({"prompt": problem.question, "responses": responses, "ranking": ranks})
    path = out / "folds" / f"ranking{fold}.jsonl"
    _write(path, rows)
    return path


def cmd_run(args: argparse.Namespace) -> None:
    """Train one model (or reuse it), then score the held-out dev problems and the injected eval set."""
    from rewardlab.config import TrainConfig
    from rewardlab.data.gsm8k_solutions import read_solution_problems, to_step_examples
    from rewardlab.data.step_encoding import join_plain
    from rewardlab.data.steps import load_steps
    from rewardlab.prm.evaluate import evaluate_step_scores
    from rewardlab.scoring.scorer import Scorer
    from rewardlab.training.run import train

    name = f"{args.backbone}{'-' + args.tag if args.tag else ''}_{args.signal}"
    fold = "all" if args.signal == "inj" else str(args.fold)
    model_dir = args.out / name / f"model_{fold}"
    if args.signal == "inj":
        data = args.out / "injected" / "train.jsonl"
    elif args.signal == "pair":  # within-problem pairs: right over wrong solutions of one question
        data = _ranking_file(args.out, fold)
    else:
        data = args.out / "folds" / f"train{fold}.jsonl"
    cfg = TrainConfig(
        data=str(data),
        objective={"orm": "outcome", "pair": "pairs"}.get(args.signal, "steps"),
        backbone=str(args.init) if args.init else args.backbone,
        output_dir=str(model_dir),
        max_length=args.max_length,
        epochs=args.epochs,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        gradient_checkpointing=args.gradient_checkpointing,
        lr=args.lr,
        freeze_layers=0,
        eval_fraction=args.eval_fraction,
        pooling=args.pooling,
        seed=0,
        overwrite=True,
        max_steps=args.max_steps,
    )
    record: dict = {"name": name, "fold": fold, "config": {k: getattr(cfg, k) for k in _CFG_KEYS}}
    t0 = time.time()
    if not (model_dir / "rewardlab.json").exists() or args.retrain:
        result = train(cfg)
        record["train"] = {
            "wall_s": time.time() - t0,
            "steps": result.steps,
            "train_items": result.train_pairs,
        }
    if args.train_only:
        (args.out / name / f"train_{fold}.json").write_text(json.dumps(record, indent=2))
        print(json.dumps(record))  # noqa: T201
        return
    trained = args.out / name / f"train_{fold}.json"
    if "train" not in record and trained.exists():  # trained in an earlier acquisition of the lock
        record["train"] = json.loads(trained.read_text())["train"]
    scorer = Scorer.from_pretrained(model_dir)
    is_prm = args.signal not in REWARD_SIGNALS
    t1 = time.time()
    dev = json.loads((args.out / "folds" / "meta.json").read_text())["data"]
    test_file = dev if args.signal == "inj" else args.out / "folds" / f"test{fold}.jsonl"
    rows = []
    for problem in read_solution_problems(str(test_file)):
        for i, ex in enumerate(to_step_examples(problem)):
            rows.append({"question": problem.question, "candidate": i, "answer": ex.meta["answer"],
                         "gold": problem.gold, "correct": ex.outcome == 1.0, "labels": ex.labels,
                         "steps": ex.steps})  # fmt: skip
    prompts, steps = [r["question"] for r in rows], [r["steps"] for r in rows]
    if is_prm:
        for r, ps in zip(rows, scorer.score_steps(prompts, steps), strict=True):
            r["step_probs"] = ps
    else:
        for r, reward in zip(rows, scorer.score(prompts, [join_plain(s) for s in steps]), strict=True):
            r["reward"] = reward
    for r in rows:
        del r["steps"]
    record["score_dev_wall_s"] = time.time() - t1
    _write(args.out / name / f"scores_{fold}.jsonl", rows)
    t2 = time.time()
    inj, _ = load_steps(str(args.out / "injected" / "eval.jsonl"))
    if is_prm:
        per_step = scorer.score_steps([e.prompt for e in inj], [e.steps for e in inj])
        from rewardlab.prm.evaluate import aggregate

        res = evaluate_step_scores(inj, per_step, [aggregate(p, "min") for p in per_step], "min")
    else:
        rewards = scorer.score([e.prompt for e in inj], [join_plain(e.steps) for e in inj])
        res = evaluate_step_scores(inj, None, [1 / (1 + math.exp(-x)) for x in rewards], "reward")
    record["injected_eval"] = res.to_dict()
    record["score_injected_wall_s"] = time.time() - t2
    record["total_wall_s"] = time.time() - t0
    (args.out / name / f"run_{fold}.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record))  # noqa: T201


_CFG_KEYS = ("backbone", "objective", "max_length", "epochs", "batch_size", "grad_accum", "lr",
             "freeze_layers", "eval_fraction", "pooling", "max_steps")  # fmt: skip


def cmd_injected_ci(args: argparse.Namespace) -> None:
    """Step AUROC on the injected eval set, with a 95% bootstrap interval over its problems (a problem's
    solutions and steps are resampled together), for each PRM folder given; the same scores as `run`."""
    from rewardlab.data.steps import load_steps
    from rewardlab.scoring.metrics import auroc
    from rewardlab.scoring.scorer import Scorer

    inj, _ = load_steps(str(args.out / "injected" / "eval.jsonl"))
    for model in args.models:
        per_step = Scorer.from_pretrained(model).score_steps([e.prompt for e in inj], [e.steps for e in inj])
        by_problem: dict[str, list[tuple[float, bool]]] = defaultdict(list)
        for e, probs in zip(inj, per_step, strict=True):
            by_problem[e.prompt] += [(p, y >= 0.5) for p, y in zip(probs, e.labels, strict=True)
                                     if y is not None and not math.isnan(p)]  # fmt: skip
        groups = list(by_problem.values())
        rng = random.Random(0)

        def auc(sample: list) -> float:
            flat = [x for g in sample for x in g]
            return auroc([p for p, _ in flat], [y for _, y in flat])

        boots = sorted(auc(rng.choices(groups, k=len(groups))) for _ in range(1000))
        row = {"model": str(model), "problems": len(groups), "labelled_steps": sum(map(len, groups)),
               "step_auroc": auc(groups), "ci95": [boots[25], boots[974]]}  # fmt: skip
        print(json.dumps(row))  # noqa: T201


def cmd_lm_score(args: argparse.Namespace) -> None:
    """A verifier with no training: a causal LM's mean log-probability of each solution's tokens given
    its question (the chat template's user turn), the reference any trained verifier must beat. Every
    fold's held-out problems are scored (nothing is fitted, so nothing leaks); ``--backbone`` names it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardlab.data.gsm8k_solutions import read_solution_problems, to_step_examples
    from rewardlab.data.step_encoding import join_plain
    from rewardlab.model.build import resolve_backbone

    path, gguf = resolve_backbone(args.backbone)
    kw = {"gguf_file": gguf} if gguf else {}
    tok = AutoTokenizer.from_pretrained(path, **kw)
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, **kw).eval()
    name = f"{args.backbone}_lm"
    (args.out / name).mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for fold in range(json.loads((args.out / "folds" / "meta.json").read_text())["k"]):
        if (args.out / name / f"scores_{fold}.jsonl").exists():  # scored before an interruption
            continue
        rows = []
        for problem in read_solution_problems(str(args.out / "folds" / f"test{fold}.jsonl")):
            user = [{"role": "user", "content": problem.question}]
            text = tok.apply_chat_template(user, add_generation_prompt=True, tokenize=False)
            head = tok(text, add_special_tokens=False)["input_ids"]
            for i, ex in enumerate(to_step_examples(problem)):
                body = tok(join_plain(ex.steps), add_special_tokens=False)["input_ids"]
                ids = torch.tensor([(head + body)[-args.max_length :]])
                n = min(len(body), ids.shape[1] - 1)  # solution tokens scored (the first needs a context)
                with torch.no_grad():
                    logp = torch.log_softmax(lm(ids).logits[0, :-1].float(), -1)
                target = ids[0, 1:]
                token_logp = logp.gather(1, target[:, None])[-n:, 0]
                rows.append({"question": problem.question, "candidate": i, "answer": ex.meta["answer"],
                             "gold": problem.gold, "correct": ex.outcome == 1.0,
                             "reward": token_logp.mean().item(), "sum_logp": token_logp.sum().item(),
                             "tokens": n})  # fmt: skip
        _write(args.out / name / f"scores_{fold}.jsonl", rows)
        print(f"fold {fold}: {len(rows)} solutions, {time.time() - t0:.0f} s", flush=True)  # noqa: T201


def cmd_combine(args: argparse.Namespace) -> None:
    """An ensemble of reward verifiers already scored out of fold: per fold, each member's rewards are
    standardised over that fold's candidates (BT rewards have arbitrary offsets and scales) and
    averaged, as `rewardlab ensemble` combines members. Written as ``NAME/scores_F.jsonl``, so `report`
    lists it beside its members; nothing is trained or rescored."""
    meta = json.loads((args.out / "folds" / "meta.json").read_text())
    (args.out / args.name).mkdir(parents=True, exist_ok=True)
    for fold in range(meta["k"]):
        if not all((args.out / m / f"scores_{fold}.jsonl").exists() for m in args.members):
            print(f"fold {fold}: not scored by every member, left out")  # noqa: T201
            continue
        combined: list[dict] | None = None
        for member in args.members:
            rows = _jsonl(args.out / member / f"scores_{fold}.jsonl")
            rewards = [r["reward"] for r in rows]
            mu, sd = statistics.fmean(rewards), statistics.pstdev(rewards) or 1.0
            if combined is None:
                combined = [dict(r, reward=0.0) for r in rows]
            for c, r in zip(combined, rows, strict=True):
                if (c["question"], c["candidate"]) != (r["question"], r["candidate"]):
                    raise SystemExit(f"{member} fold {fold}: candidates not in {args.members[0]}'s order")
                c["reward"] += (r["reward"] - mu) / sd / len(args.members)
        _write(args.out / args.name / f"scores_{fold}.jsonl", combined or [])


def cmd_compare(args: argparse.Namespace) -> None:
    """Model A minus model B on the problems both scored out of fold, paired per problem (95% bootstrap):
    argmax accuracy, the vote with its temperature chosen on the other folds, and within-problem AUROC."""
    from rewardlab.prm.best_of_n import within_problem_auroc

    meta = json.loads((args.out / "folds" / "meta.json").read_text())
    fold_of = _fold_of(meta)
    pools = []
    for name in (args.a, args.b):
        rows = _load_model_scores(args.out, name, meta["k"], fold_of)
        if rows is None or "reward" not in rows[0]:
            raise SystemExit(f"{name}: no scored reward verifier under {args.out}")
        pools.append(_pools(rows, "bt"))
    common = sorted(set(pools[0]) & set(pools[1]))
    a, b = ([p[q] for q in common] for p in pools)
    for group in (a, b):
        _choose_temperature(group, "bt")
    out: dict[str, object] = {"a": args.a, "b": args.b, "problems": len(common)}
    for label, method in (("argmax", "bt"), ("vote, CV temperature", "weighted_bt_cv")):
        diffs = [x - y for x, y in zip(_per_problem(a, method), _per_problem(b, method), strict=True)]
        out[f"{label}: a - b"] = _boot(diffs)

    def auc_diff(idx: list[int]) -> float:
        return (within_problem_auroc([a[i] for i in idx], "bt") or 0.0) - (
            within_problem_auroc([b[i] for i in idx], "bt") or 0.0
        )

    rng = random.Random(0)
    boots = sorted(auc_diff([rng.randrange(len(a)) for _ in a]) for _ in range(1000))
    point = auc_diff(list(range(len(a))))
    out["within-problem AUROC: a - b"] = (point, boots[25], boots[974])
    print(json.dumps(out, indent=1))  # noqa: T201


# ----- report ---------------------------------------------------------------------------------------


def _load_model_scores(out: Path, name: str, k: int, folds_of: dict[str, int]) -> list[dict] | None:
    files = (
        [out / name / "scores_all.jsonl"]
        if name.endswith("_inj")
        else [out / name / f"scores_{f}.jsonl" for f in range(k)]
    )
    files = [f for f in files if f.exists()]  # a partial run reports the folds it has, and says so
    if not files:
        return None
    rows = [r for f in files for r in _jsonl(f)]
    for r in rows:
        r["fold"] = folds_of[r["question"]]
    return rows


def _pools(rows: list[dict], reward_key: str = "orm") -> dict[str, object]:
    from rewardlab.prm.best_of_n import Pool
    from rewardlab.prm.evaluate import AGGREGATIONS, aggregate

    by_q: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_q[r["question"]].append(r)
    pools = {}
    for q, cands in by_q.items():
        cands.sort(key=lambda r: r["candidate"])
        pool = Pool(q, [[str(c["candidate"])] for c in cands], [c["answer"] for c in cands], cands[0]["gold"])
        if "reward" in cands[0]:
            pool.scores[reward_key] = [c["reward"] for c in cands]
        else:
            for agg in AGGREGATIONS:
                pool.scores[f"prm_{agg}"] = [aggregate(c["step_probs"], agg) for c in cands]
        pool.source = str(cands[0]["fold"])
        pools[q] = pool
    return pools


def _per_problem(pools: list, method: str) -> list[float]:
    from rewardlab.prm.best_of_n import pick_expected

    return [pick_expected(p, range(len(p.candidates)), method) for p in pools]


def _boot(values: list[float], seed: int = 0, n: int = 2000) -> tuple[float, float, float]:
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=len(values))) / len(values) for _ in range(n))
    return sum(values) / len(values), means[int(0.025 * n)], means[int(0.975 * n) - 1]


def _choose_aggregation(pools: list, k: int) -> dict[int, str]:
    """Per held-out fold: the aggregation with the best argmax accuracy on the other folds' problems."""
    from rewardlab.prm.evaluate import AGGREGATIONS

    chosen = {}
    for f in sorted({int(p.source) for p in pools}):
        others = [p for p in pools if p.source != str(f)]
        if not others:  # only one fold scored so far: nothing to choose on, the default
            chosen[f] = "product"
            continue
        acc = {a: sum(_per_problem(others, f"prm_{a}")) / len(others) for a in AGGREGATIONS}
        chosen[f] = max(AGGREGATIONS, key=lambda a: (acc[a], -AGGREGATIONS.index(a)))
    return chosen


TEMPERATURES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 1e6)
"""Grid of the Bradley-Terry vote's softmax temperature: small → argmax, 1e6 → plain majority."""


def _choose_temperature(pools: list, key: str) -> dict[int, float]:
    """Per held-out fold: the softmax temperature of the BT-weighted vote with the best accuracy on the
    other folds' problems (a reward's scale is arbitrary up to training length, so it is chosen, never
    assumed). Fills p.scores["bt_cv"] with reward / T of the pool's fold."""
    chosen = {}
    for f in sorted({int(p.source) for p in pools}):
        others = [p for p in pools if p.source != str(f)] or pools

        def acc(t: float, group: list = others) -> float:
            for p in group:
                p.scores["bt_t"] = [r / t for r in p.scores[key]]
            return sum(_per_problem(group, "weighted_bt_t")) / len(group)

        chosen[f] = max(TEMPERATURES, key=lambda t: (acc(t), t))
    for p in pools:
        p.scores["bt_cv"] = [r / chosen[int(p.source)] for r in p.scores[key]]
    return chosen


def _fold_of(meta: dict) -> dict[str, int]:
    from rewardlab.data.folds import problem_folds

    rows = _jsonl(Path(meta["data"]))
    folds = problem_folds([r["question"] for r in rows], meta["k"], meta["seed"])
    return {r["question"].strip(): f for r, f in zip(rows, folds, strict=True)}


def _summarise(out: Path, name: str, rows: list[dict], k: int) -> tuple[dict, dict]:
    """One model's cells (method → (mean, low, high)) and its AUROCs, wall times and settings."""
    from rewardlab.prm.best_of_n import within_problem_auroc
    from rewardlab.prm.evaluate import AGGREGATIONS
    from rewardlab.scoring.metrics import auroc

    signal = name.rsplit("_", 1)[1]
    # a pairwise model's reward is Bradley-Terry (shift-invariant): "bt" votes by a softmax over the pool
    # (as is a log-probability: negative, so a plain sum per answer would mean nothing)
    reward_key = "bt" if signal in ("pair", "lm") else "orm"
    pools = list(_pools(rows, reward_key).values())
    cells: dict[str, tuple[float, float, float]] = {}
    if signal in REWARD_SIGNALS:
        key, info = reward_key, "argmax of the reward"
    else:
        chosen = _choose_aggregation(pools, k)
        for p in pools:
            p.scores["prm"] = p.scores[f"prm_{chosen[int(p.source)]}"]
        key, info = "prm", "aggregation chosen per fold on the other folds: " + ", ".join(chosen.values())
        for agg in AGGREGATIONS:
            cells[f"argmax, {agg} (all folds; not CV-chosen)"] = _boot(_per_problem(pools, f"prm_{agg}"))
    vals = {m: _per_problem(pools, m) for m in (key, f"weighted_{key}", "majority", "random", "oracle")}
    cells["argmax of the verifier"] = _boot(vals[key])
    cells["verifier-weighted vote"] = _boot(vals[f"weighted_{key}"])
    for m in ("majority", "random", "oracle"):
        cells[m] = _boot(vals[m])
    pairs = zip(vals[f"weighted_{key}"], vals["majority"], strict=True)
    cells["weighted vote - majority"] = _boot([a - b for a, b in pairs])
    if key == "bt":  # the softmax vote's temperature, cross-validated like a PRM's aggregation
        temps = _choose_temperature(pools, key)
        tv = _per_problem(pools, "weighted_bt_cv")
        cells["weighted vote, temperature chosen on the other folds"] = _boot(tv)
        cells["weighted vote (chosen temperature) - majority"] = _boot(
            [a - b for a, b in zip(tv, vals["majority"], strict=True)]
        )
        info += "; vote temperature per fold: " + ", ".join(f"{t:g}" for t in temps.values())
    cells["argmax - random"] = _boot([a - b for a, b in zip(vals[key], vals["random"], strict=True)])
    flat = [(s, c) for p in pools for s, c in zip(p.scores[key], p.correct, strict=True) if not math.isnan(s)]
    step_auc = None
    if signal not in REWARD_SIGNALS:
        steps = [
            (q, y)
            for r in rows
            for q, y in zip(r["step_probs"], r["labels"], strict=True)
            if y is not None and not math.isnan(q)
        ]
        step_auc = auroc([q for q, _ in steps], [y >= 0.5 for _, y in steps])
    runs = [json.loads(f.read_text()) for f in sorted((out / name).glob("run_*.json"))]
    inj = [r["injected_eval"] for r in runs]

    def mean(key: str) -> float | None:
        got = [r[key] for r in inj if r.get(key) is not None]
        return sum(got) / len(got) if got else None

    extra = {
        "selection": info,
        "outcome_auroc": auroc([s for s, _ in flat], [c for _, c in flat]),
        "within_problem_auroc": within_problem_auroc(pools, key),
        "rule3_step_auroc": step_auc,
        "injected_step_auroc": mean("step_auroc"),
        "injected_outcome_auroc": mean("outcome_auroc"),
        "train_wall_s": [round(r["train"]["wall_s"]) for r in runs if "train" in r],
        "train_steps": [r["train"]["steps"] for r in runs if "train" in r],
        "score_wall_s": [round(r["score_dev_wall_s"] + r["score_injected_wall_s"]) for r in runs],
        "config": runs[0]["config"] if runs else {},
    }
    return cells, extra


ORDER = ("argmax of the verifier", "verifier-weighted vote", "majority", "random", "oracle",
         "weighted vote - majority", "argmax - random")  # fmt: skip


def _cell(v: tuple[float, float, float] | None, diff: bool) -> str:
    if v is None:
        return ""
    if diff:
        return f"{100 * v[0]:+.1f} ({100 * v[1]:+.1f} to {100 * v[2]:+.1f})"
    return f"{100 * v[0]:.1f} ({100 * v[1]:.1f}-{100 * v[2]:.1f})"


def cmd_report(args: argparse.Namespace) -> None:
    meta = json.loads((args.out / "folds" / "meta.json").read_text())
    k, fold_of = meta["k"], _fold_of(meta)
    table: dict[str, dict] = {}
    extras: dict[str, dict] = {}
    for name in sorted(p.name for p in args.out.iterdir() if p.is_dir() and "_" in p.name):
        rows = _load_model_scores(args.out, name, k, fold_of)
        if rows is not None:
            backbone, signal = name.rsplit("_", 1)
            col = f"{backbone}: {SIGNALS.get(signal, signal)}"
            have = len({r["question"] for r in rows})
            if have < len(fold_of):
                col += f" ({have} of {len(fold_of)} problems: folds missing)"
            table[col], extras[col] = _summarise(args.out, name, rows, k)
    cols = list(table)
    methods = [m for m in ORDER if any(m in t for t in table.values())]
    methods += [m for m in dict.fromkeys(m for t in table.values() for m in t) if m not in methods]
    lines = [
        f"Best-of-4 on {len(fold_of)} problems, each scored out of fold ({k}-fold by problem): % correct,",
        "95% bootstrap interval over problems in brackets.",
        "",
        "| method | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(_cell(table[c].get(m), " - " in m) for c in cols) + " |")
    head = ["model", "outcome AUROC", "within-problem AUROC", "step AUROC (rule 3)", "step AUROC (injected)",
            "outcome AUROC (injected)", "train s per fold", "steps"]  # fmt: skip
    lines += ["", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]

    def num(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    for c, e in extras.items():
        lines.append(
            f"| {c} | {num(e['outcome_auroc'])} | {num(e['within_problem_auroc'])} "
            f"| {num(e['rule3_step_auroc'])} "
            f"| {num(e['injected_step_auroc'])} | {num(e['injected_outcome_auroc'])} "
            f"| {e['train_wall_s']} | {e['train_steps']} |"
        )
    print("\n".join(lines))  # noqa: T201
    print("\n```json\n" + json.dumps(extras, indent=1) + "\n```")  # noqa: T201


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/prmv"))
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("folds")
    p.add_argument("--data", default=str(DEV))
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("injected")
    p.add_argument("--train-problems", type=int, default=600)
    p.add_argument("--corruptions", type=int, default=2)
    p.add_argument("--eval-problems", type=int, default=150)
    p = sub.add_parser("run")
    p.add_argument("--signal", choices=sorted(SIGNALS), required=True)
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--backbone", default="minilm")
    p.add_argument("--max-length", type=int, default=384)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-steps", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument(
        "--grad-accum", type=int, default=1,
        help="Micro-batches per step: SmolLM2 at batch 8 x 4 candidates x 384 tokens needs > 24 GiB; "
        "--batch-size 2 --grad-accum 4 takes the same optimizer steps in a quarter of the memory.",
    )  # fmt: skip
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--pooling", default="auto")
    p.add_argument("--eval-fraction", type=float, default=0.0)
    p.add_argument("--retrain", action="store_true")
    p.add_argument("--tag", default="", help="Suffix of the model's name (another recipe of one signal).")
    p.add_argument(
        "--init", type=Path, default=None,
        help="Start from this saved model instead of --backbone's pretrained weights (e.g. the injected-error"
        " PRM, then --signal pair: both signals in one model); --backbone still names the result.",
    )  # fmt: skip
    p.add_argument("--train-only", action="store_true", help="Train and stop; a later run scores.")
    p = sub.add_parser("lm-score", help="zero-training reference: a causal LM's mean log-prob per solution")
    p.add_argument("--backbone", default="smollm2")
    p.add_argument("--max-length", type=int, default=512)
    sub.add_parser("report")
    p = sub.add_parser("injected-ci", help="step AUROC on the injected eval set with a bootstrap interval")
    p.add_argument("models", nargs="+", type=Path, help="PRM folders (e.g. runs/prmv/minilm_inj/model_all)")
    p = sub.add_parser("combine", help="ensemble of scored reward verifiers (mean of standardised rewards)")
    p.add_argument("name", help="the ensemble's folder name, ending in _pair (e.g. minilm-ens4_pair)")
    p.add_argument("members", nargs="+", help="scored model folders under --out (e.g. minilm_pair)")
    p = sub.add_parser("compare", help="two scored reward verifiers, paired over the problems both scored")
    p.add_argument("a", help="scored model folder under --out (e.g. smollm2-e3_pair)")
    p.add_argument("b", help="the model it is compared with (e.g. minilm-e3_pair)")
    args = ap.parse_args()
    commands = {"folds": cmd_folds, "injected": cmd_injected, "run": cmd_run, "report": cmd_report,
                "injected-ci": cmd_injected_ci, "combine": cmd_combine, "lm-score": cmd_lm_score,
                "compare": cmd_compare}  # fmt: skip
    commands[args.cmd](args)


if __name__ == "__main__":
    main()
