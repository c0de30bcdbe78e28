"""W&B logging that never blocks or fails a run.

Mode: ``logger.mode`` in the config, else ``$WANDB_MODE``, else online when credentials exist
(``$WANDB_API_KEY`` or a netrc entry) and offline otherwise. An online run whose server cannot be reached
within ``init_timeout`` seconds falls back to offline: the files stay in ``<run>/wandb`` for
``wandb sync`` later. Under DDP only rank 0 creates the W&B run (one run per job); its config is the
CLI's effective config, never read back from ``wandb.config``.
"""

from __future__ import annotations

import netrc
import os
import warnings
from pathlib import Path

from lightning.fabric.utilities.rank_zero import rank_zero_only


def credentials_present() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        hosts = netrc.netrc().hosts
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return any("wandb" in host for host in hosts)


def resolve_mode(options) -> str:
    mode = options.mode or os.environ.get("WANDB_MODE")
    if mode in ("online", "offline", "disabled"):
        return mode
    return "online" if credentials_present() else "offline"


def make_wandb_logger(options, run_dir: Path, name: str, tags: list[str], config: dict):
    """A WandbLogger from ``LoggerSettings`` (rank 0 initialised eagerly so an unreachable server is detected
    now), or None."""
    if not options.wandb:
        return None
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    mode = resolve_mode(options)
    if mode == "disabled":
        return None
    run_dir.mkdir(parents=True, exist_ok=True)

    def build(offline: bool) -> WandbLogger:
        settings = wandb.Settings(init_timeout=float(options.init_timeout), silent=True,
                                  mode="offline" if offline else "online")
        return WandbLogger(project=options.project, entity=options.entity, name=name,
                           tags=tags, save_dir=str(run_dir), offline=offline, log_model=False, config=config,
                           settings=settings, job_type=options.job_type, group=options.group)

    logger = build(offline=mode == "offline")
    status = mode
    if rank_zero_only.rank == 0:
        try:
            logger.experiment  # noqa: B018 - starts the run now
        except Exception as exc:  # unreachable server, bad key, timeout: never fail the run
            warnings.warn(f"W&B could not start online ({type(exc).__name__}); logging offline to {run_dir}/wandb")
            try:
                wandb.finish()
            except Exception:
                pass
            os.environ["WANDB_MODE"] = "offline"  # this process's later W&B calls stay offline too
            logger = build(offline=True)
            logger.experiment  # noqa: B018
            status = "offline (fallback)"
        run_mode = getattr(getattr(logger.experiment, "settings", None), "mode", None)
        if status == "online" and run_mode in ("offline", "dryrun"):
            status = "offline (fallback)"
    logger.genbench_mode = status
    return logger


def finish_wandb(logger, summary: dict) -> None:
    """Log the final leaderboard row's numbers to the run summary and close the run (rank 0)."""
    if logger is None or rank_zero_only.rank != 0:
        return
    import wandb

    try:
        run = logger.experiment
        run.summary.update(summary)
        wandb.finish()
    except Exception as exc:
        warnings.warn(f"W&B summary not written ({type(exc).__name__}: {exc})")
