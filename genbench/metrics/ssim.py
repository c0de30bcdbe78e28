"""Average pairwise SSIM among generated samples (the papers' diversity measure: lower is more diverse).

SSIM(x, y) = mean over pixels and channels of
    (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)),
with μ, σ², σxy local moments under an 11×11 Gaussian window (σ = 1.5, reflect padding), C1 = (0.01 L)²,
C2 = (0.03 L)², images mapped to [0, 1] and L = data_range = 1 — torchmetrics' definition and defaults,
which the tests check pair by pair. Over all N(N−1)/2 pairs the per-image moments μ and σ² are computed
once and only σxy per pair, with the separable window: the same numbers as calling torchmetrics per pair,
about 25× fewer operations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genbench.errors import GenbenchError
from genbench.metrics.context import MetricContext, SampleSet
from genbench.metrics.contract import Metric, Score, ScoreSpec, register

WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
K1, K2 = 0.01, 0.03


def gaussian_window(size: int = WINDOW_SIZE, sigma: float = WINDOW_SIGMA, dtype=torch.float32) -> torch.Tensor:
    """The normalised 1-D Gaussian g with g_i ∝ exp(−i²/(2σ²)), i = −(size−1)/2 … (size−1)/2."""
    offsets = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(offsets / sigma) ** 2 / 2)
    return g / g.sum()


def local_mean(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Gaussian-weighted local mean of each channel (reflect padding, output the size of ``x``)."""
    channels, pad = x.shape[1], window.numel() // 2
    x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    x = F.conv2d(x, window.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    return F.conv2d(x, window.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)


def pairwise_ssim(images: torch.Tensor, max_samples: int = 100, batch_pairs: int = 512) -> dict[str, float]:
    """Mean ± std of SSIM(x_i, x_j) over pairs i < j of the first ``max_samples`` of ``images`` in [-1, 1]."""
    x = (images[:max_samples].float().clamp(-1, 1) + 1.0) / 2.0
    n = x.shape[0]
    if n < 2:
        raise ValueError("pairwise SSIM needs at least 2 samples")
    window = gaussian_window(dtype=x.dtype)
    c1, c2 = K1 ** 2, K2 ** 2
    mu = local_mean(x, window)
    var = (local_mean(x * x, window) - mu * mu).clamp_min(0.0)
    i, j = torch.triu_indices(n, n, offset=1)
    values = []
    for start in range(0, i.numel(), batch_pairs):
        a, b = i[start:start + batch_pairs], j[start:start + batch_pairs]
        cov = local_mean(x[a] * x[b], window) - mu[a] * mu[b]
        ssim_map = ((2 * mu[a] * mu[b] + c1) * (2 * cov + c2)) / ((mu[a] ** 2 + mu[b] ** 2 + c1) * (var[a] + var[b] + c2))
        values.append(ssim_map.flatten(1).mean(1))
    scores = torch.cat(values).double()
    return {"pairwise_ssim": float(scores.mean()), "pairwise_ssim_std": float(scores.std(unbiased=False)),
            "pairwise_ssim_pairs": int(scores.numel())}


def _ssim(samples: SampleSet, ctx: MetricContext) -> dict[str, Score]:
    out = pairwise_ssim(samples.images, max_samples=ctx.options.ssim_samples)
    protocol = (f"torchmetrics SSIM, gaussian 11x11 sigma 1.5, data_range 1 on [0,1], all {out['pairwise_ssim_pairs']} "
                f"pairs of the first {min(ctx.options.ssim_samples, samples.count)} samples, mean ± std over pairs")
    return {"pairwise_ssim": Score(out["pairwise_ssim"], out["pairwise_ssim_std"], protocol)}


def _check_ssim(ctx: MetricContext) -> None:
    if ctx.n_samples is not None and min(ctx.n_samples, ctx.options.ssim_samples) < 2:
        raise GenbenchError("pairwise SSIM needs at least 2 samples; raise bench.num_samples or metric_options.ssim_samples")


register(Metric("pairwise_ssim", (ScoreSpec("pairwise_ssim", "Average pairwise SSIM among samples (diversity)", "lower"),),
                _ssim, _check_ssim))
