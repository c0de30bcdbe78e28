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


#: the most nodes a config document may expand to, aliases counted at every use (a config is a few hundred; an alias
#: bomb — nested aliases that multiply — expands to billions)
MAX_EXPANDED_NODES = 100_000


class ConfigYAMLError(yaml.YAMLError):
    """A config the loader refuses: a key given twice in one mapping, or a document that expands beyond
    ``MAX_EXPANDED_NODES``. Its message is one line."""


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats (``1e-4`` is a number; YAML 1.1 needs ``1.0e-4``), refusing a key given
    twice in one mapping (PyYAML keeps the last silently) and a document that expands beyond ``MAX_EXPANDED_NODES``."""

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            check_expanded_size(node)
        return node

    def construct_mapping(self, node, deep=False):
        lines: dict = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            line = key_node.start_mark.line + 1
            if key_node.value in lines:
                raise ConfigYAMLError(f"the key {key_node.value!r} is given twice in one mapping (lines "
                                      f"{lines[key_node.value]} and {line}); keep one")
            lines[key_node.value] = line
        return super().construct_mapping(node, deep)


def check_expanded_size(node: yaml.Node, limit: int = MAX_EXPANDED_NODES) -> None:
    """Refuse a document whose nodes, each alias counted at every place it is used, exceed ``limit``."""
    count, stack = 0, [node]
    while stack:
        current = stack.pop()
        count += 1
        if count > limit:
            raise ConfigYAMLError(f"the document expands to more than {limit:,} values through its aliases (&/*); "
                                  f"a config needs far fewer — write the values out")
        if isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
        elif isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                stack += (key, value)


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
