"""The versions of the packages that decide a number, recorded with every row and every trained classifier."""

from __future__ import annotations

import importlib.metadata
import platform

VERSIONED_PACKAGES = ("torch", "torchvision", "lightning", "torchmetrics", "torch-fidelity", "numpy", "genbench")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
