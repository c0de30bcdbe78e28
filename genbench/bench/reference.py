"""Reference rows: the scale every table is read against, produced by the same scoring code as the models.

- ``real images`` — held-out real images of the benchmark (never trained on), as many as the table's
  model rows score (all of them where the held-out split holds fewer; the count is recorded): the ceiling.
- ``image averages`` — the 1×1 averages (per-channel means) of training images of the row's n, up-sampled to the
  image size: where the multi-grid EBM's chains start, so a reader sees what its chains add.
- ``noise`` — Gaussian noise N(0, 1) clipped to [-1, 1], as many as the model rows score: the floor.

``genbench reference --data <name> --preset <preset> [--n …] [--kind …]`` appends one row of each (or of the kinds
named) per n to that preset's table; the leaderboard renders them first, marked as references.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from genbench.bench.harness import metric_setup, score_row
from genbench.bench.leaderboard import render_leaderboards
from genbench.config import config_hash, table_levers
from genbench.data import build_datamodule
from genbench.data.subsets import seeded_subset
from genbench.errors import GenbenchError
from genbench.metrics.classifier import get_classifier, write_shipped
from genbench.paths import leaderboard_dir
from genbench.results import append_row, read_rows, table_path, write_sample_sheet
from genbench.runs.config import run_config
from genbench.runs.provenance import provenance
from genbench.runs.settings import check_name, table_name
from genbench.samplers.grids import downsample, draw_images, upsample

REFERENCES = {
    "real images": "held-out real images of the benchmark, a seeded subset of the model rows' sample count",
    "image averages": "the 1x1 averages (per-channel means) of training images of this n, up-sampled to the image "
                      "size, as many as the model rows score (a seeded draw, with replacement only when that is more "
                      "than the training images): where the multi-grid chains start",
    "noise": "Gaussian noise N(0, 1) clipped to [-1, 1], as many images as the model rows score",
}


def reference_images(kind: str, datamodule, count: int, seed: int, training=None) -> torch.Tensor:
    """``count`` images of reference ``kind`` (real: at most the held-out split's size). ``training``: the datamodule
    of the row's own n draw, whose training images the averages are taken from (default ``datamodule``)."""
    if kind == "real images":  # in a seeded order: the held-out split comes class by class, and pairwise SSIM and
        # the sample sheet read the first images, which would otherwise all be of one class
        held = datamodule.images(datamodule.heldout_split)
        index = seeded_subset(held.shape[0], count, seed)
        return held[index[torch.randperm(index.shape[0], generator=torch.Generator().manual_seed(seed))]]
    if kind == "image averages":
        train = (training or datamodule).train_images()
        index, _ = draw_images(train.shape[0], count, seed)
        return upsample(downsample(train[index], 1), train.shape[-1])
    shape = (count, datamodule.channels, datamodule.image_size, datamodule.image_size)
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).clamp(-1, 1)


def table_ns(table: Path) -> list[int | None]:
    """The n of the model rows already in ``table``."""
    rows, _ = read_rows(table)
    return sorted({r.n for r in rows if not r.is_reference}, key=lambda n: (n is None, n or 0))


def run_reference(data: str, preset: str = "smoke", ns: list[int | None] | None = None, seed: int = 0,
                  overrides: list[str] | None = None, leaderboards: Path | None = None, log=print,
                  kinds: list[str] | None = None) -> list[dict]:
    """Score the references (every kind of ``REFERENCES``, or ``kinds``) for every n of ``ns`` (default: the n of the
    table's model rows, else the preset's own) and append their rows to the preset's table."""
    unknown = sorted(set(kinds or []) - set(REFERENCES))
    if unknown:
        raise GenbenchError(f"unknown reference kind(s) {unknown}; known: {', '.join(REFERENCES)}")
    boards = leaderboards or leaderboard_dir()
    base = run_config(None, data, preset, None, seed, overrides).cfg
    table = table_path(boards, data, table_name(base, preset))
    ns = list(ns) if ns else (table_ns(table) or [base["run"]["n"]])
    rows = []
    for n in ns:
        cfg = base if n == base["run"]["n"] else run_config(None, data, preset, n, seed, overrides).cfg
        names, ctx = metric_setup(cfg)
        count = ctx.n_samples  # the model rows' sample count, planned by metric_setup
        benchmark = ctx.benchmark_data()
        training = build_datamodule(data, **cfg["data"])  # the n draw of this row: the averages' training images
        for kind, description in REFERENCES.items():
            if kinds and kind not in kinds:
                continue
            images = reference_images(kind, benchmark, count, seed, training)
            row = {"model": kind, "kind": "reference", "reference": description, "data": data, "n": n, "seed": seed,
                   "preset": preset, **score_row(names, images, ctx), "requested_samples": count,
                   "heldout_split": benchmark.heldout_split if kind == "real images" else None,
                   "config_hash": config_hash(cfg), "config": cfg, "table_levers": table_levers(preset),
                   "data_fingerprint": benchmark.fingerprint(), **provenance()}
            row["samples_png"] = write_sample_sheet(table, row, images)
            append_row(table, row)
            rows.append(row)
            log(f"{kind} (n={n}): " + ", ".join(f"{k} {v['mean']:.4f}" for k, v in row["metrics"].items()))
    render_leaderboards(boards, data, table.stem)
    return rows


def ship_classifier(data: str, preset: str, name: str, overrides: list[str] | None = None) -> dict:
    """Train ``data``'s offline classifier under ``preset``'s preprocessing (default settings, from scratch) and
    ship it as ``assets/classifiers/<name>.pt`` with its manifest entry."""
    check_name(name, "--name")
    cfg = run_config(None, data, preset, None, 0, overrides).cfg
    options = {k: v for k, v in cfg["data"].items() if k != "n_per_class"}
    with tempfile.TemporaryDirectory() as scratch:
        classifier = get_classifier(lambda: build_datamodule(data, **{**options, "n_per_class": None}), data,
                                    directory=Path(scratch), shipped=None, log=print)
        return write_shipped(classifier.path, name)
