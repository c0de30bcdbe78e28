"""The grids of the multi-grid EBM (Gao, Lu, Zhou, Zhu, Wu; CVPR 2018): moving images between an s×s and an S×S grid
(S a multiple of s), the coarse-to-fine schedule of its chains, and the seeded draw of the training images whose 1×1
averages start evaluation chains.

    down-sampling (block average):   D(X)[c, i, j] = (1/r²) Σ_{0≤a,b<r} X[c, r·i + a, r·j + b],   r = S / s
    up-sampling (block replication): U(Y)[c, i, j] = Y[c, ⌊i/r⌋, ⌊j/r⌋]

as the official code's fixed convolutions (a stride-r conv of weight 1/r² per channel; a stride-r transposed conv of
ones). D(U(Y)) = Y, and U(D(X)) is X's block means.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from genbench.errors import GenbenchError


def ratio(from_size: int, to_size: int) -> int:
    """r with ``to_size = r·from_size`` (or the reverse); a grid that does not divide the other is one clear line."""
    small, large = sorted((from_size, to_size))
    if small < 1 or large % small:
        raise GenbenchError(f"a {small}×{small} grid does not divide a {large}×{large} one; each grid must divide the next")
    return large // small


def downsample(x: torch.Tensor, size: int) -> torch.Tensor:
    """Block averages of ``x`` (B, C, S, S) on a ``size``×``size`` grid."""
    r = ratio(size, x.shape[-1])
    return x if r == 1 else F.avg_pool2d(x, r)


def upsample(x: torch.Tensor, size: int) -> torch.Tensor:
    """``x`` (B, C, s, s) with every pixel replicated into an r×r block of a ``size``×``size`` grid."""
    r = ratio(x.shape[-1], size)
    return x if r == 1 else x.repeat_interleave(r, dim=-2).repeat_interleave(r, dim=-1)


def check_grids(grids: list[int], image_size: int) -> list[int]:
    """The learned grids of a multi-grid model: increasing sizes, each dividing the next, the last the image size."""
    if not isinstance(grids, (list, tuple)) or not grids or not all(isinstance(g, int) and g >= 1 for g in grids):
        raise GenbenchError(f"model.grids must be a non-empty list of grid sizes, got {grids!r}")
    if list(grids) != sorted(set(grids)) or grids[-1] != image_size:
        raise GenbenchError(f"model.grids must increase and end at the image size {image_size}, got {list(grids)}")
    for small, large in zip([1, *grids], grids):
        ratio(small, large)
    return list(grids)


def default_grids(image_size: int) -> list[int]:
    """The official 4×4 and 16×16 grids that divide ``image_size`` (each dividing the next), then ``image_size``:
    [4, 16, 64] at 64×64 (the official code), [4, 16, 32] at 32×32, [4, 28] at 28×28."""
    grids: list[int] = []
    for size in (4, 16):
        if size < image_size and image_size % size == 0 and (not grids or size % grids[-1] == 0):
            grids.append(size)
    return [*grids, image_size]


Reviser = Callable[[int, torch.Tensor], tuple[torch.Tensor, object]]


def coarse_to_fine(x: torch.Tensor, grids: list[int], revise: Reviser) -> list[tuple[int, torch.Tensor, object]]:
    """The multi-grid schedule: from ``x`` on its own (coarser) grid, for each size of ``grids`` in turn, up-sample the
    last result to that size and revise it there, ``revise(size, x) → (x̃, diagnostics)``. Returns (size, x̃,
    diagnostics) per grid; the last is the sample."""
    out = []
    for size in grids:
        x, diagnostics = revise(size, upsample(x, size))
        out.append((size, x, diagnostics))
    return out


def draw_images(total: int, count: int, seed: int) -> tuple[torch.Tensor, bool]:
    """``count`` indices into ``total`` training images by ``seed``: distinct when ``count`` ≤ ``total``, else drawn
    with replacement. Returns (indices, drawn with replacement)."""
    if total < 1:
        raise GenbenchError("no training images to start the chains from")
    generator = torch.Generator().manual_seed(seed)
    if count <= total:
        return torch.randperm(total, generator=generator)[:count], False
    return torch.randint(total, (count,), generator=generator), True
