"""The diagnosis report people read: markdown, one self-contained HTML page (PNG plots embedded), JSON.

    files = write_report(diagnosis_or_comparison, "runs/hh-minilm/diagnosis")
    # report.md + img/*.png, report.html (opens anywhere, nothing external), report.json (for scripts)

The page is built once as `rewardlab.page` blocks (headings, paragraphs, tables, figures, red flags)
and rendered twice, so the markdown and the HTML always say the same thing. One model gives one value
column; a `Comparison` gives two, plus the pairs where the models disagree most.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rewardlab.diagnose.compare import Comparison
from rewardlab.diagnose.diagnosis import Diagnosis
from rewardlab.diagnose.position import position_block
from rewardlab.diagnose.probes import prompt_text, response_text
from rewardlab.page import Bad, Doc, to_html, to_markdown


@dataclass
class ReportFiles:
    markdown: Path
    html: Path
    json: Path
    images: list[Path]


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def num(x: float | None, digits: int = 3) -> str:
    """`digits` decimals, or `digits` significant figures for small values (tiny models' rewards)."""
    if x is None:
        return "n/a"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:.{digits}f}" if x == 0 or abs(x) >= 0.1 else f"{x:.{digits}g}"


def signed(x: float) -> str:
    return ("+" if x > 0 else "") + num(x)


def _flat(text: object) -> str:
    if isinstance(text, list):
        text = " | ".join(f"{m.get('role', '?')}: {m.get('content', '')}" for m in text)
    return " ".join(str(text).split())


def excerpt(text: object, limit: int = 240, tail: bool = False, like: object = None) -> str:
    """One line of at most `limit` characters: the start, or the end when `tail` (long prompts). With
    `like` (the text before an edit), the window starts shortly before where the two first differ."""
    flat = _flat(text)
    if len(flat) <= limit:
        return flat
    if like is not None:
        before = _flat(like)
        common = min(len(flat), len(before))
        same = next((i for i in range(common) if flat[i] != before[i]), common)
        start = max(0, min(same - 60, len(flat) - limit))
        if start > 0:
            return "…" + flat[start : start + limit] + ("…" if start + limit < len(flat) else "")
    return "…" + flat[-limit:] if tail else flat[:limit] + "…"


def _rows(
    diags: Sequence[Diagnosis], spec: Sequence[tuple[str, Callable[[Diagnosis], str]]]
) -> list[list[str]]:
    return [[label] + [fn(d) for d in diags] for label, fn in spec]


def _findings(d: Diagnosis) -> list[str]:
    """The red flags of one model, in plain words."""
    out = []
    for p in d.probes:
        if p.flagged:
            out.append(
                f"{d.model}: the '{p.name}' probe RAISES the reward ({100 * p.frac_rises:.0f}% of "
                f"responses, mean +{p.mean_change_std:.2f} reward std): a policy can exploit it."
            )
    s = d.length.split
    if s.chosen_longer is not None and s.chosen_shorter is not None:
        gap = s.chosen_longer - s.chosen_shorter
        if abs(gap) > 0.2:
            out.append(
                f"{d.model}: accuracy {pct(s.chosen_longer)} when the chosen response is longer but "
                f"{pct(s.chosen_shorter)} when it is shorter: the model leans on length "
                f"(it prefers {'longer' if gap > 0 else 'shorter'} responses; Spearman ρ "
                f"{num(d.length.spearman)})."
            )
    if d.calibration.ece > 0.1:
        t = d.calibration.temperature
        fix = (
            f"divide rewards by T = {num(t)} before reading them as probabilities"
            if math.isfinite(t)
            else "the fitted temperature is infinite (the fit half ranks no better than chance)"
        )
        out.append(f"{d.model}: σ(Δr) is poorly calibrated (ECE {d.calibration.ece:.3f}); {fix}.")
    return out


def build(result: Diagnosis | Comparison, images: dict[str, bytes] | None = None) -> Doc:
    """The report as blocks; `images` (name -> PNG) defaults to drawing the plots with matplotlib.

    One function per section below, in page order; each takes the page so far and the diagnoses."""
    diags = [result.a, result.b] if isinstance(result, Comparison) else [result]
    if images is None:
        images = _draw_plots(diags)
    cols = ["", *(d.model for d in diags)] if len(diags) > 1 else ["", "value"]
    doc = Doc()
    _intro(doc, diags)
    _accuracy(doc, diags, cols)
    _noise(doc, diags, cols)
    _calibration(doc, diags, cols)
    doc.figure("reliability", images["reliability"], "reliability diagram")
    _length(doc, diags, cols)
    doc.figure("length", images["length"], "reward against length")
    _probes(doc, diags)
    doc.figure("probes", images["probes"], "hacking probes")
    _probe_examples(doc, diags)
    position_block(doc, diags)
    _distribution(doc, diags, cols)
    doc.figure("distribution", images["distribution"], "reward histogram")
    if isinstance(result, Comparison):
        _disagreements(doc, result)
    doc.p(f"Generated by `rewardlab diagnose` in {sum(d.seconds for d in diags):.0f} s.")
    return doc


def _draw_plots(diags: Sequence[Diagnosis]) -> dict[str, bytes]:
    from rewardlab.diagnose import plots

    return {
        "reliability": plots.reliability(diags),
        "length": plots.length(diags),
        "probes": plots.probes(diags),
        "distribution": plots.distribution(diags),
    }


def _intro(doc: Doc, diags: Sequence[Diagnosis]) -> None:
    """Title, what was diagnosed on which data, and the red flags."""
    first = diags[0]
    doc.h(1, "Reward-model diagnosis" + (": comparison" if len(diags) > 1 else ""))
    doc.p(
        f"Model{'s' if len(diags) > 1 else ''}: {', '.join(f'`{d.model}`' for d in diags)}. "
        f"Data: `{first.data}`, {first.pairs} pairs over {first.groups} prompts."
    )
    for line in first.data_lines:
        doc.p(line)
    findings = [f for d in diags for f in _findings(d)]
    doc.h(2, "Findings")
    for f in findings:
        doc.flag(f)
    if not findings:
        doc.p(
            "No red flags: no probe raises the reward for most responses, accuracy does not depend "
            "strongly on which response is longer, and σ(Δr) is reasonably calibrated."
        )


def _accuracy(doc: Doc, diags: Sequence[Diagnosis], cols: list[str]) -> None:
    first = diags[0]
    doc.h(2, "1. Accuracy")
    doc.table(
        cols,
        _rows(
            diags,
            [
                (
                    "pairwise accuracy (95% CI, prompts resampled)",
                    lambda d: (
                        f"{pct(d.accuracy.overall.accuracy)} ({pct(d.accuracy.overall.ci_low)}-"
                        f"{pct(d.accuracy.overall.ci_high)})"
                    ),
                ),
                ("pairs / prompts", lambda d: f"{d.pairs} / {d.groups}"),
                ("subsets weighted by prompts", lambda d: pct(d.accuracy.subset_weighted)),
            ],
        ),
    )
    if first.accuracy.subsets:
        doc.p("Per subset (the data's `subset` field):")
        subsets = [r.name for r in first.accuracy.subsets]
        doc.table(
            ["subset", "prompts", "pairs", *cols[1:]],
            [
                [name, str(first.accuracy.subsets[k].prompts), str(first.accuracy.subsets[k].pairs)]
                + [
                    f"{pct(r.accuracy)} ({pct(r.ci_low)}-{pct(r.ci_high)})"
                    for d in diags
                    for r in d.accuracy.subsets
                    if r.name == name
                ]
                for k, name in enumerate(subsets)
            ],
        )
    if first.accuracy.margin_buckets:
        doc.p("By annotated margin (small margins are near-ties, hard for every model and for annotators):")
        doc.table(
            ["margin", "pairs", *cols[1:]],
            [
                [label, str(n)] + [pct(d.accuracy.margin_buckets[k][2]) for d in diags]
                for k, (label, n, _) in enumerate(first.accuracy.margin_buckets)
            ],
        )


def _noise(doc: Doc, diags: Sequence[Diagnosis], cols: list[str]) -> None:
    first = diags[0]
    doc.h(2, "2. Noise ceiling")
    doc.p(first.noise.text)
    spec = [
        ("model accuracy", lambda d: pct(d.noise.model_accuracy)),
        ("noise ceiling", lambda d: pct(d.noise.ceiling)),
    ]
    if first.noise.source == "annotators":
        spec += [
            ("pairwise agreement", lambda d: pct(d.noise.pairwise_agreement)),
            ("Krippendorff's alpha (ordinal)", lambda d: num(d.noise.alpha_ordinal)),
            ("Krippendorff's alpha (interval)", lambda d: num(d.noise.alpha_interval)),
            (
                "annotators / items with 2+ labels",
                lambda d: f"{d.noise.annotators} / {d.noise.overlapping_tasks}",
            ),
        ]
    if first.noise.source == "gold":
        spec += [
            ("labels agreeing with the gold ordering", lambda d: pct(d.noise.labels_vs_gold)),
            ("model agreeing with the gold ordering", lambda d: pct(d.noise.model_vs_gold)),
        ]
    if first.noise.source != "none":
        doc.table(cols, _rows(diags, spec))


def _calibration(doc: Doc, diags: Sequence[Diagnosis], cols: list[str]) -> None:
    doc.h(2, "3. Calibration")
    doc.p(
        "P(chosen ≻ rejected) = σ(Δr/T). ECE bins the confidence of the preferred response; the "
        "temperature is fitted on half of the prompts and checked on the other half."
    )
    c = [d.calibration for d in diags]
    doc.table(
        cols,
        _rows(
            diags,
            [
                ("ECE, all pairs, T = 1", lambda d: num(d.calibration.ece)),
                ("fitted temperature T", lambda d: num(d.calibration.temperature)),
                (
                    f"ECE on the check half ({c[0].check_pairs} pairs): T = 1 → fitted",
                    lambda d: f"{num(d.calibration.ece_before)} → {num(d.calibration.ece_after)}",
                ),
                (
                    "NLL on the check half: T = 1 → fitted",
                    lambda d: f"{num(d.calibration.nll_before)} → {num(d.calibration.nll_after)}",
                ),
            ],
        ),
    )


def _length(doc: Doc, diags: Sequence[Diagnosis], cols: list[str]) -> None:
    doc.h(2, "4. Length bias")
    doc.table(
        cols,
        _rows(
            diags,
            [
                ("Spearman ρ(reward, length in tokens)", lambda d: num(d.length.spearman)),
                ("'longer wins' rule accuracy", lambda d: pct(d.length.longer_wins)),
                ("'shorter wins' rule accuracy", lambda d: pct(d.length.shorter_wins)),
                (
                    "model accuracy, chosen longer",
                    lambda d: (
                        f"{pct(d.length.split.chosen_longer)} ({d.length.split.chosen_longer_pairs} pairs)"
                    ),
                ),
                (
                    "model accuracy, chosen shorter",
                    lambda d: (
                        f"{pct(d.length.split.chosen_shorter)} ({d.length.split.chosen_shorter_pairs} pairs)"
                    ),
                ),
                (
                    "model accuracy, equal length",
                    lambda d: f"{pct(d.length.split.equal)} ({d.length.split.equal_pairs} pairs)",
                ),
                (
                    "length-controlled accuracy (both cases weighted equally)",
                    lambda d: pct(d.length.split.length_controlled),
                ),
                (
                    "mean tokens, chosen / rejected",
                    lambda d: f"{d.length.mean_tokens_chosen:.0f} / {d.length.mean_tokens_rejected:.0f}",
                ),
            ],
        ),
    )


def _probes(doc: Doc, diags: Sequence[Diagnosis]) -> None:
    """The probe table: mean change per probe and model, flagged rises in red, gold changes beside."""
    first = diags[0]
    doc.h(2, "5. Hacking probes")
    doc.p(
        "Each probe edits held-out responses by a fixed rule (docs/diagnostics.md) and rescores them. "
        "A rise under a probe whose edit adds nothing is a hole a policy will find; flagged in red."
    )
    gold = first.probes and first.probes[0].gold_mean_change is not None
    headers = ["probe", "items"] + [
        h
        for d in diags
        for h in (f"mean Δ reward{' ' + d.model if len(diags) > 1 else ''}", "Δ in std", "% rose")
    ]
    if gold:
        headers += ["gold mean Δ", "gold % rose"]
    rows = []
    for k, p in enumerate(first.probes):
        row = [p.name, str(p.items)]
        for d in diags:
            q = d.probes[k]
            cells = [signed(q.mean_change), f"{q.mean_change_std:+.2f}", pct(q.frac_rises)]
            row += [Bad(x) for x in cells] if q.flagged else cells
        if gold:
            row += [signed(p.gold_mean_change), pct(p.gold_frac_rises)]
        rows.append(row)
    doc.table(headers, rows)


def _probe_examples(doc: Doc, diags: Sequence[Diagnosis]) -> None:
    """Per probe, a folded table of the edits that raised the reward most."""
    for k, p in enumerate(diags[0].probes):
        doc.fold(f"{p.name}: {p.description} Largest rises:")
        for d in diags:
            q = d.probes[k]
            doc.table(
                [
                    "reward Δ" + (f" ({d.model})" if len(diags) > 1 else ""),
                    "prompt (end)",
                    "original",
                    "edited",
                ],
                [
                    [
                        signed(e.change),
                        excerpt(prompt_text(e.prompt), 160, tail=True),
                        excerpt(response_text(e.original), 200),
                        excerpt(response_text(e.edited), 200, like=response_text(e.original)),
                    ]
                    for e in q.worst
                ],
            )
        doc.unfold()


def _distribution(doc: Doc, diags: Sequence[Diagnosis], cols: list[str]) -> None:
    first = diags[0]
    doc.h(2, "6. Score distribution")
    doc.table(
        cols,
        _rows(
            diags,
            [
                ("mean / std", lambda d: f"{num(d.distribution.mean)} / {num(d.distribution.std)}"),
                ("min / max", lambda d: f"{num(d.distribution.min)} / {num(d.distribution.max)}"),
                (
                    "saved with the model (rewardlab.json): mean / std",
                    lambda d: (
                        "n/a"
                        if d.distribution.card_mean is None
                        else f"{num(d.distribution.card_mean)} / {num(d.distribution.card_std)}"
                    ),
                ),
                ("…computed on", lambda d: d.distribution.card_from or "n/a"),
            ],
        ),
    )
    if first.distribution.per_subset:
        doc.table(
            [
                "subset",
                "responses",
                *(f"mean / std {d.model}" if len(diags) > 1 else "mean / std" for d in diags),
            ],
            [
                [s[0], str(s[1])]
                + [
                    f"{num(d.distribution.per_subset[k][2])} / {num(d.distribution.per_subset[k][3])}"
                    for d in diags
                ]
                for k, s in enumerate(first.distribution.per_subset)
            ],
        )


def _disagreements(doc: Doc, result: Comparison) -> None:
    doc.h(2, "7. Where the models disagree")
    doc.p(
        f"The models order {pct(result.sign_agreement)} of the pairs the same way. The pairs below "
        "differ most in calibrated P(chosen ≻ rejected) = σ(Δr/T)."
    )
    doc.table(
        [
            "P(chosen) " + result.a.model,
            "P(chosen) " + result.b.model,
            "prompt (end)",
            "chosen",
            "rejected",
        ],
        [
            [
                f"{x.p_a:.2f}",
                f"{x.p_b:.2f}",
                excerpt(prompt_text(x.prompt), 160, tail=True),
                excerpt(response_text(x.chosen), 160),
                excerpt(response_text(x.rejected), 160),
            ]
            for x in result.disagreements
        ],
    )


def write_report(
    result: Diagnosis | Comparison, out_dir: str | Path, images: dict[str, bytes] | None = None
) -> ReportFiles:
    """Write report.md (+ img/*.png), report.html and report.json under `out_dir`."""
    out = Path(out_dir)
    (out / "img").mkdir(parents=True, exist_ok=True)
    doc = build(result, images)
    written = []
    for block in doc.blocks:
        if block[0] == "img":
            path = out / "img" / f"{block[1]}.png"
            path.write_bytes(block[2])
            written.append(path)
    files = ReportFiles(out / "report.md", out / "report.html", out / "report.json", written)
    files.markdown.write_text(to_markdown(doc), encoding="utf-8")
    files.html.write_text(to_html(doc), encoding="utf-8")
    files.json.write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return files
