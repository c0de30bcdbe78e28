"""The rows of a task table: a JSONL where each row is keyed by what it measured (its settings and the config
hash of the model it scored), so a rerun of the table reuses the rows already there and computes only the rest."""

from __future__ import annotations

import time
from pathlib import Path

from genbench.config import config_hash
from genbench.results import append_row, read_rows
from genbench.runs.provenance import provenance


def scored_row(rows: "TableRows", base: dict, key_fields: tuple[str, ...], compute, score, describe, log):
    """The row of ``base``: found in the JSONL by its key (``key_fields`` of ``base``, the model's config hash and
    the images' ``preprocessing`` where ``base`` records one), or computed as ``score(compute())``, appended and
    logged. Returns (row, the fresh result or None)."""
    run = base["model_run"]
    legacy = run.get("legacy_config_hash") if run else None
    if run:
        base = {**base, "model_run": {k: v for k, v in run.items() if k != "legacy_config_hash"}}
        run = base["model_run"]
    extra = {"preprocessing": base["preprocessing"]} if base.get("preprocessing") else {}
    key = config_hash({k: base[k] for k in key_fields} | {"model": run["config_hash"] if run else None} | extra)
    row = rows.find(key)
    if row is None and legacy:  # a row keyed before configs were resolved
        row = rows.find(config_hash({k: base[k] for k in key_fields} | {"model": legacy}))
    if row is not None:
        return row, None
    start = time.time()
    result = compute()
    row = rows.add({**base, "key": key, **score(result), "seconds": round(time.time() - start, 2)})
    log(describe(row))
    return row, result


class TableRows:
    """The JSONL of one task table: rows already there are looked up by key and not recomputed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows, _ = read_rows(path)

    def find(self, key: str) -> dict | None:
        return next((r for r in reversed(self.rows) if r.get("key") == key), None)

    def add(self, row: dict) -> dict:
        row = {**row, **provenance()}
        append_row(self.path, row)
        self.rows.append(row)
        return row
