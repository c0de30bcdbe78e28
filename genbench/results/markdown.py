"""A table's Markdown: models as rows, n per class as columns, "mean ± std" cells, like the papers' inception-score
table; the reference rows first, the published numbers apart, then the budget and the protocol."""

from __future__ import annotations

import math
from collections import defaultdict

from genbench.results.legend import Legend
from genbench.results.published import published_section
from genbench.results.rows import (by_feature_space, feature_space_of, is_reference, latest_rows, n_key, ordered_labels,
                                   row_label)
from genbench.results.schema import GRAD_NORM_DIAGNOSTICS


def format_cell(values: list[dict]) -> str:
    """One seed: "mean ± split std"; several seeds: "mean ± std over seeds (k seeds)"."""
    means = [v["mean"] for v in values if v.get("mean") is not None]
    if not means:
        return "—"
    if len(means) == 1:
        std = values[0].get("std")
        return f"{means[0]:.3f} ± {std:.3f}" if std is not None else f"{means[0]:.3f}"
    mean = sum(means) / len(means)
    std = math.sqrt(sum((m - mean) ** 2 for m in means) / (len(means) - 1))
    return f"{mean:.3f} ± {std:.3f} ({len(means)} seeds)"


def render_table(rows: list[dict], title: str, legend: Legend, data: str | None = None, gallery: str | None = None,
                 curves: str | None = None) -> str:
    """Markdown: one section per score of ``legend`` (its label and better direction), reference rows
    first, then models × n; latest row per (model, n, seed). Rows of other feature spaces get tables of their own
    below (``by_feature_space``)."""
    groups = by_feature_space(rows)
    shown_space, shown = groups[0]
    latest = latest_rows(shown)
    lines = [f"# {title}", "", "Rendered by `genbench leaderboard` from the rows in the `.jsonl` beside this file; "
             "every row was produced by `genbench bench` or `genbench reference` (see each row's command, commit "
             "and config).", ""]
    if shown_space:
        lines += [f"Classifier scores in feature space `{shown_space}`"
                  + (f"; {len(groups) - 1} other feature space(s) below, in tables of their own." if len(groups) > 1 else "."),
                  ""]
        migrated = sorted({r["feature_space_migrated_from"] for r in latest.values() if r.get("feature_space_migrated_from")})
        if migrated:
            count = sum(bool(r.get("feature_space_migrated_from")) for r in latest.values())
            lines += [f"{count} of these rows were written before feature spaces were recorded ({'; '.join(migrated)}); "
                      f"`genbench migrate` re-scored their reference rows in this space and every score reproduced "
                      f"(evidence in `feature-spaces.json`).", ""]
    if any(is_reference(r) for r in latest.values()):
        averages = (" *image averages* are the 1×1 averages of training images up-sampled to the image size (where the "
                    "multi-grid chains start; what a model's chains add is its distance from this row);"
                    if any(r.get("model") == "image averages" and is_reference(r) for r in latest.values()) else "")
        lines += ["Reference rows, scored by the same code: *real images* are held-out real images (the ceiling);"
                  f"{averages} *noise* is Gaussian noise clipped to [-1, 1] (the floor).", ""]
    else:
        lines += ["No reference rows yet: `make reference DATA=<data> PRESET=<preset>` adds the real-images ceiling "
                  "and the noise floor.", ""]
    if gallery:
        lines += [f"Samples of every model at the largest n, beside real images: [{gallery}]({gallery})", "",
                  f"![samples]({gallery})", ""]
    if curves:
        lines += [f"Learning curves (score against iterations and against training seconds, scored every "
                  f"`bench.eval_every` iterations): [{curves}]({curves})", ""]
    lines += metric_tables(latest, "##", data, legend)
    everything = {(shown_space, *key): row for key, row in latest.items()}
    for space, members in groups[1:]:
        other = latest_rows(members)
        lines += [f"## Rows in feature space `{space}`", "",
                  "Scored with other classifier weights than the tables above, so their classifier scores are not "
                  "comparable with them (pairwise SSIM is); their own reference rows are the ones listed here.", ""]
        lines += metric_tables(other, "###", None, legend)
        everything.update({(space, *key): row for key, row in other.items()})
    lines += diagnostics_section(everything)
    lines += budget_section(everything, legend)
    lines += protocol_section(everything)
    if any(r.get("preset") == "smoke" and not is_reference(r) for r in everything.values()):
        lines += ["Smoke rows (a few hundred CPU iterations) check the pipeline end to end; they are not comparable "
                  "with the papers' numbers, which need the `paper` preset.", ""]
    devices = sorted({str(r.get("device")) for r in everything.values()})
    presets = sorted({str(r.get("preset")) for r in everything.values()})
    lines += [f"Rows: {len(everything)} (latest per feature space, model, n, seed); presets: {', '.join(presets)}; "
              f"devices: {', '.join(devices)}.", ""]
    return "\n".join(lines)


def metric_tables(latest: dict[tuple, dict], level: str, data: str | None, legend: Legend) -> list[str]:
    """One Markdown table per score of the rows in ``latest`` (models × n); the published numbers after each where
    ``data`` has some."""
    lines: list[str] = []
    for metric, spec in legend.scores.items():
        cells: dict[tuple, list[dict]] = defaultdict(list)
        for (_model, n, _seed), row in latest.items():
            if metric in row.get("metrics", {}):
                cells[(row_label(row), n)].append(row["metrics"][metric])
        if not cells:
            published = published_section(data, metric) if data else []
            if published:  # a score the rows do not have (Inception's, without its weights): the papers' numbers alone
                lines += [f"{level} {spec.label} ({spec.better} is better): published only", "",
                          "No row of this table has this score (its feature space is not the offline classifier's); "
                          "the papers' numbers are shown for their scale, not for comparison with the rows above.", "",
                          *published]
            continue
        ns = sorted({n for _, n in cells}, key=n_key)
        present = {label for label, _ in cells}
        lines += [f"{level} {spec.label} ({spec.better} is better)", "",
                  "| model | " + " | ".join("all" if n is None else f"n={n}" for n in ns) + " |",
                  "|---|" + "---|" * len(ns)]
        for label in (x for x in ordered_labels(latest.values()) if x in present):
            lines.append(f"| {label} | " + " | ".join(format_cell(cells.get((label, n), [])) for n in ns) + " |")
        lines.append("")
        if data:
            lines += published_section(data, metric)
    return lines


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.2e}"


def _grad_norm(point: dict) -> float | None:
    """The point's gradient-norm diagnostic: the chains' or, for a model without chains, at its samples."""
    return next((point["diagnostics"][k] for k in GRAD_NORM_DIAGNOSTICS if k in point["diagnostics"]), None)


def diagnostics_section(latest: dict[tuple, dict]) -> list[str]:
    """The learning diagnostics of the rows whose curve points carry them (the energy-based models): at the first and
    the last point, the curve's classifier FID, the energy gap f(data) − f(samples) and the chains' mean gradient
    norm, each diagnostic averaged over the iterations since the point before."""
    rows = sorted((r for r in latest.values()
                   if any("diagnostics" in p for p in ((r.get("curve") or {}).get("points") or []))),
                  key=lambda r: (r["model"], n_key(r.get("n")), n_key(r.get("seed")), str(feature_space_of(r))))
    if not rows:
        return []
    lines = ["## Learning diagnostics of the energy-based rows", "",
             "At the first → the last point of each row's learning curve: the curve's classifier FID (its own sample "
             "count), the energy gap f(data) − f(samples) and the chains' mean gradient norm ‖∂E/∂x‖ (kim-bengio, "
             "which has no chains: at its generator's samples), each averaged "
             "over the iterations since the point before, each in its model's own units (the multi-grid models sample "
             "raw [0, 255] pixels, igebm [0, 1], the others [-1, 1]; the multi-grid gap and norm are the finest "
             "grid's). A gap that stays large while the FID stalls, or a gradient norm near zero, is a stalled or "
             "saturated model.", "",
             "| model | n | iterations | classifier FID | energy gap | gradient norm |", "|---|---|---|---|---|---|"]
    for r in rows:
        points = [p for p in r["curve"]["points"] if "diagnostics" in p]
        first, last = points[0], points[-1]

        def pair(get) -> str:
            return f"{_number(get(first))} → {_number(get(last))}"

        lines.append(f"| {row_label(r)} | {r.get('n') or 'all'} | {first['iteration']} → {last['iteration']} | "
                     f"{pair(lambda p: p['scores'].get('classifier_fid'))} | "
                     f"{pair(lambda p: p['diagnostics'].get('energy_gap'))} | "
                     f"{pair(_grad_norm)} |")
    return [*lines, ""]


def budget_section(latest: dict[tuple, dict], legend: Legend) -> list[str]:
    """The training budget of each model row: iterations, observed images, epochs and wall time."""
    rows = sorted((r for r in latest.values() if r.get("budget")),
                  key=lambda r: (r["model"], n_key(r.get("n")), n_key(r.get("seed")), str(feature_space_of(r))))
    if not rows:
        return []
    spaces = len({feature_space_of(r) for r in latest.values()}) > 1
    lines = ["## Training budget and sampling", "",
             "| model | n | seed | iterations | images seen | epochs | wall time (s) | device | evaluation samples |"
             + (" feature space |" if spaces else ""),
             "|---|---|---|---|---|---|---|---|---|" + ("---|" if spaces else "")]
    for r in rows:
        b = r["budget"]
        wall = "—" if b.get("wall_seconds") is None else f"{b['wall_seconds']:.0f}"
        lines.append(f"| {r['model']} | {r.get('n') or 'all'} | {r.get('seed')} | {b['iterations']} | {b['images_seen']} | "
                     f"{b['epochs']} | {wall} | {r.get('device')} | {legend.describe_sampling(r)} |"
                     + (f" {feature_space_of(r)} |" if spaces else ""))
    return [*lines, ""]


def protocol_section(latest: dict[tuple, dict]) -> list[str]:
    """How the numbers were computed: each score's protocol and the offline classifier's accuracy, once
    per distinct value (rows record them individually)."""
    protocols: dict[str, set[str]] = defaultdict(set)
    classifiers = {}
    for row in latest.values():
        for name, text in (row.get("protocols") or {}).items():
            protocols[name].add(text)
        if row.get("classifier"):
            classifiers[feature_space_of(row)] = row["classifier"]
    if not protocols:
        return []
    lines = ["## Protocol", ""]
    for space, c in sorted(classifiers.items()):
        source = {"shipped": "shipped in assets/classifiers", "local": "trained locally"}.get(c.get("source"), "weights not kept")
        lines.append(f"- offline classifier, feature space `{space}` ({source}): held-out top-1 {c['top1']:.1%}, "
                     f"top-5 {c['top5']:.1%} ({c['n_train']} training / {c['n_heldout']} held-out images)")
    levers = sorted({lever for row in latest.values() for lever in row.get("table_levers") or []})
    if levers:
        lines.append(f"- speed levers the table sets for every model (they change no number; `make perf`): "
                     f"{', '.join(f'`{lever}`' for lever in levers)}")
    for name in sorted(protocols):
        texts = sorted(protocols[name])
        shown = texts[0] if len(texts) == 1 else f"{texts[0]} (and {len(texts) - 1} other sample counts/settings; see rows)"
        lines.append(f"- `{name}`: {shown}")
    return [*lines, ""]
