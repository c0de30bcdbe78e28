"""A run's folder ``runs/<data>/<model>/<run id>/``: its effective config and the record of every command that ran
in it, its checkpoints, and resuming it (only under the config it was made with, except a longer training)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.distributed as dist
import yaml
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from genbench.config import config_hash, deep_merge, differing_keys, parse_override, yaml_load
from genbench.errors import GenbenchError, first_line
from genbench.files import check_writable_dir, write_text
from genbench.paths import runs_dir
from genbench.runs.config import resolve_config, run_config
from genbench.runs.provenance import provenance
from genbench.runs.settings import check_name


def is_rank_zero() -> bool:
    """Whether this process is the job's rank 0: the process group's rank once it is initialised, before that the
    rank its launcher gave it (``RANK``/``LOCAL_RANK``/``SLURM_PROCID``, as Lightning reads them at import)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return getattr(rank_zero_only, "rank", 0) == 0


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
    return resolve_config(read_config(path)) if path.is_file() else None


def read_config(path: Path) -> dict:
    """The run config a file holds (a run folder's ``config.yaml``, ``genbench config``'s output, a sweep job's spec),
    checked to be one; ``resolve_config`` validates its run section and settings."""
    try:
        cfg = yaml_load(Path(path).read_text())
    except FileNotFoundError:
        raise GenbenchError(f"config file {path} does not exist") from None
    except GenbenchError:
        raise
    except Exception as exc:
        raise GenbenchError(f"{path} is unreadable ({type(exc).__name__}); use another config file or run folder") from None
    run = cfg.get("run") if isinstance(cfg, dict) else None
    if not isinstance(run, dict) or not isinstance(run.get("model"), str):
        raise GenbenchError(f"{path} is not a genbench run config (no run section naming its model)")
    return cfg


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


@dataclass(frozen=True)
class RunRequest:
    """What a command asks to run. None: the default (dcgan on imagenet-scenes-tiny, smoke, seed 0) or, when resuming,
    the run's own value. ``runs``: the folder of run folders; ``run_name``: a stable folder name (sweeps, tables);
    ``resume``: a run folder or checkpoint to continue. ``config``: a resolved config (``RunConfig.cfg``, or a file
    holding one: ``genbench config``'s output, a run's ``config.yaml``, a sweep job's spec) run as it is, instead of
    the names and overrides."""

    model: str | None = None
    data: str | None = None
    preset: str | None = None
    n: int | None = None
    seed: int | None = None
    overrides: tuple[str, ...] = ()
    runs: Path | None = None
    run_name: str | None = None
    resume: str | None = None
    config: dict | None = None

    def names_given(self) -> list[str]:
        """The settings given by name (flags), which a request with a ``config`` may not also give."""
        given = {"--model": self.model, "--data": self.data, "--preset": self.preset, "--n": self.n,
                 "--seed": self.seed, "--resume": self.resume}
        return [flag for flag, value in given.items() if value is not None] + (["--set/--devices/--nodes/--wandb"] if self.overrides else [])


@dataclass(frozen=True)
class RunSpec:
    """A prepared run: its effective config, its folder and the checkpoint it resumes from (None: a fresh start).
    ``kind``: the command (bench, fit); ``new``: the folder is not written yet — ``record_start`` writes it when
    training starts, so a run refused before then leaves nothing behind."""

    cfg: dict
    run_dir: Path
    ckpt: Path | None
    kind: str = "bench"
    new: bool = False

    @property
    def run(self) -> dict:
        """The ``run`` section: model, data, preset, n and seed."""
        return self.cfg["run"]


def prepare_run(request: RunRequest, kind: str) -> RunSpec:
    """Effective config, run folder (shared by all DDP ranks through $GENBENCH_RUN_DIR) and checkpoint to resume.

    A new run gets a new folder. ``resume`` (a run folder or .ckpt) continues under that folder's recorded config:
    the command's model, data, preset, n, seed and ``--set`` overrides, where given, must leave it unchanged. A
    named run (``run_name``) whose folder exists picks up its last checkpoint only under the same config. A refused
    run writes nothing."""
    if request.config is not None:
        given = request.names_given()
        if given:
            raise GenbenchError(f"a run from a config file takes its settings from the file alone; drop {', '.join(given)}")
        return _new_run(resolve_config(request.config), request, kind)
    model, data, preset, n, seed = request.model, request.data, request.preset, request.n, request.seed
    resume_dir, ckpt = resolve_resume(request.resume)
    recorded = recorded_config(resume_dir) if resume_dir is not None else None
    if resume_dir is not None and recorded is None:
        raise GenbenchError(f"{resume_dir} has no config.yaml, so the checkpoint's settings are unknown; resume from "
                            f"a genbench run folder (runs/<data>/<model>/<run>)")
    if recorded is not None:
        base = recorded["run"]
        given = {"model": model, "data": data, "preset": preset, "n": n, "seed": seed}
        model, data, preset, n, seed = (given[k] if given[k] is not None else base[k] for k in given)
        if (model, data, preset) != (base["model"], base["data"], base["preset"]):
            cfg = run_config(model, data, preset, n, seed).cfg  # another run altogether: refused below
        else:  # the run's own config with the command's n, seed and overrides
            cfg = deep_merge(recorded, {"run": {"n": n, "seed": seed}, "data": {"n_per_class": n}})
            for text in request.overrides:
                cfg = deep_merge(cfg, parse_override(text))
            cfg = resolve_config(cfg)
        check_same_config(cfg, recorded, resume_dir)
        return RunSpec(cfg, resume_dir, ckpt, kind)
    cfg = run_config(model or "dcgan", data or "imagenet-scenes-tiny", preset or "smoke", n, 0 if seed is None else seed,
                     request.overrides).cfg
    return _new_run(cfg, request, kind)


def _new_run(cfg: dict, request: RunRequest, kind: str) -> RunSpec:
    """The spec of a run that is not resumed by path: a new folder, or a named run's (``run_name``) existing folder
    under the same config, continuing from its last checkpoint."""
    run, run_name, ckpt = cfg["run"], request.run_name, None
    if os.environ.get("GENBENCH_RUN_DIR"):
        run_dir = Path(os.environ["GENBENCH_RUN_DIR"])
    else:
        if run_name is not None:
            check_name(run_name, "--run-name")
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        run_id = run_name or (f"{kind}-{run['preset']}-n{run['n'] or 'all'}-s{run['seed']}-{stamp}-{os.getpid()}-"
                              f"{secrets.token_hex(2)}")
        run_dir = (request.runs or runs_dir()) / run["data"] / run["model"] / run_id
        os.environ["GENBENCH_RUN_DIR"] = str(run_dir)  # DDP children launched later reuse it
    existing = recorded_config(run_dir)
    if existing is not None:
        check_same_config(cfg, existing, run_dir)
    else:
        check_writable_dir(run_dir, "the run folder ($GENBENCH_RUNS)")
    if (run_dir / "checkpoints" / "last.ckpt").is_file() and run_name:
        ckpt = check_checkpoint(run_dir / "checkpoints" / "last.ckpt")  # a named (sweep) run picks up where it stopped
    return RunSpec(cfg, run_dir, ckpt, kind, new=existing is None)


#: the lock file of a run folder, held by the process that trains in it
RUN_LOCK = ".lock"
_HELD_LOCKS: dict[Path, object] = {}  # run folder → its open, locked lock file (released by ``release_run_locks``)


def lock_run(run_dir: Path) -> None:
    """Take the run folder's lock for this process (released at its exit, or by ``release_run_locks``); a folder
    another process trains in is refused in one line, before anything in it is written."""
    if run_dir in _HELD_LOCKS:
        return
    handle = open(run_dir / RUN_LOCK, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise GenbenchError(f"run folder {run_dir} is in use by {owner}; wait for it to finish, or use another "
                            f"--run-name") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"genbench process {os.getpid()}")
    handle.flush()
    _HELD_LOCKS[run_dir] = handle


def release_run_locks() -> None:
    for handle in _HELD_LOCKS.values():
        handle.close()  # closing the file releases its lock
    _HELD_LOCKS.clear()


def record_start(spec: RunSpec) -> None:
    """When training starts (every check passed): the run folder locked for this process, then a new run's config and
    command written, or a resumed run's record of the config its weights now continue under (rank 0)."""
    if not is_rank_zero():
        return
    if spec.new:
        spec.run_dir.mkdir(parents=True, exist_ok=True)
    lock_run(spec.run_dir)
    if spec.new:
        record_config(spec.run_dir, spec.cfg, spec.kind)
    elif spec.ckpt is not None:
        record_config(spec.run_dir, spec.cfg, "resume")


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


#: written into a run folder when its training has finished (``bench`` writes ``result.json``)
FIT_RECORD = "fit.json"


@contextlib.contextmanager
def shared_run_dir():
    """Keep $GENBENCH_RUN_DIR (set for DDP children) and the run folder's lock from outliving the run in this
    process."""
    preset = os.environ.get("GENBENCH_RUN_DIR")
    try:
        yield
    finally:
        release_run_locks()
        if preset is None:
            os.environ.pop("GENBENCH_RUN_DIR", None)
