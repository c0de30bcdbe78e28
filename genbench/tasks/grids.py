"""The tables that are grids of ``genbench bench`` runs (through the sweep machinery: finished rows skipped,
unfinished runs resumed), with the reference rows (real images, noise) of every n:

- ``is-vs-n``: every model × n on all categories: the scene table of the papers (the leaderboard itself).
- ``synthesis-quality``: every model × n × category, each model learning one category (the slides' three-panel
  figure): the softmax probability the offline classifier — trained on *all* categories — gives the true
  category, its top-5 error, and the average pairwise SSIM among samples, each vs n. The rows of category ``c``
  go to their own leaderboard table ``<table>-<c>``; the figure and its Markdown average them over categories.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from genbench.errors import GenbenchError
from genbench.tasks.report import pivot, published_block, write_markdown

#: the scores of the synthesis-quality figure, one panel each (names of registered scores)
SYNTHESIS_SCORES = ("class_probability", "top5_error", "pairwise_ssim")


@dataclass
class IsVsNTable:
    """Score vs number of training images per category (the scene table): every model × n, through the bench
    harness and the sweep machinery (``n`` values beyond what the dataset holds are dropped, and said so).

    Args:
        models, ns, seeds: the grid; model_preset: the bench preset (its table is the leaderboard table).
        devices: jobs in parallel, one per device.
    """

    data: str = "imagenet-scenes"
    model_preset: str = "paper"
    models: list[str] = field(default_factory=lambda: ["coopnets", "dcgan", "ebgan", "wgan", "vae", "infogan",
                                                       "kim-bengio", "abp", "pcd"])
    ns: list[int] = field(default_factory=lambda: [50, 100, 300, 500, 700, 900, 1100])
    seeds: list[int] = field(default_factory=lambda: [0])
    devices: int = 1
    overrides: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        from genbench.models import MODELS

        for model in self.models:
            MODELS.get(model)  # an unknown name lists the known ones
        if not self.ns or any(not isinstance(n, int) or n < 1 for n in self.ns):
            raise GenbenchError(f"ns must be a non-empty list of positive integers, got {self.ns!r}")
        if not self.seeds or any(not isinstance(seed, int) for seed in self.seeds):
            raise GenbenchError(f"seeds must be a non-empty list of integers, got {self.seeds!r}")
        if not isinstance(self.devices, int) or self.devices < 1:
            raise GenbenchError(f"devices must be a positive integer, got {self.devices!r}")


@dataclass
class SynthesisQualityTable(IsVsNTable):
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


@dataclass(frozen=True)
class Variant:
    """One table of a grid: its own overrides (e.g. a category) and the tag naming its runs."""

    tag: str = ""
    overrides: tuple[str, ...] = ()


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def base_config(s: IsVsNTable, variant: Variant = Variant()) -> dict:
    from genbench.bench.harness import effective_config

    return effective_config(None, s.data, s.model_preset, None, 0, [*s.overrides, *variant.overrides])


def variant_table(s: IsVsNTable, variant: Variant, boards: Path) -> Path:
    from genbench.bench.leaderboard import table_path
    from genbench.bench.settings import bench_settings

    return table_path(boards, s.data, bench_settings(base_config(s, variant)).table or s.model_preset)


def training_capacity(s: IsVsNTable, variant: Variant) -> int:
    """The fewest training images a category of ``variant``'s data holds (from the file list, nothing decoded)."""
    from genbench.data import build_datamodule

    planned = build_datamodule(s.data, **base_config(s, variant)["data"])
    labels = [label for _, label in planned.plan()["train"]]
    return int(torch.bincount(torch.tensor(labels)).min()) if labels else 0


def run_grid(s: IsVsNTable, variants: list[Variant], name: str, boards: Path, log) -> tuple[list[Path], list]:
    """Every model × n × seed × variant through ``genbench bench`` jobs (n by n), then the reference rows of every
    (variant, n) that lacks them. Returns each variant's leaderboard table and the failed jobs (recorded beside
    their tables; the others went on)."""
    from genbench.bench.leaderboard import read_rows
    from genbench.bench.reference import run_reference
    from genbench.bench.sweep import Job, run_jobs

    capacity = min(training_capacity(s, v) for v in variants)
    ns = [n for n in s.ns if n <= capacity]
    if len(ns) < len(s.ns):
        log(f"{name}: {s.data} holds {capacity} training images per category; dropping n = "
            f"{', '.join(str(n) for n in s.ns if n > capacity)}")
    if not ns:
        raise GenbenchError(f"no n of {s.ns} fits {s.data} ({capacity} training images per category)")
    jobs = [Job(model, s.data, n, seed, s.model_preset, v.overrides, v.tag)
            for n in ns for v in variants for seed in s.seeds for model in s.models]
    outcome = run_jobs(jobs, name, f"genbench table --table {name}", s.overrides, s.devices, boards, log)
    tables = []
    for v in variants:
        table = variant_table(s, v, boards)
        tables.append(table)
        existing, _ = read_rows(table)
        for seed in s.seeds:
            missing = [n for n in ns if not any(r.get("kind") == "reference" and r.get("n") == n and r.get("seed") == seed
                                                for r in existing)]
            if missing:
                run_reference(s.data, s.model_preset, missing, seed, [*s.overrides, *v.overrides], boards, log)
    return tables, outcome["failed"]


def report_failures(name: str, failed: list, tables: list[Path]) -> None:
    """After the tables are rendered: one line if jobs failed."""
    if failed:
        raise GenbenchError(f"{len(failed)} {name} job(s) failed; see the .failures.jsonl beside "
                            f"{', '.join(sorted({t.name for t in tables}))}")


def run_is_vs_n(s: IsVsNTable, boards: Path, log) -> list[Path]:
    """The grid on all categories, its references, then the leaderboard."""
    from genbench.bench.leaderboard import render_leaderboards

    tables, failed = run_grid(s, [Variant()], "is-vs-n", boards, log)
    written = render_leaderboards(boards, s.data)
    report_failures("is-vs-n", failed, tables)
    return written


def category_variants(s: SynthesisQualityTable) -> list[Variant]:
    """One variant per category: ``data.categories=[c]`` and the leaderboard table ``<table>-<c>``."""
    from genbench.bench.settings import bench_settings
    from genbench.data import build_datamodule

    cfg = base_config(s)
    categories = s.categories
    if categories is None:
        planned = build_datamodule(s.data, **cfg["data"])
        planned.plan()
        categories = planned.class_names
    table = bench_settings(cfg).table or s.model_preset
    slugs: dict[str, str] = {}
    for c in categories:
        if slug(c) in slugs:
            raise GenbenchError(f"categories {slugs[slug(c)]!r} and {c!r} would share the table name suffix {slug(c)!r}")
        slugs[slug(c)] = c
    return [Variant(slug(c), (f"data.categories={json.dumps([c])}", f"bench.table={table}-{slug(c)}")) for c in categories]


def run_synthesis_quality(s: SynthesisQualityTable, preset: str, published: dict | None, boards: Path, log) -> list[Path]:
    """The one-category grid, its references, the per-category leaderboards, then the figure and its Markdown."""
    from genbench.bench.leaderboard import render_leaderboards

    variants = category_variants(s)
    out = boards / s.data / "tasks" / f"synthesis-quality-{preset}"
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
    from genbench.bench.leaderboard import (apply_migrations, by_feature_space, is_reference, latest_rows, read_migrations,
                                            read_rows)

    rows = []
    for table in tables:
        found = apply_migrations(read_rows(table)[0], read_migrations(table.parent))
        shown = by_feature_space(found)[0][1] if found else []  # one feature space per figure, as in the tables
        rows += [{**row, "category_table": table.stem} for row in latest_rows(shown).values()
                 if row.get("n") in ns and (is_reference(row) or row["model"] in models)]
    return rows


def score_series(rows: list[dict], score: str) -> dict[str, dict[int, list[dict]]]:
    """label → n → the rows' scores (one per category and seed)."""
    from genbench.bench.leaderboard import row_label

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

    from genbench.bench.leaderboard import draw_series, is_reference, row_label
    from genbench.metrics import score_specs

    specs = score_specs()
    references = sorted({row_label(r) for r in rows if is_reference(r)}, key=lambda x: ("noise" in x, x))
    models = sorted({row_label(r) for r in rows if not is_reference(r)})
    fig, axes = plt.subplots(1, len(SYNTHESIS_SCORES), figsize=(5 * len(SYNTHESIS_SCORES), 4), dpi=110)
    for ax, score in zip(axes, SYNTHESIS_SCORES):
        series = score_series(rows, score)
        draw_series(ax, series, [label for label in [*references, *models] if label in series])
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
    from genbench.bench.leaderboard import is_reference, row_label
    from genbench.metrics import score_specs

    rows = category_rows(tables, s.models, s.ns)
    if not rows:
        raise GenbenchError(f"no rows in {', '.join(t.name for t in tables)} to render")
    size = (rows[0].get("config") or {}).get("data", {}).get("image_size", "?")
    categories = [t.stem for t in tables]
    title = f"Synthesis quality vs n, one-category models: {s.data}, {preset} preset ({size}x{size})"
    figure = synthesis_figure(rows, out.with_suffix(".png"), title)
    classifier = next((r["classifier"] for r in rows if r.get("classifier")), None)
    references = sorted({row_label(r) for r in rows if is_reference(r)}, key=lambda x: ("noise" in x, x))
    labels = [*references, *sorted({row_label(r) for r in rows if not is_reference(r)})]
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
    lines += published_block(published)
    lines += [f"Figure: [{figure.name}]({figure.name})", "", f"![synthesis quality]({figure.name})", ""]
    markdown = write_markdown(out, lines, s, rows,
                              "its config (category, n, seed), run, budget, metric protocols, classifier and command")
    return [markdown, figure]
