"""Model registry: every model is a LightningModule registered by name."""

from genbench.config import instantiate
from genbench.models.base import MODELS, GenerativeModel
from genbench.models import abp, coopnets, dcgan, descriptor, ebgan, infogan, kim_bengio, vae, wgan  # noqa: F401


def build_model(name: str, **options) -> GenerativeModel:
    """Instantiate the registered model ``name`` with validated options."""
    return instantiate(MODELS.get(name), options, f"model ({name})")


def model_class(name: str) -> type[GenerativeModel]:
    return MODELS.get(name)


__all__ = ["MODELS", "GenerativeModel", "build_model", "model_class"]
