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

from genbench.bench.callbacks import PeriodicCheckpoint, ResumeWithinEpoch, SampleGrids, StopAtIteration

from genbench.bench.leaderboard import append_row, render_leaderboards, save_grid, table_path, write_sample_sheet
from genbench.bench.settings import bench_settings, logger_settings, validate_sections
from genbench.bench.sampling import sample_all
from genbench.models.speed import SpeedSettings
from genbench.bench.tracking import finish_wandb
from genbench.config import accepted_arguments, check_table_preprocessing, compose, config_hash
from genbench.data import build_datamodule
from genbench.errors import DivergenceError, GenbenchError
from genbench.metrics import MetricContext, check_metrics, compute_metrics
from genbench.models import build_model, model_class
from genbench.paths import PROJECT_ROOT, leaderboard_dir, runs_dir

VERSIONED_PACKAGES = ("torch", "torchvision", "lightning", "torchmetrics", "torch-fidelity", "numpy", "genbench")


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
    """HEAD, with ``-dirty`` when a tracked file differs from it. The results genbench writes itself (``leaderboards/``)
    do not count: a sweep's second row would otherwise be marked dirty by its first."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)leaderboards"],
                               cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
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
    """The composed, validated config of one run; a model that would change its table's preprocessing is refused."""
    cfg = compose(model, data, preset, overrides)
    check_table_preprocessing(model, data, preset, cfg, overrides)
    if n is not None:
        cfg["data"]["n_per_class"] = n
    cfg["run"] = {"model": model, "data": data, "preset": preset, "n": cfg["data"].get("n_per_class"), "seed": seed}
    validate_sections(cfg)
    return cfg


def build(cfg: dict):
    """Datamodule and model from an effective config (the model takes image size/channels from the data)."""
    run = cfg["run"]
    if cfg["data"].get("corruption") and not model_class(run["model"]).learns_from_corrupted_data:
        raise GenbenchError(f"model {run['model']!r} cannot learn from corrupted images (data.corruption); "
                            f"abp can (the recovery table)")
    dm = build_datamodule(run["data"], **{"shuffle_seed": run["seed"], **cfg["data"]})
    dm.setup()
    model_opts = dict(cfg["model"])
    accepted = accepted_arguments(model_class(run["model"]))
    for key, value in (("image_size", dm.image_size), ("channels", dm.channels)):
        model_opts.setdefault(key, value)
    if "num_train" in accepted:
        model_opts.setdefault("num_train", len(dm.datasets["train"]))
    model = build_model(run["model"], **model_opts)
    model.set_speed(SpeedSettings.from_dict(cfg.get("speed")))
    return dm, model


def make_trainer(cfg: dict, run_dir: Path, callbacks: list[Callback] | None = None, loggers: list | None = None) -> L.Trainer:
    """A Trainer from the ``trainer`` section (Lightning arguments plus ``max_iterations``, ``checkpoint_every``),
    with periodic checkpoints, sample grids every ``bench.grid_every`` iterations, CSV (+ W&B) logging."""
    tcfg = dict(cfg.get("trainer", {}))
    max_iterations = tcfg.pop("max_iterations", None)
    checkpoint_every = int(tcfg.pop("checkpoint_every", 50))
    callbacks = list(callbacks or [])
    if max_iterations is not None:  # before the checkpoint, which saves the iteration it stops at
        callbacks.append(StopAtIteration(int(max_iterations)))
        tcfg.setdefault("max_epochs", -1)
    callbacks.append(PeriodicCheckpoint(run_dir / "checkpoints" / "last.ckpt", checkpoint_every))
    callbacks.append(ResumeWithinEpoch())
    grid_every = int(bench_settings(cfg).grid_every)
    if grid_every > 0:
        callbacks.append(SampleGrids(run_dir / "grids", grid_every))
    interactive = sys.stdout.isatty()
    if interactive:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(RichProgressBar())
    from lightning.pytorch.loggers import CSVLogger

    tcfg.setdefault("accelerator", "auto")
    tcfg.setdefault("devices", 1)
    if (tcfg["devices"] not in (1, "1") or int(tcfg.get("num_nodes", 1)) > 1) and "strategy" not in tcfg:
        tcfg["strategy"] = "ddp_find_unused_parameters_true"  # alternating updates leave nets unused per backward
    tcfg.setdefault("limit_val_batches", 0)
    tcfg.setdefault("num_sanity_val_steps", 0)
    return L.Trainer(
        default_root_dir=run_dir,
        logger=[CSVLogger(run_dir, name="logs", version=""), *(loggers or [])],
        callbacks=callbacks,
        enable_progress_bar=interactive,
        enable_model_summary=False,
        log_every_n_steps=max(1, int(tcfg.pop("log_every_n_steps", 10))),
        **tcfg,
    )


def num_samples(cfg: dict, dm) -> int:
    """bench.num_samples: an int, or "train" for as many samples as training images (the papers' protocol)."""
    value = bench_settings(cfg).num_samples
    if value == "train":
        return dm.num_train
    if not isinstance(value, int) or value < 1:
        raise GenbenchError(f"bench.num_samples must be a positive integer or 'train', got {value!r}")
    return value


def is_rank_zero() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def check_checkpoint(path: Path) -> Path:
    """A checkpoint that loads (with ``weights_only``), or one clear error for a missing/corrupt/truncated file."""
    if not path.is_file():
        raise GenbenchError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise GenbenchError(f"checkpoint {path} is corrupt or truncated ({reason}); delete it or resume from another") from None
    if not isinstance(state, dict) or "state_dict" not in state:
        raise GenbenchError(f"checkpoint {path} is not a genbench/Lightning checkpoint (no state_dict)")
    return path


def resolve_resume(resume: str | os.PathLike | None) -> tuple[Path | None, Path | None]:
    """``--resume`` takes a run folder or a .ckpt file → (run folder, checkpoint)."""
    if not resume:
        return None, None
    path = Path(resume)
    if path.is_dir():
        return path, check_checkpoint(path / "checkpoints" / "last.ckpt")
    return path.parent.parent, check_checkpoint(path)


def prepare_run(model: str, data: str, preset: str, n: int | None, seed: int, overrides: list[str] | None,
                runs: Path | None, run_name: str | None, resume: str | None, kind: str) -> tuple[dict, Path, Path | None]:
    """Effective config, run folder (shared by all DDP ranks through $GENBENCH_RUN_DIR) and checkpoint to resume."""
    resume_dir, ckpt = resolve_resume(resume)
    if resume_dir is not None and (resume_dir / "config.yaml").is_file():
        cfg = yaml.safe_load((resume_dir / "config.yaml").read_text())
        for text in overrides or []:
            from genbench.config import deep_merge, parse_override

            cfg = deep_merge(cfg, parse_override(text))
        return cfg, resume_dir, ckpt
    cfg = effective_config(model, data, preset, n, seed, overrides)
    if os.environ.get("GENBENCH_RUN_DIR"):
        run_dir = Path(os.environ["GENBENCH_RUN_DIR"])
    else:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        run_id = run_name or f"{kind}-{preset}-n{cfg['run']['n'] or 'all'}-s{seed}-{stamp}-{os.getpid()}"
        run_dir = (runs or runs_dir()) / data / model / run_id
        os.environ["GENBENCH_RUN_DIR"] = str(run_dir)  # DDP children launched later reuse it
    if is_rank_zero():
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    if ckpt is None and (run_dir / "checkpoints" / "last.ckpt").is_file() and run_name:
        ckpt = check_checkpoint(run_dir / "checkpoints" / "last.ckpt")  # a named (sweep) run picks up where it stopped
    return cfg, run_dir, ckpt


def train(cfg: dict, run_dir: Path, ckpt: Path | None, num_samples: int | None = None):
    """Fit the configured model; a divergence becomes one line naming the last good checkpoint. With
    ``num_samples``, an evaluation the model cannot draw is refused before training."""
    from genbench.bench.tracking import make_wandb_logger

    run = cfg["run"]
    L.seed_everything(run["seed"], workers=True, verbose=False)
    dm, module = build(cfg)
    if num_samples is not None:
        module.check_evaluation(num_samples)
    if is_rank_zero():
        (run_dir / "data.json").write_text(json.dumps({"describe": dm.describe(), "files": dm.file_lists["train"]}, indent=1))
    tags = [run["model"], run["data"], f"n={run['n'] or 'all'}", f"seed={run['seed']}", run["preset"]]
    wandb_logger = make_wandb_logger(logger_settings(cfg), run_dir, run_dir.name, tags, cfg)
    trainer = make_trainer(cfg, run_dir, loggers=[wandb_logger] if wandb_logger else [])
    start = time.time()
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt) if ckpt else None)
    except DivergenceError as exc:
        last = run_dir / "checkpoints" / "last.ckpt"
        kept = f"; last good checkpoint: {last}" if last.is_file() else "; no checkpoint was written yet"
        raise GenbenchError(f"{exc}{kept}") from None
    return dm, module, trainer, wandb_logger, time.time() - start


@contextlib.contextmanager
def shared_run_dir():
    """Keep $GENBENCH_RUN_DIR (set for DDP children) from leaking into the next run of this process."""
    preset = os.environ.get("GENBENCH_RUN_DIR")
    try:
        yield
    finally:
        if preset is None:
            os.environ.pop("GENBENCH_RUN_DIR", None)


def run_bench(model: str, data: str, preset: str = "smoke", n: int | None = None, seed: int = 0,
              overrides: list[str] | None = None, leaderboards: Path | None = None, runs: Path | None = None,
              write_row: bool = True, resume: str | None = None, run_name: str | None = None) -> BenchResult | None:
    """Train ``model`` on ``data``, sample, score, and append one leaderboard row (rank 0; others return None)."""
    with shared_run_dir():
        return _run_bench(model, data, preset, n, seed, overrides, leaderboards, runs, write_row, resume, run_name)


def sampling_device(trainer: L.Trainer) -> torch.device:
    """The device the model trained on (after ``fit`` Lightning's teardown leaves the module on the CPU)."""
    return trainer.strategy.root_device


def training_budget(iterations: int, batch_size: int, world_size: int, n_train: int, wall_seconds: float | None) -> dict:
    """What a row's model was given: iterations, observed images (iterations × batch × ranks), the epochs
    they make, and the training wall time (None when resumed: the time of the earlier part is unknown)."""
    images = iterations * batch_size * world_size
    return {"iterations": iterations, "images_seen": images, "epochs": round(images / max(1, n_train), 2),
            "wall_seconds": round(wall_seconds, 1) if wall_seconds is not None else None}


def provenance() -> dict:
    """What every row records about where and how it was produced."""
    return {"git_commit": git_commit(), "versions": package_versions(), "device": device_name(),
            "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["genbench", *sys.argv[1:]]) if sys.argv else ""}


def metric_setup(cfg: dict) -> tuple[list[str], MetricContext]:
    """The metric names of ``cfg`` and their context, checked before any training: an impossible metric
    setting fails here, in one line, with nothing computed yet."""
    settings = bench_settings(cfg)
    names = list(settings.metrics)
    planned = build_datamodule(cfg["run"]["data"], **cfg["data"])
    ctx = MetricContext(cfg["run"]["data"], cfg["data"], settings.metric_options, n_samples=num_samples(cfg, planned))
    check_metrics(names, ctx)
    return names, ctx


def score_row(names: list[str], samples: torch.Tensor, ctx: MetricContext) -> dict:
    """The scored part of a row: metrics (mean, std), each score's protocol, the classifier and real-image records."""
    start = time.time()
    scores = compute_metrics(names, samples, ctx)
    return {"metrics": {k: s.as_row() for k, s in scores.items()}, "protocols": {k: s.protocol for k, s in scores.items()},
            "n_samples": int(samples.shape[0]), "classifier": ctx.records.get("classifier"),
            "real_images": ctx.records.get("real_images"), "metric_seconds": round(time.time() - start, 2)}


def _run_bench(model, data, preset, n, seed, overrides, leaderboards, runs, write_row, resume, run_name):
    cfg, run_dir, ckpt = prepare_run(model, data, preset, n, seed, overrides, runs, run_name, resume, "bench")
    model, data, preset, seed = (cfg["run"][k] for k in ("model", "data", "preset", "seed"))
    settings = bench_settings(cfg)
    metric_names, ctx = metric_setup(cfg)
    dm, module, trainer, wandb_logger, train_seconds = train(cfg, run_dir, ckpt, ctx.n_samples)
    iterations_before = module.resumed_from_iteration
    images_seen = (module.iteration - iterations_before) * dm.batch_size * trainer.world_size

    count = ctx.n_samples
    module.to(sampling_device(trainer))  # Lightning's teardown moved it to the CPU; sample where it trained
    start = time.time()
    samples = sample_all(module, count, seed + 1, chunk=settings.sample_batch_size)
    sample_seconds = time.time() - start
    if not is_rank_zero():
        return None
    save_grid(samples, run_dir / "samples.png", settings.grid_size)

    row = {
        "model": model, "data": data, "n": cfg["run"]["n"], "seed": seed, "preset": preset, "kind": "model",
        **score_row(metric_names, samples, ctx), "n_train": len(dm.datasets["train"]),
        "iterations": module.iteration, "resumed_from_iteration": iterations_before or None,
        "budget": training_budget(module.iteration, dm.batch_size, trainer.world_size, len(dm.datasets["train"]),
                                  train_seconds if not iterations_before else None),
        "sample_device": str(sampling_device(trainer)), "bn_sampling": module.bn_sampling,
        "evaluation_chains": module.evaluation_chains,
        "train_seconds": round(train_seconds, 2),
        "images_per_second": round(images_seen / train_seconds, 2) if train_seconds > 0 else None,
        "sample_seconds": round(sample_seconds, 2),
        "world_size": trainer.world_size, "num_nodes": trainer.num_nodes,
        "config_hash": config_hash(cfg), "config": cfg, "data_fingerprint": dm.fingerprint(), **provenance(),
        "run_dir": str(run_dir), "wandb": getattr(wandb_logger, "genbench_mode", None),
    }
    (run_dir / "result.json").write_text(json.dumps(row, indent=1, default=str))
    finish_wandb(wandb_logger, {f"bench/{k}": v["mean"] for k, v in row["metrics"].items()})
    table = table_path(leaderboards or leaderboard_dir(), data, settings.table or preset)
    if write_row:
        row["samples_png"] = write_sample_sheet(table, model, cfg["run"]["n"], seed, samples)
        append_row(table, row)
        with contextlib.suppress(GenbenchError):
            render_leaderboards(leaderboards or leaderboard_dir(), data)
    return BenchResult(row, run_dir, table)


#: written into a run folder when its training has finished (``bench`` writes ``result.json``)
FIT_RECORD = "fit.json"


def run_fit(model: str, data: str, preset: str = "smoke", n: int | None = None, seed: int = 0,
            overrides: list[str] | None = None, runs: Path | None = None, resume: str | None = None,
            run_name: str | None = None) -> Path:
    """Train only; returns the run folder (checkpoints/last.ckpt holds the weights, ``fit.json`` says it finished)."""
    with shared_run_dir():
        cfg, run_dir, ckpt = prepare_run(model, data, preset, n, seed, overrides, runs, run_name, resume, "fit")
        _, module, trainer, wandb_logger, seconds = train(cfg, run_dir, ckpt)
        finish_wandb(wandb_logger, {})
        if is_rank_zero():
            record = {"iterations": module.iteration, "train_seconds": round(seconds, 2),
                      "config_hash": config_hash(cfg), **provenance()}
            (run_dir / FIT_RECORD).write_text(json.dumps(record, indent=1))
        return run_dir
