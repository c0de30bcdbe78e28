"""Helpers several test modules share."""

import lightning as L
from torch.utils.data import DataLoader

from genbench.runs.callbacks import StopAtIteration


def fit(model, loader_or_dm, iterations, tmp_path=None):
    """``iterations`` optimisation steps of ``model`` through a bare Lightning Trainer on the CPU."""
    trainer = L.Trainer(max_epochs=-1, callbacks=[StopAtIteration(iterations)], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", limit_val_batches=0,
                        default_root_dir=tmp_path)
    if isinstance(loader_or_dm, DataLoader):
        trainer.fit(model, loader_or_dm)
    else:
        trainer.fit(model, datamodule=loader_or_dm)
    return trainer
