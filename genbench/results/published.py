"""The papers' numbers, from one store (``configs/published.yaml``), rendered as tables of their own: shown beside
the rows, never mixed into them."""

from __future__ import annotations

import yaml

from genbench.paths import configs_dir


def published_numbers(*keys: str) -> dict | None:
    """The entry at ``keys`` of the store (``leaderboards, <data>, <score>`` or ``tables, <table>``), or None."""
    node = yaml.safe_load((configs_dir() / "published.yaml").read_text()) or {}
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node or None


def published_table(entry: dict | None, corner: str = "") -> list[str]:
    """An entry (``source``, ``columns``, ``rows``: label → cells, optional ``note``) as its own Markdown table; a
    source that gives no numbers says so."""
    if not entry:
        return []
    if not entry.get("rows"):
        return [f"Published ({entry['source']}): {entry.get('note', 'no numbers')}", ""]
    columns = entry["columns"]
    lines = [f"Published ({entry['source']}; not produced here):", "",
             f"| {corner + ' ' if corner else ''}| " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    lines += [f"| {label} | " + " | ".join(str(v) for v in values) + " |" for label, values in entry["rows"].items()]
    if entry.get("note"):
        lines += ["", entry["note"]]
    return [*lines, ""]


def published_section(data: str, score: str) -> list[str]:
    """The papers' numbers for a dataset's leaderboard score (n per class as columns)."""
    return published_table(published_numbers("leaderboards", data, score), corner="model")
