"""The registered metrics — the one file to touch when adding one.

Each metric declares its scores (name, label, better direction) and computes them from a ``SampleSet``
as ``Score``s (mean, std, protocol). Feature-space metrics exist once per feature space — the offline
classifier (``classifier_*``, no download needed) and the real Inception-v3 (``inception_score``,
``fid``, ``kid``, ``inception_pr``; weights must be local) — and share one extractor pass per sample set.
"""

from __future__ import annotations

import torch

from genbench.errors import GenbenchError
from genbench.metrics.context import MetricContext, MetricOptions, SampleSet
from genbench.metrics.contract import METRICS, Metric, Score, ScoreSpec, register, score_specs
from genbench.metrics.features import (check_neighbourhood, frechet_distance, inception_style_score, kernel_distance,
                                       precision_recall, resolve_kid_subset_size)
from genbench.metrics.ssim import pairwise_ssim


def _samples_protocol(samples: SampleSet, ctx: MetricContext, space: str) -> str:
    return f"{samples.count} samples (uint8, rounded) in {ctx.space(space).describe()}"


def _real_protocol(ctx: MetricContext, space: str) -> str:
    return (f"{ctx.space(space).pool_layer} features vs {ctx.reference(space).describe()} "
            f"(features cached: {ctx.reference(space).meta['file']})")


def _check_space(space: str):
    def check(ctx: MetricContext) -> None:
        if space == "classifier":
            from genbench.metrics.classifier import require_classes

            require_classes(ctx.dataset, ctx.classifier_data().num_classes)
        else:
            from genbench.metrics.fidelity import resolve_inception_weights

            resolve_inception_weights(ctx.options.inception_weights)
    return check


def _register_feature_metrics(space: str, names: dict[str, str], label: str) -> None:
    """The inception-style score, FID, KID and precision/recall in one feature space."""
    check_space = _check_space(space)

    def score(samples: SampleSet, ctx: MetricContext) -> dict[str, Score]:
        splits = ctx.options.splits
        mean, std = inception_style_score(samples.features(ctx, space).logits, splits)
        protocol = (f"torch-fidelity isc on {ctx.space(space).logits_layer}, {splits} splits, shuffle seed 2020, float64, "
                    f"population std over splits; {_samples_protocol(samples, ctx, space)}")
        return {names["score"]: Score(mean, std, protocol)}

    def check_score(ctx: MetricContext) -> None:
        check_space(ctx)
        if ctx.n_samples is not None:
            inception_style_score(torch.zeros(ctx.n_samples, 2), ctx.options.splits)  # raises if too few

    def fid(samples: SampleSet, ctx: MetricContext) -> dict[str, Score]:
        value = frechet_distance(samples.features(ctx, space).pool, ctx.reference(space).features.pool)
        return {names["fid"]: Score(value, None, f"torch-fidelity fid statistics, float64; {_samples_protocol(samples, ctx, space)} "
                                                 f"{_real_protocol(ctx, space)}")}

    def kid(samples: SampleSet, ctx: MetricContext) -> dict[str, Score]:
        subsets = ctx.options.kid_subsets
        mean, std, size = kernel_distance(samples.features(ctx, space).pool, ctx.reference(space).features.pool, subsets,
                                          ctx.options.kid_subset_size)
        return {names["kid"]: Score(mean, std, f"torch-fidelity kid, polynomial kernel degree 3 in float32, {subsets} subsets "
                                              f"of {size}, seed 2020, mean ± std over subsets; {_samples_protocol(samples, ctx, space)} "
                                              f"{_real_protocol(ctx, space)}")}

    def check_kid(ctx: MetricContext) -> None:
        check_space(ctx)
        if ctx.n_samples is not None:
            resolve_kid_subset_size(ctx.options.kid_subset_size, ctx.n_samples, ctx.reference_count())

    def pr(samples: SampleSet, ctx: MetricContext) -> dict[str, Score]:
        k = ctx.options.pr_neighborhood
        precision, recall = precision_recall(samples.features(ctx, space).pool, ctx.reference(space).features.pool, k)
        protocol = (f"torch-fidelity prc (Kynkäänniemi et al. 2019), {k}-NN balls, float32 distances; "
                    f"{_samples_protocol(samples, ctx, space)} {_real_protocol(ctx, space)}")
        return {names["precision"]: Score(precision, None, protocol), names["recall"]: Score(recall, None, protocol)}

    def check_pr(ctx: MetricContext) -> None:
        check_space(ctx)
        if ctx.n_samples is not None:
            check_neighbourhood(ctx.options.pr_neighborhood, ctx.n_samples, ctx.reference_count())

    spaces = (space,)
    register(Metric(names["score"], (ScoreSpec(names["score"], f"{label} score (inception-style)", "higher"),), score,
                    check_score, spaces=spaces))
    register(Metric(names["fid"], (ScoreSpec(names["fid"], f"FID ({label} features)", "lower"),), fid, check_space,
                    spaces=spaces, real_images=True))
    register(Metric(names["kid"], (ScoreSpec(names["kid"], f"KID ({label} features)", "lower"),), kid, check_kid,
                    spaces=spaces, real_images=True))
    register(Metric(names["pr"], (ScoreSpec(names["precision"], f"Precision ({label} features)", "higher"),
                                  ScoreSpec(names["recall"], f"Recall ({label} features)", "higher")), pr, check_pr,
                    spaces=spaces, real_images=True))


_register_feature_metrics("inception", {"score": "inception_score", "fid": "fid", "kid": "kid", "pr": "inception_pr",
                                        "precision": "inception_precision", "recall": "inception_recall"}, "Inception-v3")
_register_feature_metrics("classifier", {"score": "classifier_score", "fid": "classifier_fid", "kid": "classifier_kid",
                                         "pr": "classifier_pr", "precision": "classifier_precision",
                                         "recall": "classifier_recall"}, "Offline classifier")


def _synthesis_quality(samples: SampleSet, ctx: MetricContext) -> dict[str, Score]:
    from genbench.metrics.classifier import synthesis_quality

    target = ctx.target_class()
    values = synthesis_quality(samples.features(ctx, "classifier").logits, target)
    what = (f"true category {ctx.classifier().meta['classes'][target]!r}" if target is not None else "several categories")
    protocol = f"offline classifier softmax ({what}); {_samples_protocol(samples, ctx, 'classifier')}"
    return {name: Score(value, None, protocol) for name, value in values.items()}


register(Metric("synthesis_quality", (
    ScoreSpec("class_probability", "Softmax probability of the true category", "higher"),
    ScoreSpec("top5_error", "Top-5 classification error", "lower"),
    ScoreSpec("top1_probability", "Mean top-1 classifier probability", "higher"),
), _synthesis_quality, _check_space("classifier"), spaces=("classifier",)))


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


def _texture_swd(samples: SampleSet, ctx: MetricContext) -> dict[str, Score]:
    from genbench.metrics.swd import SWDSettings, swd

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


DEFAULT_METRICS = ["classifier_score", "synthesis_quality", "classifier_fid", "classifier_kid", "classifier_pr", "pairwise_ssim"]

__all__ = ["feature_spaces", "DEFAULT_METRICS", "METRICS", "Metric", "MetricContext", "MetricOptions", "SampleSet", "Score", "ScoreSpec",
           "check_metrics", "compute_metrics", "score_specs"]
