"""Training one run: its datamodule and model built from the effective config, the Lightning Trainer with
genbench's callbacks and loggers, and the fit (a divergence becomes one line naming the last good checkpoint)."""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import SIGTERMException

from genbench.config import accepted_arguments
from genbench.data import build_datamodule
from genbench.errors import DivergenceError, GenbenchError, Interrupted, first_line
from genbench.files import write_text
from genbench.models import build_model, model_class
from genbench.models.speed import SpeedSettings
from genbench.runs.callbacks import (AppendingCSVLogger, PeriodicCheckpoint, ProgressLog, ResumeWithinEpoch, SampleGrids,
                                     StopAtIteration)
from genbench.runs.folder import RunSpec, check_checkpoint_fits, is_rank_zero, record_start
from genbench.runs.settings import bench_settings, logger_settings
from genbench.runs.signals import fitting
from genbench.runs.tracking import make_wandb_logger


def run_datamodule(cfg: dict):
    """The datamodule of an effective config's run (its training order seeded by the run's seed); nothing is read
    until it is planned or set up."""
    run = cfg["run"]
    return build_datamodule(run["data"], **{"shuffle_seed": run["seed"], **cfg["data"]})


def build(cfg: dict, dm=None):
    """Datamodule (``dm``, the run's own, or a new one) set up and the model from an effective config (the model
    takes image size/channels from the data)."""
    run = cfg["run"]
    if cfg["data"].get("corruption") and not model_class(run["model"]).learns_from_corrupted_data:
        raise GenbenchError(f"model {run['model']!r} cannot learn from corrupted images (data.corruption); "
                            f"abp can (the recovery table)")
    dm = dm if dm is not None else run_datamodule(cfg)
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
    else:  # a log file (SLURM, nohup, CI): a line every PROGRESS_SECONDS instead of a progress bar
        callbacks.append(ProgressLog(max_iterations))
    tcfg.setdefault("accelerator", "auto")
    tcfg.setdefault("devices", 1)
    if (tcfg["devices"] not in (1, "1") or int(tcfg.get("num_nodes", 1)) > 1) and "strategy" not in tcfg:
        tcfg["strategy"] = "ddp_find_unused_parameters_true"  # alternating updates leave nets unused per backward
    tcfg.setdefault("limit_val_batches", 0)
    tcfg.setdefault("num_sanity_val_steps", 0)
    tcfg.setdefault("enable_checkpointing", False)  # genbench's own checkpoints (PeriodicCheckpoint) only
    try:
        return L.Trainer(
            default_root_dir=run_dir,
            logger=[AppendingCSVLogger(run_dir, name="logs", version=""), *(loggers or [])],
            callbacks=callbacks,
            enable_progress_bar=interactive,
            enable_model_summary=False,
            log_every_n_steps=max(1, int(tcfg.pop("log_every_n_steps", 10))),
            **tcfg,
        )
    except (ValueError, TypeError, RuntimeError) as exc:  # Lightning's MisconfigurationException is a ValueError
        raise GenbenchError(f"bad trainer config: {first_line(exc)}") from None


def num_samples(cfg: dict, dm) -> int:
    """bench.num_samples: an int, or "train" for as many samples as training images (the papers' protocol)."""
    value = bench_settings(cfg).num_samples
    if value == "train":
        return dm.num_train
    if not isinstance(value, int) or value < 1:
        raise GenbenchError(f"bench.num_samples must be a positive integer or 'train', got {value!r}")
    return value


def train(spec: RunSpec, num_samples: int | None = None, callbacks: list | None = None, dm=None):
    """Fit the run's model on ``dm`` (the run's datamodule; a new one when None); a divergence becomes one line naming
    the last good checkpoint. With ``num_samples``, an evaluation the model cannot draw is refused before training.
    The run folder is written only once every check has passed (``record_start``)."""
    cfg, run_dir, ckpt = spec.cfg, spec.run_dir, spec.ckpt
    run = cfg["run"]
    L.seed_everything(run["seed"], workers=True, verbose=False)
    dm, module = build(cfg, dm)
    if num_samples is not None:
        module.check_evaluation(num_samples)
    if ckpt is not None:
        check_checkpoint_fits(ckpt, module, run["model"])
    record_start(spec)
    if is_rank_zero():
        write_text(run_dir / "data.json", json.dumps({"describe": dm.describe(), "files": dm.file_lists["train"]}, indent=1))
    tags = [run["model"], run["data"], f"n={run['n'] or 'all'}", f"seed={run['seed']}", run["preset"]]
    wandb_logger = make_wandb_logger(logger_settings(cfg), run_dir, run_dir.name, tags, cfg)
    trainer = make_trainer(cfg, run_dir, callbacks, loggers=[wandb_logger] if wandb_logger else [])
    start = time.time()
    try:
        with warnings.catch_warnings(), fitting():  # genbench's loader resumes inside an epoch (ResumeWithinEpoch says so)
            warnings.filterwarnings("ignore", message=".*dataloader is not resumable.*")
            trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt) if ckpt else None, weights_only=True)
    except DivergenceError as exc:
        last = run_dir / "checkpoints" / "last.ckpt"
        kept = f"; last good checkpoint: {last}" if last.is_file() else "; no checkpoint was written yet"
        raise GenbenchError(f"{exc}{kept}") from None
    except SIGTERMException:  # Lightning's SystemExit(None) would end the process with status 0
        raise Interrupted(f"stopped by SIGTERM at iteration {module.iteration}; its state is in "
                          f"{run_dir / 'checkpoints' / 'last.ckpt'}: `genbench {spec.kind} --resume {run_dir}` (or the same "
                          f"sweep) continues from there") from None
    return dm, module, trainer, wandb_logger, time.time() - start


def sampling_device(trainer: L.Trainer) -> torch.device:
    """The device the model trained on (after ``fit`` Lightning's teardown leaves the module on the CPU)."""
    return trainer.strategy.root_device
