"""Corruptions of the papers' image tables, each fixed by a seed and recorded. Each kind is an entry of
``CORRUPTION_KINDS`` (a name pattern and its masks); a table or model file may register more:

- ``M<k>``: occlusion by one k×k square per image at a random position inside the image (completion
  M30/M40/M50, recovery M20/M30);
- ``C<k>``: one k×k square at the centre of every image (the Context Encoder's central region; the multi-grid
  paper's "mask");
- ``P.<x>``: salt-and-pepper noise on a fraction x of the pixels of each image (recovery P.5/P.7/P.9): each
  chosen pixel becomes black or white (all channels), with equal probability;
- ``D<k>``: a doodle of k free-form strokes per image (the multi-grid paper's "doodle", whose strokes it does not
  define; ``doodle_masks`` says how they are drawn).

A mask is True where a pixel is corrupted (occluded / noisy), shape (n, 1, H, W).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import torch

from genbench.errors import GenbenchError
from genbench.registry import Registry


@dataclass(frozen=True)
class Corruption:
    """One corruption of the tables: its ``kind`` (a ``CORRUPTION_KINDS`` entry) and that kind's parameter — ``size``
    (a square's side, or a doodle's stroke count) or ``fraction`` (salt-and-pepper)."""

    name: str
    kind: str
    size: int | None = None
    fraction: float | None = None

    def apply(self, images: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(corrupted images, mask) for images in [-1, 1] of shape (n, c, H, W); the same seed gives the same masks."""
        return CORRUPTION_KINDS.get(self.kind).apply(self, images, seed)

    def record(self, seed: int) -> dict:
        return {"corruption": self.name, "kind": self.kind, "size": self.size, "fraction": self.fraction, "mask_seed": seed}


@dataclass(frozen=True)
class CorruptionKind:
    """A kind of corruption: names matching ``pattern`` (a regex with one group, the parameter), ``parse(name,
    parameter) → Corruption`` (refusing bad values in one line), ``apply(corruption, images, seed) → (corrupted,
    mask)``, and ``usage`` for the error that lists the kinds."""

    pattern: str
    parse: Callable[[str, str], Corruption]
    apply: Callable[[Corruption, torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]
    usage: str


CORRUPTION_KINDS: Registry[CorruptionKind] = Registry("corruption kind")


def parse_corruption(name: str) -> Corruption:
    """The corruption a name stands for: ``M30`` → a 30×30 occluding square; ``P.5`` (or ``P0.5``) →
    salt-and-pepper on half the pixels; ``C32``, ``D8`` → a central square, a doodle of 8 strokes."""
    for kind in CORRUPTION_KINDS.values():
        match = re.fullmatch(kind.pattern, name)
        if match:
            return kind.parse(name, match.group(1))
    usage = "; ".join(kind.usage for kind in CORRUPTION_KINDS.values())
    raise GenbenchError(f"unknown corruption {name!r}; use {usage}")


def square_side(name: str, parameter: str) -> int:
    size = int(parameter)
    if size < 1:
        raise GenbenchError(f"occlusion {name}: the square must be at least 1 pixel")
    return size


def occluded(masks: Callable[[int, tuple[int, int], Corruption, int], torch.Tensor]):
    """``apply`` for a kind that blanks (sets to 0, mid-grey) the pixels of ``masks(n, (H, W), corruption, seed)``."""
    def apply(corruption: Corruption, images: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        mask = masks(images.shape[0], tuple(images.shape[-2:]), corruption, seed)
        return images.masked_fill(mask, 0.0), mask
    return apply


def parse_pepper(name: str, parameter: str) -> Corruption:
    fraction = float(parameter)
    if not 0 < fraction < 1:
        raise GenbenchError(f"salt-and-pepper {name}: the fraction must be in (0, 1), got {fraction}")
    return Corruption(name, "salt-and-pepper", fraction=fraction)


def parse_doodle(name: str, parameter: str) -> Corruption:
    strokes = int(parameter)
    if strokes < 1:
        raise GenbenchError(f"doodle {name}: at least one stroke, got {strokes}")
    return Corruption(name, "doodle", size=strokes)


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


def central_masks(n: int, shape: tuple[int, int], size: int) -> torch.Tensor:
    """n masks of the size×size square at the centre of the image (its top-left corner at ⌊(H − size)/2⌋)."""
    height, width = int(shape[0]), int(shape[1])
    if size > min(height, width):
        raise GenbenchError(f"a central square of {size}×{size} does not fit in {height}×{width} images")
    mask = torch.zeros(n, 1, height, width, dtype=torch.bool)
    top, left = (height - size) // 2, (width - size) // 2
    mask[:, :, top:top + size, left:left + size] = True
    return mask


def doodle_masks(n: int, shape: tuple[int, int], strokes: int, seed: int) -> torch.Tensor:
    """n doodles of ``strokes`` free-form strokes each: a stroke starts at a uniform point and runs through 4
    segments, each in a uniform direction with a length uniform in [side/8, side/4] (side = min(H, W)), kept inside
    the image; a pixel is corrupted when its centre lies within a brush radius max(1, side/32) of a segment."""
    height, width = int(shape[0]), int(shape[1])
    side = min(height, width)
    radius = max(1.0, side / 32)
    generator = torch.Generator().manual_seed(seed)
    ys = torch.arange(height, dtype=torch.float64).view(1, height, 1)
    xs = torch.arange(width, dtype=torch.float64).view(1, 1, width)
    limit = torch.tensor([height - 1, width - 1], dtype=torch.float64)
    mask = torch.zeros(n, height, width, dtype=torch.bool)
    for _ in range(strokes):
        point = torch.rand(n, 2, generator=generator, dtype=torch.float64) * limit
        for _ in range(4):
            angle = torch.rand(n, generator=generator, dtype=torch.float64) * 2 * math.pi
            length = side / 8 + torch.rand(n, generator=generator, dtype=torch.float64) * side / 8
            end = (point + length.unsqueeze(1) * torch.stack([torch.sin(angle), torch.cos(angle)], dim=1))
            end = torch.minimum(torch.maximum(end, torch.zeros(2, dtype=torch.float64)), limit)
            mask |= within_segment(ys, xs, point, end, radius)
            point = end
    return mask.unsqueeze(1)


def within_segment(ys: torch.Tensor, xs: torch.Tensor, start: torch.Tensor, end: torch.Tensor,
                   radius: float) -> torch.Tensor:
    """(n, H, W): whether each pixel centre (y, x) lies within ``radius`` of the segment start[i] → end[i]."""
    sy, sx = start[:, 0].view(-1, 1, 1), start[:, 1].view(-1, 1, 1)
    dy, dx = (end[:, 0] - start[:, 0]).view(-1, 1, 1), (end[:, 1] - start[:, 1]).view(-1, 1, 1)
    length2 = (dy ** 2 + dx ** 2).clamp(min=1e-12)
    t = (((ys - sy) * dy + (xs - sx) * dx) / length2).clamp(0, 1)
    return (ys - sy - t * dy) ** 2 + (xs - sx - t * dx) ** 2 <= radius ** 2


CORRUPTION_KINDS.register("occlusion")(CorruptionKind(
    r"M(\d+)", lambda name, p: Corruption(name, "occlusion", size=square_side(name, p)),
    occluded(lambda n, shape, c, seed: occlusion_masks(n, shape, c.size, seed)),
    "M<k> (a k×k occluding square, e.g. M30)"))
CORRUPTION_KINDS.register("salt-and-pepper")(CorruptionKind(
    r"P(0?\.\d+)", parse_pepper, lambda c, images, seed: salt_and_pepper(images, c.fraction, seed),
    "P.<x> (salt-and-pepper on a fraction x of the pixels, e.g. P.5)"))
CORRUPTION_KINDS.register("central")(CorruptionKind(
    r"C(\d+)", lambda name, p: Corruption(name, "central", size=square_side(name, p)),
    occluded(lambda n, shape, c, seed: central_masks(n, shape, c.size)),
    "C<k> (the central k×k square, e.g. C32)"))
CORRUPTION_KINDS.register("doodle")(CorruptionKind(
    r"D(\d+)", parse_doodle, occluded(lambda n, shape, c, seed: doodle_masks(n, shape, c.size, seed)),
    "D<k> (a doodle of k free-form strokes, e.g. D8)"))
