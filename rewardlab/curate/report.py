"""What `rewardlab curate` writes: the cleaned file, flagged.jsonl, summary.json and the report.

flagged.jsonl has one line per (row, reason): ``{"location": "path:line", "reason", "score", "detail",
"dropped"}``, so every row missing from the cleaned file is there with why. The report is built once as
`rewardlab.page` blocks and rendered to report.md (figures under img/) and one self-contained
report.html, as `rewardlab diagnose` does; its figures: P(label wrong) of flagged vs kept rows, and
flags by reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rewardlab.curate.noise import weak_model_warning
from rewardlab.curate.result import CurateResult
from rewardlab.page import Bad, Doc, figure, png, to_html, to_markdown
from rewardlab.strict_json import finite_json

MEANING = {
    "label_noise": "out-of-fold models confidently order the pair against its label",
    "exact_duplicate": "same normalised prompt and labelled pairs as an earlier row",
    "near_duplicate": "prompt and responses near an earlier row's (MinHash Jaccard)",
    "contamination": "prompt is (near) a prompt of an --against file",
    "contradiction": "same pair labelled the other way in another row",
    "low_agreement": "annotators of the item agree below --min-agreement",
    "truncated": "the length policy hides what tells the pair apart",
    "empty": "a response with no letter or digit",
    "boilerplate": "placeholder or one response repeated across many prompts",
    "refusal": "the chosen refuses a prompt with no harm cue",
    "unusable": "the loader drops it (identical sides, all tied, exact duplicate row)",
}
SHOW = 20


def _excerpt(text: object, limit: int = 160) -> str:
    if isinstance(text, list):
        text = " | ".join(f"{m.get('role', '?')}: {m.get('content', '')}" for m in text)
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else "…" + flat[-limit:]


def write_outputs(result: CurateResult, out: Path, dry_run: bool = False) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    if not dry_run:
        cleaned = result.data.write(result.kept, out / result.data.cleaned_name())
        files["cleaned"] = str(cleaned)
        flagged = out / "flagged.jsonl"
        with open(flagged, "w", encoding="utf-8") as f:
            for flag in sorted(result.flags, key=lambda x: (x.reason, -x.score, x.location)):
                f.write(json.dumps(finite_json(flag.to_dict()), ensure_ascii=False) + "\n")
        files["flagged"] = str(flagged)
        if result.noise.p_wrong:
            scored, noise = out / "noise_scores.jsonl", result.noise
            with open(scored, "w", encoding="utf-8") as f:
                for loc in (x for x in result.data.order if x in noise.p_wrong):
                    row = {"location": loc, "margin": noise.margins[loc], "p_wrong": noise.p_wrong[loc]}
                    f.write(json.dumps(finite_json(row)) + "\n")
            files["noise_scores"] = str(scored)
    images = _figures(result)
    doc = build(result, images)
    (out / "img").mkdir(exist_ok=True)
    for name, data in images.items():
        (out / "img" / f"{name}.png").write_bytes(data)
    (out / "report.md").write_text(to_markdown(doc), encoding="utf-8")
    (out / "report.html").write_text(to_html(doc, title="Preference data curation"), encoding="utf-8")
    files["report"] = str(out / "report.html")
    summary = result.summary()
    summary["files"] = {**files, "summary": str(out / "summary.json"), "markdown": str(out / "report.md")}
    (out / "summary.json").write_text(json.dumps(finite_json(summary), indent=2) + "\n", encoding="utf-8")
    files["summary"] = str(out / "summary.json")
    return files


def build(result: CurateResult, images: dict[str, bytes]) -> Doc:
    doc = Doc()
    d = result.data
    doc.h(1, f"Data curation: {d.path}")
    doc.p(
        f"{len(d.order)} rows read as '{d.format}'; {len({f.location for f in result.flags})} flagged, "
        f"{len(result.dropped)} left out of the cleaned file, {len(result.kept)} kept. Every flag is in "
        f"flagged.jsonl with its file:line; rows flagged for a reason not in --drop "
        f"({', '.join(result.settings['drop'])}) stay in the cleaned file."
    )
    if result.settings.get("dry_run"):
        doc.flag("--dry-run: only this report and summary.json were written; no cleaned file")
    doc.h(2, "Flags by reason")
    counts = result.counts()
    doc.table(
        ["reason", "rows flagged", "rows dropped", "what it means"],
        [[r, str(c["flagged"]), str(c["dropped"]), MEANING.get(r, "")] for r, c in counts.items()]
        or [["(none)", "0", "0", "nothing was flagged"]],
    )
    if "reasons" in images:
        doc.figure("reasons", images["reasons"], "flags by reason")
    _noise(doc, result, images)
    by_loc = {g.source: g for g in d.groups}
    for reason in ("contamination", "exact_duplicate", "near_duplicate", "contradiction", "low_agreement"):
        _examples(doc, result, reason, by_loc)
    if result.agreement.items:
        a = result.agreement
        doc.p(
            f"Agreement: {a.items} items with several of {a.annotators} annotators; mean pairwise agreement "
            f"{_pct(a.mean_before)} before, {_pct(a.mean_after)} over the items kept "
            f"(--min-agreement {result.settings['min_agreement']:g})."
        )
    for reason in ("truncated", "empty", "boilerplate", "refusal", "unusable"):
        _examples(doc, result, reason, by_loc)
    doc.h(2, "Settings")
    doc.p(
        ", ".join(f"{k}={v}" for k, v in result.settings.items()) + f"; wall time {result.wall_time_s:.0f} s."
    )
    return doc


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _noise(doc: Doc, result: CurateResult, images: dict[str, bytes]) -> None:
    n, s = result.noise, result.scores
    doc.h(2, "Label noise")
    doc.p(f"How: {s.how}. Cost: {s.cost}.")
    doc.p(
        f"Out-of-fold accuracy on the given labels: {_pct(n.oof_accuracy)}. Threshold: {n.rule}. "
        "P(label wrong) = σ((r_rejected - r_chosen) / T), T fitted by maximum likelihood on the scored pairs."
    )
    if s.self_judged:
        doc.flag("--model was trained on this very data: it judges its own pairs and under-reports noise")
    weak = weak_model_warning(n)
    if weak:
        doc.flag("Weak scorer: " + weak)
    if s.unscored:
        doc.p(f"{len(s.unscored)} rows were not judged (the --folds 1 training sample).")
    if "noise" in images:
        doc.figure("noise", images["noise"], "P(label wrong), flagged vs kept")
    flagged = sorted((f for f in result.flags if f.reason == "label_noise"), key=lambda f: -f.score)
    by_loc = {g.source: g for g in result.data.groups}
    if flagged:
        doc.p(f"The {min(SHOW, len(flagged))} most suspicious rows:")
        rows = []
        for f in flagged[:SHOW]:
            g = by_loc[f.location]
            w, lose = g.pairs[0]
            rows.append(
                [
                    f.location,
                    Bad(f"{f.score:.3f}"),
                    f"{-n.margins[f.location]:+.2f}",
                    _excerpt(g.prompt, 120),
                    _excerpt(g.responses[w]),
                    _excerpt(g.responses[lose]),
                ]
            )
        doc.table(["row", "P(label wrong)", "r_rej - r_cho", "prompt (end)", "chosen", "rejected"], rows)


def _examples(doc: Doc, result: CurateResult, reason: str, by_loc: dict) -> None:
    flags = [f for f in result.flags if f.reason == reason]
    if not flags:
        return
    doc.h(2, f"{reason.replace('_', ' ').capitalize()} ({len({f.location for f in flags})} rows)")
    doc.p(MEANING[reason] + ".")
    rows = []
    for f in sorted(flags, key=lambda x: -x.score)[:SHOW]:
        g = by_loc.get(f.location)
        rows.append([f.location, f"{f.score:.3g}", f.detail, _excerpt(g.prompt, 100) if g else ""])
    doc.table(["row", "score", "detail", "prompt (end)"], rows)


def _figures(result: CurateResult) -> dict[str, bytes]:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return {}
    images = {}
    counts = result.counts()
    if counts:
        images["reasons"] = _bars(counts)
    if result.noise.p_wrong:
        flagged = {f.location for f in result.flags if f.dropped}
        images["noise"] = _hist(
            [p for loc, p in result.noise.p_wrong.items() if loc in flagged],
            [p for loc, p in result.noise.p_wrong.items() if loc not in flagged],
            result.noise.threshold,
        )
    return images


def _bars(counts: dict[str, dict[str, int]]) -> bytes:
    fig, (ax,) = figure(1, width=6.0, height=3.2)
    names = list(counts)
    ax.barh(names, [counts[r]["flagged"] for r in names], color="#ff7f0e", label="flagged")
    ax.barh(names, [counts[r]["dropped"] for r in names], color="#d62728", label="dropped")
    ax.set_xlabel("rows")
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    return png(fig)


def _hist(flagged: Sequence[float], kept: Sequence[float], threshold: float) -> bytes:
    fig, (ax,) = figure(1, width=6.0, height=3.2)
    bins = [i / 25 for i in range(26)]
    ax.hist(kept, bins=bins, color="#1f77b4", alpha=0.7, label=f"kept ({len(kept)})")
    ax.hist(flagged, bins=bins, color="#d62728", alpha=0.7, label=f"dropped ({len(flagged)})")
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:.2f}")
    ax.set_xlabel("out-of-fold P(label wrong)")
    ax.set_ylabel("rows")
    ax.legend(fontsize=8)
    return png(fig)
