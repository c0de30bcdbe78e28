"""The row store: an append-only JSONL file per (dataset, table), from which every table is rebuilt.

``leaderboards/<data>/<table>.jsonl`` gets one JSON object per line, appended under an exclusive file
lock in a single checked write, so two runs finishing together never interleave or lose a row, and a write cut
short (a full disk, a file-size limit) is undone and reported instead of leaving half a line.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from genbench.errors import GenbenchError


def table_path(root: Path, data: str, table: str, suffix: str = ".jsonl") -> Path:
    return root / data / f"{table}{suffix}"


def append_row(path: Path, row: dict) -> None:
    """Append one row under an exclusive lock: the whole line is written (every byte checked) and fsynced. A file
    whose last line was cut short gets a newline first, so the new row never joins it; a write that fails part-way
    (full disk, file-size limit) is cut back to where it started and raises one line, so the table stays whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(row, sort_keys=True, default=str) + "\n").encode()
    with open(path.with_suffix(path.suffix + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data  # never glue a row to a partial line
                written = 0
                try:
                    while written < len(data):
                        count = os.write(fd, data[written:])
                        if count <= 0:
                            raise OSError("no bytes written")
                        written += count
                    os.fsync(fd)
                except OSError as exc:
                    os.ftruncate(fd, size)
                    raise GenbenchError(f"could not write the row to {path} ({exc.strerror or exc}); the table was left "
                                        f"as it was — free space or raise the file-size limit, then rerun") from None
            finally:
                os.close(fd)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def row_problem(row: dict) -> str | None:
    """What makes a row unreadable by the tables, or None: the fields they read, where present, must have their types
    (``model`` and ``kind`` strings, ``n`` and ``seed`` integers or null, ``metrics`` a mapping of scores each with a
    numeric or null ``mean``, ``scores`` a mapping)."""
    for key in ("model", "kind", "method"):
        if key in row and not isinstance(row[key], str):
            return f"its {key} is {row[key]!r}, not a string"
    for key in ("n", "seed"):
        if row.get(key) is not None and not (isinstance(row[key], int) and not isinstance(row[key], bool)):
            return f"its {key} is {row[key]!r}, not an integer or null"
    if "metrics" in row:
        metrics = row["metrics"]
        if not isinstance(metrics, dict):
            return f"its metrics are {type(metrics).__name__}, not a mapping of scores"
        for name, value in metrics.items():
            if not isinstance(value, dict) or not (value.get("mean") is None or _is_number(value.get("mean"))):
                return f"its score {name!r} is {value!r}, not a mapping with a numeric mean"
    if "scores" in row and not isinstance(row["scores"], dict):
        return f"its scores are {type(row['scores']).__name__}, not a mapping"
    return None


def read_rows(path: Path) -> tuple[list[dict], list[str]]:
    """Rows of a JSONL table and a description of each line skipped (not JSON, not an object, or a row whose fields
    the tables read have the wrong types: ``row_problem``); skipped lines are never rewritten."""
    rows: list[dict] = []
    bad: list[str] = []
    if not path.is_file():
        return rows, bad
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                bad.append(f"line {number} is not valid JSON")
                continue
            if not isinstance(value, dict):
                bad.append(f"line {number} is a JSON {type(value).__name__}, not an object")
                continue
            problem = row_problem(value)
            if problem is not None:
                bad.append(f"line {number}: {problem}")
                continue
            rows.append(value)
    return rows, bad
