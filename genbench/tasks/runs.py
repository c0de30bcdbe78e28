"""Trained models for the task tables: a finished run of the same effective config is reused (from ``runs/``,
whether ``bench`` or ``fit`` made it), otherwise the model is trained once under a stable run name (an
interrupted training resumes from its ``last.ckpt``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from genbench.bench.harness import run_fit
from genbench.config import config_hash
from genbench.errors import GenbenchError
from genbench.paths import runs_dir
from genbench.runs.config import RunConfig
from genbench.runs.folder import FIT_RECORD, check_checkpoint, recorded_config
from genbench.runs.trainer import build


@dataclass
class TrainedModel:
    """A trained model with its datamodule and where it came from."""

    name: str
    module: object
    datamodule: object
    cfg: dict
    run_dir: Path
    reused: bool
    legacy_config_hash: str | None = None  # the hash rows recorded before configs were resolved (lookup only)

    def record(self) -> dict:
        """What a table row says about the model it scored."""
        run = self.cfg["run"]
        return {"model": self.name, "model_preset": run["preset"], "n": run["n"], "seed": run["seed"],
                "config_hash": config_hash(self.cfg), "run_dir": str(self.run_dir), "iterations": self.module.iteration,
                "reused_run": self.reused, "legacy_config_hash": self.legacy_config_hash}


def finished_runs(runs: Path, data: str, model: str, wanted_hash: str) -> list[Path]:
    """Run folders of ``model`` on ``data`` whose resolved config hashes to ``wanted_hash`` (folders written before
    configs were resolved are resolved here) and whose training finished (``result.json`` from bench or ``fit.json``
    from fit, beside ``checkpoints/last.ckpt``), newest first."""
    found = []
    for config in (runs / data / model).glob("*/config.yaml"):
        folder = config.parent
        if not (folder / "checkpoints" / "last.ckpt").is_file():
            continue
        if not ((folder / "result.json").is_file() or (folder / FIT_RECORD).is_file()):
            continue
        try:
            if config_hash(recorded_config(folder)) == wanted_hash:
                found.append(folder)
        except GenbenchError:  # unreadable, or a config that no longer resolves (a removed option)
            continue
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def load_trained(cfg: dict, run_dir: Path):
    """(datamodule, model) of ``cfg`` with the weights of ``run_dir/checkpoints/last.ckpt``, in eval mode."""
    ckpt = check_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    dm, module = build(cfg)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    module.on_load_checkpoint(state)  # as Lightning's restore does: a model maps the state of its older checkpoints
    module._pending_rng = None  # no training follows: the run's random state is not restored
    try:
        module.load_state_dict(state["state_dict"])
    except RuntimeError as exc:
        first = str(exc).splitlines()[0][:160]
        raise GenbenchError(f"checkpoint {ckpt} does not fit the current {cfg['run']['model']} ({first})") from None
    module.iteration = int(state.get("genbench_iteration", 0))
    module.eval()
    return dm, module


def trained_model(resolved: RunConfig, runs: Path | None = None, log=print) -> TrainedModel:
    """The model of the run config ``resolved`` (``run_config``), trained: a finished run of the same config is
    reused; else it is trained (``genbench fit`` of that config) under the run name
    ``table-<preset>-n<n>-s<seed>-<hash>``."""
    runs = runs or runs_dir()
    cfg, wanted, legacy = resolved.cfg, resolved.hash, resolved.legacy_hash
    model, data, preset, n, seed = (resolved.run[k] for k in ("model", "data", "preset", "n", "seed"))
    for folder in finished_runs(runs, data, model, wanted):
        try:
            dm, module = load_trained(cfg, folder)
        except GenbenchError as exc:  # e.g. a run from before a change of the net: train afresh
            log(f"  not reusing {folder}: {exc}")
            continue
        log(f"  {model}: reusing {folder}")
        return TrainedModel(model, module, dm, cfg, folder, reused=True, legacy_config_hash=legacy)
    log(f"  {model}: training ({preset} preset, config {wanted}) ...")
    folder = run_fit(None, None, runs=runs, run_name=f"table-{preset}-n{n or 'all'}-s{seed}-{wanted}", config=cfg)
    dm, module = load_trained(cfg, folder)
    return TrainedModel(model, module, dm, cfg, folder, reused=False, legacy_config_hash=legacy)
