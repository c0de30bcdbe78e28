"""Results: the row store, and the tables, pictures and figures rendered from it.

This layer knows rows, not what produced them: the score columns and how a row's sampling reads are handed to it
(``Legend``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from genbench.files import write_text
from genbench.results.images import SHEET_SAMPLES, render_gallery, sample_sheet_path, save_grid, write_sample_sheet
from genbench.results.legend import Legend
from genbench.results.markdown import render_table
from genbench.results.notes import refresh_task_notes, with_notes
from genbench.results.plots import draw_series, plot_curves, plot_table
from genbench.results.rows import (MIGRATIONS_FILE, apply_migrations, by_feature_space, feature_space_of, is_reference,
                                   latest_rows, levers_on, n_key, ordered_labels, read_migrations, row_label)
from genbench.results.schema import Row, RowError
from genbench.results.store import append_line, append_row, leaderboard_folders, read_rows, table_path


def warn(text: str) -> None:
    print(f"genbench: warning: {text}", file=sys.stderr, flush=True)


def render_leaderboards(root: Path, data: str | None, legend: Legend, table: str | None = None) -> list[Path]:
    """Render every ``<table>.jsonl`` under ``root`` (or only ``root/<data>``, or only its ``table``): its Markdown,
    gallery, learning curves and one plot per score."""
    written = []
    for folder in leaderboard_folders(root, data):
        for jsonl in sorted(p for p in folder.glob(f"{table or '*'}.jsonl") if not p.name.endswith(".failures.jsonl")):
            rows, bad = read_rows(jsonl)
            rows = apply_migrations(rows, read_migrations(folder))
            for problem in bad:
                warn(f"{jsonl}: {problem}; skipped")
            if not rows:
                continue
            shown = by_feature_space(rows)[0][1]  # the gallery and plots show one feature space
            gallery, _ = render_gallery(jsonl, shown)
            title = f"{folder.name} — {jsonl.stem}"
            curves = plot_curves(shown, jsonl.with_suffix(""), title, legend)
            text = render_table(rows, title, legend, folder.name, gallery.name if gallery else None,
                                curves.name if curves else None)
            text = with_notes(text, jsonl)
            if bad:
                text += f"\n{len(bad)} line(s) of {jsonl.name} were skipped: {'; '.join(bad)}.\n"
            out = jsonl.with_suffix(".md")
            write_text(out, text)
            written.append(out)
            written += [p for p in (gallery, curves) if p]
            written.extend(plot_table(shown, jsonl.with_suffix(""), title, legend))
    return written


__all__ = ["MIGRATIONS_FILE", "SHEET_SAMPLES", "Legend", "Row", "RowError", "append_line", "append_row", "apply_migrations", "by_feature_space",
           "draw_series", "feature_space_of", "is_reference", "latest_rows", "levers_on", "n_key", "ordered_labels", "plot_curves",
           "plot_table", "read_migrations", "read_rows", "refresh_task_notes", "render_gallery", "render_leaderboards", "render_table",
           "row_label", "sample_sheet_path", "save_grid", "table_path", "write_sample_sheet"]
