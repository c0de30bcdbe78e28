"""What the renderer is handed about the rows' producers, so that it needs to know neither metrics nor models."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol


class ScoreColumn(Protocol):
    """A score's column: its label and which direction is better (the metric registry's ``ScoreSpec``)."""

    label: str
    better: str


@dataclass(frozen=True)
class Legend:
    """The score columns in table order (score name → its column) and how a row's evaluation sampling reads
    (a row → one phrase for the budget table)."""

    scores: Mapping[str, ScoreColumn]
    describe_sampling: Callable[[dict], str]
