"""Metric registry. Each metric maps (samples in [-1, 1], context) → {name: value}; names encode protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from genbench.metrics.fidelity import IS_PROTOCOL, inception_score, resolve_inception_weights
from genbench.metrics.ssim import pairwise_ssim
from genbench.registry import Registry


@dataclass
class MetricContext:
    """What a metric may need besides the samples."""

    dataset: str
    datamodule_factory: Callable  # builds the dataset without n_per_class (classifier training, real images)
    class_names: list[str]
    options: dict = field(default_factory=dict)
    records: dict = field(default_factory=dict)  # filled by metrics: protocol strings, classifier accuracy


MetricFn = Callable[[torch.Tensor, MetricContext], dict]
METRICS: Registry[MetricFn] = Registry("metric")


@METRICS.register("inception_score")
def _inception(samples: torch.Tensor, ctx: MetricContext) -> dict:
    splits = int(ctx.options.get("splits", 10))
    out = inception_score(samples, ctx.options.get("inception_weights"), splits=splits)
    ctx.records["inception_score_protocol"] = IS_PROTOCOL.format(splits=splits) + ", Inception-v3 2015-12-05"
    return out


@METRICS.register("classifier_score")
def _classifier(samples: torch.Tensor, ctx: MetricContext) -> dict:
    from genbench.metrics.classifier import ClassifierSettings, classifier_score, get_classifier

    settings = ClassifierSettings(**ctx.options.get("classifier", {}))
    classifier = get_classifier(ctx.datamodule_factory, ctx.dataset, settings)
    target = None
    if len(ctx.class_names) == 1 and ctx.class_names[0] in classifier.meta["classes"]:
        target = classifier.meta["classes"].index(ctx.class_names[0])
    splits = int(ctx.options.get("splits", 10))
    ctx.records["classifier"] = classifier.record()
    ctx.records["classifier_score_protocol"] = IS_PROTOCOL.format(splits=splits) + f", offline classifier {classifier.meta['key']}"
    return classifier_score(samples, classifier, target, splits=splits)


@METRICS.register("pairwise_ssim")
def _ssim(samples: torch.Tensor, ctx: MetricContext) -> dict:
    max_samples = int(ctx.options.get("ssim_samples", 100))
    ctx.records["pairwise_ssim_protocol"] = f"torchmetrics SSIM, gaussian 11x11 sigma 1.5, data_range 1 on [0,1], first {max_samples} samples"
    return pairwise_ssim(samples, max_samples=max_samples)


def check_metrics_available(names: list[str], options: dict) -> None:
    """Fail before training if a requested metric cannot run (unknown name, missing Inception weights)."""
    for name in names:
        METRICS.get(name)
    if "inception_score" in names:
        resolve_inception_weights(options.get("inception_weights"))


def compute_metrics(names: list[str], samples: torch.Tensor, ctx: MetricContext) -> dict:
    results: dict = {}
    for name in names:
        results.update(METRICS.get(name)(samples, ctx))
    return results


__all__ = ["METRICS", "MetricContext", "check_metrics_available", "compute_metrics"]
