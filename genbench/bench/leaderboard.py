"""The leaderboards, rendered by the results layer with what it is handed here: the metric registry's score columns
(label and better direction, in registration order) and the models' phrase for how a row's samples were drawn."""

from __future__ import annotations

from pathlib import Path

from genbench import results
from genbench.metrics import score_specs
from genbench.results import Legend
from genbench.samplers import describe_evaluation


def legend() -> Legend:
    return Legend(score_specs(), lambda row: describe_evaluation(row.get("evaluation_chains"), row.get("bn_sampling")))


def render_leaderboards(root: Path, data: str | None = None, table: str | None = None) -> list[Path]:
    """Render every table under ``root`` (or only ``root/<data>``, or only its ``table``): Markdown, gallery,
    learning curves, score plots."""
    return results.render_leaderboards(root, data, legend(), table)


def render_table(rows: list[dict], title: str, data: str | None = None, gallery: str | None = None,
                 curves: str | None = None) -> str:
    """One table's Markdown (``results.render_table``) with the registry's score columns."""
    return results.render_table(rows, title, legend(), data, gallery, curves)
