"""Tests never read the user's data roots, weights or caches, and never write into the project:
leaderboards, runs and caches go to a session temp folder; ``$GENBENCH_DATA``, ``~/genbench-data``
and ``$GENBENCH_INCEPTION_WEIGHTS`` are hidden. Tests that need ``../shared/data`` skip only when that
folder is absent (a user's clone), never because of another error."""

import os

import pytest
import torch

from genbench import paths

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

REDIRECTED = ("GENBENCH_LEADERBOARDS", "GENBENCH_RUNS", "GENBENCH_CACHE", "WANDB_MODE", "TORCH_HOME")
HIDDEN = ("GENBENCH_DATA", "GENBENCH_INCEPTION_WEIGHTS", "GENBENCH_RUN_DIR", "WANDB_API_KEY")


@pytest.fixture(autouse=True, scope="session")
def isolated_outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("genbench")
    old = {k: os.environ.get(k) for k in (*REDIRECTED, *HIDDEN)}
    os.environ["GENBENCH_LEADERBOARDS"] = str(root / "leaderboards")
    os.environ["GENBENCH_RUNS"] = str(root / "runs")
    os.environ["GENBENCH_CACHE"] = str(root / "cache")
    os.environ["WANDB_MODE"] = "offline"
    os.environ["TORCH_HOME"] = str(root / "torch-home")  # no Inception weights the user may have cached
    for key in HIDDEN:
        os.environ.pop(key, None)
    home_data = paths.DEFAULT_DATA_DIR
    paths.DEFAULT_DATA_DIR = root / "no-home-data"  # ~/genbench-data of the user is never read
    yield root
    paths.DEFAULT_DATA_DIR = home_data
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _needs_shared(*names: str) -> None:
    missing = [n for n in names if not (paths.SHARED_DATA_DIR / n).is_dir()]
    if missing:
        pytest.skip(f"../shared/data/{missing[0]} is absent (offline data of the development machines)")


@pytest.fixture
def needs_shared():
    """``needs_shared("scene15")`` skips when ``../shared/data/scene15`` is absent (a user's clone);
    any other failure of the test stays a failure."""
    return _needs_shared
