"""Synthesis quality vs n (the slides' three-panel figure): every model × n × category, each model learning one
category, through the bench harness and the sweep machinery. Panels: the softmax probability the offline
classifier — trained on *all* categories — gives the true category, its top-5 error, and the average pairwise
SSIM among samples, each vs n. The rows of category ``c`` go to their own leaderboard table ``<table>-<c>``; the
figure and its Markdown (``leaderboards/<data>/tasks/synthesis-quality-<preset>.{md,png}``) average them over
categories.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from genbench.bench.leaderboard import render_leaderboards
from genbench.data import build_datamodule
from genbench.errors import GenbenchError
from genbench.metrics import score_specs
from genbench.results import (apply_migrations, by_feature_space, draw_series, is_reference, latest_rows, ordered_labels,
                              read_migrations, read_rows, row_label)
from genbench.results.published import published_table
from genbench.results.store import task_table_path
from genbench.runs.settings import table_name
from genbench.tasks.report import pivot, write_markdown
from genbench.tasks.tables.base import Table, register_table
from genbench.tasks.tables.grid import GridTable, Variant, base_config, report_failures, run_grid, slug

#: the scores of the synthesis-quality figure, one panel each (names of registered scores)
SYNTHESIS_SCORES = ("class_probability", "top5_error", "pairwise_ssim")


@dataclass
class SynthesisQualityTable(GridTable):
    """Synthesis quality vs n (the slides' three-panel figure): one model per category and n.

    Args:
        categories: the categories, one model each (None: every category of the dataset); the figure averages
            over them (the spread across categories is its error bar).
    """

    categories: list[str] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.categories is not None and (not self.categories or not all(isinstance(c, str) and c for c in self.categories)):
            raise GenbenchError(f"categories must be a non-empty list of category names or null (all), got {self.categories!r}")


def category_variants(s: SynthesisQualityTable) -> list[Variant]:
    """One variant per category: ``data.categories=[c]`` and the leaderboard table ``<table>-<c>``."""
    cfg = base_config(s)
    categories = s.categories
    if categories is None:
        planned = build_datamodule(s.data, **cfg["data"])
        planned.plan()
        categories = planned.class_names
    table = table_name(cfg, s.model_preset)
    slugs: dict[str, str] = {}
    for c in categories:
        if slug(c) in slugs:
            raise GenbenchError(f"categories {slugs[slug(c)]!r} and {c!r} would share the table name suffix {slug(c)!r}")
        slugs[slug(c)] = c
    return [Variant(slug(c), (f"data.categories={json.dumps([c])}", f"bench.table={table}-{slug(c)}")) for c in categories]


def run_synthesis_quality(s: SynthesisQualityTable, preset: str, published: dict | None, boards: Path, log) -> list[Path]:
    """The one-category grid, its references, the per-category leaderboards, then the figure and its Markdown."""
    variants = category_variants(s)
    out = task_table_path(boards, s.data, f"synthesis-quality-{preset}", "")
    tables, failed = run_grid(s, variants, "synthesis-quality", boards, log)
    written = render_leaderboards(boards, s.data)
    if any(table.is_file() for table in tables):
        written += render_synthesis_quality(s, preset, tables, published, out)
        log(f"table synthesis-quality ({preset}) on {s.data} → {out.with_suffix('.md')}")
    report_failures("synthesis-quality", failed, tables)
    return written


# -- rendering ------------------------------------------------------------------------------------------------------

def category_rows(tables: list[Path], models: list[str], ns: list[int]) -> list[dict]:
    """The latest row per (model, n, seed) of each category's table, in the feature space the table shows: the
    references and the table's ``models`` at its ``ns`` (rows of other models or n in those tables are left out)."""
    rows = []
    for table in tables:
        found = apply_migrations(read_rows(table)[0], read_migrations(table.parent))
        shown = by_feature_space(found)[0][1] if found else []  # one feature space per figure, as in the tables
        rows += [{**row, "category_table": table.stem} for row in latest_rows(shown).values()
                 if row.get("n") in ns and (is_reference(row) or row["model"] in models)]
    return rows


def score_series(rows: list[dict], score: str) -> dict[str, dict[int, list[dict]]]:
    """label → n → the rows' scores (one per category and seed)."""
    series: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        value = row.get("metrics", {}).get(score)
        if value is not None and row.get("n") is not None:
            series[row_label(row)][row["n"]].append(value)
    return series


def synthesis_figure(rows: list[dict], path: Path, title: str) -> Path:
    """Three panels (true-class probability, top-5 error, pairwise SSIM) vs n, a line per model, the reference
    rows dashed; each point the mean over categories and seeds, the error bar their spread."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    specs = score_specs()
    labels = ordered_labels(rows)
    fig, axes = plt.subplots(1, len(SYNTHESIS_SCORES), figsize=(5 * len(SYNTHESIS_SCORES), 4), dpi=110)
    for ax, score in zip(axes, SYNTHESIS_SCORES):
        series = score_series(rows, score)
        draw_series(ax, series, [label for label in labels if label in series])
        ax.set_xlabel("training images (n, one category)")
        ax.set_title(f"{specs[score].label} ({specs[score].better} is better)", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def render_synthesis_quality(s: SynthesisQualityTable, preset: str, tables: list[Path], published: dict | None,
                             out: Path) -> list[Path]:
    """``synthesis-quality-<preset>.md`` and ``.png`` from the rows of the per-category tables."""
    rows = category_rows(tables, s.models, s.ns)
    if not rows:
        raise GenbenchError(f"no rows in {', '.join(t.name for t in tables)} to render")
    size = (rows[0].get("config") or {}).get("data", {}).get("image_size", "?")
    categories = [t.stem for t in tables]
    title = f"Synthesis quality vs n, one-category models: {s.data}, {preset} preset ({size}x{size})"
    figure = synthesis_figure(rows, out.with_suffix(".png"), title)
    classifier = next((r["classifier"] for r in rows if r.get("classifier")), None)
    labels = ordered_labels(rows)
    ns = sorted({r["n"] for r in rows if r.get("n") is not None})
    lines = [f"# {title}", "",
             f"Rendered by `genbench table --table synthesis-quality --data {s.data} --preset {preset}` from the rows of "
             f"the per-category leaderboards {', '.join(f'[{c}](../{c}.md)' for c in categories)}.", "",
             f"Setup: one model per category and n (the `{s.model_preset}` preset, {len(categories)} categor{'y' if len(categories) == 1 else 'ies'} × "
             f"{len(s.seeds)} seed{'' if len(s.seeds) == 1 else 's'}); each cell is the mean over categories and seeds (the figure's error bars: their "
             "spread). True-class probability and top-5 error come from the offline classifier trained on all "
             "categories" + (f" (held-out top-1 {classifier['top1']:.1%}, top-5 {classifier['top5']:.1%}, "
                             f"{classifier['num_classes']} classes)" if classifier else "") +
             "; the *real images* row (held-out images of the category) is the ceiling, *noise* the floor.", ""]
    specs = score_specs()
    for score in SYNTHESIS_SCORES:
        series = score_series(rows, score)
        cells = [{"label": label, "n": n, "value": sum(v["mean"] for v in values) / len(values)}
                 for label, by_n in series.items() for n, values in by_n.items()]
        lines += [f"## {specs[score].label} ({specs[score].better} is better)", ""]
        lines += pivot(cells, lambda c: c["label"], lambda c: f"n={c['n']}", lambda c: c["value"], 3, labels,
                       [f"n={n}" for n in ns])
    lines += published_table(published)
    lines += [f"Figure: [{figure.name}]({figure.name})", "", f"![synthesis quality]({figure.name})", ""]
    markdown = write_markdown(out, lines, s, rows,
                              "its config (category, n, seed), run, budget, metric protocols, classifier and command")
    return [markdown, figure]


TABLE = register_table(Table("synthesis-quality", "one-category models × n: true-class probability, top-5 error "
                                                  "and pairwise SSIM vs n", SynthesisQualityTable,
                             grid=run_synthesis_quality))
