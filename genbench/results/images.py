"""The pictures of a table: sample grids, each row's sample sheet and the gallery of every model beside real images."""

from __future__ import annotations

from pathlib import Path

from genbench.files import write_via_temp
from genbench.results.rows import is_reference, latest_rows, levers_on, n_key, ordered_labels, row_label

SHEET_SAMPLES = 36  # samples per sheet: a 6×6 grid


def save_grid(samples, path: Path, count: int = 64, padding: int = 2) -> None:
    """The first ``count`` samples (in [-1, 1]) as one square-ish PNG grid."""
    import torchvision.utils as vutils

    count = min(count, samples.shape[0])
    vutils.save_image((samples[:count].float().clamp(-1, 1) + 1) / 2, path, nrow=int(count ** 0.5) or 1, padding=padding)


def sample_sheet_path(table: Path, row: dict) -> Path:
    """Where a row's sample sheet lives: ``<data>/samples/<table>-<model>[+<levers>]-n<n>-s<seed>.png`` beside the
    table; the name carries what the row's label carries, so a run with speed levers never overwrites the sheet of
    the run without."""
    slug = "+".join([row["model"].replace(" ", "-"), *levers_on(row)])
    return table.parent / "samples" / f"{table.stem}-{slug}-n{row.get('n') or 'all'}-s{row.get('seed')}.png"


def write_sample_sheet(table: Path, row: dict, samples) -> str:
    """Save the first ``SHEET_SAMPLES`` samples of a row as a 6×6 grid; returns the path relative to the table."""
    path = sample_sheet_path(table, row)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_via_temp(path, lambda tmp: save_grid(samples, tmp, SHEET_SAMPLES, padding=1))
    return str(path.relative_to(table.parent))


def render_gallery(table: Path, rows: list[dict]) -> tuple[Path | None, list[str]]:
    """One PNG beside ``table``: a labelled block of samples per model (after the real-images reference) at the
    table's largest n, from the rows' sample sheets. Returns (path or None, the labels drawn in order)."""
    from PIL import Image, ImageDraw

    latest = latest_rows(rows)
    ns = [n for (_m, n, _s), r in latest.items() if not is_reference(r)]
    if not ns:
        return None, []
    n = max(ns, key=n_key)
    chosen: dict[str, dict] = {}
    for (_model, row_n, seed), row in sorted(latest.items(), key=lambda kv: str(kv[0][2])):
        if row_n == n and row.get("samples_png") and (table.parent / row["samples_png"]).is_file():
            chosen.setdefault(row_label(row), row)
    labels = [label for label in ordered_labels(latest.values()) if label in chosen and "noise" not in label]
    if not labels:
        return None, []
    sheets = [Image.open(table.parent / chosen[label]["samples_png"]).convert("RGB") for label in labels]
    width, height = max(s.width for s in sheets), max(s.height for s in sheets)
    scale = max(1, 160 // width)  # small images are enlarged (nearest) so a 32×32 grid stays readable
    cell_w, cell_h, label_h, columns = width * scale + 8, height * scale + 8, 16, min(4, len(sheets))
    rows_n = -(-len(sheets) // columns)
    title_h = 18
    canvas = Image.new("RGB", (columns * cell_w, title_h + rows_n * (cell_h + label_h)), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 3), f"{table.stem}: samples at n = {n or 'all'} per category (seed {chosen[labels[0]].get('seed')})",
              fill="black")
    for index, (label, sheet) in enumerate(zip(labels, sheets)):
        x = (index % columns) * cell_w + 4
        y = title_h + (index // columns) * (cell_h + label_h)
        draw.text((x, y + 2), label.replace("*", ""), fill="black")
        canvas.paste(sheet.resize((sheet.width * scale, sheet.height * scale), Image.NEAREST), (x, y + label_h))
    out = table.with_name(f"{table.stem}-gallery.png")
    write_via_temp(out, lambda tmp: canvas.save(tmp, format="PNG"))
    return out, labels
