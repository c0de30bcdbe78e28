"""What every table shares: the ``Table`` record a table file registers, the settings its dataclass starts from,
the checks of values a user can give, and the pieces of the tables of trained models (image picks, region scores,
trained models, the Markdown around the rows).

A table's settings are its dataclass's defaults (the papers' protocol) changed by the ``presets:`` block of
``configs/tables/<name>.yaml`` and ``--set key=value``. Trained models come from finished runs of the same config
or are trained once (``genbench.tasks.runs``). Rows go to ``leaderboards/<data>/tasks/<table>-<preset>.jsonl``; a
row already there (same method, corruption, seed, counts and model config) is not recomputed. Markdown and a PNG of
examples are rendered beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from genbench.data import build_datamodule
from genbench.data.corruption import parse_corruption
from genbench.data.subsets import seeded_subset
from genbench.errors import GenbenchError
from genbench.models.completion import CompletionSettings, complete_with_model
from genbench.paths import configs_dir
from genbench.registry import Registry
from genbench.results.published import published_numbers, published_table
from genbench.results.store import task_table_path
from genbench.runs.config import run_config
from genbench.tasks.inpaint import completer
from genbench.tasks.report import comparison_figure, models_section, pivot, write_markdown
from genbench.tasks.rows import TableRows, scored_row
from genbench.tasks.runs import TrainedModel, trained_model
from genbench.tasks.scores import region_error, region_psnr


def no_check(settings: Any) -> None:
    """A table without checks beyond the shared ones."""


@dataclass(frozen=True)
class Table:
    """One table, registered by its file in ``genbench/tasks/tables/``.

    Args:
        name: ``genbench table --table <name>``; its YAML is ``configs/tables/<name>.yaml``.
        summary: one line for ``genbench list`` and the CLI help.
        settings: the dataclass whose defaults are the papers' protocol.
        check: refuses bad values of its own settings (one line) before anything runs.
        evaluate: ``(settings, rows, runs, log) -> (rows, figure)`` for a table of task rows in
            ``leaderboards/<data>/tasks/<name>-<preset>.jsonl``; render: ``(settings, preset, rows, figure, path)``
            writes its Markdown and PNG and returns them.
        grid: ``(settings, preset, published, leaderboards, log) -> files`` for a table made of bench runs instead.
    """

    name: str
    summary: str
    settings: type
    check: Callable[[Any], None] = no_check
    evaluate: Callable | None = None
    render: Callable | None = None
    grid: Callable | None = None

    def produce(self, s, preset: str, boards: Path, runs: Path | None, log) -> list[Path]:
        """Train what is missing, evaluate, append rows, render; returns the files written."""
        if self.grid is not None:
            return self.grid(s, preset, published(self.name), boards, log)
        path = task_table_path(boards, s.data, f"{self.name}-{preset}")
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = TableRows(path)
        log(f"table {self.name} ({preset}) on {s.data} → {path}")
        produced, figure = self.evaluate(s, rows, runs, log)
        return self.render(s, preset, produced, figure, path)


#: every table, filled by the table files of this package (``genbench.tasks.tables`` imports them all)
TABLES: Registry[Table] = Registry("table")


def register_table(table: Table) -> Table:
    return TABLES.register(table.name)(table)


def table_file(name: str) -> Path:
    return configs_dir() / "tables" / f"{name}.yaml"


def published(name: str) -> dict | None:
    """The papers' numbers for table ``name`` (``tables.<name>`` of ``configs/published.yaml``)."""
    return published_numbers("tables", name)


def check_shared(s) -> None:
    """Bad values of the settings several tables share, refused before anything runs."""
    for corruption in getattr(s, "corruptions", []):
        parse_corruption(corruption)
    for baseline in getattr(s, "baselines", []):
        completer(baseline)
    if getattr(s, "region", "mask") not in ("mask", "image"):
        raise GenbenchError(f"region must be 'mask' or 'image', got {s.region!r}")
    if getattr(s, "images", None) is not None and s.images < 1:
        raise GenbenchError(f"images must be a positive count or null (all), got {s.images}")
    CompletionSettings(**getattr(s, "inference", {}))


@dataclass
class TaskTable:
    """Settings every table of trained models shares.

    Args:
        model_preset: the preset its models are trained with; n, seed: their training images and seed.
        images: images scored (None: all of the table's split).
        inference: ``CompletionSettings`` of the learned methods; batch_size: images per batch at evaluation.
        examples: images per row block of the PNG; overrides: config overrides for the models' runs.
    """

    model_preset: str = "paper"
    n: int | None = None
    seed: int = 0
    images: int | None = None
    inference: dict = field(default_factory=dict)
    batch_size: int = 100
    examples: int = 2
    overrides: list[str] = field(default_factory=list)


@dataclass
class CorruptionTable(TaskTable):
    """A table of corrupted images. mask_seed: seed of the corruptions (the mask set is fixed by it); region:
    ``mask`` (the papers' reading: the corrupted pixels) or ``image`` for the table (both are recorded in every row)."""

    mask_seed: int = 0
    region: str = "mask"


# -- evaluation ----------------------------------------------------------------------------------------------------

def in_batches(fn, batch_size: int, *tensors: torch.Tensor) -> torch.Tensor:
    return torch.cat([fn(*(t[i:i + batch_size] for t in tensors)) for i in range(0, tensors[0].shape[0], batch_size)])


def first_examples(result: torch.Tensor | None, method, s, *inputs: torch.Tensor) -> torch.Tensor:
    """The figure's examples: the first ``s.examples`` results of the evaluation itself, or (for a row reused from
    the JSONL) of the method run on the evaluation's first batch — never on the examples alone, since a BatchNorm
    that normalises with batch statistics would then see another batch than the scored one."""
    if result is None:
        result = method(*(x[:s.batch_size] for x in inputs))
    return result[:s.examples]


def region_scores(completed: torch.Tensor, target: torch.Tensor, holes: torch.Tensor) -> dict:
    """Error and PSNR over the corrupted pixels (``mask``) and over the whole image (``image``)."""
    return {"mask": {"error": region_error(completed, target, holes), "psnr": region_psnr(completed, target, holes)},
            "image": {"error": region_error(completed, target), "psnr": region_psnr(completed, target)}}


def model_for(cache: dict, name: str, data: str, s, overrides: list[str], runs: Path | None, log) -> TrainedModel:
    key = (name, tuple(overrides))
    if key not in cache:
        cache[key] = trained_model(run_config(name, data, s.model_preset, s.n, s.seed, overrides), runs, log)
    return cache[key]


def planned_datamodule(s, model: str):
    """The datamodule ``model``'s runs of the table will train on, built from the config alone (nothing decoded)."""
    return build_datamodule(s.data, **run_config(model, s.data, s.model_preset, s.n, s.seed, s.overrides).cfg["data"])


def preprocessing_record(dm) -> dict:
    """``{"preprocessing": …}`` for held-out images resized or normalised otherwise than the datamodule's
    defaults (crop, x/127.5 − 1): part of the key of a row that has no model run to carry it (``scored_row``)."""
    if (dm.resize, dm.pixel_norm) == ("crop", "fixed"):
        return {}
    return {"preprocessing": {"resize": dm.resize, "pixel_norm": dm.pixel_norm}}


def heldout_images(data: str, preset: str, overrides: list[str]) -> tuple[torch.Tensor, object]:
    """The held-out real images of ``data`` under the preprocessing of ``preset``'s table, and the datamodule."""
    dm = build_datamodule(data, **run_config(None, data, preset, None, 0, overrides).cfg["data"])
    return dm.images(dm.heldout_split), dm


def complete_heldout_images(s, table: str, rows: TableRows, runs: Path | None, log,
                            trained_baselines: dict[str, Callable] | None = None) -> tuple[list[dict], dict]:
    """The rows of a table of corrupted held-out images (``s.corruptions`` of ``s.images`` of them): each of
    ``s.models`` fills them its class's way (``complete_with_model``), each ``trained_baselines[name] = (settings,
    train)`` — a method trained for the table (e.g. the Context Encoder) by ``train(corruption, train_images,
    data_fingerprint) → (completer, record)``, its rows keyed by ``settings`` and the training images — and each of
    ``s.baselines`` (non-learned) too; error and PSNR over the region, and the examples figure."""
    images_all, dm = heldout_images(s.data, s.model_preset, s.overrides)
    check_fits(s.corruptions, int(images_all.shape[-1]))
    chosen = seeded_subset(images_all.shape[0], s.images, s.mask_seed)
    images = images_all[chosen]
    inference = CompletionSettings(**s.inference)
    trained_baselines = trained_baselines or {}
    trained: dict = {}
    figure: dict = {"columns": {}, "labels": []}
    out = []
    for name in s.corruptions:
        corruption = parse_corruption(name)
        corrupted, holes = corruption.apply(images, s.mask_seed)  # too large a square fails here, in one line
        add_corrupted_examples(figure, name, images, corrupted, "input", s.examples)
        for method in [*s.models, *trained_baselines, *s.baselines]:
            learned, taught = method in s.models, method in trained_baselines
            model = model_for(trained, method, s.data, s, s.overrides, runs, log) if learned else None
            made: dict = {}

            def baseline_trained(method=method, corruption=corruption):
                if not made:
                    dm.setup()
                    made["completer"], made["record"] = trained_baselines[method][1](
                        corruption, dm.images("train"), dm.fingerprint())
                return made["completer"]

            base = {"table": table, "method": method, "method_kind": "learned" if learned else
                    "trained baseline" if taught else "baseline",
                    **corruption.record(s.mask_seed), "n_images": len(images), "split": dm.heldout_split,
                    "image_size": int(images.shape[-1]), "data": s.data, **preprocessing_record(dm),
                    "model_run": model.record() if model else None,
                    "inference": inference.record() if learned else None}
            if taught:  # a trained baseline's rows are its settings' and its training images'
                base["trained_with"] = {"settings": trained_baselines[method][0], "data_fingerprint": dm.fingerprint()}

            def complete(x: torch.Tensor, m: torch.Tensor, model=model, method=method, taught=taught) -> torch.Tensor:
                if taught:
                    return in_batches(baseline_trained(), s.batch_size, x, m)
                if model is None:
                    return completer(method)(x, m)
                torch.manual_seed(s.mask_seed)
                return in_batches(lambda a, b: complete_with_model(model.module, a, b, inference), s.batch_size, x, m)

            def scores(result, method=method):
                trained_record = {"trained_baseline": made["record"]} if made else {}
                return {"scores": region_scores(result, images, holes), **trained_record}

            row, completed = scored_row(
                rows, base, ("method", "corruption", "mask_seed", "n_images", "split", "image_size", "data", "inference",
                             *(("trained_with",) if taught else ())),
                lambda: complete(corrupted, holes), scores,
                lambda r: f"  {name} {method}: error {r['scores'][s.region]['error']:.4f}, "
                          f"PSNR {r['scores'][s.region]['psnr']:.2f} dB", log)
            out.append(row)
            figure["columns"].setdefault(method, []).append(
                first_examples(completed, complete, s, corrupted, holes))
    return out, figure


def add_corrupted_examples(figure: dict, name: str, originals: torch.Tensor, inputs: torch.Tensor, column: str,
                           count: int) -> None:
    """The examples PNG's rows for corruption ``name``: the first ``count`` originals and the methods' ``inputs``
    (under ``column``), labelled ``<name> #k``."""
    figure["labels"] += [f"{name} #{i + 1}" for i in range(min(count, len(originals)))]
    figure["columns"].setdefault("original", []).append(originals[:count])
    figure["columns"].setdefault(column, []).append(inputs[:count])


def check_fits(corruptions: list[str], side: int) -> None:
    """Every occluding square fits the table's images (checked before any training)."""
    for name in corruptions:
        corruption = parse_corruption(name)
        if corruption.kind in ("occlusion", "central") and corruption.size > side:
            raise GenbenchError(f"{name}: an occluding square of {corruption.size}×{corruption.size} does not fit in "
                                f"the table's {side}×{side} images")


# -- rendering -----------------------------------------------------------------------------------------------------

def render_examples_table(name: str, heading: str, shown: str, body: Callable[[dict, Any], list[str]], s,
                          preset: str, rows: list[dict], figure: dict, path: Path) -> list[Path]:
    """``<table>-<preset>.md`` and ``<table>-<preset>.png`` beside the JSONL: the title, ``body(first row, image
    side)``, the published numbers, the examples PNG (``shown`` says what its columns are) and the models."""
    figure_path = path.with_suffix(".png")
    columns = [(label, torch.cat(parts)) for label, parts in figure["columns"].items()]
    size = int(columns[0][1].shape[-1]) if columns else "?"
    title = f"{heading}: {s.data}, {preset} preset ({size}x{size})"
    if columns:
        comparison_figure(figure_path, columns, figure["labels"], title)
    lines = [f"# {title}", "", f"Rendered by `genbench table --table {name} --data {s.data} --preset {preset}` from the "
             f"rows in `{path.name}`.", ""]
    lines += body(rows[0] if rows else {}, size)
    lines += published_table(published(name))
    lines += [f"Examples ({shown}): [{figure_path.name}]({figure_path.name})", "",
              f"![examples]({figure_path.name})", ""]
    lines += models_section(rows)
    write_markdown(path, lines, s, rows)
    return [path.with_suffix(".md"), figure_path]


def corruption_lines(s: CorruptionTable, rows: list[dict], where: str, size) -> list[str]:
    """Setup, then error and PSNR (corruption × method) over the table's region."""
    region = "the corrupted pixels" if s.region == "mask" else "the whole image"
    lines = [f"Setup: {where}, {size}×{size}; corruptions {', '.join(s.corruptions)} (mask seed {s.mask_seed}); "
             f"scores over {region}, pixel values in [0, 1]. Learned rows: models of the `{s.model_preset}` preset "
             f"(see Models); baselines are non-learned inpainting given the same mask.", ""]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines += [f"## Error: mean |x̂ − x| over {region} (lower is better)", ""]
    lines += pivot(rows, lambda r: r["corruption"], lambda r: r["method"], lambda r: r["scores"][s.region]["error"],
                   4, s.corruptions, methods)
    lines += [f"## PSNR (dB) over {region} (higher is better)", ""]
    lines += pivot(rows, lambda r: r["corruption"], lambda r: r["method"], lambda r: r["scores"][s.region]["psnr"],
                   2, s.corruptions, methods)
    return lines
