"""Tests never write into the project: leaderboards, runs and caches go to a session temp folder."""

import os

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True, scope="session")
def isolated_outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("genbench")
    old = {k: os.environ.get(k) for k in ("GENBENCH_LEADERBOARDS", "GENBENCH_RUNS", "GENBENCH_CACHE", "WANDB_MODE")}
    os.environ["GENBENCH_LEADERBOARDS"] = str(root / "leaderboards")
    os.environ["GENBENCH_RUNS"] = str(root / "runs")
    os.environ["GENBENCH_CACHE"] = str(root / "cache")
    os.environ["WANDB_MODE"] = "offline"
    yield root
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
