"""A table's notes: the text people write beside a table in ``<stem>.notes.md`` (no numbers of its own: the rows carry
them), shown as the last section of the table's Markdown ``<stem>.md``.

Bench tables are rendered whole from their rows. A task table's Markdown is rendered by ``genbench table``, which
needs the table's trained models for its figure; ``refresh_notes`` rewrites only its notes section, so edited notes
reach the Markdown without them.
"""

from __future__ import annotations

from pathlib import Path

from genbench.files import write_text
from genbench.results.store import TASKS_FOLDER, leaderboard_folders

HEADING = "## Notes"
SUFFIX = ".notes.md"


def notes_path(markdown: Path) -> Path:
    """``<stem>.notes.md`` beside ``<stem>.md`` (or beside ``<stem>.jsonl``)."""
    return markdown.with_suffix(SUFFIX)


def notes_section(markdown: Path) -> str:
    """The notes section of ``markdown``'s table: its heading and the notes file's text, or "" without notes."""
    notes = notes_path(markdown)
    if not notes.is_file():
        return ""
    return f"{HEADING}\n\n{notes.read_text().strip()}\n"


def with_notes(text: str, markdown: Path) -> str:
    """``text``, then a blank line and the table's notes section if it has notes (``text`` ends in one newline)."""
    section = notes_section(markdown)
    return f"{text}\n{section}" if section else text


def refresh_notes(markdown: Path) -> bool:
    """Replace the notes section of a rendered ``markdown`` (everything from its ``## Notes`` heading on) with the
    notes file's current text, or drop it when the notes file is gone. Returns whether the file changed."""
    text = markdown.read_text()
    start = text.find(f"\n{HEADING}\n")
    body = text if start < 0 else text[:start]
    refreshed = with_notes(body.rstrip("\n") + "\n", markdown)
    if refreshed == text:
        return False
    write_text(markdown, refreshed)
    return True


def task_markdowns(folder: Path) -> list[Path]:
    """The rendered task tables of one dataset's leaderboard folder (``<folder>/tasks/*.md``), without the notes files
    and the hidden temporary files of a write in progress."""
    tasks = folder / TASKS_FOLDER
    if not tasks.is_dir():
        return []
    return sorted(p for p in tasks.glob("*.md") if not p.name.endswith(SUFFIX) and not p.name.startswith("."))


def refresh_task_notes(root: Path, data: str | None = None) -> list[Path]:
    """``refresh_notes`` on every task table under ``root`` (or only ``root/<data>``); returns those it changed."""
    return [markdown for folder in leaderboard_folders(root, data) for markdown in task_markdowns(folder)
            if refresh_notes(markdown)]
