"""The ``bench``, ``logger`` and ``trainer`` sections of a config: their keys and defaults, in one place (``speed``
lives with the models: ``genbench.models.speed``).

Every section is validated like ``model`` and ``data``: an unknown key (``bench.num_sample``,
``logger.wandbb``, a typo under ``trainer``) is one line naming the accepted keys.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields

from genbench.errors import GenbenchError


def _default_metrics() -> list[str]:
    from genbench.metrics import DEFAULT_METRICS

    return list(DEFAULT_METRICS)


@dataclass
class BenchSettings:
    """``bench``: what is scored and where the row goes.

    Args:
        metrics: registered metric names (``genbench list``).
        num_samples: samples scored: an integer, or ``train`` for as many as training images (the papers).
        table: the leaderboard table (default: the preset's name).
        metric_options: ``MetricOptions`` (splits, KID subsets, real-image split, classifier, …).
        grid_every: write a sample grid every this many iterations (0: off).
        grid_size: samples in the final grid.
        sample_batch_size: samples drawn per chunk (the DDP-invariant chunking).
    """

    metrics: list[str] = field(default_factory=_default_metrics)
    num_samples: int | str = "train"
    table: str | None = None
    metric_options: dict = field(default_factory=dict)
    grid_every: int = 0
    grid_size: int = 64
    sample_batch_size: int = 256


@dataclass
class LoggerSettings:
    """``logger``: W&B (offline unless credentials exist; never fails a run)."""

    wandb: bool = False
    mode: str | None = None
    project: str = "genbench"
    entity: str | None = None
    group: str | None = None
    job_type: str = "bench"
    init_timeout: float = 60.0


#: keys of the ``trainer`` section that genbench reads itself (the rest go to Lightning's Trainer)
TRAINER_EXTRAS = ("max_iterations", "checkpoint_every")


def trainer_keys() -> set[str]:
    import lightning as L

    params = inspect.signature(L.Trainer.__init__).parameters
    return {name for name in params if name != "self"} | set(TRAINER_EXTRAS)


def _check_keys(section: str, given: dict, accepted: set[str]) -> None:
    if not isinstance(given, dict):
        raise GenbenchError(f"config section {section!r} must be a mapping, got {type(given).__name__}")
    unknown = sorted(set(given) - accepted)
    if unknown:
        raise GenbenchError(f"unknown {section} option(s) {unknown}; accepted: {', '.join(sorted(accepted))}")


def validate_sections(cfg: dict) -> None:
    """Refuse unknown keys in ``bench``, ``logger`` and ``trainer`` (``model`` and ``data`` are checked
    against their classes when built)."""
    for section, cls in (("bench", BenchSettings), ("logger", LoggerSettings)):
        _check_keys(section, cfg.get(section) or {}, {f.name for f in fields(cls)})
    _check_keys("trainer", cfg.get("trainer") or {}, trainer_keys())
    from genbench.models.speed import SpeedSettings

    SpeedSettings.from_dict(cfg.get("speed"))


def bench_settings(cfg: dict) -> BenchSettings:
    return BenchSettings(**(cfg.get("bench") or {}))


def logger_settings(cfg: dict) -> LoggerSettings:
    return LoggerSettings(**(cfg.get("logger") or {}))
