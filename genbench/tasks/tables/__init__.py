"""The papers' tables beyond sampling, one file each in this package, one command each:
``genbench table --table <name> --data <d> --preset <p>`` (``genbench list`` names them).

A table file defines its settings dataclass (defaults: the papers' protocol), how its rows are computed and
drawn, and registers a ``Table``; this package imports every such file, so a new table is one file here plus its
``configs/tables/<name>.yaml``.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from pathlib import Path

from genbench.config import deep_merge, load_yaml, parse_override
from genbench.errors import GenbenchError
from genbench.paths import leaderboard_dir
from genbench.tasks.tables.base import TABLES, Table, check_shared, published, table_file

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def table_settings(name: str, preset: str, overrides: list[str] | None = None, data: str | None = None):
    """The settings of table ``name`` under ``preset`` (the YAML's ``presets.<preset>`` block; ``paper`` is the
    dataclass defaults) with ``key=value`` overrides and ``data``; bad values are refused in one line."""
    table = TABLES.get(name)
    spec = load_yaml(table_file(name)) if table_file(name).is_file() else {}
    presets = spec.get("presets") or {}
    if preset != "paper" and preset not in presets:
        raise GenbenchError(f"table {name!r} has no preset {preset!r}; known: {', '.join(['paper', *presets])}")
    values = dict(presets.get(preset) or {})
    for text in overrides or []:
        values = deep_merge(values, parse_override(text))
    if data:
        values["data"] = data
    known = {f.name for f in dataclasses.fields(table.settings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise GenbenchError(f"unknown {name} table option(s) {unknown}; accepted: {', '.join(sorted(known))}")
    settings = table.settings(**values)
    check_shared(settings)
    table.check(settings)
    return settings


def run_table(name: str, preset: str = "cpu", data: str | None = None, overrides: list[str] | None = None,
              leaderboards: Path | None = None, runs: Path | None = None, log=print) -> list[Path]:
    """Train what is missing, evaluate, append rows, render Markdown + PNG; returns the files written."""
    settings = table_settings(name, preset, overrides, data)
    return TABLES.get(name).produce(settings, preset, leaderboards or leaderboard_dir(), runs, log)


__all__ = ["TABLES", "Table", "published", "run_table", "table_settings"]
