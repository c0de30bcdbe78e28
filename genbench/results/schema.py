"""The row: one line of a table's JSONL, the one shape that ``bench``, ``reference`` and the task tables write and that
every reader reads.

Every row is a JSON object; the fields a table reads are typed here (``FIELDS``), each checked where present. A row
is a bench or reference row (``model``, ``metrics``: score name → ``{"mean": …}``) or a task-table row (``method``,
its scores either under ``scores`` or at the top level, as the features table writes ``test_error``). ``Row.parse``
checks a line against the fields and maps the shapes older rows were written in (``LEGACY``) in this one place, in
memory: a committed JSONL is never rewritten. ``append_row`` parses every row before writing it, so a writer cannot
put a line into a table that its readers would skip.
"""

from __future__ import annotations

from collections.abc import Callable

from genbench.errors import GenbenchError


class RowError(GenbenchError):
    """A JSON object that does not fit the row schema (the message says which field and why)."""


#: the learning diagnostics a curve point of an energy-based model may carry (``point["diagnostics"]``), each the mean
#: over the iterations since the point before of what the model logs as ``train/<name>``: the energy gap
#: f(data) − f(samples), and the mean ‖∂E/∂x‖ at the chains or, for a model without chains whose generator learns
#: from the energy's gradient, at the generator's samples
#: the gradient-norm diagnostics among them: a model logs one of the two
GRAD_NORM_DIAGNOSTICS = ("langevin_grad_norm", "sample_grad_norm")
CURVE_DIAGNOSTICS = ("energy_gap", *GRAD_NORM_DIAGNOSTICS)


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _scores(value) -> str | None:
    if not isinstance(value, dict):
        return f"are {type(value).__name__}, not a mapping of scores"
    for name, score in value.items():
        if not isinstance(score, dict) or not (score.get("mean") is None or _number(score.get("mean"))):
            return f"score {name!r} is {score!r}, not a mapping with a numeric mean"
    return None


def _typed(check: Callable[[object], bool], what: str) -> Callable[[object], str | None]:
    return lambda value: None if check(value) else f"is {value!r}, not {what}"


#: field → its check (None: fits; else why not), for the fields tables read; other fields are carried as written
FIELDS: dict[str, Callable[[object], str | None]] = {
    "model": _typed(lambda v: isinstance(v, str), "a string"),
    "method": _typed(lambda v: isinstance(v, str), "a string"),
    "kind": _typed(lambda v: isinstance(v, str), "a string"),
    "data": _typed(lambda v: isinstance(v, str), "a string"),
    "preset": _typed(lambda v: isinstance(v, str), "a string"),
    "n": _typed(lambda v: v is None or _integer(v), "an integer or null"),
    "seed": _typed(lambda v: v is None or _integer(v), "an integer or null"),
    "iterations": _typed(lambda v: v is None or _integer(v), "an integer or null"),
    "metrics": _scores,
    "scores": _typed(lambda v: isinstance(v, dict), "a mapping"),
    "run_dir": _typed(lambda v: v is None or isinstance(v, str), "a string or null"),
    "config": _typed(lambda v: isinstance(v, dict), "a mapping"),
    "curve": _typed(lambda v: v is None or isinstance(v, dict), "a mapping or null"),
    "key": _typed(lambda v: isinstance(v, str), "a string"),
    "git_commit": _typed(lambda v: v is None or isinstance(v, str), "a string or null"),
}

#: the shapes older rows were written in, mapped on reading: (what it was, the mapping)
LEGACY: list[tuple[str, Callable[[dict], dict]]] = [
    ("a bench row from before rows named their kind", lambda row: row if "kind" in row or "model" not in row
     else {**row, "kind": "model"}),
]


class Row(dict):
    """One table row: the JSON object as written (a ``dict``, so it serialises as it is), checked against ``FIELDS``,
    with typed views of the fields every table reads."""

    @classmethod
    def parse(cls, value: object, legacy: bool = True) -> Row:
        """``value`` as a Row, older shapes mapped (``LEGACY``; ``legacy=False``: a row being written, which must be
        in today's shape); raises ``RowError`` saying what does not fit."""
        if isinstance(value, Row):
            return value
        if not isinstance(value, dict):
            raise RowError(f"is a JSON {type(value).__name__}, not an object")
        if "model" not in value and "method" not in value:
            raise RowError("is an object naming neither a model nor a method")
        for _, mapping in LEGACY if legacy else []:
            value = mapping(value)
        for field, check in FIELDS.items():
            if field in value:
                problem = check(value[field])
                if problem is not None:  # "its metrics are …" / "its score 'x' is …" / "its n is …"
                    raise RowError(f"its {problem}" if problem.startswith("score ") else f"its {field} {problem}")
        return cls(value)

    @property
    def name(self) -> str:
        """What the row scored: a bench or reference row's model, a task row's method."""
        return self["model"] if "model" in self else self["method"]

    @property
    def kind(self) -> str | None:
        return self.get("kind")

    @property
    def is_reference(self) -> bool:
        return self.get("kind") == "reference"

    @property
    def n(self) -> int | None:
        return self.get("n")

    @property
    def run_dir(self) -> str | None:
        return self.get("run_dir")

    @property
    def iterations(self) -> int | None:
        return self.get("iterations")
