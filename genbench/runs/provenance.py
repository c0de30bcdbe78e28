"""Where and how a result was produced: the commit (dirty or not), the package versions, the device, the load, the
time and the command; and the machine's memory."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone

import torch

from genbench.paths import PROJECT_ROOT
from genbench.versions import package_versions


def git_commit() -> str:
    """HEAD, with ``-dirty`` when a tracked file differs from it. The results genbench writes itself (``leaderboards/``)
    do not count: a sweep's second row would otherwise be marked dirty by its first."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)leaderboards"],
                               cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if commit.returncode != 0:
        return "unknown"
    return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({os.cpu_count()} cores)"


def provenance() -> dict:
    """What every row records about where and how it was produced."""
    return {"git_commit": git_commit(), "versions": package_versions(), "device": device_name(),
            "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["genbench", *sys.argv[1:]]) if sys.argv else ""}


def physical_memory() -> int | None:
    """Bytes of physical memory of this machine (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
