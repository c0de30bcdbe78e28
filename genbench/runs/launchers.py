"""Where a sweep's jobs run. ``local``: one ``genbench bench`` process per job on this machine, ``devices`` at a time.
``slurm``: a SLURM job array through submitit, one array task per job, each with its own log; a task that SLURM
preempts or times out is requeued and its run resumes from the checkpoint written at the stop point.
``submitit-local``: the same path through submitit's local executor (what the tests run; a user can try a sweep's
cluster path on one machine with it).

A launcher takes the jobs' ``genbench bench`` argument lists and yields (job, exit code, stderr) as each ends.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from genbench.errors import GenbenchError

LAUNCHERS = ("local", "slurm", "submitit-local")
#: the environment a submitted job carries from the sweep that submitted it (where runs, tables and caches live)
CARRIED_ENV = ("GENBENCH_", "WANDB_", "PYTHONPATH")


@dataclass
class ClusterOptions:
    """What a cluster job asks for: ``timeout_min`` its time limit (submitit signals it 90 s before, and requeues it),
    ``partition``, ``gpus_per_node``, ``cpus_per_task``; ``parallel`` the array tasks running at once (0: no limit)."""

    timeout_min: int = 240
    partition: str | None = None
    gpus_per_node: int = 0
    cpus_per_task: int = 2
    parallel: int = 0
    signal_delay_s: int = 90

    def check(self) -> None:
        if not self.timeout_min > 0 or self.gpus_per_node < 0 or self.cpus_per_task < 1 or self.parallel < 0 \
                or self.signal_delay_s < 1:
            raise GenbenchError(f"cluster options need timeout_min > 0, gpus ≥ 0, cpus ≥ 1, parallel ≥ 0 and "
                                f"signal_delay_s ≥ 1, got {self}")


def bench_command(argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "genbench.cli", *argv]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("GENBENCH_RUN_DIR", None)  # each job names its own run folder
    return env


def launch_local(commands: dict, devices: int) -> Iterator[tuple[object, int, str]]:
    """Each job as a child process, ``devices`` at a time (``CUDA_VISIBLE_DEVICES`` one device each when > 1)."""
    free: queue.Queue[int] = queue.Queue()
    for device in range(max(1, devices)):
        free.put(device)

    def run(job) -> tuple[object, int, str]:
        device = free.get()
        env = child_env()
        if devices > 1:
            env["CUDA_VISIBLE_DEVICES"] = str(device)
        try:
            proc = subprocess.run(bench_command(commands[job]), env=env, capture_output=True, text=True)
        finally:
            free.put(device)
        return job, proc.returncode, (proc.stderr or "").strip()

    with ThreadPoolExecutor(max(1, devices)) as pool:
        yield from pool.map(run, list(commands))


class BenchTask:
    """One sweep job as a submitit task: ``genbench bench`` as a child process writing to the task's log. On the
    preemption/time-out signal (submitit's USR2) the child gets SIGTERM — it checkpoints at the iteration it is at and
    exits 143 — and the task is submitted again with the same arguments: the same run name, so it resumes.
    Returns the child's exit code."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.argv, self.env = argv, env
        self.child_pid: int | None = None

    def __call__(self) -> int:
        env = {**child_env(), **self.env}
        child = subprocess.Popen(bench_command(self.argv), env=env)
        self.child_pid = child.pid
        code = child.wait()
        self.child_pid = None
        return code

    def checkpoint(self):
        """Runs in the signal handler, which interrupts ``Popen.wait`` above while it may hold the Popen's lock: the
        child is signalled and reaped by its pid alone."""
        from submitit.helpers import DelayedSubmission  # imported with submitit's own run of this task

        pid, self.child_pid = self.child_pid, None
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):  # it had already ended and been reaped
                pass
        return DelayedSubmission(self)

    def __getstate__(self) -> dict:
        return {"argv": self.argv, "env": self.env, "child_pid": None}


def launch_submitit(commands: dict, folder: Path, cluster: str, options: ClusterOptions,
                    log=print) -> Iterator[tuple[object, int, str]]:
    """The jobs as one submitit job array (``cluster``: ``slurm`` or ``local``), logs under ``folder``; waits for each
    and yields its exit code and the tail of its log. A task that did not finish (requeued too often, cancelled, lost)
    yields −15: the sweep records it as interrupted and the next sweep submits it again."""
    try:  # only cluster sweeps need submitit (the GPU machine has none)
        import submitit
    except ImportError:
        raise GenbenchError("--launcher slurm needs submitit: pip install submitit (make install has it)") from None
    options.check()
    executor = submitit.AutoExecutor(folder=folder, cluster=None if cluster == "slurm" else cluster)
    params = {"timeout_min": options.timeout_min, "cpus_per_task": options.cpus_per_task,
              "gpus_per_node": options.gpus_per_node, "tasks_per_node": 1, "nodes": 1,
              "slurm_signal_delay_s": options.signal_delay_s}
    if options.partition:
        params["slurm_partition"] = options.partition
    if options.parallel:
        params["slurm_array_parallelism"] = options.parallel
    executor.update_parameters(**params)
    carried = {k: v for k, v in os.environ.items() if k.startswith(CARRIED_ENV)}
    carried.pop("GENBENCH_RUN_DIR", None)
    jobs = list(commands)
    with executor.batch():
        submitted = [executor.submit(BenchTask(commands[job], carried)) for job in jobs]
    log(f"submitted {len(submitted)} job(s) as {cluster} array {submitted[0].job_id.split('_')[0] if submitted else '-'}; "
        f"logs in {folder}")
    for job, task in zip(jobs, submitted):
        try:
            code = int(task.result())
        except Exception as exc:  # submitit's UncompletedJobError / FailedJobError: the task ended without a result
            code = -15
            first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            log(f"  {job.label}: the {cluster} task ended without a result ({first})")
        yield job, code, (task.stderr() or "").strip()
