"""Inception-style scores through torch-fidelity: the real Inception-v3 (2015-12-05 weights, looked up
locally, never downloaded implicitly) or any feature extractor registered with torch-fidelity (the
offline classifier). Images go in as uint8, quantised by rounding.

IS = exp(E_x KL(p(y|x) ‖ p(y))), mean ± population std over 10 splits, samples shuffled with
torch-fidelity's fixed seed 2020 (the protocol string below is recorded with every number).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch_fidelity
from torch.utils.data import Dataset

from genbench.data.base import to_uint8
from genbench.errors import GenbenchError

INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_WEIGHTS_FILE}"
IS_PROTOCOL = "torch-fidelity isc, {splits} splits, shuffle seed 2020, float64, population std, uint8 rounded"


class Uint8Images(Dataset):
    """A torch-fidelity input: (N, C, H, W) images in [-1, 1] → uint8 RGB tensors (grey tiled to 3)."""

    def __init__(self, images: torch.Tensor) -> None:
        if images.dtype != torch.uint8:
            images = to_uint8(images)
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        self.images = images.contiguous()

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


def inception_weights_dir() -> Path:
    """Where torch-fidelity caches its weights: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def resolve_inception_weights(path: str | os.PathLike | None = None) -> Path:
    """Explicit path → ``$GENBENCH_INCEPTION_WEIGHTS`` → torch-fidelity's cache; else one actionable error."""
    explicit = path or os.environ.get("GENBENCH_INCEPTION_WEIGHTS")
    if explicit:
        candidate = Path(explicit).expanduser()
        if candidate.is_file():
            return candidate
        raise GenbenchError(f"Inception weights not found at {candidate}; point inception_weights at {INCEPTION_WEIGHTS_FILE}")
    candidate = inception_weights_dir() / INCEPTION_WEIGHTS_FILE
    if candidate.is_file():
        return candidate
    raise GenbenchError(
        f"Inception weights {INCEPTION_WEIGHTS_FILE} not found in {candidate.parent}; download {INCEPTION_WEIGHTS_URL} "
        f"there (or set $GENBENCH_INCEPTION_WEIGHTS), or score with the offline classifier_score metric"
    )


def fidelity_scores(
    images: torch.Tensor,
    feature_extractor: str,
    weights_path: str | os.PathLike,
    *,
    isc: bool = True,
    fid_reference: torch.Tensor | None = None,
    splits: int = 10,
    batch_size: int = 64,
    feature_layer_isc: str | None = None,
    feature_layer_fid: str | None = None,
) -> dict[str, float]:
    """IS (and FID against ``fid_reference`` if given) of ``images`` with a torch-fidelity extractor."""
    if images.shape[0] < splits:
        raise GenbenchError(f"inception score needs at least {splits} samples, got {images.shape[0]}")
    kwargs = dict(
        input1=Uint8Images(images),
        isc=isc,
        fid=fid_reference is not None,
        feature_extractor=feature_extractor,
        feature_extractor_weights_path=str(weights_path),
        isc_splits=splits,
        batch_size=batch_size,
        cuda=torch.cuda.is_available(),
        cache=False,
        verbose=False,
    )
    if fid_reference is not None:
        kwargs["input2"] = Uint8Images(fid_reference)
    if feature_layer_isc:
        kwargs["feature_layer_isc"] = feature_layer_isc
    if feature_layer_fid:
        kwargs["feature_layer_fid"] = feature_layer_fid
    return torch_fidelity.calculate_metrics(**kwargs)


def inception_score(images: torch.Tensor, weights_path: str | os.PathLike | None = None, splits: int = 10,
                    fid_reference: torch.Tensor | None = None) -> dict[str, float]:
    """The papers' Inception score (and optionally FID) with the 2015-12-05 Inception-v3 weights."""
    weights = resolve_inception_weights(weights_path)
    out = fidelity_scores(images, "inception-v3-compat", weights, splits=splits, fid_reference=fid_reference)
    result = {"inception_score": out["inception_score_mean"], "inception_score_std": out["inception_score_std"]}
    if fid_reference is not None:
        result["fid"] = out["frechet_inception_distance"]
    return result
