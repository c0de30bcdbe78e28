"""Scores of the completion and recovery tables, on pixel values in [0, 1] (images in [-1, 1] are mapped
by (x + 1)/2), over the corrupted region of each image (``region="mask"``) or the whole image ("image"):

    error = mean |x̂ − x|,      PSNR = 10·log10(1 / mean (x̂ − x)²)   (per image, then averaged)

A perfect completion has PSNR +inf (reported as such, not an error).
"""

from __future__ import annotations

import math

import torch

from genbench.errors import GenbenchError


def _per_image(completed: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None, power: int) -> torch.Tensor:
    if completed.shape != target.shape:
        raise GenbenchError(f"completed images {tuple(completed.shape)} and targets {tuple(target.shape)} differ in shape")
    diff = ((completed.double() - target.double()) / 2).abs().pow(power)  # [-1, 1] → [0, 1] halves differences
    if mask is None:
        return diff.flatten(1).mean(dim=1)
    weight = mask.expand_as(diff).double()
    counted = weight.flatten(1).sum(dim=1)
    if (counted == 0).any():
        raise GenbenchError("a mask covers no pixel: the region error is undefined")
    return (diff * weight).flatten(1).sum(dim=1) / counted


def region_error(completed: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Mean absolute difference on [0, 1] over the masked pixels (all channels) of each image, averaged."""
    return float(_per_image(completed, target, mask, 1).mean())


def region_psnr(completed: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """PSNR in dB on [0, 1] over the masked pixels of each image, averaged over images (+inf if any is exact)."""
    mse = _per_image(completed, target, mask, 2)
    values = [math.inf if m == 0 else 10 * math.log10(1.0 / float(m)) for m in mse]
    return sum(values) / len(values)
