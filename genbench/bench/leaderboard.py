"""Leaderboards: an append-only JSONL record per (dataset, table) from which Markdown tables are rebuilt.

``leaderboards/<data>/<table>.jsonl`` gets one JSON object per line, appended under an exclusive file
lock in a single checked write, so two runs finishing together never interleave or lose a row, and a write cut
short (a full disk, a file-size limit) is undone and reported instead of leaving half a line.
``leaderboards/<data>/<table>.md`` is rendered from it: models as rows, n per class as columns,
"mean ± std" cells, like the papers' inception-score table.

**One feature space per column.** A classifier score is comparable only with scores computed by the same
weights, so every row carries its feature space (``feature_space``: ``<name>@<weights checksum>``). Rows written
before feature spaces were recorded get ``legacy <dataset> classifier (top-1 …, top-5 …, train/held-out images)``
from their classifier record: an old cache key did not name weights (it changed with the dataset description and
stayed equal across retrainings), while the held-out accuracies of a retrained classifier differ. A legacy space
that ``genbench migrate`` measured to be a current one (its reference rows re-scored to the same numbers) is read
as that one (``feature-spaces.json`` beside the tables). The tables show the feature space holding the most
model rows; rows of any other space are rendered below it, in tables of their own, never in the same column.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from genbench.errors import GenbenchError
from genbench.files import write_text, write_via_temp


def warn(text: str) -> None:
    import sys

    print(f"genbench: warning: {text}", file=sys.stderr, flush=True)


def is_reference(row: dict) -> bool:
    return row.get("kind") == "reference"


def levers_on(row: dict) -> list[str]:
    """The ``speed`` levers a row's run had on beyond those its table's protocol sets for every row
    (``table_levers``); none: the table's own path."""
    protocol = set(row.get("table_levers") or [])
    return sorted(k for k, v in ((row.get("config") or {}).get("speed") or {}).items() if v and k not in protocol)


def feature_space_of(row: dict) -> str | None:
    """The feature space a row's classifier scores live in (None: a row without classifier scores)."""
    if row.get("feature_space"):
        return row["feature_space"]
    classifier = row.get("classifier") or {}
    if classifier.get("feature_space"):
        return classifier["feature_space"]
    if classifier.get("key"):  # a row from before feature spaces were recorded: its weights are known by their record
        dataset = classifier.get("dataset") or classifier["key"].rsplit("-", 1)[0]
        return (f"legacy {dataset} classifier (top-1 {classifier.get('top1', 0):.2%}, top-5 {classifier.get('top5', 0):.2%}, "
                f"{classifier.get('n_train')}/{classifier.get('n_heldout')} images)")
    return None


MIGRATIONS_FILE = "feature-spaces.json"


def read_migrations(folder: Path) -> dict[str, dict]:
    """legacy feature space → its migration record (``feature_space`` and the evidence), for one dataset folder."""
    path = folder / MIGRATIONS_FILE
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GenbenchError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); restore it from git") from None
    return {e["legacy"]: e for e in entries if isinstance(e, dict) and "legacy" in e and "feature_space" in e}


def apply_migrations(rows: list[dict], migrations: dict[str, dict]) -> list[dict]:
    """The rows with each verified legacy feature space replaced by the space it was measured to be (in memory)."""
    out = []
    for row in rows:
        legacy = None if "feature_space" in row else feature_space_of(row)
        if legacy in migrations:
            row = {**row, "feature_space": migrations[legacy]["feature_space"], "feature_space_migrated_from": legacy}
        out.append(row)
    return out


def row_label(row: dict) -> str:
    if is_reference(row):
        return f"*{row['model']}* (reference)"
    levers = levers_on(row)
    return f"{row['model']} [speed: {', '.join(levers)}]" if levers else row["model"]


def latest_rows(rows: list[dict]) -> dict[tuple, dict]:
    """The latest row per (model and its speed levers, n, seed) among ``rows`` (rows of one feature space): a re-run
    replaces its earlier row in the tables, and a run with levers on never replaces one without."""
    latest: dict[tuple, dict] = {}
    for row in rows:
        latest[(row_label(row), row.get("n"), row.get("seed"))] = row
    return latest


def by_feature_space(rows: list[dict]) -> list[tuple[str | None, list[dict]]]:
    """Rows grouped by feature space, the shown one first: the space of the most recent model row (a table rerun
    under a new protocol shows its new rows first, the earlier ones below). Rows without classifier scores join
    the shown space."""
    groups: dict[str | None, list[dict]] = defaultdict(list)
    for row in rows:
        groups[feature_space_of(row)].append(row)
    spaces = [space for space in groups if space is not None]
    if not spaces:
        return [(None, rows)]

    def rank(space):
        members = groups[space]
        return (max((str(r.get("timestamp", "")) for r in members if not is_reference(r)), default=""),
                max(str(r.get("timestamp", "")) for r in members))

    ordered = sorted(spaces, key=rank, reverse=True)
    groups[ordered[0]] = groups[ordered[0]] + groups.pop(None, [])
    return [(space, groups[space]) for space in ordered]


def ordered_labels(rows: Iterable[dict]) -> list[str]:
    """The rows' labels: reference rows first (real images, then noise), then the models alphabetically."""
    rows = list(rows)
    references = sorted({row_label(r) for r in rows if is_reference(r)}, key=lambda x: ("noise" in x, x))
    return references + sorted({row_label(r) for r in rows if not is_reference(r)})


def table_path(root: Path, data: str, table: str, suffix: str = ".jsonl") -> Path:
    return root / data / f"{table}{suffix}"


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
    n = max(ns, key=_n_key)
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


def append_row(path: Path, row: dict) -> None:
    """Append one row under an exclusive lock: the whole line is written (every byte checked) and fsynced. A file
    whose last line was cut short gets a newline first, so the new row never joins it; a write that fails part-way
    (full disk, file-size limit) is cut back to where it started and raises one line, so the table stays whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(row, sort_keys=True, default=str) + "\n").encode()
    with open(path.with_suffix(path.suffix + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data  # never glue a row to a partial line
                written = 0
                try:
                    while written < len(data):
                        count = os.write(fd, data[written:])
                        if count <= 0:
                            raise OSError("no bytes written")
                        written += count
                    os.fsync(fd)
                except OSError as exc:
                    os.ftruncate(fd, size)
                    raise GenbenchError(f"could not write the row to {path} ({exc.strerror or exc}); the table was left "
                                        f"as it was — free space or raise the file-size limit, then rerun") from None
            finally:
                os.close(fd)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_rows(path: Path) -> tuple[list[dict], list[str]]:
    """Rows of a JSONL table and a description of each line skipped (not JSON, or JSON but not an object); skipped
    lines are never rewritten."""
    rows: list[dict] = []
    bad: list[str] = []
    if not path.is_file():
        return rows, bad
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                bad.append(f"line {number} is not valid JSON")
                continue
            if not isinstance(value, dict):
                bad.append(f"line {number} is a JSON {type(value).__name__}, not an object")
                continue
            rows.append(value)
    return rows, bad


def _n_key(n) -> tuple[int, float]:
    return (1, math.inf) if n is None else (0, float(n))


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


PUBLISHED_FILE = Path(__file__).with_name("published.yaml")


def published_section(data: str, metric: str) -> list[str]:
    """The original papers' numbers for (data, metric), as a separate Markdown table (or nothing)."""
    import yaml

    entry = (yaml.safe_load(PUBLISHED_FILE.read_text()) or {}).get(data, {}).get(metric)
    if not entry:
        return []
    lines = [f"Published ({entry['source']}; not produced here):", "",
             "| model | " + " | ".join(f"n={n}" for n in entry["n"]) + " |", "|---|" + "---|" * len(entry["n"])]
    lines += [f"| {model} | " + " | ".join(cells) + " |" for model, cells in entry["rows"].items()]
    return [*lines, ""]


def render_table(rows: list[dict], title: str, data: str | None = None, gallery: str | None = None,
                 curves: str | None = None) -> str:
    """Markdown: one section per score (labels and directions from the metric registry), reference rows
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
        lines += ["Reference rows, scored by the same code: *real images* are held-out real images (the ceiling), "
                  "*noise* is Gaussian noise clipped to [-1, 1] (the floor).", ""]
    else:
        lines += ["No reference rows yet: `make reference DATA=<data> PRESET=<preset>` adds the real-images ceiling "
                  "and the noise floor.", ""]
    if gallery:
        lines += [f"Samples of every model at the largest n, beside real images: [{gallery}]({gallery})", "",
                  f"![samples]({gallery})", ""]
    if curves:
        lines += [f"Learning curves (score against iterations and against training seconds, scored every "
                  f"`bench.eval_every` iterations): [{curves}]({curves})", ""]
    lines += metric_tables(latest, "##", data)
    everything = {(shown_space, *key): row for key, row in latest.items()}
    for space, members in groups[1:]:
        other = latest_rows(members)
        lines += [f"## Rows in feature space `{space}`", "",
                  "Scored with other classifier weights than the tables above, so their classifier scores are not "
                  "comparable with them (pairwise SSIM is); their own reference rows are the ones listed here.", ""]
        lines += metric_tables(other, "###", None)
        everything.update({(space, *key): row for key, row in other.items()})
    lines += budget_section(everything)
    lines += protocol_section(everything)
    if any(r.get("preset") == "smoke" and not is_reference(r) for r in everything.values()):
        lines += ["Smoke rows (a few hundred CPU iterations) check the pipeline end to end; they are not comparable "
                  "with the papers' numbers, which need the `paper` preset.", ""]
    devices = sorted({str(r.get("device")) for r in everything.values()})
    presets = sorted({str(r.get("preset")) for r in everything.values()})
    lines += [f"Rows: {len(everything)} (latest per feature space, model, n, seed); presets: {', '.join(presets)}; "
              f"devices: {', '.join(devices)}.", ""]
    return "\n".join(lines)


def metric_tables(latest: dict[tuple, dict], level: str, data: str | None) -> list[str]:
    """One Markdown table per score of the rows in ``latest`` (models × n); the published numbers after each where
    ``data`` has some."""
    from genbench.metrics import score_specs

    lines: list[str] = []
    for metric, spec in score_specs().items():
        cells: dict[tuple, list[dict]] = defaultdict(list)
        for (_model, n, _seed), row in latest.items():
            if metric in row.get("metrics", {}):
                cells[(row_label(row), n)].append(row["metrics"][metric])
        if not cells:
            continue
        ns = sorted({n for _, n in cells}, key=_n_key)
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


def budget_section(latest: dict[tuple, dict]) -> list[str]:
    """The training budget of each model row: iterations, observed images, epochs and wall time."""
    rows = sorted((r for r in latest.values() if r.get("budget")),
                  key=lambda r: (r["model"], _n_key(r.get("n")), _n_key(r.get("seed")), str(feature_space_of(r))))
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
                     f"{b['epochs']} | {wall} | {r.get('device')} | {sampling_summary(r)} |"
                     + (f" {feature_space_of(r)} |" if spaces else ""))
    return [*lines, ""]


def sampling_summary(row: dict) -> str:
    """How a row's evaluation samples were drawn: the chains (see ``prepare_evaluation``) and BatchNorm mode."""
    chains = row.get("evaluation_chains") or {}
    kind = chains.get("chains")
    if kind == "buffer":
        text = f"{chains['distinct_states']} distinct buffer states + {chains['extra_steps']} steps"
    elif kind == "generator drafts":
        text = f"generator drafts + {chains['revision_steps']} Langevin steps"
    elif kind == "ancestral":
        text = "ancestral"
    elif kind:
        text = f"{kind} chains, {chains['steps']} Langevin steps"
    else:
        text = "not recorded"
    return f"{text}; BN {row['bn_sampling']}" if row.get("bn_sampling") else text


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


def render_leaderboards(root: Path, data: str | None = None) -> list[Path]:
    """Render every ``<table>.jsonl`` under ``root`` (or only ``root/<data>``) to Markdown."""
    if not root.is_dir():
        raise GenbenchError(f"no leaderboards at {root}; run `make bench` first")
    folders = [root / data] if data else sorted(p for p in root.iterdir() if p.is_dir())
    written = []
    for folder in folders:
        if not folder.is_dir():
            raise GenbenchError(f"no leaderboard for dataset {data!r} under {root}")
        for jsonl in sorted(p for p in folder.glob("*.jsonl") if not p.name.endswith(".failures.jsonl")):
            rows, bad = read_rows(jsonl)
            rows = apply_migrations(rows, read_migrations(folder))
            for problem in bad:
                warn(f"{jsonl}: {problem}; skipped")
            if not rows:
                continue
            shown = by_feature_space(rows)[0][1]  # the gallery and plots show one feature space
            gallery, _ = render_gallery(jsonl, shown)
            curves = plot_curves(shown, jsonl.with_suffix(""), f"{folder.name} — {jsonl.stem}")
            text = render_table(rows, f"{folder.name} — {jsonl.stem}", folder.name, gallery.name if gallery else None,
                                curves.name if curves else None)
            notes = jsonl.with_suffix(".notes.md")  # the table's notes, written by people (no numbers: rows carry them)
            if notes.is_file():
                text += "\n## Notes\n\n" + notes.read_text().strip() + "\n"
            if bad:
                text += f"\n{len(bad)} line(s) of {jsonl.name} were skipped: {'; '.join(bad)}.\n"
            out = jsonl.with_suffix(".md")
            write_text(out, text)
            written.append(out)
            written += [p for p in (gallery, curves) if p]
            written.extend(plot_table(shown, jsonl.with_suffix(""), f"{folder.name} — {jsonl.stem}"))
    return written


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


def plot_table(rows: list[dict], stem: Path, title: str) -> list[Path]:
    """One PNG per score: score vs n per class, a line with error bars per model (latest row per seed);
    reference rows as grey dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genbench.metrics import score_specs

    latest = latest_rows(rows)
    written = []
    for metric, spec in score_specs().items():
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


def plot_curves(rows: list[dict], stem: Path, title: str) -> Path | None:
    """``<table>-curves.png``: the learning curves of the rows at the table's largest n that have one — the score
    against iterations and against training seconds, a line per model (latest row per seed: one line each), the
    real-images and noise rows at that n as horizontal lines; an axis is logarithmic where a linear one would squash
    a line. None when no row has a curve."""
    latest = latest_rows(rows)
    with_curves = [r for r in latest.values() if (r.get("curve") or {}).get("points")]
    if not with_curves:
        return None
    n = max((r.get("n") for r in with_curves), key=_n_key)
    chosen = [r for r in with_curves if r.get("n") == n]
    scored = [name for r in chosen for p in r["curve"]["points"] for name in p["scores"]]
    score = next((s for s in CURVE_SCORES if s in scored), scored[0] if scored else None)
    if score is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genbench.metrics import score_specs

    spec = score_specs().get(score)
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
