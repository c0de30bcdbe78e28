"""Sweeps through submitit (the path of ``genbench sweep --launcher slurm``), on submitit's local executor: a job
preempted part-way is requeued, resumes from the checkpoint written at the stop point, and every job's row is written
once."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from genbench.bench.sweep import Job, failure_reason, run_jobs
from genbench.errors import GenbenchError
from genbench.results import read_rows
from genbench.runs.launchers import ClusterOptions

TINY = ("model.g_width=8", "model.d_width=8", "data.batch_size=16", "bench.metrics=[pairwise_ssim]",
        "bench.num_samples=20", "bench.metric_options.ssim_samples=10")


def processes() -> dict[int, tuple[int, str]]:
    """pid → (parent pid, command line) of this machine's processes."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        found[int(entry.name)] = (parent, cmdline)
    return found


def preempt_when_checkpointed(run_name: str, runs: Path, sent: list, deadline: float) -> None:
    """Once the run ``run_name`` has a checkpoint, send the preemption signal (USR2, as SLURM's ``--signal`` does
    through submitit) to the submitit task running it: the parent of its ``genbench bench`` process."""
    while time.time() < deadline:
        if list(runs.rglob(f"{run_name}/checkpoints/last.ckpt")):
            for pid, (parent, cmdline) in processes().items():
                if "genbench.cli bench" in cmdline and run_name in cmdline:
                    os.kill(parent, signal.SIGUSR2)
                    sent.append(parent)
                    return
        time.sleep(0.1)


@pytest.mark.fault
def test_a_sweep_through_submitit_requeues_a_preempted_job_and_writes_each_row_once(tmp_path, monkeypatch):
    boards, runs = tmp_path / "boards", tmp_path / "runs"
    monkeypatch.setenv("GENBENCH_RUNS", str(runs))  # this test's own runs, logs and checkpoints
    quick = Job("dcgan", "digits", 20, 0, "smoke", (*TINY, "trainer.max_iterations=2"), tag="quick")
    long = Job("dcgan", "digits", 20, 0, "smoke", (*TINY, "trainer.max_iterations=2000", "trainer.checkpoint_every=50"),
               tag="long")
    sent: list[int] = []
    watcher = threading.Thread(target=preempt_when_checkpointed,
                               args=(long.run_name(long.resolve()), runs, sent, time.time() + 600), daemon=True)
    watcher.start()
    outcome = run_jobs([quick, long], "sweep t", "t.yaml", leaderboards=boards, launcher="submitit-local",
                       cluster=ClusterOptions(timeout_min=20), log=lambda text: None)
    watcher.join(timeout=1)
    assert sent, "the long job was never seen running with a checkpoint"
    assert outcome["done"] == [quick, long] and outcome["failed"] == []
    rows, bad = read_rows(boards / "digits" / "smoke.jsonl")
    assert not bad and sorted(r["config"]["trainer"]["max_iterations"] for r in rows) == [2, 2000]  # each row once
    logs = "".join(p.read_text(errors="replace") for p in (runs / "sweeps").rglob("*.err"))
    assert "this job is preempted" in logs and logs.count("stopped by SIGTERM at iteration") == 1
    stopped = int(logs.split("stopped by SIGTERM at iteration ")[1].split(";")[0])
    long_row = next(r for r in rows if r["config"]["trainer"]["max_iterations"] == 2000)
    # the requeued task resumed from the checkpoint written at the stop point, not from an earlier one or from zero
    assert long_row["iterations"] == 2000 and long_row["resumed_from_iteration"] == stopped > 0
    assert not list(runs.rglob("*.tmp"))
    # a second sweep finds both rows and starts nothing
    again = run_jobs([quick, long], "sweep t", "t.yaml", leaderboards=boards, launcher="submitit-local",
                     log=lambda text: None)
    assert again["skipped"] == [quick, long]


def test_a_cluster_tasks_failure_reason_is_genbenchs_own_line_not_the_launchers():
    log = "genbench 12:00 train: iteration 3\ngenbench: diverged at step iteration 3 (…); lower model.lr\n" \
          "submitit INFO (2026-12-06) Job completed successfully\n"
    assert failure_reason(log, 2) == "genbench: diverged at step iteration 3 (…); lower model.lr"
    assert failure_reason("Traceback …\nValueError: x\n", 1) == "ValueError: x"
    assert failure_reason("", -9) == "exit -9"


def test_unknown_launchers_and_bad_cluster_options_are_refused_before_any_job(tmp_path):
    job = Job("dcgan", "digits", 20, 0, "smoke", TINY)
    with pytest.raises(GenbenchError, match="unknown launcher 'pbs'; known: local, slurm, submitit-local"):
        run_jobs([job], "sweep t", "t.yaml", leaderboards=tmp_path, launcher="pbs", log=lambda text: None)
    with pytest.raises(GenbenchError, match="timeout_min > 0"):
        ClusterOptions(timeout_min=-1).check()
