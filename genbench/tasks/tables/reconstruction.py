"""Reconstruction of held-out images from d numbers (ABP, AAAI 2017): ABP with latent dimension d (h inferred,
g(h)) vs PCA with d components fitted on the same training images.
``genbench table --table reconstruction`` → ``leaderboards/<data>/tasks/reconstruction-<preset>.{jsonl,md,png}``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from genbench.data.subsets import seeded_subset
from genbench.errors import GenbenchError
from genbench.models.completion import CompletionSettings, reconstruct
from genbench.tasks.reconstruction import pca_reconstruct, reconstruction_errors, row_rmse
from genbench.tasks.report import pivot
from genbench.tasks.rows import TableRows, scored_row
from genbench.tasks.tables.base import (Table, TaskTable, first_examples, in_batches, model_for,
                                        planned_datamodule, register_table, render_examples_table)


@dataclass
class ReconstructionTable(TaskTable):
    """Reconstruction of held-out images from d numbers (ABP, AAAI 2017): ABP with latent dimension d vs PCA
    with d components fitted on the same training images.

    Args:
        dims: the latent dimensions / numbers of components d.
        images: held-out images reconstructed (None: the whole held-out split).
        inference: Langevin on h for each held-out image from a prior draw h ~ N(0, I) (all pixels observed).
    """

    data: str = "celeba"
    model: str = "abp"
    dims: list[int] = field(default_factory=lambda: [20, 60, 100, 200])
    inference: dict = field(default_factory=lambda: {"latent_steps": 300})
    examples: int = 4


def check_reconstruction(s: ReconstructionTable) -> None:
    for d in s.dims:
        if not isinstance(d, int) or d < 1:
            raise GenbenchError(f"dims must be positive integers, got {d!r}")


def evaluate_reconstruction(s: ReconstructionTable, rows: TableRows, runs: Path | None, log) -> tuple[list[dict], dict]:
    planned = planned_datamodule(s, s.model)
    pixels = planned.channels * planned.image_size ** 2
    for d in s.dims:  # before any training
        if d > min(planned.num_train, pixels):
            raise GenbenchError(f"d = {d} exceeds the {planned.num_train} training images or the {pixels} pixels per "
                                f"image of {s.data}; PCA and the comparison need d ≤ {min(planned.num_train, pixels)}")
    inference = CompletionSettings(**s.inference)
    figure: dict = {"columns": {}, "labels": []}
    out = []
    trained: dict = {}
    for d in s.dims:
        model = model_for(trained, s.model, s.data, s, [*s.overrides, f"model.latent_dim={d}"], runs, log)
        dm = model.datamodule
        held_all = dm.images(dm.heldout_split)
        chosen = seeded_subset(held_all.shape[0], s.images, s.seed)
        held, train = held_all[chosen], dm.images("train")
        if not figure["labels"]:
            figure["labels"] = [f"#{i + 1}" for i in range(min(s.examples, len(held)))]
            figure["columns"]["original"] = [held[:s.examples]]

        def abp_reconstruct(x: torch.Tensor) -> torch.Tensor:
            torch.manual_seed(s.seed)
            return in_batches(lambda a: reconstruct(model.module, a, inference), s.batch_size, x)

        for method in (s.model, "pca"):
            learned = method == s.model
            base = {"table": "reconstruction", "method": method, "kind": "learned" if learned else "baseline", "d": d,
                    "n_images": len(held), "split": dm.heldout_split, "n_train": int(train.shape[0]),
                    "image_size": int(held.shape[-1]), "data": s.data, "model_run": model.record(),
                    "inference": inference.record() if learned else None}
            method_reconstruct = abp_reconstruct if learned else (lambda x: pca_reconstruct(train, x, d, s.seed))
            row, reconstructed = scored_row(
                rows, base, ("method", "d", "n_images", "split", "n_train", "image_size", "data", "inference"),
                lambda: method_reconstruct(held), lambda result: {"errors": reconstruction_errors(held, result)},
                lambda r: f"  d={d} {method}: RMSE {row_rmse(r['errors']):.4f}, mean abs error {r['errors']['mae']:.4f}", log)
            out.append(row)
            figure["columns"][f"{method} d={d}"] = [first_examples(reconstructed, method_reconstruct, s, held)]
    return out, figure


def render_reconstruction(s: ReconstructionTable, preset: str, rows: list[dict], figure: dict, path: Path) -> list[Path]:
    def body(first: dict, size) -> list[str]:
        lines = [f"Setup: {first.get('n_images')} held-out images ({first.get('split')} split), {size}×{size}; "
                 f"PCA fitted on the {first.get('n_train')} training images the ABP models learned from; errors on "
                 "pixel values in [0, 1].", ""]
        errors = (("root-mean-square error, the published tables' error most likely (see Notes)", row_rmse),
                  ("mean absolute error", lambda e: e["mae"]), ("mean squared error", lambda e: e["mse"]))
        for label, value in errors:
            lines += [f"## Reconstruction {label} (lower is better)", ""]
            lines += pivot(rows, lambda r: r["method"], lambda r: f"d={r['d']}", lambda r, v=value: v(r["errors"]), 4,
                           [s.model, "pca"], [f"d={d}" for d in s.dims])
        return lines

    return render_examples_table("reconstruction", "Reconstruction of held-out images: ABP vs PCA",
                                 "original, then each method's reconstruction", body, s, preset, rows, figure, path)


TABLE = register_table(Table("reconstruction", "held-out images reconstructed from d numbers: ABP vs PCA",
                             ReconstructionTable, check_reconstruction, evaluate_reconstruction, render_reconstruction))
