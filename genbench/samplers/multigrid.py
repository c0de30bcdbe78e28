"""The chain samplers of the multi-grid EBM's contrastive-divergence family (Gao et al., CVPR 2018):

- ``multigrid`` (multi-grid CD): each training chain starts from the 1×1 average of its observed image, up-sampled to
  the first grid; each grid's result, up-sampled, starts the next (``grids.coarse_to_fine``);
- ``data`` (single-grid and one-step CD): each training chain starts at its observed image, on the one grid.

Evaluation chains of both start, as in the official code, from the 1×1 averages of training images (a seeded draw,
with replacement only when more samples are scored than there are training images), run through the model's grids
(one grid for the single-grid models). The model keeps those averages as the buffer ``model.image_means`` (N, C),
filled from its training images, and provides ``grids`` (its learned grid sizes).
"""

from __future__ import annotations

import torch

from genbench.errors import GenbenchError
from genbench.samplers.base import SAMPLERS, ChainSampler
from genbench.samplers.grids import downsample, draw_images


class AverageStartChains(ChainSampler):
    """Evaluation chains from the 1×1 averages of a seeded draw of training images."""

    requires = ("image_means", "grids")

    def __init__(self, model) -> None:
        super().__init__(model)
        self.order: torch.Tensor | None = None  # training images whose averages start the evaluation chains

    def prepare_evaluation(self, n: int, seed: int, sync: bool = False) -> dict:
        means = self.model.image_means
        self.order, replaced = draw_images(means.shape[0], n, seed)
        self.record = {"chains": self.kinds[0], "start": "1x1 averages of training images",
                       "training_images": int(means.shape[0]), "with_replacement": replaced,
                       "grids": list(self.model.grids), "steps": self.evaluation_config().n_steps}
        return self.record

    def evaluation_start(self, n: int, first: int) -> torch.Tensor:
        means = self.model.image_means
        if means.shape[0] == 0:
            raise GenbenchError("no training images' averages to start the evaluation chains from: the model has not "
                                "been trained (its averages are kept when training starts)")
        if self.order is None:  # drawn without prepare_evaluation (a direct ``sample``): the first images in order
            index = torch.arange(first, first + n) % means.shape[0]
        else:
            index = self.order[first:first + n]
        return means[index.to(means.device)].view(n, -1, 1, 1)


@SAMPLERS.register("multigrid")
class MultigridChains(AverageStartChains):
    """Multi-grid CD: training chains start from the observed batch's 1×1 averages."""

    kinds = ("multigrid",)

    def start(self, x_data: torch.Tensor, n: int) -> tuple[None, torch.Tensor]:
        return None, downsample(x_data[:n], 1)

    @classmethod
    def describe(cls, record: dict) -> str:
        grids = " → ".join(f"{g}×{g}" for g in [1, *record["grids"]])
        return f"1×1 averages of training images, grids {grids}, {record['steps']} Langevin steps each"


@SAMPLERS.register("data")
class DataChains(AverageStartChains):
    """Single-grid and one-step CD: training chains start at the observed images themselves."""

    kinds = ("1x1 averages",)

    def start(self, x_data: torch.Tensor, n: int) -> tuple[None, torch.Tensor]:
        return None, x_data[:n]

    @classmethod
    def describe(cls, record: dict) -> str:
        size = record["grids"][-1]
        return f"1×1 averages of training images up-sampled to {size}×{size}, {record['steps']} Langevin steps"
