"""A config's identity: its hash, plain values and the keys two configs differ in."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def config_hash(cfg: dict) -> str:
    """The identity of an effective config: a run resumes, and a table reuses a run, only under the same hash."""
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:12]


def plain(value: Any) -> Any:
    """A config value as YAML and JSON write it back (tuples become lists), so a recorded config hashes alike."""
    return json.loads(json.dumps(value, default=str))


def differing_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two nested configs (the ``run`` section first)."""
    out = []
    for key in sorted(set(a) | set(b), key=lambda k: (k != "run", str(k))):
        left, right = a.get(key, "<absent>"), b.get(key, "<absent>")
        if isinstance(left, dict) and isinstance(right, dict):
            out += differing_keys(left, right, f"{prefix}{key}.")
        elif left != right:
            out.append(f"{prefix}{key}")
    return out
