"""Scoring a sample set with named metrics: checked before any training, then computed with one feature pass per
feature space."""

from __future__ import annotations

import torch

from genbench.metrics.context import MetricContext, SampleSet
from genbench.metrics.contract import METRICS, Score


def check_metrics(names: list[str], ctx: MetricContext) -> None:
    """Fail before any training if a requested metric cannot run: first the cheap checks (unknown name, missing
    weights, a one-class dataset for the classifier, too few samples for the requested splits/subsets/
    neighbourhood), then every feature space is loaded (a corrupt, foreign or refused classifier stops here; one
    that must be trained is trained now) and the real images' features are loaded or computed (a corrupt cache
    stops here)."""
    metrics = [METRICS.get(name) for name in names]
    for metric in metrics:
        if metric.check is not None:
            metric.check(ctx)
    for space in feature_spaces(names):
        ctx.space(space)
    for space in dict.fromkeys(s for m in metrics if m.real_images for s in m.spaces):
        ctx.reference(space)


def feature_spaces(names: list[str]) -> list[str]:
    """The feature spaces the named metrics read, in order of first use."""
    return list(dict.fromkeys(space for name in names for space in METRICS.get(name).spaces))


def compute_metrics(names: list[str], images: "torch.Tensor | SampleSet", ctx: MetricContext) -> dict[str, Score]:
    """Every score of the named metrics for ``images`` in [-1, 1] (or a streamed ``SampleSet``), one feature pass
    per feature space."""
    samples = images if isinstance(images, SampleSet) else SampleSet(images)
    scores: dict[str, Score] = {}
    for name in names:
        scores.update(METRICS.get(name).compute(samples, ctx))
    return scores
