"""Seeded subsets: which images a table, a reference row or a feature cache takes when it takes fewer than all."""

from __future__ import annotations

import torch


def seeded_subset(total: int, count: int | None, seed: int) -> torch.Tensor:
    """``count`` distinct indices of ``range(total)``, sorted, drawn by ``seed`` (all of them when ``count`` is None
    or not below ``total``)."""
    if count is None or count >= total:
        return torch.arange(total)
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:count].sort().values
