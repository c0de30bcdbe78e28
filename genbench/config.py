"""Config files and construction: YAML per model / dataset / preset / experiment, merged in that order,
then validated against the constructor signatures (an unknown key is one clear error)."""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from genbench.errors import GenbenchError
from genbench.paths import configs_dir


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


def preset_chain(path: Path, below: tuple[str, ...] = ()) -> tuple[dict, list[str]]:
    """A preset file merged over the preset it ``extends`` (recursively), and the chain of names, base first: a
    preset such as ``cpu-30min`` is the ``cpu`` tier with another budget, and the model files' ``presets.cpu``
    blocks apply to it before its own ``presets.cpu-30min`` blocks."""
    own = load_yaml(path)
    base = own.pop("extends", None)
    if base is None:
        return own, [path.stem]
    base_path = path.parent / f"{base}.yaml"
    if not base_path.is_file():
        raise GenbenchError(f"{path}: extends unknown preset {base!r}")
    if base in (*below, path.stem):
        raise GenbenchError(f"{path}: presets extend each other in a circle ({' → '.join([*below, path.stem, base])})")
    merged, lineage = preset_chain(base_path, (*below, path.stem))
    return deep_merge(merged, own), [*lineage, path.stem]


def table_levers(preset: str, root: Path | None = None) -> list[str]:
    """The ``speed`` levers a preset's ``tier`` turns on for every row of its table: part of the table's protocol,
    so rows record them and the tables do not label rows by them."""
    path = (root or configs_dir()) / "presets" / f"{preset}.yaml"
    if not path.is_file():
        return []
    tier = preset_chain(path)[0].get("tier") or {}
    return sorted(k for k, v in (tier.get("speed") or {}).items() if v)


def compose(model: str | None, data: str, preset: str, overrides: list[str] | None = None, root: Path | None = None) -> dict:
    """Effective config, later sources winning: presets/<preset>.yaml (over the preset it extends) →
    models/<model>.yaml → data/<data>.yaml → the data file's ``presets.<preset>`` block → the model file's ``presets.<preset>`` block → experiments/<model>-<data>.yaml
    (and its ``presets.<preset>`` block) → the preset's ``tier`` block (what every row of its table shares, e.g. the
    cpu tier's 32×32) → ``section.key=value`` overrides (which may not change the tier unless ``bench.table`` does). ``model=None`` gives the
    table's own config (no model files): what reference rows and the preprocessing check use."""
    root = root or configs_dir()
    model_cfg = root / "models" / f"{model}.yaml" if model else root / "models" / ".none"
    data_cfg = root / "data" / f"{data}.yaml"
    preset_cfg = root / "presets" / f"{preset}.yaml"
    if not preset_cfg.is_file():
        known = sorted(p.stem for p in preset_cfg.parent.glob("*.yaml"))
        raise GenbenchError(f"unknown preset {preset!r}; known: {', '.join(known)}")
    cfg: dict = {"model": {}, "data": {}, "trainer": {}, "bench": {}}
    preset_yaml, lineage = preset_chain(preset_cfg)
    tier = preset_yaml.pop("tier", {}) or {}
    cfg = deep_merge(cfg, preset_yaml)

    def blocks(presets: dict) -> dict:  # a file's presets.<name> blocks along the chain, the preset's own last
        out: dict = {}
        for name in lineage:
            out = deep_merge(out, presets.get(name, {}) or {})
        return out
    presets: dict = {}
    if model_cfg.is_file():
        model_yaml = load_yaml(model_cfg)
        presets = model_yaml.pop("presets", {}) or {}
        cfg = deep_merge(cfg, model_yaml)
    if data_cfg.is_file():
        data_yaml = load_yaml(data_cfg)
        data_presets = data_yaml.pop("presets", {}) or {}
        cfg = deep_merge(cfg, data_yaml)
        cfg = deep_merge(cfg, blocks(data_presets))  # the table's own settings
    cfg = deep_merge(cfg, blocks(presets))
    experiment = root / "experiments" / f"{model}-{data}.yaml" if model else root / "experiments" / ".none"
    if experiment.is_file():
        exp = load_yaml(experiment)
        exp_presets = exp.pop("presets", {}) or {}
        cfg = deep_merge(cfg, exp)
        cfg = deep_merge(cfg, blocks(exp_presets))
    cfg = deep_merge(cfg, tier)  # what makes the tier a tier wins over every dataset's and model's defaults
    own_table = (cfg.get("bench") or {}).get("table")
    for text in overrides or []:
        cfg = deep_merge(cfg, parse_override(text))
    check_tier(preset, tier, cfg, own_table)
    return cfg


def check_tier(preset: str, tier: dict, cfg: dict, own_table: str | None) -> None:
    """The values of a preset's ``tier`` block hold for every row of its table: an override that changes one is
    refused unless the run writes to a table of its own (``--set bench.table=<name>``)."""
    if (cfg.get("bench") or {}).get("table") != own_table:
        return
    for key, value, given in _leaves(tier, cfg):
        if given != value:
            raise GenbenchError(f"the {preset!r} tier fixes {key}={value!r} for every row of its table (configs/presets/"
                                f"{preset}.yaml, tier:), got {given!r}; write to a table of its own with "
                                f"--set bench.table=<name>")


def _leaves(expected: dict, actual: dict, prefix: str = ""):
    """(dotted key, expected value, actual value) for every leaf of ``expected``."""
    for key, value in expected.items():
        if isinstance(value, dict):
            yield from _leaves(value, actual.get(key) or {}, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value, actual.get(key)


def _init_chain(cls: type):
    """Each ``__init__`` whose keywords ``cls(...)`` accepts, from ``cls`` up, with its parameters: the hierarchy is
    followed while an ``__init__`` passes ``**kwargs`` on."""
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        yield init, {n: p for n, p in params.items() if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            break


def accepted_arguments(cls: type) -> set[str]:
    """Keyword names accepted by ``cls(...)``, following ``**kwargs`` up the class hierarchy."""
    return {name for _, params in _init_chain(cls) for name in params}


def signature_defaults(cls: type) -> dict[str, Any]:
    """The default of every keyword ``cls(...)`` accepts, following ``**kwargs`` up the class hierarchy (a
    subclass's default wins); arguments without a default are left out."""
    out: dict[str, Any] = {}
    for _, params in _init_chain(cls):
        for name, p in params.items():
            if p.default is not p.empty:
                out.setdefault(name, p.default)
    return out


def argument_types(cls: type) -> dict[str, Any]:
    """The annotated type of every keyword ``cls(...)`` accepts (the subclass's annotation wins)."""
    out: dict[str, Any] = {}
    for init, params in _init_chain(cls):
        try:
            hints = typing.get_type_hints(init)
        except Exception:  # an annotation that cannot be evaluated is not checked
            hints = {}
        for name in params:
            if name in hints:
                out.setdefault(name, hints[name])
    return out


def is_count(value: Any, least: int) -> bool:
    """Whether ``value`` is an integer (not a bool) of at least ``least``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def matches_type(value: Any, annotation: Any) -> bool:
    """Whether a config value fits an annotation (an int is a float, a bool is not a number; containers are
    checked as containers; an annotation not understood here accepts anything)."""
    if annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(matches_type(value, arg) for arg in typing.get_args(annotation))
    if origin is Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation in (bool, str):
        return isinstance(value, annotation)
    base = origin or annotation
    if base in (list, tuple):
        return isinstance(value, (list, tuple))
    if base is dict:
        return isinstance(value, dict)
    return True


def check_types(cls: type, options: dict, what: str) -> None:
    """Refuse, in one line, a value whose type does not fit its argument's annotation (``model.lr=abc``)."""
    for name, annotation in argument_types(cls).items():
        if name in options and not matches_type(options[name], annotation):
            shown = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
            raise GenbenchError(f"bad {what} option {name}={options[name]!r}: expected {shown}")


def instantiate(cls: type, options: dict, what: str) -> Any:
    """``cls(**options)`` after checking every key is an argument of ``cls`` and every value fits its type."""
    allowed = accepted_arguments(cls)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise GenbenchError(f"unknown {what} option(s) {unknown}; {cls.__name__} accepts: {', '.join(sorted(allowed))}")
    check_types(cls, options, what)
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise GenbenchError(f"bad {what} config: {exc}") from None


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


#: data options that decide what the images look like: every row of a table must share them
PREPROCESSING_KEYS = ("image_size", "channels", "resize", "pixel_norm")


def check_table_preprocessing(model: str, data: str, preset: str, cfg: dict, overrides: list[str] | None) -> None:
    """Preprocessing belongs to the table (preset + dataset), not to a model: a model whose files change it
    is refused for its preset's table, in one line (``--set bench.table=<name>`` writes to a separate one)."""
    if (cfg.get("bench") or {}).get("table") != (compose(None, data, preset).get("bench") or {}).get("table"):
        return  # a table of its own
    table = compose(None, data, preset, overrides)
    for key in PREPROCESSING_KEYS:
        if cfg["data"].get(key) != table["data"].get(key):
            raise GenbenchError(
                f"model {model!r} changes data.{key} to {cfg['data'][key]!r} but the {preset!r} table of {data} uses "
                f"{table['data'].get(key, 'the dataset default')!r}: preprocessing belongs to the table (set it in "
                f"configs/presets or configs/data), or write to a separate table with --set bench.table=<name>")
