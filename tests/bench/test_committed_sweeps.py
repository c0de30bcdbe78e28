"""The committed sweeps are finished under today's code: a refactor that changes no behaviour must not change a
resolved config (a defaulted constructor argument added to a model changes every hash of its rows), or ``make sweep``
would train every committed job again."""

import subprocess
from pathlib import Path

import pytest

from genbench.bench.sweep import run_sweep
from genbench.paths import PROJECT_ROOT

#: the sweeps whose every job has its row in leaderboards/ (the tables the README lists)
COMMITTED = ("cpu.yaml", "cpu-30min.yaml", "mnist.yaml", "cifar10-subset.yaml")


@pytest.mark.parametrize("sweep", COMMITTED)
def test_a_committed_sweep_run_again_starts_no_job(sweep, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"the sweep started a job: {args[0] if args else kwargs}")

    monkeypatch.setattr(subprocess, "run", refuse)
    outcome = run_sweep(Path(PROJECT_ROOT) / "configs" / "sweeps" / sweep, leaderboards=Path(PROJECT_ROOT) / "leaderboards",
                        log=lambda text: None)
    assert outcome["done"] == [] and outcome["failed"] == [] and len(outcome["skipped"]) > 0
