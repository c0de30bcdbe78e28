"""The metric contract: what a registered metric declares and what it returns.

A metric is registered once (in its own file of ``genbench/metrics/``) with the scores it produces; each score
carries its table label and its better direction, and every computed value carries its protocol. The
harness writes ``Score``s into rows as they come, and the leaderboard reads labels and directions from
here — there is no second table of metric names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Literal

from genbench.registry import Registry

if TYPE_CHECKING:
    from genbench.metrics.context import MetricContext, SampleSet

Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class ScoreSpec:
    """A column of the tables: the score's name in rows, its label, and which direction is better."""

    name: str
    label: str
    better: Better


@dataclass(frozen=True)
class Score:
    """One computed number: mean, spread (None where the metric has none) and how it was computed."""

    mean: float
    std: float | None
    protocol: str

    def as_row(self) -> dict:
        return {"mean": self.mean, "std": self.std}


@dataclass(frozen=True)
class Metric:
    """A registered metric: the scores it may produce, how to compute them from a sample set, and an
    optional check run before training (missing weights, too few samples, a one-class dataset)."""

    name: str
    scores: tuple[ScoreSpec, ...]
    compute: Callable[["SampleSet", "MetricContext"], dict[str, Score]]
    check: Callable[["MetricContext"], None] | None = None
    description: str = field(default="", compare=False)
    spaces: tuple[str, ...] = ()  # the feature spaces whose features it reads (extracted while samples stream)
    real_images: bool = False  # whether it compares with the real images' features


METRICS: Registry[Metric] = Registry("metric")


def register(metric: Metric) -> Metric:
    return METRICS.register(metric.name)(metric)


def score_specs() -> dict[str, ScoreSpec]:
    """Every score of every registered metric, in registration order (the order of the tables)."""
    return {spec.name: spec for metric in METRICS.values() for spec in metric.scores}
