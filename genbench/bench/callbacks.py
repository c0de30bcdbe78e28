"""Lightning callbacks of the harness: stop by iterations, periodic atomic checkpoints, resuming inside an epoch,
sample grids."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback


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


class PeriodicCheckpoint(Callback):
    """Write ``last.ckpt`` atomically every ``every`` iterations, at the iteration training stops at and at each
    completed epoch's end, so an interrupted or diverging run keeps its last good state. An epoch cut short by
    ``max_iterations`` is not saved as ended (Lightning would resume at the next epoch): its checkpoint is the
    one of its last iteration, from which a longer run continues the same epoch."""

    def __init__(self, path: Path, every: int) -> None:
        self.path = path
        self.every = max(1, every)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.iteration % self.every == 0 or trainer.should_stop:
            self.save(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if batches_into_epoch(trainer) == 0:
            self.save(trainer)

    def save(self, trainer) -> None:
        tmp = self.path.with_suffix(".tmp")
        if trainer.is_global_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(tmp)
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
        from genbench.bench.leaderboard import save_grid

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
