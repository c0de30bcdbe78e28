"""Local sweeps over a W&B-style grid (``configs/sweeps/*.yaml``), without a W&B server.

Each job (model, data, n, seed, preset) runs as its own ``genbench bench`` process with a stable run name,
so a sweep restarted after a crash skips jobs whose row (under the same config hash) is already in the leaderboard
and resumes unfinished ones from their ``last.ckpt``. A failing job is recorded in ``<table>.failures.jsonl`` (as
interrupted when a signal stopped it) and the sweep goes on; a failed or interrupted job has no row, so the next sweep
runs it again, from its checkpoint. With ``devices > 1`` jobs run in parallel, one per device
(``CUDA_VISIBLE_DEVICES``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import yaml

from genbench.config import load_yaml, parse_override
from genbench.errors import GenbenchError
from genbench.files import check_writable_dir, write_text
from genbench.paths import leaderboard_dir, runs_dir
from genbench.results import read_rows, table_path
from genbench.results.store import append_line
from genbench.runs.config import RunConfig, run_config
from genbench.runs.launchers import LAUNCHERS, ClusterOptions, launch_local, launch_submitit
from genbench.runs.settings import table_name

GRID_KEYS = ("model", "data", "n", "seed", "preset")
#: a job's exit status when a signal stopped it: 143 (genbench's own, after checkpointing on SIGTERM), −15 / −9
#: (killed by SIGTERM / SIGKILL before it could): recorded as interrupted, and the next sweep resumes the job
INTERRUPTED_CODES = (143, -15, -9, 137)


@dataclass(frozen=True)
class Job:
    """One ``genbench bench`` run of a sweep. ``overrides``: this job's own ``key=value`` overrides (after the
    sweep's), e.g. a category subset; ``tag`` names them in the run folder so that such jobs never share one."""

    model: str
    data: str
    n: int | None
    seed: int
    preset: str
    overrides: tuple[str, ...] = field(default=())
    tag: str = ""

    def resolve(self, overrides: list[str] | None = None) -> RunConfig:
        """The job's config under the sweep's ``overrides`` (then its own), resolved once: the sweep launches the job
        with it (``command``), names its folder and finds its row by it."""
        return run_config(self.model, self.data, self.preset, self.n, self.seed, [*(overrides or []), *self.overrides])

    def run_name(self, resolved: RunConfig) -> str:
        """The job's run folder name, ending in its config's hash: a job whose settings differ in anything (an
        override, or a preset or model file changed since) never meets a folder it would be refused to resume; the
        same job, interrupted, resumes its folder."""
        tag = f"-{self.tag}" if self.tag else ""
        return f"sweep-{self.preset}{tag}-n{self.n or 'all'}-s{self.seed}-{resolved.hash}"

    def table(self, resolved: RunConfig, boards: Path) -> Path:
        return table_path(boards, self.data, table_name(resolved.cfg, self.preset))

    def finished(self, resolved: RunConfig, table: Path) -> bool:
        """Whether ``table`` holds this job's row under the job's config as it is now (its hash; a row written before
        configs were resolved, by its legacy hash): after a preset changes, its table's jobs run again."""
        rows, _ = read_rows(table)
        wanted = {resolved.hash, resolved.legacy_hash}
        return any(self.owns(r) and r.get("config_hash") in wanted for r in rows)

    def command(self, spec: Path, resolved: RunConfig, boards: Path) -> list[str]:
        """The job's ``genbench bench`` arguments: its resolved config's file (``write_spec``), run as it is."""
        return ["bench", "--spec", str(spec), "--run-name", self.run_name(resolved), "--leaderboards", str(boards)]

    @property
    def label(self) -> str:
        return f"{self.model} {self.data}{f' [{self.tag}]' if self.tag else ''} n={self.n} seed={self.seed}"

    def owns(self, row: dict) -> bool:
        """Whether ``row`` is this job's: same grid keys, and its recorded config holds the job's own overrides."""
        if (row.get("model"), row.get("data"), row.get("n"), row.get("seed"), row.get("preset")) != \
                (self.model, self.data, self.n, self.seed, self.preset):
            return False
        return all(_holds(row.get("config") or {}, parse_override(item)) for item in self.overrides)


def write_spec(folder: Path, job: Job, resolved: RunConfig) -> Path:
    """The job's resolved config written to ``folder/<run name>.yaml``: what its ``genbench bench`` process runs."""
    path = folder / f"{job.run_name(resolved)}.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    write_text(path, yaml.safe_dump(resolved.cfg, sort_keys=False))
    return path


def _holds(config: dict, wanted: dict) -> bool:
    """Whether the nested ``wanted`` values are all in ``config``."""
    for key, value in wanted.items():
        if isinstance(value, dict):
            if not isinstance(config.get(key), dict) or not _holds(config[key], value):
                return False
        elif config.get(key) != value:
            return False
    return True


def expand_grid(path: Path) -> list[Job]:
    """The jobs of a W&B-style grid (``parameters.<key>.value`` or ``.values``), n by n in the listed order with
    the models innermost."""
    if not path.is_file():
        raise GenbenchError(f"sweep file {path} does not exist")
    spec = load_yaml(path)
    params = spec.get("parameters", {})
    unknown = sorted(set(params) - set(GRID_KEYS))
    if unknown:
        raise GenbenchError(f"sweep {path} has unknown parameters {unknown}; known: {', '.join(GRID_KEYS)}")
    axes = {}
    for key in GRID_KEYS:
        entry = params.get(key, {})
        values = entry.get("values", [entry["value"]] if "value" in entry else None)
        if values is None:
            values = {"n": [None], "seed": [0], "preset": ["smoke"]}.get(key)
        if values is None:
            raise GenbenchError(f"sweep {path} must give parameters.{key}")
        axes[key] = values
    # column by column: every model at the first n before the next n, so an interrupted sweep leaves whole columns
    order = ("data", "preset", "n", "seed", "model")
    return [Job(**dict(zip(order, combo))) for combo in itertools.product(*(axes[k] for k in order))]


def run_sweep(path: Path, overrides: list[str] | None = None, devices: int = 1, leaderboards: Path | None = None,
              log=print, launcher: str = "local", cluster: ClusterOptions | None = None) -> dict[str, list[Job]]:
    """Run every unfinished job of the grid; returns the jobs by outcome (done, skipped, failed)."""
    return run_jobs(expand_grid(path), f"sweep {path.name}", str(path), overrides, devices, leaderboards, log, launcher,
                    cluster)


def failure_reason(err: str, code: int) -> str:
    """The line that says why a job failed: genbench's own one-line message where there is one (a cluster task's log
    ends with the launcher's lines), else the last line of its stderr."""
    lines = [line for line in err.splitlines() if line.strip()]
    return next((line for line in reversed(lines) if line.startswith("genbench:")), lines[-1] if lines else f"exit {code}")


def run_jobs(jobs: list[Job], label: str, source: str, overrides: list[str] | None = None, devices: int = 1,
             leaderboards: Path | None = None, log=print, launcher: str = "local",
             cluster: ClusterOptions | None = None) -> dict[str, list[Job]]:
    """Run the unfinished ``jobs`` (one ``genbench bench`` each, through ``launcher``: ``genbench.runs.launchers``);
    failures are recorded beside their table and the rest go on. Returns the jobs by outcome (done, skipped, failed)."""
    if launcher not in LAUNCHERS:
        raise GenbenchError(f"unknown launcher {launcher!r}; known: {', '.join(LAUNCHERS)}")
    overrides = list(overrides or [])
    boards = leaderboards or leaderboard_dir()
    outcome: dict[str, list[Job]] = {"done": [], "skipped": [], "failed": []}
    tables, unfinished = {}, {}
    for job in jobs:  # every config is resolved here, once, before any job runs: a bad one stops the sweep in one line
        resolved = job.resolve(overrides)
        tables[job] = job.table(resolved, boards)
        if job.finished(resolved, tables[job]):
            outcome["skipped"].append(job)
        else:
            unfinished[job] = resolved
    log(f"{label}: {len(jobs)} jobs, {len(outcome['skipped'])} finished already, {len(unfinished)} to run")
    folder = runs_dir() / "sweeps" / Path(source).stem / datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    if unfinished:
        check_writable_dir(folder, "the sweep's folder ($GENBENCH_RUNS)")
    specs = {job: write_spec(folder / "specs", job, resolved) for job, resolved in unfinished.items()}
    commands = {job: job.command(specs[job], resolved, boards) for job, resolved in unfinished.items()}
    if launcher == "local":
        ended = launch_local(commands, devices)
    elif commands:
        ended = launch_submitit(commands, folder, launcher.removeprefix("submitit-"), cluster or ClusterOptions(), log)
    else:
        ended = iter(())
    for job, code, err in ended:
        if code == 0:
            outcome["done"].append(job)
            log(f"  done    {job.label}")
            continue
        outcome["failed"].append(job)
        reason = failure_reason(err, code)
        interrupted = code in INTERRUPTED_CODES
        log(f"  {'INTERRUPTED' if interrupted else 'FAILED'}  {job.label}: {reason}")
        failure = {"model": job.model, "data": job.data, "n": job.n, "seed": job.seed, "preset": job.preset,
                   "job_overrides": list(job.overrides), "spec": str(specs[job]), "exit_code": code, "interrupted": interrupted,
                   "error": reason, "stderr_tail": err[-2000:], "sweep": source, "launcher": launcher,
                   "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        table = tables[job]
        append_line(table.with_name(table.stem + ".failures.jsonl"), failure)
    log(f"{label}: {len(outcome['done'])} done, {len(outcome['skipped'])} skipped, {len(outcome['failed'])} failed")
    return outcome
