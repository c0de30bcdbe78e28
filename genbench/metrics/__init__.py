"""The metrics: one file per metric (or per family computed in each feature space), each registering its scores
(name, label, better direction), its check and its computation from a ``SampleSet`` as ``Score``s (mean, std,
protocol). The tables show the scores in the order the files are imported here.
"""

from __future__ import annotations

from genbench.metrics import feature_metrics, synthesis_quality, ssim, swd  # noqa: F401  (registration, in table order)
from genbench.metrics.context import MetricContext, MetricOptions, SampleSet
from genbench.metrics.contract import METRICS, Metric, Score, ScoreSpec, register, score_specs
from genbench.metrics.defaults import DEFAULT_METRICS
from genbench.metrics.scoring import check_metrics, compute_metrics, feature_spaces

__all__ = ["DEFAULT_METRICS", "METRICS", "Metric", "MetricContext", "MetricOptions", "SampleSet", "Score", "ScoreSpec",
           "check_metrics", "compute_metrics", "feature_spaces", "register", "score_specs"]
