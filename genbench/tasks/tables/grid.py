"""The machinery of the tables that are grids of ``genbench bench`` runs (``is-vs-n``, ``synthesis-quality``):
every model × n × seed × variant through the sweep machinery (finished rows skipped, unfinished runs resumed), then
the reference rows (real images, noise) of every n.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from genbench.bench.reference import run_reference
from genbench.bench.sweep import Job, run_jobs
from genbench.data import build_datamodule
from genbench.errors import GenbenchError
from genbench.models import MODELS
from genbench.results import read_rows, table_path
from genbench.runs.config import run_config
from genbench.runs.settings import table_name


@dataclass
class GridTable:
    """A grid of bench runs: every model × n × seed (``n`` values beyond what the dataset holds are dropped, and
    said so).

    Args:
        models, ns, seeds: the grid; model_preset: the bench preset (its table is the leaderboard table).
        devices: jobs in parallel, one per device.
    """

    data: str = "imagenet-scenes"
    model_preset: str = "paper"
    models: list[str] = field(default_factory=lambda: ["coopnets", "dcgan", "ebgan", "wgan", "vae", "infogan",
                                                       "kim-bengio", "abp", "pcd"])
    ns: list[int] = field(default_factory=lambda: [50, 100, 300, 500, 700, 900, 1100])
    seeds: list[int] = field(default_factory=lambda: [0])
    devices: int = 1
    overrides: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for model in self.models:
            MODELS.get(model)  # an unknown name lists the known ones
        if not self.ns or any(not isinstance(n, int) or n < 1 for n in self.ns):
            raise GenbenchError(f"ns must be a non-empty list of positive integers, got {self.ns!r}")
        if not self.seeds or any(not isinstance(seed, int) for seed in self.seeds):
            raise GenbenchError(f"seeds must be a non-empty list of integers, got {self.seeds!r}")
        if not isinstance(self.devices, int) or self.devices < 1:
            raise GenbenchError(f"devices must be a positive integer, got {self.devices!r}")


@dataclass(frozen=True)
class Variant:
    """One table of a grid: its own overrides (e.g. a category) and the tag naming its runs."""

    tag: str = ""
    overrides: tuple[str, ...] = ()


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def base_config(s: GridTable, variant: Variant = Variant()) -> dict:
    return run_config(None, s.data, s.model_preset, None, 0, [*s.overrides, *variant.overrides]).cfg


def variant_table(s: GridTable, variant: Variant, boards: Path) -> Path:
    return table_path(boards, s.data, table_name(base_config(s, variant), s.model_preset))


def training_capacity(s: GridTable, variant: Variant) -> int:
    """The fewest training images a category of ``variant``'s data holds (from the file list, nothing decoded)."""
    planned = build_datamodule(s.data, **base_config(s, variant)["data"])
    labels = [label for _, label in planned.plan()["train"]]
    return int(torch.bincount(torch.tensor(labels)).min()) if labels else 0


def run_grid(s: GridTable, variants: list[Variant], name: str, boards: Path, log) -> tuple[list[Path], list]:
    """Every model × n × seed × variant through ``genbench bench`` jobs (n by n), then the reference rows of every
    (variant, n) that lacks them. Returns each variant's leaderboard table and the failed jobs (recorded beside
    their tables; the others went on)."""
    capacity = min(training_capacity(s, v) for v in variants)
    ns = [n for n in s.ns if n <= capacity]
    if len(ns) < len(s.ns):
        log(f"{name}: {s.data} holds {capacity} training images per category; dropping n = "
            f"{', '.join(str(n) for n in s.ns if n > capacity)}")
    if not ns:
        raise GenbenchError(f"no n of {s.ns} fits {s.data} ({capacity} training images per category)")
    jobs = [Job(model, s.data, n, seed, s.model_preset, v.overrides, v.tag)
            for n in ns for v in variants for seed in s.seeds for model in s.models]
    outcome = run_jobs(jobs, name, f"genbench table --table {name}", s.overrides, s.devices, boards, log)
    tables = []
    for v in variants:
        table = variant_table(s, v, boards)
        tables.append(table)
        existing, _ = read_rows(table)
        for seed in s.seeds:
            missing = [n for n in ns if not any(r.get("kind") == "reference" and r.get("n") == n and r.get("seed") == seed
                                                for r in existing)]
            if missing:
                run_reference(s.data, s.model_preset, missing, seed, [*s.overrides, *v.overrides], boards, log)
    return tables, outcome["failed"]


def report_failures(name: str, failed: list, tables: list[Path]) -> None:
    """After the tables are rendered: one line if jobs failed."""
    if failed:
        raise GenbenchError(f"{len(failed)} {name} job(s) failed; see the .failures.jsonl beside "
                            f"{', '.join(sorted({t.name for t in tables}))}")
