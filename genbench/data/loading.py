"""Serving training batches so that a resumed run sees the batches an uninterrupted one would: an epoch order that
depends on (seed, epoch) only, and a loader that can start inside an epoch; the tensor datasets it serves."""

from __future__ import annotations

import itertools

import torch
from torch.utils.data import DataLoader, Dataset

from genbench.data.pixels import to_unit_range


class ImageTensorDataset(Dataset):
    """uint8 images (N, C, H, W) served as float in [-1, 1], with label and index."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, pixel_norm: str = "fixed") -> None:
        self.images = images
        self.labels = labels
        self.pixel_norm = pixel_norm

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int):
        return to_unit_range(self.images[index], self.pixel_norm), self.labels[index], index


class CorruptedImageDataset(Dataset):
    """Training images seen through a fixed corruption (the ABP recovery table): batches are
    ``(corrupted x, label, index, observed)`` with ``observed`` (1, H, W) = 1 where a pixel is intact.
    ``images`` keeps the clean uint8 images (the ground truth of the recovery error)."""

    def __init__(self, clean: ImageTensorDataset, corrupted: torch.Tensor, masks: torch.Tensor) -> None:
        self.images = clean.images
        self.labels = clean.labels
        self.pixel_norm = clean.pixel_norm
        self.corrupted = corrupted
        self.masks = masks

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int):
        return self.corrupted[index], self.labels[index], index, (~self.masks[index]).to(self.corrupted.dtype)


class EpochShuffleSampler(torch.utils.data.Sampler):
    """A random order that is a function of (seed, epoch) only — not of the global RNG — so a resumed run
    sees the same batches as an uninterrupted one. Lightning calls ``set_epoch`` at every epoch start."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())


class _SkipFirstBatches:
    """A batch sampler whose first iteration starts after ``skip`` batches (their indices are drawn, no image is
    loaded); later iterations (epochs) are whole. Its length is the whole epoch's, as Lightning counts it."""

    def __init__(self, batch_sampler, skip: int) -> None:
        self.batch_sampler = batch_sampler
        self.skip = skip

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self):
        # lazily, at the first batch: a multi-worker DataLoader creates (and drops) one iterator before the one it uses
        def batches():
            skip, self.skip = self.skip, 0
            yield from itertools.islice(iter(self.batch_sampler), skip, None)

        return batches()


class ResumableDataLoader(DataLoader):
    """A DataLoader that can resume inside an epoch: with ``skip_batches`` = k its first epoch yields batches
    k, k+1, … of that epoch's order — the batches an interrupted run had not trained on. (Lightning alone
    restarts a resumed epoch at its first batch.) A skip of a whole epoch or more is ignored."""

    def __init__(self, *args, skip_batches: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        whole = self.batch_sampler is not None and 0 < skip_batches < len(self.batch_sampler)
        self._skipping = _SkipFirstBatches(self.batch_sampler, skip_batches) if whole else None

    @property
    def _index_sampler(self):
        return self._skipping if self._skipping is not None else super()._index_sampler
