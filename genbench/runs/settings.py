"""The ``bench``, ``logger`` and ``trainer`` sections of a config: their keys and defaults, in one place (``speed``
lives with the models: ``genbench.models.speed``).

Every section is validated like ``model`` and ``data``: an unknown key (``bench.num_sample``,
``logger.wandbb``, a typo under ``trainer``) is one line naming the accepted keys.
"""

from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass, field, fields

import lightning as L
import torch

from genbench.config import check_sections, is_count
from genbench.errors import GenbenchError
from genbench.metrics.defaults import DEFAULT_METRICS
from genbench.models.speed import SpeedSettings


def _default_metrics() -> list[str]:
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
        eval_every: score ``curve_samples`` samples every this many iterations while training (0: off); the
            learning curve goes into the row and to the loggers (``genbench.runs.curves``).
        curve_samples: samples scored at each point of the learning curve.
    """

    metrics: list[str] = field(default_factory=_default_metrics)
    num_samples: int | str = "train"
    table: str | None = None
    metric_options: dict = field(default_factory=dict)
    grid_every: int = 0
    grid_size: int = 64
    sample_batch_size: int = 256
    eval_every: int = 0
    curve_samples: int = 500

    def __post_init__(self) -> None:
        for name, least in (("grid_every", 0), ("grid_size", 1), ("sample_batch_size", 1), ("eval_every", 0),
                            ("curve_samples", 2)):
            value = getattr(self, name)
            if not is_count(value, least):
                raise GenbenchError(f"bench.{name} must be an integer ≥ {least}, got {value!r}")
        if self.num_samples != "train" and not is_count(self.num_samples, 1):
            raise GenbenchError(f"bench.num_samples must be a positive integer or 'train', got {self.num_samples!r}")
        if not isinstance(self.metrics, list) or not all(isinstance(m, str) for m in self.metrics):
            raise GenbenchError(f"bench.metrics must be a list of metric names, got {self.metrics!r}")
        if not self.metrics:
            raise GenbenchError("bench.metrics is empty: a row needs at least one score (`genbench list` names the "
                                "metrics; use `genbench fit` to train without scoring)")
        if self.table is not None:
            check_name(self.table, "bench.table")
        if not isinstance(self.metric_options, dict):
            raise GenbenchError(f"bench.metric_options must be a mapping, got {self.metric_options!r}")


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
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]*")


#: the longest name ``check_name`` takes (a file name, with room for the suffixes genbench adds, stays under 255 bytes)
MAX_NAME_LENGTH = 200


def check_name(value, what: str) -> str:
    """A name that becomes one file or folder name (a table, a run): letters, digits and ``._+=-``, no path, at most
    ``MAX_NAME_LENGTH`` characters."""
    if isinstance(value, str) and SAFE_NAME.fullmatch(value) and len(value) > MAX_NAME_LENGTH:
        raise GenbenchError(f"{what} must be at most {MAX_NAME_LENGTH} characters (it becomes a file name), got "
                            f"{len(value)}: {value[:40]}…")
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value):
        raise GenbenchError(f"{what} must be a plain name (letters, digits, '._+=-', not starting with '.' or '-', "
                            f"no '/'), got {value!r}")
    return value


def check_trainer(trainer: dict) -> None:
    """The values genbench and Lightning would otherwise refuse only after data and model are built."""
    for name in TRAINER_EXTRAS:
        value = trainer.get(name)
        if value is not None and not is_count(value, 1):
            raise GenbenchError(f"trainer.{name} must be a positive integer, got {value!r}")
    accelerator = trainer.get("accelerator", "auto")
    if accelerator not in ACCELERATORS:
        raise GenbenchError(f"trainer.accelerator must be one of {', '.join(ACCELERATORS)}, got {accelerator!r}")

    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise GenbenchError(f"trainer.accelerator={accelerator} but no CUDA device is available here; use cpu or auto")
    if accelerator == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise GenbenchError("trainer.accelerator=mps but MPS is not available here; use cpu or auto")
    if "max_time" in trainer:
        check_max_time(trainer["max_time"])
    nodes = trainer.get("num_nodes")
    if nodes is not None and not is_count(nodes, 1):
        raise GenbenchError(f"trainer.num_nodes must be a positive integer, got {nodes!r}")
    devices = trainer.get("devices")
    if isinstance(devices, (bool, float)) or (isinstance(devices, int) and (devices == 0 or devices < -1)):
        raise GenbenchError(f"trainer.devices must be a positive integer, -1 (all), 'auto', a list of device indices or "
                            f"a string such as '0,1', got {devices!r}")


#: the fields of a ``trainer.max_time`` mapping (Lightning's), in seconds
TIME_FIELDS = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}


def check_max_time(value) -> None:
    """``trainer.max_time`` as Lightning takes it — ``DD:HH:MM:SS`` or a mapping of days/hours/minutes/seconds — and
    longer than zero (a run with no time would score the untrained model)."""
    if isinstance(value, str) and re.fullmatch(r"\d+:\d{1,2}:\d{1,2}:\d{1,2}", value):
        seconds = sum(int(part) * unit for part, unit in zip(value.split(":"), (86400, 3600, 60, 1)))
    elif isinstance(value, dict) and value and set(value) <= set(TIME_FIELDS) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in value.values()):
        seconds = sum(v * TIME_FIELDS[k] for k, v in value.items())
    else:
        raise GenbenchError(f"trainer.max_time must be DD:HH:MM:SS or a mapping of days/hours/minutes/seconds (each ≥ 0), "
                            f"got {value!r}")
    if seconds <= 0:
        raise GenbenchError(f"trainer.max_time must be longer than zero (the model would not train at all), got {value!r}")


def trainer_keys() -> set[str]:
    params = inspect.signature(L.Trainer.__init__).parameters
    return {name for name in params if name != "self"} | set(TRAINER_EXTRAS)


def _check_keys(section: str, given: dict, accepted: set[str]) -> None:
    if not isinstance(given, dict):
        raise GenbenchError(f"config section {section!r} must be a mapping, got {type(given).__name__}")
    unknown = sorted(set(given) - accepted)
    if unknown:
        raise GenbenchError(f"unknown {section} option(s) {unknown}; accepted: {', '.join(sorted(accepted))}")


def validate_sections(cfg: dict) -> None:
    """Refuse unknown sections, unknown keys in ``bench``, ``logger`` and ``trainer`` and values those sections
    cannot take (``model`` and ``data`` are checked against their classes when built)."""
    check_sections(cfg)
    for section, cls in (("bench", BenchSettings), ("logger", LoggerSettings)):
        _check_keys(section, cfg.get(section) or {}, {f.name for f in fields(cls)})
        cls(**(cfg.get(section) or {}))
    _check_keys("trainer", cfg.get("trainer") or {}, trainer_keys())
    check_trainer(cfg.get("trainer") or {})
    SpeedSettings.from_dict(cfg.get("speed"))


def bench_settings(cfg: dict) -> BenchSettings:
    return BenchSettings(**(cfg.get("bench") or {}))


def table_name(cfg: dict, preset: str) -> str:
    """The leaderboard table a run of ``preset`` writes to: its ``bench.table``, else the preset's name."""
    return bench_settings(cfg).table or preset


def logger_settings(cfg: dict) -> LoggerSettings:
    return LoggerSettings(**(cfg.get("logger") or {}))
