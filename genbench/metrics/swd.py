"""Sliced Wasserstein distance between multi-scale patch distributions (Karras et al., 2018, "Progressive growing
of GANs", section 5): a texture score that needs no pretrained network.

Each image set becomes a Laplacian pyramid (5×5 binomial filter); at every level, 7×7 patches are drawn at random
and flattened into descriptors, which are normalised per channel with the mean and std of both sets together. The
distance between the two descriptor distributions at a level is the sliced Wasserstein distance: the mean, over
random unit directions, of the 1-D Wasserstein-1 distance between the sorted projections,
    SWD(A, B) = E_u [ mean_i | sort(A u)_i − sort(B u)_i | ],
reported ×10³ as in the paper, and averaged over levels. Identical distributions give 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genbench.errors import GenbenchError
from genbench.metrics.context import MetricContext, SampleSet
from genbench.metrics.contract import Metric, Score, ScoreSpec, register

BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


@dataclass(frozen=True)
class SWDSettings:
    """patch: side of the patches; patches_per_image: drawn per image and level; min_size: the coarsest level's
    side; directions, repeats: random directions per repeat and repeats; seed: of patches and directions."""

    patch: int = 7
    patches_per_image: int = 128
    min_size: int = 16
    directions: int = 128
    repeats: int = 4
    seed: int = 0


def _blur(x: torch.Tensor) -> torch.Tensor:
    kernel = (BINOMIAL[:, None] * BINOMIAL[None, :]).to(x)
    kernel = kernel.expand(x.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=x.shape[1])


def laplacian_pyramid(x: torch.Tensor, min_size: int = 16) -> list[torch.Tensor]:
    """Band-pass levels of ``x`` (N, C, H, W) from the finest down to a side of at least ``min_size``; the last level
    is the low-pass residual. Summing the upsampled levels gives ``x`` back."""
    levels = []
    current = x
    while current.shape[-1] // 2 >= min_size and current.shape[-2] // 2 >= min_size:
        down = _blur(current)[..., ::2, ::2]
        up = torch.zeros_like(current)
        up[..., ::2, ::2] = down
        levels.append(current - 4.0 * _blur(up))
        current = down
    levels.append(current)
    return levels


def patch_descriptors(level: torch.Tensor, count: int, patch: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` random ``patch``×``patch`` patches of each image of ``level``, flattened: (N·count, C·patch²)."""
    n, c, h, w = level.shape
    if h < patch or w < patch:
        raise ValueError(f"a {patch}×{patch} patch does not fit a {h}×{w} level")
    ys = torch.randint(0, h - patch + 1, (n, count), generator=generator)
    xs = torch.randint(0, w - patch + 1, (n, count), generator=generator)
    offsets = torch.arange(patch)
    rows = (ys[..., None] + offsets)[..., :, None].expand(n, count, patch, patch)
    cols = (xs[..., None] + offsets)[..., None, :].expand(n, count, patch, patch)
    batch = torch.arange(n)[:, None, None, None].expand(n, count, patch, patch)
    patches = level.permute(0, 2, 3, 1)[batch, rows, cols]  # (n, count, patch, patch, c)
    return patches.permute(0, 1, 4, 2, 3).reshape(n * count, c * patch * patch)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, directions: int, repeats: int,
                       generator: torch.Generator) -> float:
    """E_u mean_i |sort(a u)_i − sort(b u)_i| over ``directions`` × ``repeats`` random unit directions u (equal counts)."""
    total = 0.0
    for _ in range(repeats):
        u = torch.randn(a.shape[1], directions, generator=generator, dtype=a.dtype)
        u = u / u.norm(dim=0, keepdim=True)
        pa, _ = torch.sort(a @ u, dim=0)
        pb, _ = torch.sort(b @ u, dim=0)
        total += float((pa - pb).abs().mean())
    return total / repeats


def swd(fake: torch.Tensor, real: torch.Tensor, settings: SWDSettings = SWDSettings()) -> tuple[float, list[float]]:
    """SWD ×10³ between two image sets in [-1, 1] (N, C, H, W) of the same size: (mean over levels, per level)."""
    if fake.shape[1:] != real.shape[1:]:
        raise ValueError(f"image shapes differ: {tuple(fake.shape[1:])} and {tuple(real.shape[1:])}")
    generator = torch.Generator().manual_seed(settings.seed)
    per_level = []
    for lf, lr in zip(laplacian_pyramid(fake.double(), settings.min_size), laplacian_pyramid(real.double(), settings.min_size)):
        count = max(1, settings.patches_per_image)
        # as many descriptors from each set: the set with fewer images draws more patches per image
        total = count * max(fake.shape[0], real.shape[0])
        a = patch_descriptors(lf, -(-total // fake.shape[0]), settings.patch, generator)[:total]
        b = patch_descriptors(lr, -(-total // real.shape[0]), settings.patch, generator)[:total]
        both = torch.cat([a, b]).view(2 * total, lf.shape[1], -1)
        mean = both.mean(dim=(0, 2), keepdim=True)
        std = both.std(dim=(0, 2), keepdim=True).clamp_min(1e-8)
        a = ((a.view(total, lf.shape[1], -1) - mean) / std).view(total, -1)
        b = ((b.view(total, lf.shape[1], -1) - mean) / std).view(total, -1)
        per_level.append(1e3 * sliced_wasserstein(a, b, settings.directions, settings.repeats, generator))
    return sum(per_level) / len(per_level), per_level


def _texture_swd(samples: SampleSet, ctx: MetricContext) -> dict[str, Score]:
    exemplar = ctx.benchmark_data().images("train")[:1]  # a texture dataset repeats its one exemplar
    images = samples.images
    if images.shape[-1] != exemplar.shape[-1]:
        raise GenbenchError(f"texture_swd compares samples and exemplar of one size, got {images.shape[-1]} and "
                            f"{exemplar.shape[-1]}")
    settings = SWDSettings()
    mean, levels = swd(images, exemplar, settings)
    protocol = (f"sliced Wasserstein distance ×1e3 (Karras et al. 2018) between {settings.patch}×{settings.patch} patch "
                f"descriptors of a Laplacian pyramid (levels down to {settings.min_size} px, per-level values "
                f"{', '.join(f'{v:.1f}' for v in levels)}), {settings.patches_per_image} patches per image, "
                f"{settings.directions}×{settings.repeats} directions, seed {settings.seed}; {images.shape[0]} samples vs "
                f"the exemplar of {ctx.dataset}")
    return {"texture_swd": Score(mean, None, protocol)}


register(Metric("texture_swd", (ScoreSpec("texture_swd", "Texture SWD ×10³ (multi-scale patches vs the exemplar)", "lower"),),
                _texture_swd))
