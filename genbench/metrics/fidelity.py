"""The real Inception-v3 as a feature space: the 2015-12-05 weights are looked up locally and
never downloaded by a run. Images go in as uint8, quantised by rounding."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from genbench.errors import GenbenchError
from genbench.metrics.features import FeatureSpace
from genbench.paths import cache_dir

INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_WEIGHTS_FILE}"


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


def inception_space(path: str | os.PathLike | None = None):
    """The real Inception-v3 as a feature space: ``logits_unbiased`` for the IS, the 2048-d pool for
    FID/KID/precision-recall; real-image features are cached under ``<cache>/inception``."""
    weights = resolve_inception_weights(path)
    return FeatureSpace("inception", "inception-v3-compat", weights, "logits_unbiased", "2048",
                        f"inception-v3-2015-12-05-{weights.stat().st_size}", cache_dir() / "inception")
