"""The four metrics of a feature space, registered once per space — the offline classifier (``classifier_*``, no
download needed) and the real Inception-v3 (``inception_score``, ``fid``, ``kid``, ``inception_pr``; its weights must
be local): the inception-style score, FID, KID and precision/recall, all read from one extractor pass per sample set
(torch-fidelity's features → metric functions, ``features.py``)."""

from __future__ import annotations

import torch

from genbench.metrics.context import MetricContext, SampleSet
from genbench.metrics.contract import Metric, Score, ScoreSpec, register
from genbench.metrics.features import (ISC_SHUFFLE_SEED, KID_SEED, check_neighbourhood, frechet_distance,
                                       inception_style_score, kernel_distance, precision_recall, resolve_kid_subset_size)
from genbench.metrics.spaces import check_space, real_protocol, samples_protocol


def register_feature_metrics(space: str, names: dict[str, str], label: str) -> None:
    """The inception-style score, FID, KID and precision/recall in one feature space."""
    check = check_space(space)

    def score(samples: SampleSet, ctx: MetricContext) -> dict[str, Score]:
        splits = ctx.options.splits
        mean, std = inception_style_score(samples.features(ctx, space).logits, splits)
        protocol = (f"torch-fidelity isc on {ctx.space(space).logits_layer}, {splits} splits, shuffle seed {ISC_SHUFFLE_SEED}, float64, "
                    f"population std over splits; {samples_protocol(samples, ctx, space)}")
        return {names["score"]: Score(mean, std, protocol)}

    def check_score(ctx: MetricContext) -> None:
        check(ctx)
        if ctx.n_samples is not None:
            inception_style_score(torch.zeros(ctx.n_samples, 2), ctx.options.splits)  # raises if too few

    def fid(samples: SampleSet, ctx: MetricContext) -> dict[str, Score]:
        value = frechet_distance(samples.features(ctx, space).pool, ctx.reference(space).features.pool)
        return {names["fid"]: Score(value, None, f"torch-fidelity fid statistics, float64; {samples_protocol(samples, ctx, space)} "
                                                 f"{real_protocol(ctx, space)}")}

    def kid(samples: SampleSet, ctx: MetricContext) -> dict[str, Score]:
        subsets = ctx.options.kid_subsets
        mean, std, size = kernel_distance(samples.features(ctx, space).pool, ctx.reference(space).features.pool, subsets,
                                          ctx.options.kid_subset_size)
        return {names["kid"]: Score(mean, std, f"torch-fidelity kid, polynomial kernel degree 3 in float32, {subsets} subsets "
                                              f"of {size}, seed {KID_SEED}, mean ± std over subsets; {samples_protocol(samples, ctx, space)} "
                                              f"{real_protocol(ctx, space)}")}

    def check_kid(ctx: MetricContext) -> None:
        check(ctx)
        if ctx.n_samples is not None:
            resolve_kid_subset_size(ctx.options.kid_subset_size, ctx.n_samples, ctx.reference_count())

    def pr(samples: SampleSet, ctx: MetricContext) -> dict[str, Score]:
        k = ctx.options.pr_neighborhood
        precision, recall = precision_recall(samples.features(ctx, space).pool, ctx.reference(space).features.pool, k)
        protocol = (f"torch-fidelity prc (Kynkäänniemi et al. 2019), {k}-NN balls, float32 distances; "
                    f"{samples_protocol(samples, ctx, space)} {real_protocol(ctx, space)}")
        return {names["precision"]: Score(precision, None, protocol), names["recall"]: Score(recall, None, protocol)}

    def check_pr(ctx: MetricContext) -> None:
        check(ctx)
        if ctx.n_samples is not None:
            check_neighbourhood(ctx.options.pr_neighborhood, ctx.n_samples, ctx.reference_count())

    spaces = (space,)
    register(Metric(names["score"], (ScoreSpec(names["score"], f"{label} score (inception-style)", "higher"),), score,
                    check_score, spaces=spaces))
    register(Metric(names["fid"], (ScoreSpec(names["fid"], f"FID ({label} features)", "lower"),), fid, check,
                    spaces=spaces, real_images=True))
    register(Metric(names["kid"], (ScoreSpec(names["kid"], f"KID ({label} features)", "lower"),), kid, check_kid,
                    spaces=spaces, real_images=True))
    register(Metric(names["pr"], (ScoreSpec(names["precision"], f"Precision ({label} features)", "higher"),
                                  ScoreSpec(names["recall"], f"Recall ({label} features)", "higher")), pr, check_pr,
                    spaces=spaces, real_images=True))


register_feature_metrics("inception", {"score": "inception_score", "fid": "fid", "kid": "kid", "pr": "inception_pr",
                                        "precision": "inception_precision", "recall": "inception_recall"}, "Inception-v3")
register_feature_metrics("classifier", {"score": "classifier_score", "fid": "classifier_fid", "kid": "classifier_kid",
                                         "pr": "classifier_pr", "precision": "classifier_precision",
                                         "recall": "classifier_recall"}, "Offline classifier")
