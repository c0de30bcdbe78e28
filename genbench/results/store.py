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
from genbench.results.schema import Row, RowError


def table_path(root: Path, data: str, table: str, suffix: str = ".jsonl") -> Path:
    return root / data / f"{table}{suffix}"


def leaderboard_folders(root: Path, data: str | None) -> list[Path]:
    """The dataset folders of the leaderboards under ``root`` (only ``root/<data>`` when given), each checked to
    exist in one line."""
    if not root.is_dir():
        raise GenbenchError(f"no leaderboards at {root}; run `make bench` first")
    if data is None:
        return sorted(p for p in root.iterdir() if p.is_dir())
    if not (root / data).is_dir():
        raise GenbenchError(f"no leaderboard for dataset {data!r} under {root}")
    return [root / data]


#: the folder of a dataset's leaderboard that holds its task tables (``genbench table``)
TASKS_FOLDER = "tasks"


def task_table_path(root: Path, data: str, stem: str, suffix: str = ".jsonl") -> Path:
    """``root/<data>/tasks/<stem><suffix>``: a task table's rows (or, with another suffix, its Markdown)."""
    return root / data / TASKS_FOLDER / f"{stem}{suffix}"


def append_row(path: Path, row: dict) -> None:
    """Append one table row (checked against the row schema first: ``Row.parse``) with ``append_line``."""
    try:
        Row.parse(row, legacy=False)
    except RowError as exc:
        raise GenbenchError(f"refusing to write a row to {path} that its tables could not read: it {exc}") from None
    append_line(path, row)


def append_line(path: Path, record: dict) -> None:
    """Append one JSON object as a line under an exclusive lock: the whole line is written (every byte checked) and
    fsynced. A file whose last line was cut short gets a newline first, so the new line never joins it; a write that
    fails part-way (full disk, file-size limit) is cut back to where it started and raises one line, so the file stays
    whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
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


def read_rows(path: Path) -> tuple[list[Row], list[str]]:
    """Rows of a JSONL table and a description of each line skipped (not JSON, or not fitting the row schema:
    ``Row.parse``, older shapes mapped); skipped lines are never rewritten."""
    rows: list[Row] = []
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
            try:
                rows.append(Row.parse(value))
            except RowError as exc:
                bad.append(f"line {number}{'' if str(exc).startswith('is ') else ':'} {exc}")
    return rows, bad
