"""Datamodule registry: ``build_datamodule("imagenet-scenes-tiny", n_per_class=50)``."""

from genbench.config import instantiate
from genbench.data.base import ImageDataModule
from genbench.data.loading import ImageTensorDataset
from genbench.data.pixels import to_uint8, to_unit_range
from genbench.data.datasets import DATASETS, IMAGENET_SCENE_CATEGORIES


def build_datamodule(name: str, **options) -> ImageDataModule:
    """Instantiate the registered dataset ``name`` with validated options."""
    return instantiate(DATASETS.get(name), options, f"data ({name})")


__all__ = ["DATASETS", "IMAGENET_SCENE_CATEGORIES", "ImageDataModule", "ImageTensorDataset", "build_datamodule",
           "to_uint8", "to_unit_range"]
