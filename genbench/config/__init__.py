"""Config files and construction: YAML per model / dataset / preset / experiment, merged in that order
(``composition.py``), then validated against the constructor signatures (``signatures.py``: an unknown key is one
clear error), and identified by a hash (``hashing.py``)."""

from genbench.config.composition import (PREPROCESSING_KEYS, SECTIONS, check_sections, check_table_preprocessing,
                                         check_tier, compose, compose_layers, compose_run, preset_chain, table_levers)
from genbench.config.files import ConfigLoader, deep_merge, load_yaml, parse_override, yaml_load
from genbench.config.hashing import config_hash, differing_keys, plain
from genbench.config.signatures import (accepted_arguments, argument_types, check_types, instantiate, is_count,
                                        matches_type, signature_defaults)

__all__ = ["PREPROCESSING_KEYS", "SECTIONS", "ConfigLoader", "accepted_arguments", "argument_types", "check_sections",
           "check_table_preprocessing", "check_tier", "check_types", "compose", "compose_layers", "compose_run",
           "config_hash", "deep_merge", "differing_keys", "instantiate", "is_count", "load_yaml", "matches_type",
           "parse_override", "plain", "preset_chain", "signature_defaults", "table_levers", "yaml_load"]
