"""What the rows of a table say about themselves: reference or model, label, feature space, the latest row per cell.

**One feature space per column.** A classifier score is comparable only with scores computed by the same
weights, so every row carries its feature space (``feature_space``: ``<name>@<weights checksum>``). Rows written
before feature spaces were recorded get ``legacy <dataset> classifier (top-1 …, top-5 …, train/held-out images)``
from their classifier record: an old cache key did not name weights (it changed with the dataset description and
stayed equal across retrainings), while the held-out accuracies of a retrained classifier differ. A legacy space
that ``genbench migrate`` measured to be a current one (its reference rows re-scored to the same numbers) is read
as that one (``feature-spaces.json`` beside the tables). The tables show the feature space holding the most
model rows; rows of any other space are rendered below it, in tables of their own, never in the same column.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from genbench.errors import GenbenchError
from genbench.results.schema import Row


def is_reference(row: dict) -> bool:
    return row.get("kind") == "reference"


def levers_on(row: dict) -> list[str]:
    """The ``speed`` levers a row's run had on beyond those its table's protocol sets for every row
    (``table_levers``); none: the table's own path."""
    protocol = set(row.get("table_levers") or [])
    return sorted(k for k, v in ((row.get("config") or {}).get("speed") or {}).items() if v and k not in protocol)


def feature_space_of(row: dict) -> str | None:
    """The feature space a row's classifier scores live in (None: a row without classifier scores)."""
    if row.get("feature_space"):
        return row["feature_space"]
    classifier = row.get("classifier") or {}
    if classifier.get("feature_space"):
        return classifier["feature_space"]
    if classifier.get("key"):  # a row from before feature spaces were recorded: its weights are known by their record
        dataset = classifier.get("dataset") or classifier["key"].rsplit("-", 1)[0]
        return (f"legacy {dataset} classifier (top-1 {classifier.get('top1', 0):.2%}, top-5 {classifier.get('top5', 0):.2%}, "
                f"{classifier.get('n_train')}/{classifier.get('n_heldout')} images)")
    return None


MIGRATIONS_FILE = "feature-spaces.json"


def read_migrations(folder: Path) -> dict[str, dict]:
    """legacy feature space → its migration record (``feature_space`` and the evidence), for one dataset folder."""
    path = folder / MIGRATIONS_FILE
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GenbenchError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); restore it from git") from None
    return {e["legacy"]: e for e in entries if isinstance(e, dict) and "legacy" in e and "feature_space" in e}


def apply_migrations(rows: list[dict], migrations: dict[str, dict]) -> list[dict]:
    """The rows with each verified legacy feature space replaced by the space it was measured to be (in memory)."""
    out = []
    for row in rows:
        legacy = None if "feature_space" in row else feature_space_of(row)
        if legacy in migrations:
            row = Row({**row, "feature_space": migrations[legacy]["feature_space"], "feature_space_migrated_from": legacy})
        out.append(row)
    return out


def row_label(row: dict) -> str:
    if is_reference(row):
        return f"*{row['model']}* (reference)"
    levers = levers_on(row)
    return f"{row['model']} [speed: {', '.join(levers)}]" if levers else row["model"]


def latest_rows(rows: list[dict]) -> dict[tuple, dict]:
    """The latest row per (model and its speed levers, n, seed) among ``rows`` (rows of one feature space): a re-run
    replaces its earlier row in the tables, and a run with levers on never replaces one without."""
    latest: dict[tuple, dict] = {}
    for row in rows:
        latest[(row_label(row), row.get("n"), row.get("seed"))] = row
    return latest


def by_feature_space(rows: list[dict]) -> list[tuple[str | None, list[dict]]]:
    """Rows grouped by feature space, the shown one first: the space of the most recent model row (a table rerun
    under a new protocol shows its new rows first, the earlier ones below). Rows without classifier scores join
    the shown space."""
    groups: dict[str | None, list[dict]] = defaultdict(list)
    for row in rows:
        groups[feature_space_of(row)].append(row)
    spaces = [space for space in groups if space is not None]
    if not spaces:
        return [(None, rows)]

    def rank(space):
        members = groups[space]
        return (max((str(r.get("timestamp", "")) for r in members if not is_reference(r)), default=""),
                max(str(r.get("timestamp", "")) for r in members))

    ordered = sorted(spaces, key=rank, reverse=True)
    groups[ordered[0]] = groups[ordered[0]] + groups.pop(None, [])
    return [(space, groups[space]) for space in ordered]


def ordered_labels(rows: Iterable[dict]) -> list[str]:
    """The rows' labels: reference rows first (real images, the others, noise last), then the models alphabetically."""
    rows = list(rows)
    references = sorted({row_label(r) for r in rows if is_reference(r)},
                        key=lambda x: ("noise" in x, "real images" not in x, x))
    return references + sorted({row_label(r) for r in rows if not is_reference(r)})


def n_key(n) -> tuple[int, float]:
    """Sort key of an n per class: numbers ascending, None (all images) last."""
    return (1, math.inf) if n is None else (0, float(n))
