"""Reading the config files (YAML 1.2 numbers, one-line errors) and ``section.key=value`` overrides; merging them."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import yaml

from genbench.errors import GenbenchError


def deep_merge(base: dict, update: dict) -> dict:
    """Recursive dict merge; ``update`` wins, nested dicts merge key by key."""
    out = copy.deepcopy(base)
    for key, value in (update or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats: ``1e-4`` is a number (YAML 1.1 needs ``1.0e-4``)."""


ConfigLoader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def yaml_load(text):
    """YAML text or stream → Python, with ``ConfigLoader``."""
    return yaml.load(text, Loader=ConfigLoader)


def load_yaml(path: Path) -> dict:
    try:
        with open(path) as fh:
            data = yaml_load(fh) or {}
    except yaml.YAMLError as exc:
        raise GenbenchError(f"config {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise GenbenchError(f"config {path} must hold a mapping at the top level")
    return data


def parse_override(text: str) -> dict:
    """``model.lr=0.001`` → ``{"model": {"lr": 0.001}}`` (the value is parsed as YAML)."""
    if "=" not in text:
        raise GenbenchError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml_load(raw) if raw else None
    except yaml.YAMLError:
        raise GenbenchError(f"override {text!r}: the value is not valid YAML") from None
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    if not all(parts):
        raise GenbenchError(f"override {text!r}: the key must look like section.key (no empty parts)")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out
