"""Composing a run's config from its files: preset (and the presets it extends) → model → dataset → their preset
blocks → experiment → the preset's tier → overrides; the tier and the table's preprocessing hold for every row."""

from __future__ import annotations

from pathlib import Path

from genbench.config.files import deep_merge, load_yaml, parse_override
from genbench.errors import GenbenchError
from genbench.paths import configs_dir

#: the sections of a config (``run`` is written by genbench: model, data, preset, n, seed)
SECTIONS = ("model", "data", "trainer", "bench", "logger", "speed", "run")


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
    table's own config (no model files): what reference rows use."""
    return compose_layers(model, data, preset, overrides, root)[0]


def compose_run(model: str | None, data: str, preset: str, overrides: list[str] | None = None) -> dict:
    """``compose`` for one run, in one pass over the files: the model's config, with its preprocessing checked
    against its table's own layers (``check_table_preprocessing``)."""
    cfg, table, shared_table = compose_layers(model, data, preset, overrides)
    check_table_preprocessing(model, data, preset, cfg, table, shared_table)
    return cfg


def compose_layers(model: str | None, data: str, preset: str, overrides: list[str] | None = None,
                   root: Path | None = None) -> tuple[dict, dict, str | None]:
    """(``compose``'s config; the table's own config, the same layers without the model and experiment files; the
    table name those layers give before the overrides)."""
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
    table = cfg

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
        cfg = deep_merge(deep_merge(cfg, data_yaml), blocks(data_presets))  # the table's own settings
        table = deep_merge(deep_merge(table, data_yaml), blocks(data_presets))
    cfg = deep_merge(cfg, blocks(presets))
    experiment = root / "experiments" / f"{model}-{data}.yaml" if model else root / "experiments" / ".none"
    if experiment.is_file():
        exp = load_yaml(experiment)
        exp_presets = exp.pop("presets", {}) or {}
        cfg = deep_merge(cfg, exp)
        cfg = deep_merge(cfg, blocks(exp_presets))
    cfg = deep_merge(cfg, tier)  # what makes the tier a tier wins over every dataset's and model's defaults
    table = deep_merge(table, tier)
    own_table = (cfg.get("bench") or {}).get("table")
    shared_table = (table.get("bench") or {}).get("table")
    for text in overrides or []:
        cfg = deep_merge(cfg, parse_override(text))
        table = deep_merge(table, parse_override(text))
    check_sections(cfg)
    for section, value in cfg.items():
        if not isinstance(value, dict):
            raise GenbenchError(f"config section {section!r} must be a mapping of settings (e.g. --set "
                                f"{section}.<key>=<value>), got {value!r}")
    check_tier(preset, tier, cfg, own_table)
    check_tier(preset, tier, table, shared_table)  # the overrides hold the tier of the table the run writes to
    return cfg, table, shared_table


def check_sections(cfg: dict) -> None:
    """Refuse a section genbench does not have (a mistyped ``--set trainer_max_iterations=3``) in one line."""
    unknown = sorted(set(cfg) - set(SECTIONS), key=str)
    if unknown:
        raise GenbenchError(f"unknown config section(s) {unknown}; the sections are {', '.join(SECTIONS[:-1])} "
                            f"(e.g. --set trainer.max_iterations=3)")
    for section, value in cfg.items():
        if value is not None and not isinstance(value, dict):
            raise GenbenchError(f"config section {section!r} must be a mapping of settings, got {value!r:.60}")


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


#: data options that decide what the images look like: every row of a table must share them
PREPROCESSING_KEYS = ("image_size", "channels", "resize", "pixel_norm")


def check_table_preprocessing(model: str, data: str, preset: str, cfg: dict, table: dict, shared_table: str | None) -> None:
    """Preprocessing belongs to the table (preset + dataset), not to a model: a model whose files change it
    is refused for its preset's table, in one line (``--set bench.table=<name>`` writes to a separate one).
    ``table``: the table's own config with the run's overrides; ``shared_table``: the table its layers name."""
    if (cfg.get("bench") or {}).get("table") != shared_table:
        return  # a table of its own
    for key in PREPROCESSING_KEYS:
        if cfg["data"].get(key) != table["data"].get(key):
            raise GenbenchError(
                f"model {model!r} changes data.{key} to {cfg['data'][key]!r} but the {preset!r} table of {data} uses "
                f"{table['data'].get(key, 'the dataset default')!r}: preprocessing belongs to the table (set it in "
                f"configs/presets or configs/data), or write to a separate table with --set bench.table=<name>")
