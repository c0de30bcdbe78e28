"""Average pairwise SSIM among generated samples (the papers' diversity measure: lower is more diverse).

SSIM via torchmetrics with an explicit ``data_range`` (images mapped to [0, 1], data_range = 1), 11×11
Gaussian window, σ = 1.5; averaged over all unordered pairs of the first ``max_samples`` samples.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.image import structural_similarity_index_measure


def pairwise_ssim(images: torch.Tensor, max_samples: int = 100, batch_pairs: int = 512) -> dict[str, float]:
    """Mean ± std of SSIM(x_i, x_j) over pairs i < j; ``images`` in [-1, 1], shape (N, C, H, W)."""
    x = ((images[:max_samples].float().clamp(-1, 1) + 1.0) / 2.0)
    n = x.shape[0]
    if n < 2:
        raise ValueError("pairwise SSIM needs at least 2 samples")
    i, j = torch.triu_indices(n, n, offset=1)
    values = []
    for start in range(0, i.numel(), batch_pairs):
        a, b = i[start:start + batch_pairs], j[start:start + batch_pairs]
        values.append(structural_similarity_index_measure(x[a], x[b], data_range=1.0, reduction="none"))
    scores = torch.cat(values).double()
    return {"pairwise_ssim": float(scores.mean()), "pairwise_ssim_std": float(scores.std(unbiased=False)),
            "pairwise_ssim_pairs": int(scores.numel())}
