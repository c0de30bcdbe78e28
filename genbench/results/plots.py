"""The figures of a table: each score against n per class, and the learning curves against iterations and seconds."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from genbench.files import write_via_temp
from genbench.results.legend import Legend
from genbench.results.rows import is_reference, latest_rows, n_key, ordered_labels, row_label


def draw_series(ax, series: dict[str, dict], labels: list[str]) -> None:
    """On ``ax``: one line per label of score vs n, the mean of the scores at each n (their spread as error bars
    when there are several, else the score's own std); reference labels (``*…*``) as grey dashed lines."""
    for index, label in enumerate(labels):
        ns = sorted(series[label])
        means, errs = [], []
        for n in ns:
            values = series[label][n]
            m = [v["mean"] for v in values]
            means.append(sum(m) / len(m))
            if len(m) > 1:
                mu = means[-1]
                errs.append(math.sqrt(sum((x - mu) ** 2 for x in m) / (len(m) - 1)))
            else:
                errs.append(values[0].get("std") or 0.0)
        if label.startswith("*"):
            ax.errorbar(ns, means, yerr=errs, marker="s", capsize=3, label=label.replace("*", ""), linestyle="--",
                        color="0.2" if "real" in label else "0.6")
            continue
        style = ("-", "-.", ":")[index // 10 % 3]  # the colour cycle has 10 colours
        ax.errorbar(ns, means, yerr=errs, marker="o", capsize=3, label=label, linestyle=style)


def plot_table(rows: list[dict], stem: Path, title: str, legend: Legend) -> list[Path]:
    """One PNG per score of ``legend``: score vs n per class, a line with error bars per model (latest row per seed);
    reference rows as grey dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latest = latest_rows(rows)
    written = []
    for metric, spec in legend.scores.items():
        series: dict[str, dict] = defaultdict(lambda: defaultdict(list))
        for (_model, n, _), row in latest.items():
            if n is not None and metric in row.get("metrics", {}):
                series[row_label(row)][n].append(row["metrics"][metric])
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
        draw_series(ax, series, [label for label in ordered_labels(latest.values()) if label in series])
        ax.set_xlabel("training images per category (n)")
        ax.set_ylabel(spec.label, fontsize=8)
        ax.set_title(f"{title} ({spec.better} is better)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        out = stem.parent / f"{stem.name}-{metric}.png"
        write_via_temp(out, lambda tmp: fig.savefig(tmp, format="png"))
        plt.close(fig)
        written.append(out)
    return written


#: the score a learning-curve figure draws, in order of preference (else the first score its points have)
CURVE_SCORES = ("classifier_fid", "fid", "classifier_score", "pairwise_ssim")


def plot_curves(rows: list[dict], stem: Path, title: str, legend: Legend) -> Path | None:
    """``<table>-curves.png``: the learning curves of the rows at the table's largest n that have one — the score
    against iterations and against training seconds, a line per model (latest row per seed: one line each), the
    real-images and noise rows at that n as horizontal lines; an axis is logarithmic where a linear one would squash
    a line. None when no row has a curve."""
    latest = latest_rows(rows)
    with_curves = [r for r in latest.values() if (r.get("curve") or {}).get("points")]
    if not with_curves:
        return None
    n = max((r.get("n") for r in with_curves), key=n_key)
    chosen = [r for r in with_curves if r.get("n") == n]
    scored = [name for r in chosen for p in r["curve"]["points"] for name in p["scores"]]
    score = next((s for s in CURVE_SCORES if s in scored), scored[0] if scored else None)
    if score is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = legend.scores.get(score)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=110)
    palette = plt.get_cmap("tab20" if len(chosen) > 10 else "tab10").colors  # one colour per line
    for index, row in enumerate(sorted(chosen, key=lambda r: (row_label(r), str(r.get("seed"))))):
        points = [p for p in row["curve"]["points"] if score in p["scores"]]
        label = row_label(row) + (f" (seed {row['seed']})" if sum(r is not row and row_label(r) == row_label(row)
                                                                    for r in chosen) else "")
        for ax, x in zip(axes, ("iteration", "train_seconds")):
            ax.plot([p[x] for p in points], [p["scores"][score] for p in points], marker="o", markersize=3, label=label,
                    color=palette[index % len(palette)])
    for row in (r for r in latest.values() if is_reference(r) and r.get("n") == n and score in r.get("metrics", {})):
        for ax in axes:
            ax.axhline(row["metrics"][score]["mean"], linestyle="--", color="0.2" if "real" in row["model"] else "0.6",
                       label=f"{row['model']} (reference)")
    # log axes where linear ones would squash a line: iterations when one model ran over 5× another's (a budget in
    # seconds gives a cheap iteration many more), scores when the lines and references span over 20×
    ends = [r["curve"]["points"][-1]["iteration"] for r in chosen]
    if min(ends) > 0 and max(ends) > 5 * min(ends):
        axes[0].set_xscale("log")
    values = [v for ax in axes for line in ax.get_lines() for v in line.get_ydata()]
    if values and min(values) > 0 and max(values) > 20 * min(values):
        for ax in axes:
            ax.set_yscale("log")
    for ax, x in zip(axes, ("training iterations", "training seconds (scoring excluded)")):
        ax.set_xlabel(x)
        ax.set_ylabel(f"{spec.label if spec else score} ({spec.better if spec else ''} is better)", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{title}: learning curves at n = {n or 'all'} ({chosen[0]['curve']['samples']} samples per point)",
                 fontsize=9)
    fig.tight_layout()
    out = stem.parent / f"{stem.name}-curves.png"
    write_via_temp(out, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return out
