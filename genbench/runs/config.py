"""A run's effective config (``RunConfig``): the YAML files and overrides composed once, then every setting the run
reads made explicit and validated (``resolve_config``), before anything is built. Every entry point takes it: bench and
fit (through ``RunRequest``), the task tables' models, the reference rows and each sweep job (as the file its
resolved config is written to)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from genbench.config import (accepted_arguments, check_types, compose_run, config_hash, instantiate, is_count, plain,
                             signature_defaults)
from genbench.data import DATASETS, build_datamodule
from genbench.errors import GenbenchError
from genbench.metrics.context import MetricOptions
from genbench.models import model_class
from genbench.models.speed import SpeedSettings
from genbench.runs.provenance import physical_memory
from genbench.runs.settings import BenchSettings, LoggerSettings, validate_sections


@dataclass(frozen=True)
class RunConfig:
    """One run's config, composed from its files and overrides once and resolved once (``resolve_config``): the only
    way genbench gets a run's settings from names. ``cfg`` is what the run folder's ``config.yaml`` holds, its row
    records and its hash covers; ``legacy_hash`` is the hash of the composed config before it was resolved, how rows
    written before configs were resolved are still found (a lookup key, never written into a new row)."""

    cfg: dict
    legacy_hash: str | None = None

    @property
    def hash(self) -> str:
        return config_hash(self.cfg)

    @property
    def run(self) -> dict:
        """The ``run`` section: model, data, preset, n and seed."""
        return self.cfg["run"]


def run_config(model: str | None, data: str, preset: str, n: int | None = None, seed: int = 0,
               overrides: list[str] | tuple[str, ...] | None = None) -> RunConfig:
    """The config of (model, data, preset, n, seed, overrides): the YAML layers composed (``compose_run``; a model that
    would change its table's preprocessing is refused), then validated and resolved. ``model=None``: the table's own
    config (reference rows, held-out images)."""
    composed = _composed(model, data, preset, n, seed, list(overrides or []))
    return RunConfig(resolve_config(composed), config_hash(composed))


def _composed(model: str | None, data: str, preset: str, n: int | None, seed: int, overrides: list[str]) -> dict:
    """The config files and overrides of one run merged, with its ``run`` section, before ``resolve_config``."""
    if not is_count(seed, 0) or seed >= 2**32:
        raise GenbenchError(f"--seed must be an integer in [0, 2**32), got {seed!r}")
    if n is not None and not is_count(n, 1):
        raise GenbenchError(f"--n must be a positive integer, got {n!r}")
    cfg = compose_run(model, data, preset, overrides)
    if n is not None:
        cfg["data"]["n_per_class"] = n
    cfg["run"] = {"model": model, "data": data, "preset": preset, "n": cfg["data"].get("n_per_class"), "seed": seed}
    return cfg


def check_run_section(run: dict) -> None:
    """A config's ``run`` section names its data and preset (strings), its model (a string, or None for a table's
    own config) and gives n (a positive integer or None) and seed (an integer ≥ 0): one line naming the first that
    does not."""
    checks = {"model": run.get("model") is None or isinstance(run.get("model"), str),
              "data": isinstance(run.get("data"), str), "preset": isinstance(run.get("preset"), str),
              "n": run.get("n") is None or is_count(run.get("n"), 1), "seed": is_count(run.get("seed"), 0)}
    wrong = next((key for key, ok in checks.items() if not ok), None)
    if wrong is not None:
        raise GenbenchError(f"run.{wrong} is missing or malformed ({run.get(wrong)!r}); a run config names its data and "
                            f"preset and gives n (a positive integer or null) and seed (an integer ≥ 0)")


def resolve_config(cfg: dict) -> dict:
    """``cfg`` validated, with every setting a run reads made explicit: the datamodule's and the model's
    constructor arguments (signature defaults, nested Langevin and net settings), the ``bench``, ``logger`` and
    ``speed`` sections with their defaults. What ``genbench config`` prints, each row records and the hash covers;
    resolving a resolved config changes nothing."""
    validate_sections(cfg)
    run = cfg["run"]
    check_run_section(run)
    out = dict(cfg)
    data_cls = DATASETS.get(run["data"])
    data = {"shuffle_seed": run["seed"], **(cfg.get("data") or {})}
    check_types(data_cls, data, f"data ({run['data']})")
    out["data"] = {**signature_defaults(data_cls), **data}
    build_datamodule(run["data"], **out["data"])  # its values are checked at construction (no image is read)
    model = dict(cfg.get("model") or {})
    if run["model"] is None:  # a table's own config (reference rows): no model
        out["model"] = model
        model_cls = None
    else:
        model_cls = model_class(run["model"])
    accepted = accepted_arguments(model_cls) if model_cls else set()
    for key in ("image_size", "channels"):
        if key in accepted:
            model.setdefault(key, out["data"][key])
    if model_cls is not None:
        unknown = sorted(set(model) - accepted)
        if unknown:
            raise GenbenchError(f"unknown model ({run['model']}) option(s) {unknown}; {model_cls.__name__} accepts: "
                                f"{', '.join(sorted(accepted))}")
        check_types(model_cls, model, f"model ({run['model']})")
        resolved = model_cls.resolve_options(model)
        if "num_train" not in model:
            resolved.pop("num_train", None)  # taken from the data when the model is built
        out["model"] = resolved
    bench = BenchSettings(**(cfg.get("bench") or {}))
    out["bench"] = asdict(bench)
    out["bench"]["metric_options"] = asdict(instantiate(MetricOptions, dict(bench.metric_options), "bench.metric_options"))
    out["logger"] = asdict(LoggerSettings(**(cfg.get("logger") or {})))
    out["speed"] = asdict(SpeedSettings.from_dict(cfg.get("speed")))
    out["trainer"] = dict(cfg.get("trainer") or {})
    out = plain(out)
    check_memory(out)
    return out


def check_memory(cfg: dict, memory: int | None = None) -> None:
    """Refuse, before anything is built, sizes that cannot fit: one training batch or one chunk of evaluation
    samples as float32 images must take at most a quarter of the machine's memory."""
    memory = memory if memory is not None else physical_memory()
    if not memory:
        return
    data, bench = cfg["data"], cfg["bench"]
    image = data["channels"] * data["image_size"] ** 2 * 4
    for what, count in (("data.batch_size", data["batch_size"]), ("bench.sample_batch_size", bench["sample_batch_size"])):
        need = count * image
        if need > memory // 4:
            raise GenbenchError(f"{count} images of {data['channels']}×{data['image_size']}×{data['image_size']} "
                                f"({what}) take {need / 2**30:.1f} GiB as float32, over a quarter of this machine's "
                                f"{memory / 2**30:.0f} GiB; lower data.image_size or {what}")
