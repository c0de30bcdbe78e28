"""The bench harness, in the order ``_run_bench`` takes its steps: config and run folder → the run's datamodule,
metrics and their feature space (checked before training) → learning curve → model and fit → samples scored as they
stream → leaderboard row → tables re-rendered (ARCHITECTURE.md draws it).

Every run gets a folder ``runs/<data>/<model>/<run id>/`` with its effective config, checkpoints,
sample grid and ``result.json``; its row goes to ``leaderboards/<data>/<table>.jsonl``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from genbench.bench.leaderboard import render_leaderboards
from genbench.config import config_hash, table_levers
from genbench.errors import first_line
from genbench.files import check_writable_dir, write_text
from genbench.metrics import MetricContext, SampleSet, check_metrics, compute_metrics, feature_spaces
from genbench.paths import cache_dir, leaderboard_dir
from genbench.results import SHEET_SAMPLES, append_row, read_rows, save_grid, table_path, write_sample_sheet
from genbench.runs.callbacks import log_line
from genbench.runs.curves import LearningCurve
from genbench.runs.folder import FIT_RECORD, RunRequest, is_rank_zero, prepare_run, shared_run_dir
from genbench.runs.provenance import provenance
from genbench.runs.sampling import Timed, iter_samples
from genbench.runs.settings import bench_settings, table_name
from genbench.runs.tracking import finish_wandb
from genbench.runs.trainer import num_samples, run_datamodule, sampling_device, train


@dataclass
class BenchResult:
    row: dict
    run_dir: Path
    table: Path


def run_bench(model: str | None, data: str | None, preset: str | None = None, n: int | None = None, seed: int | None = None,
              overrides: list[str] | None = None, leaderboards: Path | None = None, runs: Path | None = None,
              write_row: bool = True, resume: str | None = None, run_name: str | None = None,
              config: dict | None = None) -> BenchResult | None:
    """Train ``model`` on ``data``, sample, score, and append one leaderboard row (rank 0; others return None).
    ``config``: a resolved config run as it is instead of the names (``RunRequest``)."""
    request = RunRequest(model, data, preset, n, seed, tuple(overrides or ()), runs, run_name, resume, config)
    with shared_run_dir():
        return _run_bench(request, leaderboards, write_row)


def training_budget(iterations: int, batch_size: int, world_size: int, n_train: int, wall_seconds: float | None) -> dict:
    """What a row's model was given: iterations, observed images (iterations × batch × ranks), the epochs
    they make, and the training wall time since iteration 0 (None for a resumed run whose checkpoint did not carry
    the earlier part's)."""
    images = iterations * batch_size * world_size
    return {"iterations": iterations, "images_seen": images, "epochs": round(images / max(1, n_train), 2),
            "wall_seconds": round(wall_seconds, 2) if wall_seconds is not None else None}


def metric_setup(cfg: dict, log=None, dm=None) -> tuple[list[str], MetricContext]:
    """The metric names of ``cfg`` and their context, checked before any training: an impossible metric
    setting, a corrupt or refused classifier or feature cache fails here, in one line; a classifier that must be
    trained and the real images' features are computed here, before the model trains. ``dm``: the run's
    datamodule (a new one when None)."""
    settings = bench_settings(cfg)
    names = list(settings.metrics)
    planned = dm if dm is not None else run_datamodule(cfg)
    planned.plan()  # lists the files (no decoding): a missing root or too large an n fails here
    ctx = MetricContext(cfg["run"]["data"], cfg["data"], settings.metric_options, n_samples=num_samples(cfg, planned),
                        log=log)
    check_metrics(names, ctx)
    return names, ctx


def score_row(names: list[str], samples: "torch.Tensor | SampleSet", ctx: MetricContext, seconds: float = 0.0) -> dict:
    """The scored part of a row: metrics (mean, std), each score's protocol, the classifier and real-image records.
    ``seconds``: feature extraction already spent while the samples streamed."""
    start = time.time()
    samples = samples if isinstance(samples, SampleSet) else SampleSet(samples)
    scores = compute_metrics(names, samples, ctx)
    return {"metrics": {k: s.as_row() for k, s in scores.items()}, "protocols": {k: s.protocol for k, s in scores.items()},
            "n_samples": int(samples.count), "classifier": ctx.records.get("classifier"),
            "feature_space": (ctx.records.get("classifier") or {}).get("feature_space"),
            "real_images": ctx.records.get("real_images"), "metric_seconds": round(seconds + time.time() - start, 2)}


def _run_bench(request: RunRequest, leaderboards: Path | None, write_row: bool) -> BenchResult | None:
    # 1. the effective config and the run folder
    spec = prepare_run(request, "bench")
    cfg, run_dir = spec.cfg, spec.run_dir
    model, data, preset, seed = (spec.run[k] for k in ("model", "data", "preset", "seed"))
    settings = bench_settings(cfg)
    boards = leaderboards or leaderboard_dir()
    table = table_path(boards, data, table_name(cfg, preset))
    log = log_line if is_rank_zero() else (lambda text: None)
    if write_row:
        check_writable_dir(table.parent, "the leaderboards folder ($GENBENCH_LEADERBOARDS)")
    check_writable_dir(cache_dir(), "the cache folder ($GENBENCH_CACHE)")
    # 2. the run's one datamodule; the metrics and their feature space, checked (and the real images' features
    # computed) before training
    dm = run_datamodule(cfg)
    metric_names, ctx = metric_setup(cfg, log, dm)
    log(f"bench: {model} on {data} ({preset}, n={cfg['run']['n'] or 'all'}, seed {seed}, config {config_hash(cfg)}); "
        f"scored in {ctx.records.get('classifier', {}).get('feature_space') or 'no classifier space'}")
    # 3. the learning curve, 4. training
    curve = curve_callback(cfg, metric_names, ctx, log)
    dm, module, trainer, wandb_logger, elapsed = train(spec, ctx.n_samples, [curve] if curve else None, dm)
    train_seconds = elapsed - (curve.scoring_seconds if curve else 0.0)  # scoring the curve is not training
    iterations_before = module.resumed_from_iteration
    images_seen = (module.iteration - iterations_before) * dm.batch_size * trainer.world_size
    # a resumed run's training time since iteration 0, where its checkpoint carried the earlier part (the curve's)
    total_seconds = (train_seconds if not iterations_before
                     else curve.seconds_before + train_seconds if curve and curve.restored else None)

    # 5. samples streamed in chunks and scored as they come
    count = ctx.n_samples
    module.to(sampling_device(trainer))  # Lightning's teardown moved it to the CPU; sample where it trained
    log(f"sample: {count} samples in chunks of {settings.sample_batch_size}, scored as they come")
    start = time.time()
    chunks = Timed(iter_samples(module, count, seed + 1, chunk=settings.sample_batch_size), count, log)
    keep = max(settings.grid_size, SHEET_SAMPLES, ctx.options.ssim_samples)
    if is_rank_zero():
        samples = SampleSet.from_stream(chunks, ctx, feature_spaces(metric_names), keep)
    else:
        for _ in chunks:  # the other ranks draw their share of every round
            pass
        return None
    sample_seconds = chunks.seconds
    save_grid(samples.images, run_dir / "samples.png", settings.grid_size)
    scored = score_row(metric_names, samples, ctx, time.time() - start - sample_seconds)
    log("score: " + ", ".join(f"{k} {v['mean']:.4g}" for k, v in scored["metrics"].items()))

    # 6. the row, 7. the tables re-rendered
    row = {
        "model": model, "data": data, "n": cfg["run"]["n"], "seed": seed, "preset": preset, "kind": "model",
        **scored, "n_train": len(dm.datasets["train"]),
        "iterations": module.iteration, "resumed_from_iteration": iterations_before or None,
        "budget": training_budget(module.iteration, dm.batch_size, trainer.world_size, len(dm.datasets["train"]),
                                  total_seconds),
        "sample_device": str(sampling_device(trainer)), "bn_sampling": module.bn_sampling,
        "evaluation_chains": module.evaluation_chains,
        "train_seconds": round(train_seconds, 2),
        "curve": {"every": settings.eval_every, "samples": settings.curve_samples, "points": curve.points,
                  "scoring_seconds": round(curve.scoring_before + curve.scoring_seconds, 2)} if curve else None,
        "images_per_second": round(images_seen / train_seconds, 2) if train_seconds > 0 else None,
        "sample_seconds": round(sample_seconds, 2),
        "world_size": trainer.world_size, "num_nodes": trainer.num_nodes,
        "config_hash": config_hash(cfg), "config": cfg, "table_levers": table_levers(preset),
        "data_fingerprint": dm.fingerprint(), **provenance(),
        "run_dir": str(run_dir), "wandb": getattr(wandb_logger, "genbench_mode", None),
    }
    write_text(run_dir / "result.json", json.dumps(row, indent=1, default=str))
    finish_wandb(wandb_logger, {f"bench/{k}": v["mean"] for k, v in row["metrics"].items()})
    if write_row:
        try:
            row["samples_png"] = write_sample_sheet(table, row, samples.images)
        except Exception as exc:  # a picture must never cost the row
            row["samples_png"] = None
            log_line(f"warning: the sample sheet could not be written ({type(exc).__name__}: {exc}); writing the row")
        if any(r.run_dir == row["run_dir"] and r.iterations == row["iterations"] for r in read_rows(table)[0]):  # a bench stopped after its row, then resumed: the row is written once
            log_line(f"the row of this run at iteration {row['iterations']} is already in {table}; not appending it again")
        else:
            append_row(table, row)
        render_after_row(boards, data, table.stem)
    return BenchResult(row, run_dir, table)


def curve_callback(cfg: dict, names: list[str], run_ctx: MetricContext, log):
    """The learning-curve callback of ``bench.eval_every`` (None when off), its metrics checked before training for
    ``bench.curve_samples`` samples, in the run's metric context (its classifier, data and real-image features)."""
    settings = bench_settings(cfg)
    if not settings.eval_every:
        return None
    ctx = run_ctx.for_samples(settings.curve_samples)
    check_metrics(names, ctx)
    return LearningCurve(settings.eval_every, settings.curve_samples, names, ctx, settings.sample_batch_size,
                         log if is_rank_zero() else (lambda text: None))


def render_after_row(boards: Path, data: str, table: str | None = None) -> None:
    """Re-render the table a row was written to (every table of the dataset when None); a failure here is a
    warning, never a lost row."""
    try:
        render_leaderboards(boards, data, table)
    except Exception as exc:  # the row is safe in the JSONL; `genbench leaderboard` renders it later
        log_line(f"warning: the row was written but rendering the tables failed ({first_line(exc)}); run "
                 f"`genbench leaderboard`")


def run_fit(model: str | None, data: str | None, preset: str | None = None, n: int | None = None, seed: int | None = None,
            overrides: list[str] | None = None, runs: Path | None = None, resume: str | None = None,
            run_name: str | None = None, config: dict | None = None) -> Path:
    """Train only; returns the run folder (checkpoints/last.ckpt holds the weights, ``fit.json`` says it finished).
    ``config``: a resolved config run as it is instead of the names (``RunRequest``)."""
    with shared_run_dir():
        request = RunRequest(model, data, preset, n, seed, tuple(overrides or ()), runs, run_name, resume, config)
        spec = prepare_run(request, "fit")
        cfg, run_dir = spec.cfg, spec.run_dir
        _, module, trainer, wandb_logger, seconds = train(spec)
        finish_wandb(wandb_logger, {})
        if is_rank_zero():
            record = {"iterations": module.iteration, "train_seconds": round(seconds, 2),
                      "config_hash": config_hash(cfg), **provenance()}
            (run_dir / FIT_RECORD).write_text(json.dumps(record, indent=1))
        return run_dir
