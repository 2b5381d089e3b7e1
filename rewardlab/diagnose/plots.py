"""The diagnosis report's figures, as PNG bytes (matplotlib on the Agg backend, no display needed).

Each function takes one or two `Diagnosis` objects (two in comparison mode, drawn side by side in the
same axes) and returns the PNG; `rewardlab.diagnose.report` embeds them in HTML and writes them next to the
markdown. matplotlib comes with the `[plot]` extra and is imported inside the functions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from rewardlab.diagnose.diagnosis import Diagnosis
from rewardlab.page import figure, png

COLORS = ("#1f77b4", "#ff7f0e")
FLAG = "#d62728"


def _label(d: Diagnosis, i: int, n: int) -> str:
    return d.model if n > 1 else "model"


def reliability(diags: Sequence[Diagnosis]) -> bytes:
    """Reliability diagram: observed accuracy per confidence bin, at T = 1 and at the fitted T."""
    fig, axes = figure(2)
    panels = ((axes[0], "σ(Δr), temperature 1", "bins"), (axes[1], "fitted temperature", "bins_after"))
    for ax, title, attr in panels:
        ax.plot([0.5, 1], [0.5, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
        for i, d in enumerate(diags):
            bins = [b for b in getattr(d.calibration, attr) if b.count]
            t = "" if attr == "bins" else f" (T={d.calibration.temperature:.3g})"
            ax.plot(
                [b.confidence for b in bins],
                [b.accuracy for b in bins],
                marker="o",
                color=COLORS[i],
                label=_label(d, i, len(diags)) + t,
            )
        ax.set_xlim(0.5, 1.0)
        ax.set_ylim(0.0, 1.0)
        ax.set_xlabel("confidence of the preferred response")
        ax.set_ylabel("fraction where it was the chosen one")
        ax.set_title(title)
        ax.legend(fontsize=8, loc="lower right")
    return png(fig)


def length(diags: Sequence[Diagnosis], max_points: int = 3000) -> bytes:
    """Reward against response length (tokens), and accuracy when the chosen response is longer/shorter."""
    fig, axes = figure(2)
    for i, d in enumerate(diags):
        points = [
            (n, r)
            for ns, rs in zip(d.raw.lengths, d.raw.rewards, strict=True)
            for n, r in zip(ns, rs, strict=True)
        ]
        if len(points) > max_points:
            points = random.Random(0).sample(points, max_points)
        rho = d.length.spearman
        label = _label(d, i, len(diags)) + (f" (ρ={rho:.2f})" if rho is not None else "")
        axes[0].scatter(
            [p[0] for p in points], [p[1] for p in points], s=5, alpha=0.35, color=COLORS[i], label=label
        )
    axes[0].set_xscale("symlog", linthresh=10)
    axes[0].set_xlabel("response length (tokens)")
    axes[0].set_ylabel("reward")
    axes[0].legend(fontsize=8)
    cases = ("chosen longer", "chosen shorter", "length-controlled")
    width = 0.8 / len(diags)
    for i, d in enumerate(diags):
        s = d.length.split
        values = [s.chosen_longer, s.chosen_shorter, s.length_controlled]
        xs = [k + i * width for k in range(len(cases))]
        axes[1].bar(
            xs,
            [v if v is not None else 0 for v in values],
            width=width,
            color=COLORS[i],
            label=_label(d, i, len(diags)),
        )
    axes[1].axhline(0.5, color="grey", linestyle="--", linewidth=1)
    axes[1].set_xticks([k + width * (len(diags) - 1) / 2 for k in range(len(cases))], cases)
    axes[1].set_ylim(0, 1)
    axes[1].set_ylabel("pairwise accuracy")
    axes[1].legend(fontsize=8)
    return png(fig)


def probes(diags: Sequence[Diagnosis]) -> bytes:
    """Mean reward change per probe in reward standard deviations; flagged probes in red."""
    names = [p.name for p in diags[0].probes]
    fig, axes = figure(1, width=7.0)
    ax = axes[0]
    width = 0.8 / len(diags)
    for i, d in enumerate(diags):
        by = {p.name: p for p in d.probes}
        values = [by[n].mean_change_std if n in by else 0.0 for n in names]
        colors = [FLAG if n in by and by[n].flagged else COLORS[i] for n in names]
        ax.bar(
            [k + i * width for k in range(len(names))],
            values,
            width=width,
            color=colors,
            edgecolor=COLORS[i],
            linewidth=1.5,
            label=_label(d, i, len(diags)),
        )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks([k + width * (len(diags) - 1) / 2 for k in range(len(names))], names, rotation=20)
    ax.set_ylabel("mean reward change (reward std)")
    ax.set_title("hacking probes (red: a rise that signals a failure)")
    if len(diags) > 1:
        ax.legend(fontsize=8)
    return png(fig)


def distribution(diags: Sequence[Diagnosis], max_subsets: int = 8) -> bytes:
    """Histogram of rewards, per subset when the data has subsets (one panel per model)."""
    fig, axes = figure(len(diags))
    for ax, d in zip(axes, diags, strict=True):
        by: dict[str, list[float]] = {}
        for name, rs in zip(d.raw.subsets, d.raw.rewards, strict=True):
            by.setdefault(name, []).extend(rs)
        names = sorted(by, key=lambda k: -len(by[k]))[:max_subsets]
        for name in names:
            ax.hist(by[name], bins=40, alpha=0.5, label=name, histtype="stepfilled")
        ax.set_xlabel("reward")
        ax.set_ylabel("responses")
        ax.set_title(d.model if len(diags) > 1 else "reward distribution")
        if len(names) > 1:
            ax.legend(fontsize=7)
    return png(fig)
