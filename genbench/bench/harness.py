"""The bench harness, top to bottom: config → data → model → fit → samples → metrics → leaderboard row.

Every run gets a folder ``runs/<data>/<model>/<run id>/`` with its effective config, checkpoints,
sample grid and ``result.json``; its row goes to ``leaderboards/<data>/<table>.jsonl``.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import Callback

from genbench.bench.leaderboard import append_row, render_leaderboards, table_path
from genbench.config import accepted_arguments, compose, config_hash
from genbench.data import build_datamodule
from genbench.errors import DivergenceError, GenbenchError
from genbench.metrics import MetricContext, check_metrics_available, compute_metrics
from genbench.models import build_model, model_class
from genbench.paths import PROJECT_ROOT, leaderboard_dir, runs_dir

VERSIONED_PACKAGES = ("torch", "torchvision", "lightning", "torchmetrics", "torch-fidelity", "numpy", "genbench")


class StopAtIteration(Callback):
    """Stop after ``max_iterations`` training iterations (model.iteration counts batches, not optimizer steps)."""

    def __init__(self, max_iterations: int) -> None:
        self.max_iterations = max_iterations

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.iteration >= self.max_iterations:
            trainer.should_stop = True


@dataclass
class BenchResult:
    row: dict
    run_dir: Path
    table: Path


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if commit.returncode != 0:
        return "unknown"
    return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({os.cpu_count()} cores)"


def effective_config(model: str, data: str, preset: str, n: int | None, seed: int, overrides: list[str] | None) -> dict:
    cfg = compose(model, data, preset, overrides)
    if n is not None:
        cfg["data"]["n_per_class"] = n
    cfg["run"] = {"model": model, "data": data, "preset": preset, "n": cfg["data"].get("n_per_class"), "seed": seed}
    return cfg


def build(cfg: dict):
    """Datamodule and model from an effective config (the model takes image size/channels from the data)."""
    run = cfg["run"]
    dm = build_datamodule(run["data"], **cfg["data"])
    dm.setup()
    model_opts = dict(cfg["model"])
    accepted = accepted_arguments(model_class(run["model"]))
    for key, value in (("image_size", dm.image_size), ("channels", dm.channels)):
        model_opts.setdefault(key, value)
    if "num_train" in accepted:
        model_opts.setdefault("num_train", len(dm.datasets["train"]))
    model = build_model(run["model"], **model_opts)
    return dm, model


def make_trainer(cfg: dict, run_dir: Path, callbacks: list[Callback] | None = None) -> L.Trainer:
    tcfg = dict(cfg.get("trainer", {}))
    max_iterations = tcfg.pop("max_iterations", None)
    checkpoint_every = int(tcfg.pop("checkpoint_every", 50))
    callbacks = list(callbacks or [])
    callbacks.append(PeriodicCheckpoint(run_dir / "checkpoints" / "last.ckpt", checkpoint_every))
    if max_iterations is not None:
        callbacks.append(StopAtIteration(int(max_iterations)))
        tcfg.setdefault("max_epochs", -1)
    interactive = sys.stdout.isatty()
    if interactive:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(RichProgressBar())
    from lightning.pytorch.loggers import CSVLogger

    tcfg.setdefault("accelerator", "auto")
    tcfg.setdefault("devices", 1)
    tcfg.setdefault("limit_val_batches", 0)
    tcfg.setdefault("num_sanity_val_steps", 0)
    return L.Trainer(
        default_root_dir=run_dir,
        logger=CSVLogger(run_dir, name="logs", version=""),
        callbacks=callbacks,
        enable_progress_bar=interactive,
        enable_model_summary=False,
        log_every_n_steps=max(1, int(tcfg.pop("log_every_n_steps", 10))),
        **tcfg,
    )


class PeriodicCheckpoint(Callback):
    """Write ``last.ckpt`` (atomically) every ``every`` iterations and at the end of training, so a diverging
    run keeps its last good state."""

    def __init__(self, path: Path, every: int) -> None:
        self.path = path
        self.every = max(1, every)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.iteration % self.every == 0:
            self.save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self.save(trainer)

    def save(self, trainer) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        trainer.save_checkpoint(tmp)
        if trainer.is_global_zero:
            tmp.replace(self.path)


def save_grid(samples: torch.Tensor, path: Path, count: int = 64) -> None:
    import torchvision.utils as vutils

    count = min(count, samples.shape[0])
    vutils.save_image((samples[:count] + 1) / 2, path, nrow=int(count ** 0.5) or 1)


def num_samples(cfg: dict, dm) -> int:
    """bench.num_samples: an int, or "train" for as many samples as training images (the papers' protocol)."""
    value = cfg.get("bench", {}).get("num_samples", "train")
    if value == "train":
        return len(dm.datasets["train"])
    if not isinstance(value, int) or value < 1:
        raise GenbenchError(f"bench.num_samples must be a positive integer or 'train', got {value!r}")
    return value


def run_bench(model: str, data: str, preset: str = "smoke", n: int | None = None, seed: int = 0,
              overrides: list[str] | None = None, leaderboards: Path | None = None, runs: Path | None = None,
              write_row: bool = True) -> BenchResult:
    """Train ``model`` on ``data``, sample, score, and append one leaderboard row."""
    cfg = effective_config(model, data, preset, n, seed, overrides)
    bench_cfg = cfg.get("bench", {})
    metric_names = list(bench_cfg.get("metrics", ["classifier_score", "pairwise_ssim"]))
    metric_options = dict(bench_cfg.get("metric_options", {}))
    check_metrics_available(metric_names, metric_options)
    L.seed_everything(seed, workers=True, verbose=False)
    dm, module = build(cfg)
    if "classifier_score" in metric_names and dm.num_classes < 2:
        raise GenbenchError(f"classifier_score needs a labelled dataset with ≥ 2 classes; {data} has {dm.num_classes} "
                            f"(drop it: --set 'bench.metrics=[pairwise_ssim]')")

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    run_id = f"{preset}-n{cfg['run']['n'] or 'all'}-s{seed}-{stamp}-{os.getpid()}"
    run_dir = (runs or runs_dir()) / data / model / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (run_dir / "data.json").write_text(json.dumps({"describe": dm.describe(), "files": dm.file_lists["train"]}, indent=1))

    trainer = make_trainer(cfg, run_dir)
    start = time.time()
    try:
        trainer.fit(module, datamodule=dm)
    except DivergenceError as exc:
        last = run_dir / "checkpoints" / "last.ckpt"
        kept = f"; last good checkpoint: {last}" if last.is_file() else "; no checkpoint was written yet"
        raise GenbenchError(f"{exc}{kept}") from None
    train_seconds = time.time() - start
    images_seen = module.iteration * dm.batch_size

    count = num_samples(cfg, dm)
    torch.manual_seed(seed + 1)
    start = time.time()
    samples = module.sample(count, batch_size=int(bench_cfg.get("sample_batch_size", 256)))
    sample_seconds = time.time() - start
    save_grid(samples, run_dir / "samples.png", int(bench_cfg.get("grid_size", 64)))

    def full_data():
        options = {k: v for k, v in cfg["data"].items() if k != "n_per_class"}
        return build_datamodule(data, **options)

    ctx = MetricContext(dataset=data, datamodule_factory=full_data, class_names=dm.class_names, options=metric_options)
    start = time.time()
    values = compute_metrics(metric_names, samples, ctx)
    metric_seconds = time.time() - start

    metrics = {}
    for key, value in values.items():
        if key.endswith("_std") or key.endswith("_pairs"):
            continue
        metrics[key] = {"mean": value, "std": values.get(f"{key}_std")}
    row = {
        "model": model, "data": data, "n": cfg["run"]["n"], "seed": seed, "preset": preset,
        "metrics": metrics, "n_samples": count, "n_train": len(dm.datasets["train"]),
        "protocols": {k: v for k, v in ctx.records.items() if k.endswith("_protocol")},
        "classifier": ctx.records.get("classifier"),
        "iterations": module.iteration, "train_seconds": round(train_seconds, 2),
        "images_per_second": round(images_seen / train_seconds, 2) if train_seconds > 0 else None,
        "sample_seconds": round(sample_seconds, 2), "metric_seconds": round(metric_seconds, 2),
        "git_commit": git_commit(), "config_hash": config_hash(cfg), "config": cfg,
        "data_fingerprint": dm.fingerprint(), "versions": package_versions(), "device": device_name(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(run_dir), "command": " ".join(["genbench", *sys.argv[1:]]) if sys.argv else "",
    }
    (run_dir / "result.json").write_text(json.dumps(row, indent=1, default=str))
    table = table_path(leaderboards or leaderboard_dir(), data, str(bench_cfg.get("table", preset)))
    if write_row:
        append_row(table, row)
        with contextlib.suppress(GenbenchError):
            render_leaderboards(leaderboards or leaderboard_dir(), data)
    return BenchResult(row, run_dir, table)


def run_fit(model: str, data: str, preset: str = "smoke", n: int | None = None, seed: int = 0,
            overrides: list[str] | None = None, runs: Path | None = None) -> Path:
    """Train only; returns the run folder (checkpoints/last.ckpt holds the weights)."""
    cfg = effective_config(model, data, preset, n, seed, overrides)
    L.seed_everything(seed, workers=True, verbose=False)
    dm, module = build(cfg)
    run_dir = (runs or runs_dir()) / data / model / f"fit-{preset}-s{seed}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    trainer = make_trainer(cfg, run_dir)
    try:
        trainer.fit(module, datamodule=dm)
    except DivergenceError as exc:
        raise GenbenchError(f"{exc}; last good checkpoint: {run_dir / 'checkpoints' / 'last.ckpt'}") from None
    return run_dir
