"""Model registry: every model is a LightningModule registered by name, in its own file of this package (every
file is imported here, in name order, so adding a model is one file plus its YAML)."""

import importlib
import pkgutil

from genbench.config import instantiate
from genbench.models.base import MODELS, GenerativeModel

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def build_model(name: str, **options) -> GenerativeModel:
    """Instantiate the registered model ``name`` with validated options."""
    return instantiate(MODELS.get(name), options, f"model ({name})")


def model_class(name: str) -> type[GenerativeModel]:
    return MODELS.get(name)


__all__ = ["MODELS", "GenerativeModel", "build_model", "model_class"]
