"""Synthesis quality (the CoopNets slides): the offline classifier's softmax probability of the true category, its
top-5 error and its mean top-1 probability on the samples."""

from __future__ import annotations

from genbench.metrics.classifier import synthesis_quality
from genbench.metrics.context import MetricContext, SampleSet
from genbench.metrics.contract import Metric, Score, ScoreSpec, register
from genbench.metrics.spaces import check_space, samples_protocol


def _synthesis_quality(samples: SampleSet, ctx: MetricContext) -> dict[str, Score]:
    target = ctx.target_class()
    values = synthesis_quality(samples.features(ctx, "classifier").logits, target)
    what = (f"true category {ctx.classifier().meta['classes'][target]!r}" if target is not None else "several categories")
    protocol = f"offline classifier softmax ({what}); {samples_protocol(samples, ctx, 'classifier')}"
    return {name: Score(value, None, protocol) for name, value in values.items()}


register(Metric("synthesis_quality", (
    ScoreSpec("class_probability", "Softmax probability of the true category", "higher"),
    ScoreSpec("top5_error", "Top-5 classification error", "lower"),
    ScoreSpec("top1_probability", "Mean top-1 classifier probability", "higher"),
), _synthesis_quality, check_space("classifier"), spaces=("classifier",)))
