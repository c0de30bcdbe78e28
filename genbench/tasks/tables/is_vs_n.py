"""Score vs number of training images per category, the scene table of the papers: every model × n on all
categories through the bench harness and the sweep machinery, the reference rows of every n, then the leaderboard
itself (``leaderboards/<data>/<table>.md``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genbench.bench.leaderboard import render_leaderboards
from genbench.tasks.tables.base import Table, register_table
from genbench.tasks.tables.grid import GridTable, Variant, report_failures, run_grid


@dataclass
class IsVsNTable(GridTable):
    """Score vs number of training images per category (the scene table): every model × n, through the bench
    harness and the sweep machinery (``n`` values beyond what the dataset holds are dropped, and said so).

    Args:
        models, ns, seeds: the grid; model_preset: the bench preset (its table is the leaderboard table).
        devices: jobs in parallel, one per device.
    """


def run_is_vs_n(s: IsVsNTable, preset: str, published: dict | None, boards: Path, log) -> list[Path]:
    """The grid on all categories, its references, then the leaderboard."""
    tables, failed = run_grid(s, [Variant()], "is-vs-n", boards, log)
    written = render_leaderboards(boards, s.data)
    report_failures("is-vs-n", failed, tables)
    return written


TABLE = register_table(Table("is-vs-n", "every model × n on all categories: the scene table (the leaderboard)",
                             IsVsNTable, grid=run_is_vs_n))
