"""Rendering of the task tables: Markdown pivots of the JSONL rows and
one PNG of example inputs, corruptions and results side by side, like the slides."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import torch

from genbench.files import write_text
from genbench.results.notes import with_notes


def format_value(value, digits: int) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return f"{value:.{digits}f}"


def pivot(rows: list[dict], row_key, col_key, value, digits: int, row_order: list, col_order: list,
          corner: str = "") -> list[str]:
    """A Markdown table: one line per ``row_key(row)`` (in ``row_order``), one column per ``col_key(row)``; the
    latest row wins a cell."""
    cells = {(row_key(r), col_key(r)): value(r) for r in rows}
    rows_present = [k for k in row_order if any((k, c) in cells for c in col_order)]
    cols_present = [c for c in col_order if any((k, c) in cells for k in row_order)]
    lines = [f"| {corner} | " + " | ".join(str(c) for c in cols_present) + " |", "|---|" + "---|" * len(cols_present)]
    for k in rows_present:
        lines.append(f"| {k} | " + " | ".join(format_value(cells.get((k, c)), digits) for c in cols_present) + " |")
    return [*lines, ""]


ROW_RECORDS = "its corruption, mask seed, region, image counts, model run and command"


def provenance_lines(rows: list[dict], records: str = ROW_RECORDS) -> list[str]:
    commits = sorted({str(r.get("git_commit")) for r in rows})
    devices = sorted({str(r.get("device")) for r in rows})
    torch_versions = sorted({str((r.get("versions") or {}).get("torch")) for r in rows})
    return [f"Rows: {len(rows)}; commits: {', '.join(commits)}; devices: {', '.join(devices)}; "
            f"torch {', '.join(torch_versions)}. Every row records {records}.", ""]


def write_markdown(path: Path, lines: list[str], settings, rows: list[dict], records: str = ROW_RECORDS) -> Path:
    """``path`` (.md): ``lines``, then the table's settings, its provenance and the people-written notes kept beside
    it in ``<stem>.notes.md`` (the rows carry the numbers)."""
    lines = [*lines, "## Settings", "", "```json", json.dumps(asdict(settings), indent=1), "```", "",
             *provenance_lines(rows, records)]
    out = path.with_suffix(".md")
    write_text(out, with_notes("\n".join(lines), out))
    return out


def models_section(rows: list[dict]) -> list[str]:
    """The trained models behind the learned rows: run folder, iterations, config hash, reused or trained."""
    seen = {}
    for r in rows:
        run = r.get("model_run")
        if run:
            seen[(run["model"], run["config_hash"])] = run
    if not seen:
        return []
    lines = ["## Models", "", "| model | preset | n | iterations | config hash | run | reused |", "|---|---|---|---|---|---|---|"]
    for run in seen.values():
        lines.append(f"| {run['model']} | {run['model_preset']} | {run['n'] or 'all'} | {run['iterations']} | "
                     f"{run['config_hash']} | `{Path(run['run_dir']).name}` | {'yes' if run['reused_run'] else 'no'} |")
    return [*lines, ""]


def comparison_figure(path: Path, columns: list[tuple[str, torch.Tensor]], row_labels: list[str], title: str,
                      scale: int = 2) -> Path:
    """A labelled grid: one column per (label, images (R, c, h, w) in [-1, 1]), one row per example."""
    from PIL import Image, ImageDraw

    rows = len(row_labels)
    height, width = columns[0][1].shape[-2:]
    cell_w, cell_h = width * scale + 6, height * scale + 6
    label_w, head_h, title_h = 70, 28, 22
    canvas = Image.new("RGB", (label_w + cell_w * len(columns), title_h + head_h + cell_h * rows), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 4), title, fill="black")
    for j, (label, images) in enumerate(columns):
        x = label_w + j * cell_w
        for k, part in enumerate(_wrap(label, max(6, cell_w // 6))[:2]):
            draw.text((x + 2, title_h + k * 12), part, fill="black")
        pixels = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        for i in range(rows):
            array = pixels[i].permute(1, 2, 0).numpy()
            tile = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).convert("RGB")
            canvas.paste(tile.resize((width * scale, height * scale), Image.NEAREST), (x + 3, title_h + head_h + i * cell_h + 3))
    for i, label in enumerate(row_labels):
        draw.text((4, title_h + head_h + i * cell_h + cell_h // 2 - 6), label, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def _wrap(text: str, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line] if line else lines
