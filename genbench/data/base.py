"""The datamodule base every dataset shares.

Images are decoded once, resized to ``image_size`` and kept as uint8 tensors; batches are returned as
``(x, label, index)`` with ``x`` in [-1, 1] (``index`` lets ABP keep one latent vector per training
image). Training images can be subsampled to ``n_per_class`` per category with a fixed ``subset_seed``
(the papers' n = 50 … 1100), independent of the training seed.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from genbench.data.corruption import parse_corruption
from genbench.data.files import Collected, ImageRef, content_signature, open_image
from genbench.data.loading import CorruptedImageDataset, EpochShuffleSampler, ImageTensorDataset, ResumableDataLoader
from genbench.data.pixels import to_unit_range
from genbench.errors import GenbenchError


class ImageDataModule(L.LightningDataModule):
    """Base of every registered dataset.

    Args:
        root: dataset folder; default ``$GENBENCH_DATA/<name>`` or the dataset's offline fallbacks.
        image_size: side of the square images fed to the models.
        channels: 3 (RGB) or 1 (greyscale).
        n_per_class: training images per category (None: all); exact and deterministic.
        subset_seed: seed of the ``n_per_class`` draw and of splits made from the training folder.
        batch_size: observed images per training step.
        val_fraction: fraction of each class moved to validation when the dataset has no val split.
        resize: ``crop`` (resize the short side, centre crop) or ``stretch`` (official CoopNets: no crop).
        pixel_norm: ``fixed`` (x/127.5 − 1) or ``minmax`` (official per-image min–max to [-1, 1]).
        download: let torchvision download the dataset when the user asks for it.
        shuffle_seed: seed of the training order (epoch e uses seed·100003 + e; the harness passes the run seed).
        corruption: corrupt the training images once, e.g. ``P.5`` (salt-and-pepper on half the pixels) or ``M20``
            (a 20×20 occluding square): batches then carry the mask of intact pixels (ABP recovery table).
        corruption_seed: seed of the corruption masks (recorded with the table rows).
    """

    name: str = "base"

    def __init__(
        self,
        root: str | None = None,
        image_size: int = 64,
        channels: int = 3,
        n_per_class: int | None = None,
        subset_seed: int = 0,
        batch_size: int = 64,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        resize: Literal["crop", "stretch"] = "crop",
        pixel_norm: Literal["fixed", "minmax"] = "fixed",
        download: bool = False,
        shuffle_seed: int = 0,
        corruption: str | None = None,
        corruption_seed: int = 0,
    ) -> None:
        super().__init__()
        if image_size < 4:
            raise GenbenchError(f"image_size must be at least 4, got {image_size}")
        if channels not in (1, 3):
            raise GenbenchError(f"channels must be 1 or 3, got {channels}")
        if n_per_class is not None and n_per_class < 1:
            raise GenbenchError(f"n_per_class must be positive, got {n_per_class}")
        if batch_size < 1:
            raise GenbenchError(f"data.batch_size must be a positive integer, got {batch_size!r}")
        if num_workers < 0:
            raise GenbenchError(f"data.num_workers must be ≥ 0, got {num_workers!r}")
        if not 0.0 <= val_fraction < 1.0:
            raise GenbenchError(f"val_fraction must be in [0, 1), got {val_fraction}")
        if resize not in ("crop", "stretch"):
            raise GenbenchError(f"resize must be 'crop' or 'stretch', got {resize!r}")
        if pixel_norm not in ("fixed", "minmax"):
            raise GenbenchError(f"pixel_norm must be 'fixed' or 'minmax', got {pixel_norm!r}")
        self.root = root
        self.image_size = image_size
        self.channels = channels
        self.n_per_class = n_per_class
        self.subset_seed = subset_seed
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_fraction = val_fraction
        self.resize = resize
        self.pixel_norm = pixel_norm
        self.download = download
        self.shuffle_seed = shuffle_seed
        self.corruption_spec = None  # parsed here, so a bad name or fraction fails at construction, in one line
        if corruption is not None:
            self.corruption_spec = parse_corruption(corruption)
        self.corruption = corruption
        self.corruption_seed = corruption_seed
        self.resume_batches = 0  # batches of the current epoch a resumed run already trained on (ResumeWithinEpoch)
        self.datasets: dict[str, ImageTensorDataset] = {}
        self.class_names: list[str] = []
        self.file_lists: dict[str, list[str]] = {}
        self.data_root: Path | None = None
        self._plan: dict[str, list[tuple[ImageRef, int]]] | None = None

    # -- to implement per dataset -------------------------------------------------------------
    def collect(self) -> Collected:
        """Find the images of every available split."""
        raise NotImplementedError

    def preprocess(self, image: Image.Image) -> Image.Image:
        """Resize to ``image_size`` (crop or stretch); datasets may crop first (CelebA)."""
        size = self.image_size
        if self.resize == "stretch":
            return image.resize((size, size), Image.BICUBIC)
        w, h = image.size
        scale = size / min(w, h)
        if scale != 1.0:
            image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
        w, h = image.size
        left, top = (w - size) // 2, (h - size) // 2
        return image.crop((left, top, left + size, top + size))

    # -- shared ---------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        self.plan()
        return len(self.class_names)

    @property
    def num_train(self) -> int:
        return len(self.plan()["train"])

    def prepare_data(self) -> None:
        self.collect()

    def plan(self) -> dict[str, list[tuple[ImageRef, int]]]:
        """The labelled image references of every split after the held-out split and the ``n_per_class``
        draw — without decoding any image (cheap: cache keys and fingerprints need only this)."""
        if self._plan is None:
            collected = self.collect()
            self.class_names = collected.class_names
            self.data_root = collected.root
            splits = dict(collected.splits)
            if "val" not in splits:
                splits["train"], splits["val"] = self._split_off(splits["train"], self.val_fraction)
            splits["train"] = self._subsample(splits["train"])
            self.file_lists = {split: [str(ref) if isinstance(ref, Path) else f"{split}:{i}" for i, (ref, _) in enumerate(items)]
                               for split, items in splits.items()}
            self._plan = splits
        return self._plan

    @property
    def heldout_split(self) -> str:
        """The split of real images no model trains on: ``test`` where the dataset has one, else ``val``."""
        return "test" if "test" in self.plan() else "val"

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        for split, items in self.plan().items():
            self.datasets[split] = self._load(items)
        if self.corruption_spec is not None:
            clean = self.datasets["train"]
            corrupted, masks = self.corruption_spec.apply(to_unit_range(clean.images, self.pixel_norm), self.corruption_seed)
            self.datasets["train"] = CorruptedImageDataset(clean, corrupted, masks)

    def _split_off(self, items, fraction):
        rng = np.random.default_rng(self.subset_seed)
        train, held = [], []
        for label in sorted({lab for _, lab in items}):
            members = [it for it in items if it[1] == label]
            order = rng.permutation(len(members))
            k = int(round(fraction * len(members)))
            held.extend(members[i] for i in sorted(order[:k]))
            train.extend(members[i] for i in sorted(order[k:]))
        return train, held

    def _subsample(self, items):
        if self.n_per_class is None:
            return items
        rng = np.random.default_rng(self.subset_seed)
        chosen = []
        for label in sorted({lab for _, lab in items}):
            members = [it for it in items if it[1] == label]
            if self.n_per_class > len(members):
                name = self.class_names[label] if label < len(self.class_names) else label
                raise GenbenchError(
                    f"n_per_class={self.n_per_class} exceeds the {len(members)} training images of class "
                    f"{name!r} in {self.name}"
                )
            order = rng.permutation(len(members))[: self.n_per_class]
            chosen.extend(members[i] for i in sorted(order))
        return chosen

    def _load_one(self, ref: ImageRef) -> np.ndarray:
        image = open_image(ref)
        image = image.convert("RGB" if self.channels == 3 else "L")
        array = np.asarray(self.preprocess(image), dtype=np.uint8)
        return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)

    def _load(self, items) -> ImageTensorDataset:
        workers = min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(workers) as pool:
            arrays = list(pool.map(self._load_one, [ref for ref, _ in items]))
        images = torch.from_numpy(np.stack(arrays)) if arrays else torch.zeros(0, self.channels, self.image_size, self.image_size, dtype=torch.uint8)
        labels = torch.tensor([label for _, label in items], dtype=torch.long)
        return ImageTensorDataset(images, labels, self.pixel_norm)

    def fingerprint(self) -> str:
        """Hash of the training file list and preprocessing: two runs with equal fingerprints saw equal data."""
        self.plan()
        h = hashlib.sha256()
        h.update(f"{self.name}|{self.image_size}|{self.channels}|{self.resize}|{self.pixel_norm}".encode())
        if self.corruption is not None:
            h.update(f"|{self.corruption}|{self.corruption_seed}".encode())
        for path in self.file_lists["train"]:
            h.update("/".join(Path(path).parts[-2:]).encode())
        return h.hexdigest()[:16]

    def content_signature(self, splits: list[str]) -> str:
        """What the images of ``splits`` hold (``content_signature``), for cache keys that must change when the
        files are replaced under the same names."""
        plan = self.plan()
        return hashlib.sha256("|".join(f"{s}:{content_signature(plan[s])}" for s in splits if s in plan).encode()
                              ).hexdigest()[:16]

    def images(self, split: str = "train") -> torch.Tensor:
        """All images of ``split`` in [-1, 1] (for metrics on real data)."""
        self.setup()
        if split not in self.datasets:
            raise GenbenchError(f"{self.name} has no {split!r} split; it has {', '.join(self.datasets)}")
        return to_unit_range(self.datasets[split].images, self.pixel_norm)

    def train_images(self) -> torch.Tensor:
        """All training images in [-1, 1]."""
        return self.images("train")

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        self.setup()
        dataset = self.datasets[split]
        skip, self.resume_batches = (self.resume_batches, 0) if shuffle else (0, self.resume_batches)
        return ResumableDataLoader(
            dataset,
            skip_batches=skip,
            batch_size=self.batch_size,
            sampler=EpochShuffleSampler(len(dataset), self.shuffle_seed) if shuffle else None,
            # the loader's own generator: creating an iterator must not draw from the global RNG
            generator=torch.Generator().manual_seed(self.shuffle_seed),
            drop_last=False,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.heldout_split, shuffle=False)

    def describe(self) -> dict:
        plan = self.plan()
        return {
            "dataset": self.name,
            "root": str(self.data_root) if self.data_root else None,
            "classes": self.class_names,
            "n_per_class": self.n_per_class,
            "subset_seed": self.subset_seed,
            "sizes": {k: len(v) for k, v in plan.items()},
            "image_size": self.image_size,
            "channels": self.channels,
            "resize": self.resize,
            "pixel_norm": self.pixel_norm,
            "corruption": self.corruption and {"name": self.corruption, "seed": self.corruption_seed},
            "fingerprint": self.fingerprint(),
        }
