"""The bench harness, in the order ``_run_bench`` takes its steps: config and run folder → metrics and their feature
space (checked before training) → learning curve → data, model and fit → samples scored as they stream → leaderboard
row → tables re-rendered (ARCHITECTURE.md draws it).

Every run gets a folder ``runs/<data>/<model>/<run id>/`` with its effective config, checkpoints,
sample grid and ``result.json``; its row goes to ``leaderboards/<data>/<table>.jsonl``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import Callback

from genbench.bench.callbacks import (PROGRESS_SECONDS, AppendingCSVLogger, PeriodicCheckpoint, ProgressLog,
                                      ResumeWithinEpoch, SampleGrids, StopAtIteration, format_seconds, log_line)

from genbench.bench.leaderboard import (SHEET_SAMPLES, append_row, render_leaderboards, save_grid, table_path,
                                       write_sample_sheet)
from genbench.bench.curves import LearningCurve
from genbench.bench.settings import (BenchSettings, LoggerSettings, bench_settings, check_name, logger_settings,
                                     table_name, validate_sections)
from genbench.bench.sampling import iter_samples
from genbench.models.speed import SpeedSettings
from genbench.bench.tracking import finish_wandb, make_wandb_logger
from genbench.config import (accepted_arguments, check_table_preprocessing, check_types, compose, config_hash, deep_merge,
                             differing_keys, instantiate, is_count, parse_override, plain, signature_defaults, table_levers,
                             yaml_load)
from genbench.data import DATASETS, build_datamodule
from genbench.errors import DivergenceError, GenbenchError, first_line
from genbench.files import write_text
from genbench.metrics import MetricContext, SampleSet, check_metrics, compute_metrics, feature_spaces
from genbench.metrics.context import MetricOptions
from genbench.models import build_model, model_class
from genbench.paths import PROJECT_ROOT, leaderboard_dir, runs_dir
from genbench.versions import package_versions

@dataclass
class BenchResult:
    row: dict
    run_dir: Path
    table: Path


def git_commit() -> str:
    """HEAD, with ``-dirty`` when a tracked file differs from it. The results genbench writes itself (``leaderboards/``)
    do not count: a sweep's second row would otherwise be marked dirty by its first."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)leaderboards"],
                               cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if commit.returncode != 0:
        return "unknown"
    return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({os.cpu_count()} cores)"


def effective_config(model: str | None, data: str, preset: str, n: int | None, seed: int,
                     overrides: list[str] | None = None) -> dict:
    """The composed, validated and resolved config of one run (every model and data argument with its value,
    ``resolve_config``); a model that would change its table's preprocessing is refused."""
    return resolve_config(composed_config(model, data, preset, n, seed, overrides))


def composed_config(model: str | None, data: str, preset: str, n: int | None, seed: int, overrides: list[str] | None) -> dict:
    """The config files and overrides of one run merged, with its ``run`` section, before ``resolve_config``.
    Rows written before configs were resolved hashed this (``legacy_config_hash``)."""
    if not is_count(seed, 0) or seed >= 2**32:
        raise GenbenchError(f"--seed must be an integer in [0, 2**32), got {seed!r}")
    if n is not None and not is_count(n, 1):
        raise GenbenchError(f"--n must be a positive integer, got {n!r}")
    cfg = compose(model, data, preset, overrides)
    check_table_preprocessing(model, data, preset, cfg, overrides)
    if n is not None:
        cfg["data"]["n_per_class"] = n
    cfg["run"] = {"model": model, "data": data, "preset": preset, "n": cfg["data"].get("n_per_class"), "seed": seed}
    return cfg


def legacy_config_hash(model: str, data: str, preset: str, n: int | None, seed: int, overrides: list[str] | None) -> str:
    """The hash rows recorded before every setting was resolved into the config: how task tables still find
    those rows (a migration key, never written into new rows)."""
    return config_hash(composed_config(model, data, preset, n, seed, overrides))


def resolve_config(cfg: dict) -> dict:
    """``cfg`` validated, with every setting a run reads made explicit: the datamodule's and the model's
    constructor arguments (signature defaults, nested Langevin and net settings), the ``bench``, ``logger`` and
    ``speed`` sections with their defaults. What ``genbench config`` prints, each row records and the hash covers;
    resolving a resolved config changes nothing."""
    validate_sections(cfg)
    run = cfg["run"]
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


def build(cfg: dict):
    """Datamodule and model from an effective config (the model takes image size/channels from the data)."""
    run = cfg["run"]
    if cfg["data"].get("corruption") and not model_class(run["model"]).learns_from_corrupted_data:
        raise GenbenchError(f"model {run['model']!r} cannot learn from corrupted images (data.corruption); "
                            f"abp can (the recovery table)")
    dm = build_datamodule(run["data"], **{"shuffle_seed": run["seed"], **cfg["data"]})
    dm.setup()
    model_opts = dict(cfg["model"])
    accepted = accepted_arguments(model_class(run["model"]))
    for key, value in (("image_size", dm.image_size), ("channels", dm.channels)):
        model_opts.setdefault(key, value)
    if "num_train" in accepted:
        model_opts.setdefault("num_train", len(dm.datasets["train"]))
    model = build_model(run["model"], **model_opts)
    model.set_speed(SpeedSettings.from_dict(cfg.get("speed")))
    return dm, model


def make_trainer(cfg: dict, run_dir: Path, callbacks: list[Callback] | None = None, loggers: list | None = None) -> L.Trainer:
    """A Trainer from the ``trainer`` section (Lightning arguments plus ``max_iterations``, ``checkpoint_every``),
    with periodic checkpoints, sample grids every ``bench.grid_every`` iterations, CSV (+ W&B) logging."""
    tcfg = dict(cfg.get("trainer", {}))
    max_iterations = tcfg.pop("max_iterations", None)
    checkpoint_every = int(tcfg.pop("checkpoint_every", 50))
    callbacks = list(callbacks or [])
    if max_iterations is not None:  # before the checkpoint, which saves the iteration it stops at
        callbacks.append(StopAtIteration(int(max_iterations)))
        tcfg.setdefault("max_epochs", -1)
    callbacks.append(PeriodicCheckpoint(run_dir / "checkpoints" / "last.ckpt", checkpoint_every))
    callbacks.append(ResumeWithinEpoch())
    grid_every = int(bench_settings(cfg).grid_every)
    if grid_every > 0:
        callbacks.append(SampleGrids(run_dir / "grids", grid_every))
    interactive = sys.stdout.isatty()
    if interactive:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(RichProgressBar())
    else:  # a log file (SLURM, nohup, CI): a line every PROGRESS_SECONDS instead of a progress bar
        callbacks.append(ProgressLog(max_iterations))
    tcfg.setdefault("accelerator", "auto")
    tcfg.setdefault("devices", 1)
    if (tcfg["devices"] not in (1, "1") or int(tcfg.get("num_nodes", 1)) > 1) and "strategy" not in tcfg:
        tcfg["strategy"] = "ddp_find_unused_parameters_true"  # alternating updates leave nets unused per backward
    tcfg.setdefault("limit_val_batches", 0)
    tcfg.setdefault("num_sanity_val_steps", 0)
    tcfg.setdefault("enable_checkpointing", False)  # genbench's own checkpoints (PeriodicCheckpoint) only
    try:
        return L.Trainer(
            default_root_dir=run_dir,
            logger=[AppendingCSVLogger(run_dir, name="logs", version=""), *(loggers or [])],
            callbacks=callbacks,
            enable_progress_bar=interactive,
            enable_model_summary=False,
            log_every_n_steps=max(1, int(tcfg.pop("log_every_n_steps", 10))),
            **tcfg,
        )
    except (ValueError, TypeError, RuntimeError) as exc:  # Lightning's MisconfigurationException is a ValueError
        raise GenbenchError(f"bad trainer config: {first_line(exc)}") from None


def num_samples(cfg: dict, dm) -> int:
    """bench.num_samples: an int, or "train" for as many samples as training images (the papers' protocol)."""
    value = bench_settings(cfg).num_samples
    if value == "train":
        return dm.num_train
    if not isinstance(value, int) or value < 1:
        raise GenbenchError(f"bench.num_samples must be a positive integer or 'train', got {value!r}")
    return value


def is_rank_zero() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def check_checkpoint(path: Path) -> Path:
    """A checkpoint that loads (with ``weights_only``), or one clear error for a missing/corrupt/truncated file."""
    if not path.is_file():
        raise GenbenchError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = first_line(exc)[:120]
        raise GenbenchError(f"checkpoint {path} is corrupt or truncated ({reason}); delete it or resume from another") from None
    if not isinstance(state, dict) or "state_dict" not in state:
        raise GenbenchError(f"checkpoint {path} is not a genbench/Lightning checkpoint (no state_dict)")
    return path


def check_checkpoint_fits(ckpt: Path, module, model: str) -> None:
    """A checkpoint resumes only into the model it was written by: the same parameter and buffer names and shapes."""
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    own = module.state_dict()
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or extra or shapes:
        what = (f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}") if (missing or extra) \
            else f"shapes differ for {shapes[:3]}"
        raise GenbenchError(f"checkpoint {ckpt} was not written by this {model} ({what}); resume it with the model "
                            f"and settings it was trained with")


def resolve_resume(resume: str | os.PathLike | None) -> tuple[Path | None, Path | None]:
    """``--resume`` takes a run folder or a .ckpt file → (run folder, checkpoint)."""
    if not resume:
        return None, None
    path = Path(resume)
    if path.is_dir():
        return path, check_checkpoint(path / "checkpoints" / "last.ckpt")
    return path.parent.parent, check_checkpoint(path)


#: the run folder's record of its effective config's hash (``config.yaml`` beside it holds the config)
RUN_RECORD = "run.json"


def recorded_config(run_dir: Path) -> dict | None:
    """The resolved effective config a run folder was made with (None for a folder without ``config.yaml``)."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        return None
    try:
        cfg = yaml_load(path.read_text())
    except Exception as exc:
        raise GenbenchError(f"{path} is unreadable ({type(exc).__name__}); resume from another run folder") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("run"), dict):
        raise GenbenchError(f"{path} is not a genbench run config (no run section)")
    return resolve_config(cfg)


#: how long training runs: the only keys a resumed run may change, and only to train longer (the resumed run then
#: equals an uninterrupted run of the new length)
LENGTH_KEYS = ("trainer.max_iterations", "trainer.max_epochs", "trainer.max_steps")


#: sections that change where a run logs and how it is scored, not what it trains: a resume may change them
FREE_SECTIONS = ("logger.", "bench.")


def _longer(new, old) -> bool:
    """Whether a training length ``new`` is at least ``old`` (-1: unlimited; None only matches None, since what
    an absent limit means depends on the other limits)."""
    if new is None or old is None:
        return new is None and old is None
    if new == -1:
        return True
    return isinstance(new, int) and isinstance(old, int) and old != -1 and new >= old


def check_same_config(cfg: dict, recorded: dict, run_dir: Path) -> None:
    """A run folder is resumed only under the effective config it was made with — except that training may be made
    longer (``LENGTH_KEYS``), and logging and scoring may change (``logger``, ``bench``); anything else is one line
    naming the keys."""
    if config_hash(cfg) == config_hash(recorded):
        return
    keys = [k for k in differing_keys(cfg, recorded) if not k.startswith(FREE_SECTIONS)
            and not (k in LENGTH_KEYS and _longer(_dig(cfg, k, None), _dig(recorded, k, None)))]
    if not keys:
        return
    shown = ", ".join(f"{k} ({_dig(cfg, k)!r} here, {_dig(recorded, k)!r} in the run)" for k in keys[:4])
    more = f" and {len(keys) - 4} more" if len(keys) > 4 else ""
    raise GenbenchError(f"run folder {run_dir} was made with another config (hash {config_hash(recorded)}, this one "
                        f"{config_hash(cfg)}): {shown}{more}; use another --run-name, or resume with the run's own settings")


def _dig(cfg: dict, dotted: str, absent="<absent>"):
    node = cfg
    for part in dotted.split("."):
        node = node.get(part, absent) if isinstance(node, dict) else absent
    return node


def prepare_run(model: str | None, data: str | None, preset: str | None, n: int | None, seed: int | None,
                overrides: list[str] | None, runs: Path | None, run_name: str | None, resume: str | None,
                kind: str) -> tuple[dict, Path, Path | None]:
    """Effective config, run folder (shared by all DDP ranks through $GENBENCH_RUN_DIR) and checkpoint to resume.

    A new run gets a new folder. ``resume`` (a run folder or .ckpt) continues under that folder's recorded config:
    the command's model, data, preset, n, seed and ``--set`` overrides, where given, must leave it unchanged. A
    named run (``run_name``) whose folder exists picks up its last checkpoint only under the same config. A refused
    run writes nothing."""
    resume_dir, ckpt = resolve_resume(resume)
    recorded = recorded_config(resume_dir) if resume_dir is not None else None
    if resume_dir is not None and recorded is None:
        raise GenbenchError(f"{resume_dir} has no config.yaml, so the checkpoint's settings are unknown; resume from "
                            f"a genbench run folder (runs/<data>/<model>/<run>)")
    if recorded is not None:
        base = recorded["run"]
        given = {"model": model, "data": data, "preset": preset, "n": n, "seed": seed}
        model, data, preset, n, seed = (given[k] if given[k] is not None else base[k] for k in given)
        if (model, data, preset) != (base["model"], base["data"], base["preset"]):
            cfg = effective_config(model, data, preset, n, seed, None)  # another run altogether: refused below
        else:  # the run's own config with the command's n, seed and overrides
            cfg = deep_merge(recorded, {"run": {"n": n, "seed": seed}, "data": {"n_per_class": n}})
            for text in overrides or []:
                cfg = deep_merge(cfg, parse_override(text))
            cfg = resolve_config(cfg)
        check_same_config(cfg, recorded, resume_dir)
        return cfg, resume_dir, ckpt
    model, data, preset, seed = model or "dcgan", data or "imagenet-scenes-tiny", preset or "smoke", 0 if seed is None else seed
    cfg = effective_config(model, data, preset, n, seed, overrides)
    if os.environ.get("GENBENCH_RUN_DIR"):
        run_dir = Path(os.environ["GENBENCH_RUN_DIR"])
    else:
        if run_name is not None:
            check_name(run_name, "--run-name")
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        run_id = run_name or f"{kind}-{preset}-n{cfg['run']['n'] or 'all'}-s{seed}-{stamp}-{os.getpid()}-{secrets.token_hex(2)}"
        run_dir = (runs or runs_dir()) / data / model / run_id
        os.environ["GENBENCH_RUN_DIR"] = str(run_dir)  # DDP children launched later reuse it
    existing = recorded_config(run_dir)
    if existing is not None:
        check_same_config(cfg, existing, run_dir)
    if is_rank_zero() and existing is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        record_config(run_dir, cfg, kind)
    if ckpt is None and (run_dir / "checkpoints" / "last.ckpt").is_file() and run_name:
        ckpt = check_checkpoint(run_dir / "checkpoints" / "last.ckpt")  # a named (sweep) run picks up where it stopped
    return cfg, run_dir, ckpt


def record_config(run_dir: Path, cfg: dict, kind: str) -> None:
    """Write the run's effective config and, in ``run.json``, its hash and every command that ran in the folder."""
    record_path = run_dir / RUN_RECORD
    try:
        record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    except json.JSONDecodeError:
        record = {}
    history = list(record.get("history", []))
    history.append({"kind": kind, "config_hash": config_hash(cfg), "command": provenance()["command"],
                    "time": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    write_text(run_dir / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
    write_text(record_path, json.dumps({"config_hash": config_hash(cfg), "history": history}, indent=1))


def train(cfg: dict, run_dir: Path, ckpt: Path | None, num_samples: int | None = None, callbacks: list | None = None):
    """Fit the configured model; a divergence becomes one line naming the last good checkpoint. With
    ``num_samples``, an evaluation the model cannot draw is refused before training."""
    run = cfg["run"]
    L.seed_everything(run["seed"], workers=True, verbose=False)
    dm, module = build(cfg)
    if num_samples is not None:
        module.check_evaluation(num_samples)
    if ckpt is not None:
        check_checkpoint_fits(ckpt, module, run["model"])
        if is_rank_zero():
            record_config(run_dir, cfg, "resume")  # the config the folder's weights now continue under
    if is_rank_zero():
        write_text(run_dir / "data.json", json.dumps({"describe": dm.describe(), "files": dm.file_lists["train"]}, indent=1))
    tags = [run["model"], run["data"], f"n={run['n'] or 'all'}", f"seed={run['seed']}", run["preset"]]
    wandb_logger = make_wandb_logger(logger_settings(cfg), run_dir, run_dir.name, tags, cfg)
    trainer = make_trainer(cfg, run_dir, callbacks, loggers=[wandb_logger] if wandb_logger else [])
    start = time.time()
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt) if ckpt else None, weights_only=True)
    except DivergenceError as exc:
        last = run_dir / "checkpoints" / "last.ckpt"
        kept = f"; last good checkpoint: {last}" if last.is_file() else "; no checkpoint was written yet"
        raise GenbenchError(f"{exc}{kept}") from None
    return dm, module, trainer, wandb_logger, time.time() - start


@contextlib.contextmanager
def shared_run_dir():
    """Keep $GENBENCH_RUN_DIR (set for DDP children) from leaking into the next run of this process."""
    preset = os.environ.get("GENBENCH_RUN_DIR")
    try:
        yield
    finally:
        if preset is None:
            os.environ.pop("GENBENCH_RUN_DIR", None)


def run_bench(model: str | None, data: str | None, preset: str | None = None, n: int | None = None, seed: int | None = None,
              overrides: list[str] | None = None, leaderboards: Path | None = None, runs: Path | None = None,
              write_row: bool = True, resume: str | None = None, run_name: str | None = None) -> BenchResult | None:
    """Train ``model`` on ``data``, sample, score, and append one leaderboard row (rank 0; others return None)."""
    with shared_run_dir():
        return _run_bench(model, data, preset, n, seed, overrides, leaderboards, runs, write_row, resume, run_name)


def sampling_device(trainer: L.Trainer) -> torch.device:
    """The device the model trained on (after ``fit`` Lightning's teardown leaves the module on the CPU)."""
    return trainer.strategy.root_device


def training_budget(iterations: int, batch_size: int, world_size: int, n_train: int, wall_seconds: float | None) -> dict:
    """What a row's model was given: iterations, observed images (iterations × batch × ranks), the epochs
    they make, and the training wall time (None when resumed: the time of the earlier part is unknown)."""
    images = iterations * batch_size * world_size
    return {"iterations": iterations, "images_seen": images, "epochs": round(images / max(1, n_train), 2),
            "wall_seconds": round(wall_seconds, 1) if wall_seconds is not None else None}


def provenance() -> dict:
    """What every row records about where and how it was produced."""
    return {"git_commit": git_commit(), "versions": package_versions(), "device": device_name(),
            "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["genbench", *sys.argv[1:]]) if sys.argv else ""}


def physical_memory() -> int | None:
    """Bytes of physical memory of this machine (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


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


def metric_setup(cfg: dict, log=None) -> tuple[list[str], MetricContext]:
    """The metric names of ``cfg`` and their context, checked before any training: an impossible metric
    setting, a corrupt or refused classifier or feature cache fails here, in one line; a classifier that must be
    trained and the real images' features are computed here, before the model trains."""
    settings = bench_settings(cfg)
    names = list(settings.metrics)
    planned = build_datamodule(cfg["run"]["data"], **cfg["data"])
    planned.plan()  # lists the files (no decoding): a missing root or too large an n fails here
    ctx = MetricContext(cfg["run"]["data"], cfg["data"], settings.metric_options, n_samples=num_samples(cfg, planned),
                        log=log)
    check_metrics(names, ctx)
    return names, ctx


def score_row(names: list[str], samples: "torch.Tensor | SampleSet", ctx: MetricContext, seconds: float = 0.0) -> dict:
    """The scored part of a row: metrics (mean, std), each score's protocol, the classifier and real-image records.
    ``seconds``: feature extraction already spent while the samples streamed."""
    start = time.time()
    samples = samples if isinstance(samples, SampleSet) else SampleSet(samples)
    scores = compute_metrics(names, samples, ctx)
    return {"metrics": {k: s.as_row() for k, s in scores.items()}, "protocols": {k: s.protocol for k, s in scores.items()},
            "n_samples": int(samples.count), "classifier": ctx.records.get("classifier"),
            "feature_space": (ctx.records.get("classifier") or {}).get("feature_space"),
            "real_images": ctx.records.get("real_images"), "metric_seconds": round(seconds + time.time() - start, 2)}


class Timed:
    """Wraps an iterator of sample chunks: adds up the seconds spent inside it (sampling, apart from scoring the
    chunks) and logs ``sample: k/total`` every ``PROGRESS_SECONDS``."""

    def __init__(self, iterator, total: int, log) -> None:
        self.iterator = iterator
        self.total = total
        self.log = log
        self.seconds = 0.0

    def __iter__(self):
        done, started, reported = 0, time.time(), time.time()
        while True:
            start = time.time()
            try:
                item = next(self.iterator)
            except StopIteration:
                self.seconds += time.time() - start
                return
            self.seconds += time.time() - start
            done += item.shape[0]
            if time.time() - reported >= PROGRESS_SECONDS:
                reported = time.time()
                rate = done / (reported - started)
                self.log(f"sample: {done}/{self.total} samples drawn and scored, {rate:.1f}/s, "
                         f"ETA {format_seconds((self.total - done) / max(rate, 1e-9))}")
            yield item


def _run_bench(model, data, preset, n, seed, overrides, leaderboards, runs, write_row, resume, run_name):
    # 1. the effective config and the run folder
    cfg, run_dir, ckpt = prepare_run(model, data, preset, n, seed, overrides, runs, run_name, resume, "bench")
    model, data, preset, seed = (cfg["run"][k] for k in ("model", "data", "preset", "seed"))
    settings = bench_settings(cfg)
    boards = leaderboards or leaderboard_dir()
    table = table_path(boards, data, table_name(cfg, preset))
    log = log_line if is_rank_zero() else (lambda text: None)
    # 2. the metrics and their feature space, checked (and the real images' features computed) before training
    metric_names, ctx = metric_setup(cfg, log)
    log(f"bench: {model} on {data} ({preset}, n={cfg['run']['n'] or 'all'}, seed {seed}, config {config_hash(cfg)}); "
        f"scored in {ctx.records.get('classifier', {}).get('feature_space') or 'no classifier space'}")
    # 3. the learning curve, 4. training
    curve = curve_callback(cfg, metric_names, log)
    dm, module, trainer, wandb_logger, elapsed = train(cfg, run_dir, ckpt, ctx.n_samples, [curve] if curve else None)
    train_seconds = elapsed - (curve.scoring_seconds if curve else 0.0)  # scoring the curve is not training
    iterations_before = module.resumed_from_iteration
    images_seen = (module.iteration - iterations_before) * dm.batch_size * trainer.world_size

    # 5. samples streamed in chunks and scored as they come
    count = ctx.n_samples
    module.to(sampling_device(trainer))  # Lightning's teardown moved it to the CPU; sample where it trained
    log(f"sample: {count} samples in chunks of {settings.sample_batch_size}, scored as they come")
    start = time.time()
    chunks = Timed(iter_samples(module, count, seed + 1, chunk=settings.sample_batch_size), count, log)
    keep = max(settings.grid_size, SHEET_SAMPLES, ctx.options.ssim_samples)
    if is_rank_zero():
        samples = SampleSet.from_stream(chunks, ctx, feature_spaces(metric_names), keep)
    else:
        for _ in chunks:  # the other ranks draw their share of every round
            pass
        return None
    sample_seconds = chunks.seconds
    save_grid(samples.images, run_dir / "samples.png", settings.grid_size)
    scored = score_row(metric_names, samples, ctx, time.time() - start - sample_seconds)
    log("score: " + ", ".join(f"{k} {v['mean']:.4g}" for k, v in scored["metrics"].items()))

    # 6. the row, 7. the tables re-rendered
    row = {
        "model": model, "data": data, "n": cfg["run"]["n"], "seed": seed, "preset": preset, "kind": "model",
        **scored, "n_train": len(dm.datasets["train"]),
        "iterations": module.iteration, "resumed_from_iteration": iterations_before or None,
        "budget": training_budget(module.iteration, dm.batch_size, trainer.world_size, len(dm.datasets["train"]),
                                  train_seconds if not iterations_before else None),
        "sample_device": str(sampling_device(trainer)), "bn_sampling": module.bn_sampling,
        "evaluation_chains": module.evaluation_chains,
        "train_seconds": round(train_seconds, 2),
        "curve": {"every": settings.eval_every, "samples": settings.curve_samples, "points": curve.points,
                  "scoring_seconds": round(curve.scoring_seconds, 2)} if curve else None,
        "images_per_second": round(images_seen / train_seconds, 2) if train_seconds > 0 else None,
        "sample_seconds": round(sample_seconds, 2),
        "world_size": trainer.world_size, "num_nodes": trainer.num_nodes,
        "config_hash": config_hash(cfg), "config": cfg, "table_levers": table_levers(preset),
        "data_fingerprint": dm.fingerprint(), **provenance(),
        "run_dir": str(run_dir), "wandb": getattr(wandb_logger, "genbench_mode", None),
    }
    write_text(run_dir / "result.json", json.dumps(row, indent=1, default=str))
    finish_wandb(wandb_logger, {f"bench/{k}": v["mean"] for k, v in row["metrics"].items()})
    if write_row:
        try:
            row["samples_png"] = write_sample_sheet(table, row, samples.images)
        except Exception as exc:  # a picture must never cost the row
            row["samples_png"] = None
            log_line(f"warning: the sample sheet could not be written ({type(exc).__name__}: {exc}); writing the row")
        append_row(table, row)
        render_after_row(boards, data)
    return BenchResult(row, run_dir, table)


def curve_callback(cfg: dict, names: list[str], log):
    """The learning-curve callback of ``bench.eval_every`` (None when off), its metrics checked before training for
    ``bench.curve_samples`` samples."""
    settings = bench_settings(cfg)
    if not settings.eval_every:
        return None
    ctx = MetricContext(cfg["run"]["data"], cfg["data"], settings.metric_options, n_samples=settings.curve_samples, log=log)
    check_metrics(names, ctx)
    return LearningCurve(settings.eval_every, settings.curve_samples, names, ctx, settings.sample_batch_size,
                         log if is_rank_zero() else (lambda text: None))


def render_after_row(boards: Path, data: str) -> None:
    """Re-render the dataset's tables after a row was written; a failure here is a warning, never a lost row."""
    try:
        render_leaderboards(boards, data)
    except Exception as exc:  # the row is safe in the JSONL; `genbench leaderboard` renders it later
        log_line(f"warning: the row was written but rendering the tables failed ({first_line(exc)}); run "
                 f"`genbench leaderboard`")


#: written into a run folder when its training has finished (``bench`` writes ``result.json``)
FIT_RECORD = "fit.json"


def run_fit(model: str | None, data: str | None, preset: str | None = None, n: int | None = None, seed: int | None = None,
            overrides: list[str] | None = None, runs: Path | None = None, resume: str | None = None,
            run_name: str | None = None) -> Path:
    """Train only; returns the run folder (checkpoints/last.ckpt holds the weights, ``fit.json`` says it finished)."""
    with shared_run_dir():
        cfg, run_dir, ckpt = prepare_run(model, data, preset, n, seed, overrides, runs, run_name, resume, "fit")
        _, module, trainer, wandb_logger, seconds = train(cfg, run_dir, ckpt)
        finish_wandb(wandb_logger, {})
        if is_rank_zero():
            record = {"iterations": module.iteration, "train_seconds": round(seconds, 2),
                      "config_hash": config_hash(cfg), **provenance()}
            (run_dir / FIT_RECORD).write_text(json.dumps(record, indent=1))
        return run_dir
