"""Seconds per iteration of every model as a preset configures it, and the iterations that fill a budget."""

from __future__ import annotations

from genbench.runs.config import run_config

from perf.common import DATA
from perf.training import genbench_iteration


def time_preset(names: list[str], preset: str, iterations: int, budget: float, data: str = DATA) -> list[dict]:
    """Seconds per iteration of each model as ``preset`` configures it on ``data`` (through the Trainer), and the
    iterations that fill ``budget`` seconds: the numbers a tier's ``trainer.max_iterations`` come from."""
    rows = []
    for name in names:
        result = genbench_iteration(name, preset, iterations, 2, data=data)
        configured = run_config(name, data, preset, None, 0).cfg["trainer"].get("max_iterations")
        seconds = result["seconds_per_iteration"]
        rows.append({"model": name, **result, "budget_iterations": int(budget / seconds), "configured_iterations": configured,
                     "configured_seconds": configured * seconds if configured else None})
    return rows
