"""What the metrics of a feature space share: the check that the space can be loaded and the protocol phrases
naming the samples and the real images compared in it."""

from __future__ import annotations

from genbench.metrics.classifier import require_classes
from genbench.metrics.context import MetricContext, SampleSet
from genbench.metrics.fidelity import resolve_inception_weights


def samples_protocol(samples: SampleSet, ctx: MetricContext, space: str) -> str:
    return f"{samples.count} samples (uint8, rounded) in {ctx.space(space).describe()}"


def real_protocol(ctx: MetricContext, space: str) -> str:
    return (f"{ctx.space(space).pool_layer} features vs {ctx.reference(space).describe()} "
            f"(features cached: {ctx.reference(space).meta['file']})")


def check_space(space: str):
    """The check of a metric computed in ``space``: the offline classifier needs several classes, Inception-v3 its
    local weights."""
    def check(ctx: MetricContext) -> None:
        if space == "classifier":
            require_classes(ctx.dataset, ctx.classifier_data().num_classes)
        else:
            resolve_inception_weights(ctx.options.inception_weights)
    return check
