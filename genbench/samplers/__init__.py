"""Samplers: everything about a model's Langevin chains, in one room — the step (``langevin``), persistent chains
(``buffer``), the grids of the multi-grid schedule (``grids``), and the chain samplers that say where a model's chains
start and how its evaluation chains are drawn (``base``, registered in ``SAMPLERS``: ``chains``, ``multigrid``).

Every file of this package is imported here, in name order, so a new sampler is one file that registers its class.
Samplers know nothing of the models: a sampler reads what it documents from the model it is bound to.
"""

import importlib
import pkgutil

from genbench.samplers.base import SAMPLERS, ChainSampler, describe_evaluation, make_sampler

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["SAMPLERS", "ChainSampler", "describe_evaluation", "make_sampler"]
