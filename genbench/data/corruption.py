"""Corruptions of the papers' image tables, each fixed by a seed and recorded.

- ``M<k>``: occlusion by one k×k square per image at a random position inside the image (completion
  M30/M40/M50, recovery M20/M30);
- ``P.<x>``: salt-and-pepper noise on a fraction x of the pixels of each image (recovery P.5/P.7/P.9): each
  chosen pixel becomes black or white (all channels), with equal probability.

A mask is True where a pixel is corrupted (occluded / noisy), shape (n, 1, H, W).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from genbench.errors import GenbenchError


@dataclass(frozen=True)
class Corruption:
    """One corruption of the tables: ``kind`` "occlusion" (``size`` k) or "salt-and-pepper" (``fraction``)."""

    name: str
    kind: str
    size: int | None = None
    fraction: float | None = None

    def apply(self, images: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(corrupted images, mask) for images in [-1, 1] of shape (n, c, H, W); the same seed gives the same masks."""
        if self.kind == "occlusion":
            mask = occlusion_masks(images.shape[0], images.shape[-2:], self.size, seed)
            return images.masked_fill(mask, 0.0), mask
        return salt_and_pepper(images, self.fraction, seed)

    def record(self, seed: int) -> dict:
        return {"corruption": self.name, "kind": self.kind, "size": self.size, "fraction": self.fraction, "mask_seed": seed}


def parse_corruption(name: str) -> Corruption:
    """``M30`` → a 30×30 occluding square; ``P.5`` (or ``P0.5``) → salt-and-pepper on half the pixels."""
    square = re.fullmatch(r"M(\d+)", name)
    if square:
        size = int(square.group(1))
        if size < 1:
            raise GenbenchError(f"occlusion {name}: the square must be at least 1 pixel")
        return Corruption(name, "occlusion", size=size)
    pepper = re.fullmatch(r"P(0?\.\d+)", name)
    if pepper:
        fraction = float(pepper.group(1))
        if not 0 < fraction < 1:
            raise GenbenchError(f"salt-and-pepper {name}: the fraction must be in (0, 1), got {fraction}")
        return Corruption(name, "salt-and-pepper", fraction=fraction)
    raise GenbenchError(f"unknown corruption {name!r}; use M<k> (a k×k occluding square, e.g. M30) or P.<x> "
                        f"(salt-and-pepper on a fraction x of the pixels, e.g. P.5)")


def occlusion_masks(n: int, shape: tuple[int, int], size: int, seed: int) -> torch.Tensor:
    """n masks of one size×size square each, its top-left corner uniform over the positions inside the image."""
    height, width = int(shape[0]), int(shape[1])
    if size > min(height, width):
        raise GenbenchError(f"an occluding square of {size}×{size} does not fit in {height}×{width} images")
    generator = torch.Generator().manual_seed(seed)
    top = torch.randint(0, height - size + 1, (n,), generator=generator)
    left = torch.randint(0, width - size + 1, (n,), generator=generator)
    rows = torch.arange(height).view(1, height, 1)
    cols = torch.arange(width).view(1, 1, width)
    inside = ((rows >= top.view(n, 1, 1)) & (rows < (top + size).view(n, 1, 1))
              & (cols >= left.view(n, 1, 1)) & (cols < (left + size).view(n, 1, 1)))
    return inside.unsqueeze(1)


def salt_and_pepper(images: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exactly round(fraction·H·W) pixels of each image set to −1 or +1 (all channels); returns (images, mask)."""
    if not 0 < fraction < 1:
        raise GenbenchError(f"salt-and-pepper fraction must be in (0, 1), got {fraction}")
    n, _, height, width = images.shape
    count = round(fraction * height * width)
    generator = torch.Generator().manual_seed(seed)
    order = torch.rand(n, height * width, generator=generator).argsort(dim=1)
    mask = torch.zeros(n, height * width, dtype=torch.bool)
    mask.scatter_(1, order[:, :count], True)
    mask = mask.view(n, 1, height, width)
    values = torch.where(torch.rand(n, 1, height, width, generator=generator) < 0.5, -1.0, 1.0).to(images.dtype)
    return torch.where(mask, values, images), mask
