"""Where genbench looks for data, caches and results.

Resolution order for a dataset root: an explicit ``root`` from the config → ``$GENBENCH_DATA/<name>``
→ ``~/genbench-data/<name>`` → the project's shipped copy (``assets/``) → the offline copy in ``../shared/data`` beside the checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

from genbench.errors import GenbenchError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = PROJECT_ROOT / "assets"
SHARED_DATA_DIR = PROJECT_ROOT.parent / "shared" / "data"
DEFAULT_DATA_DIR = Path.home() / "genbench-data"


def genbench_data_dir() -> Path | None:
    value = os.environ.get("GENBENCH_DATA")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Local cache (offline classifiers, features): ``$GENBENCH_CACHE`` or ``~/.cache/genbench``; one line where it
    cannot be a folder."""
    value = os.environ.get("GENBENCH_CACHE")
    path = Path(value).expanduser() if value else Path.home() / ".cache" / "genbench"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenbenchError(f"the cache folder {path} ($GENBENCH_CACHE) cannot be made ({exc.strerror or exc}); point "
                            f"$GENBENCH_CACHE at a writable folder") from None
    return path


def leaderboard_dir() -> Path:
    value = os.environ.get("GENBENCH_LEADERBOARDS")
    return Path(value).expanduser() if value else PROJECT_ROOT / "leaderboards"


def runs_dir() -> Path:
    value = os.environ.get("GENBENCH_RUNS")
    return Path(value).expanduser() if value else PROJECT_ROOT / "runs"


def configs_dir() -> Path:
    return PROJECT_ROOT / "configs"


def candidate_roots(name: str, explicit: str | os.PathLike | None, fallbacks: list[Path]) -> list[Path]:
    """The roots to try for dataset ``name``, in order; an explicit root or $GENBENCH_DATA wins alone."""
    if explicit:
        return [Path(explicit).expanduser()]
    env = genbench_data_dir()
    if env is not None:
        return [env / name]
    return [DEFAULT_DATA_DIR / name, *fallbacks]
