"""Re-keying rows written before feature spaces were recorded, by measurement.

A legacy row knows its classifier only by a cache key and its accuracies, not by its weights. ``genbench migrate``
re-scores each legacy *reference* row (real images, noise: the same images for any model) with the feature space
the row's config selects today; when every score comes out the same (to ``TOLERANCE``), the legacy space and the
current one are the same weights by measurement, and ``leaderboards/<data>/feature-spaces.json`` records the
mapping with its evidence. Reading a table applies the mapping in memory (``apply_migrations``); the JSONL is never
rewritten. A legacy space whose reference rows do not reproduce stays a space of its own.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

from genbench.bench.harness import metric_setup, score_row
from genbench.bench.reference import reference_images
from genbench.data import build_datamodule
from genbench.errors import GenbenchError
from genbench.results import MIGRATIONS_FILE, feature_space_of, is_reference, read_migrations, read_rows
from genbench.runs.config import resolve_config
from genbench.runs.provenance import provenance

TOLERANCE = 1e-9  # relative, per score


def rescore_reference(row: dict) -> dict:
    """A legacy reference row scored again, from its own recorded config, in today's feature space."""
    cfg = dict(row["config"])
    cfg["run"], cfg["model"] = {**cfg["run"], "model": None}, {}  # a reference row has no model (older rows said "reference")
    cfg = resolve_config(cfg)
    names, ctx = metric_setup(cfg)
    count = row.get("requested_samples") or row["n_samples"]
    training = build_datamodule(cfg["run"]["data"], **cfg["data"])  # the row's n draw (the image averages' images)
    images = reference_images(row["model"], ctx.benchmark_data(), count, row["seed"], training)
    return score_row(names, images, ctx)


def largest_difference(old: dict, new: dict) -> tuple[float, int]:
    """The largest relative difference between two rows' scores (over the scores both have) and how many."""
    shared = [k for k in old if k in new]
    worst = 0.0
    for key in shared:
        a, b = old[key]["mean"], new[key]["mean"]
        worst = max(worst, abs(a - b) / max(1.0, abs(a)) if math.isfinite(a) and math.isfinite(b) else math.inf)
    return worst, len(shared)


def migrate(boards: Path, data: str, log=print) -> list[dict]:
    """Verify every legacy feature space of ``boards/<data>`` that has reference rows, and write the verified ones
    to ``feature-spaces.json`` (earlier records are kept). Returns the records written."""
    folder = boards / data
    if not folder.is_dir():
        raise GenbenchError(f"no leaderboard for dataset {data!r} under {boards}")
    migrations = read_migrations(folder)
    legacy: dict[str, list[tuple[str, dict]]] = {}  # every table's legacy reference rows, by legacy space
    for jsonl in sorted(p for p in folder.glob("*.jsonl") if not p.name.endswith(".failures.jsonl")):
        for row in read_rows(jsonl)[0]:
            if is_reference(row) and "feature_space" not in row and feature_space_of(row):
                legacy.setdefault(feature_space_of(row), []).append((jsonl.stem, row))
    written = []
    for space, refs in legacy.items():
        if space in migrations:
            continue
        checked, spaces, worst = [], set(), 0.0
        for table, row in refs:
            try:
                again = rescore_reference(row)
            except GenbenchError as exc:  # e.g. a config that no longer resolves
                log(f"{space} not verified: re-scoring {table} {row['model']} (n={row.get('n')}) failed: {exc}")
                spaces.add(None)
                break
            difference, count = largest_difference(row["metrics"], again["metrics"])
            worst = max(worst, difference)
            spaces.add(again["feature_space"])
            checked.append({"table": table, "model": row["model"], "n": row.get("n"), "seed": row.get("seed"),
                            "scores": count, "largest_relative_difference": difference})
        if len(spaces) != 1 or None in spaces or worst > TOLERANCE:
            log(f"{space} not verified (largest relative difference {worst:.3g}, spaces {sorted(map(str, spaces))})")
            continue
        (target,) = spaces
        record = {"legacy": space, "feature_space": target, "evidence": checked, "tolerance": TOLERANCE,
                  "git_commit": provenance()["git_commit"], "command": provenance()["command"],
                  "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        migrations[space] = record
        written.append(record)
        log(f"{space} = {target}: all {sum(c['scores'] for c in checked)} scores of {len(checked)} reference rows in "
            f"{', '.join(sorted({c['table'] for c in checked}))} reproduced (largest relative difference {worst:.3g})")
    if written:
        path = folder / MIGRATIONS_FILE
        path.write_text(json.dumps(list(migrations.values()), indent=1, sort_keys=True) + "\n")
    return written
