"""Lightning callbacks of the harness: stop by iterations, periodic atomic checkpoints, resuming inside an epoch,
sample grids, progress lines for log files; and the CSV logger that appends across a resume."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from genbench.errors import GenbenchError, first_line
from genbench.results import save_grid


class StopAtIteration(Callback):
    """Stop after ``max_iterations`` training iterations (model.iteration counts batches, not optimizer steps)."""

    def __init__(self, max_iterations: int) -> None:
        self.max_iterations = max_iterations

    def on_train_start(self, trainer, pl_module) -> None:  # a resumed run that already reached it trains no more
        if pl_module.iteration >= self.max_iterations:
            trainer.should_stop = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.iteration >= self.max_iterations:
            trainer.should_stop = True


def batches_into_epoch(trainer) -> int:
    """Batches of the current epoch trained on so far; 0 once the epoch's batches (``limit_train_batches``
    included) are all done."""
    done = int(trainer.fit_loop.epoch_loop.batch_progress.current.processed)
    return done if done < trainer.num_training_batches else 0


class ResumeWithinEpoch(Callback):
    """Resuming from a checkpoint written inside an epoch continues that epoch where it stopped: each checkpoint
    records how many batches of its unfinished epoch were trained on (0 at an epoch's end, also under
    ``limit_train_batches``), and on resume the training loader skips them, so a resumed run sees the batches of
    the uninterrupted one. Checkpoints without the record (older ones) resume as Lightning does."""

    KEY = "genbench_batches_into_epoch"

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[self.KEY] = batches_into_epoch(trainer)

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        done = int(checkpoint.get(self.KEY, 0))
        datamodule = trainer.datamodule
        if done and datamodule is not None and hasattr(datamodule, "resume_batches"):
            datamodule.resume_batches = done
            log_line(f"resume: the training loader continues its epoch at batch {done + 1} (Lightning's warning that "
                     f"the dataloader is not resumable does not apply to genbench's loader)")


class PeriodicCheckpoint(Callback):
    """Write ``last.ckpt`` atomically every ``every`` iterations, at the iteration training stops at (a limit, or a
    SIGTERM) and at each completed epoch's end, so an interrupted or diverging run keeps its last good state. An epoch
    cut short by ``max_iterations`` is not saved as ended (Lightning would resume at the next epoch): its checkpoint is
    the one of its last iteration, from which a longer run continues the same epoch."""

    def __init__(self, path: Path, every: int) -> None:
        self.path = path
        self.every = max(1, every)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.iteration % self.every == 0 or trainer.should_stop or trainer.received_sigterm:
            self.save(trainer)  # SIGTERM: Lightning stops after this iteration's hooks, so its state is the stop point

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if batches_into_epoch(trainer) == 0:
            self.save(trainer)

    def save(self, trainer) -> None:
        """Write the checkpoint beside ``last.ckpt``, then rename it over; a write that fails (a full disk, a file-size
        limit) removes its partial file, keeps the previous checkpoint and stops the run in one line."""
        tmp = self.path.with_suffix(".tmp")
        if trainer.is_global_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            trainer.save_checkpoint(tmp, weights_only=False)  # the whole training state: a resume continues it exactly
        except (OSError, RuntimeError) as exc:  # torch.save reports a short write as a RuntimeError
            tmp.unlink(missing_ok=True)
            kept = self.path.stat().st_size if self.path.is_file() else None
            need = f"the last checkpoint took {kept / 2**20:.1f} MiB" if kept else "no checkpoint was written yet"
            raise GenbenchError(f"could not write the checkpoint in {self.path.parent} ({first_line(exc)[:120]}); "
                                f"{need} — free space there or raise the file-size limit, then resume"
                                + ("; the previous checkpoint is kept" if kept else "")) from None
        if trainer.is_global_zero:
            tmp.replace(self.path)


class SampleGrids(Callback):
    """Every ``every`` iterations: a grid of ``count`` samples as PNG in ``folder`` (and to W&B if logging there)."""

    def __init__(self, folder: Path, every: int, count: int = 36) -> None:
        self.folder = folder
        self.every = every
        self.count = count

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every <= 0 or pl_module.iteration % self.every != 0 or not trainer.is_global_zero:
            return
        state = torch.get_rng_state()
        pl_module.prepare_evaluation(self.count, seed=pl_module.iteration)  # the chains the evaluation will use
        samples = pl_module.sample(self.count)
        torch.set_rng_state(state)  # sampling for a picture must not change the training run
        path = self.folder / f"iteration-{pl_module.iteration:07d}.png"
        self.folder.mkdir(parents=True, exist_ok=True)
        save_grid(samples, path, self.count)
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(key="samples", images=[str(path)], step=trainer.global_step)


#: seconds between two progress lines when the output is not a terminal
PROGRESS_SECONDS = 30.0


def log_line(text: str) -> None:
    """One progress line on stderr, flushed (a log file shows it at once)."""
    print(f"genbench {time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class ProgressLog(Callback):
    """For output to a file (no progress bar): a line every ``every`` seconds with the iteration, the rate, the ETA
    and the latest logged losses, and one at the start and end of training."""

    def __init__(self, max_iterations: int | None, every: float = PROGRESS_SECONDS, clock=None, log=log_line) -> None:
        self.max_iterations = max_iterations
        self.every = every
        self.clock = clock or time.monotonic
        self.emit = log
        self.start = self.last = 0.0
        self.first_iteration = 0

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = self.last = self.clock()
        self.first_iteration = pl_module.iteration
        if trainer.is_global_zero:
            total = f" of {self.max_iterations}" if self.max_iterations else ""
            self.emit(f"train: starting at iteration {pl_module.iteration}{total}")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = self.clock()
        if now - self.last < self.every or not trainer.is_global_zero:
            return
        self.last = now
        self.emit(self.line(trainer, pl_module, now))

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            self.emit(self.line(trainer, pl_module, self.clock()) + " (done)")

    def line(self, trainer, pl_module, now: float) -> str:
        done = pl_module.iteration - self.first_iteration
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        total = self.max_iterations
        text = f"train: iteration {pl_module.iteration}" + (f"/{total}" if total else "") + f", {rate:.2f} it/s"
        if total and rate > 0:
            text += f", ETA {format_seconds(max(0, total - pl_module.iteration) / rate)}"
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1}
        if metrics:
            text += ", " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items())[:4])
        return text


class AppendingCSVLogger(CSVLogger):
    """Lightning's CSV logger, except that a resumed run appends to the earlier part's ``metrics.csv`` (the stock
    writer deletes it) and keeps its columns."""

    @property
    @rank_zero_experiment
    def experiment(self):
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as fh:
                header = next(csv.reader(fh), [])
            self.metrics_keys = sorted(set(header))
