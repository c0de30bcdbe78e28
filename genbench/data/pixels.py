"""Pixel values: the uint8 images datasets keep, the [-1, 1] floats models see, and back."""

from __future__ import annotations

import torch


def to_unit_range(images: torch.Tensor, pixel_norm: str = "fixed") -> torch.Tensor:
    """uint8 → [-1, 1]: ``fixed`` is x/127.5 − 1; ``minmax`` is the official per-image
    (x − min)/(max − min)·2 − 1."""
    x = images.float()
    if pixel_norm == "fixed":
        return x / 127.5 - 1.0
    dims = tuple(range(-3, 0))
    lo = x.amin(dim=dims, keepdim=True)
    hi = x.amax(dim=dims, keepdim=True)
    return (x - lo) / (hi - lo).clamp_min(1e-8) * 2.0 - 1.0


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats → uint8 by rounding (not truncation), clipped first."""
    return ((images.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
