"""What a chain sampler is: the policy of one model's Langevin chains, in one object.

A sampler decides where the chains of a training iteration start (noise, a replay buffer, a generator's drafts, the
data, the 1×1 averages of the data), what is kept between iterations (the buffer), and how the evaluation chains are
drawn and described in a row (``prepare_evaluation`` → the record a row keeps; ``describe`` → the phrase the tables
print). The Langevin step itself is ``genbench.samplers.langevin``; the grids of the multi-grid schedule are
``genbench.samplers.grids``.

A sampler is a plain object bound to its model: what it must keep across checkpoints it registers on the model as
buffers (``model.buffer``, ``model.image_means``), so the checkpoint keys are the model's. It reads the settings it
needs from ``model.hparams`` and documents them. A model picks its sampler by name from ``SAMPLERS`` (the descriptor:
``model.chain_init``), so a new chain policy is one registered class, in any file, with no edit to the models.
"""

from __future__ import annotations

import torch

from genbench.errors import GenbenchError
from genbench.registry import Registry

SAMPLERS: Registry[type["ChainSampler"]] = Registry("sampler")


class ChainSampler:
    """Base of every chain sampler (see the module docstring).

    Subclasses implement ``start`` and ``evaluation_start``; the others have working defaults: chains that keep
    nothing between iterations and evaluation chains run with the model's ``sample_langevin_config``.
    """

    #: the ``chains`` values of the evaluation records this sampler writes (how ``describe_evaluation`` finds it)
    kinds: tuple[str, ...] = ()
    #: the attributes a model must have for these chains (e.g. ``draft``: a generator's drafts; ``grids``)
    requires: tuple[str, ...] = ()

    def __init__(self, model) -> None:
        self.model = model
        self.record: dict | None = None  # the evaluation record of the prepared evaluation (None: not prepared)

    # -- training chains ---------------------------------------------------------------------------------------
    def start(self, x_data: torch.Tensor, n: int) -> tuple[object, torch.Tensor]:
        """(a handle ``finish`` receives back, the n initial states) of one training iteration's chains;
        ``x_data``: the iteration's observed batch."""
        raise NotImplementedError

    def finish(self, handle: object, x: torch.Tensor, steps: int) -> None:
        """Keep what the chains reached after ``steps`` Langevin steps (default: nothing is kept)."""

    # -- evaluation chains -------------------------------------------------------------------------------------
    def check_evaluation(self, n: int) -> None:
        """Refuse, before training, an evaluation of n samples these chains cannot draw (default: any n)."""

    def prepare_evaluation(self, n: int, seed: int, sync: bool = False) -> dict:
        """Fix the chains of the n evaluation samples (``sync``: every DDP rank calls it) and return their record."""
        self.record = {"chains": self.kinds[0] if self.kinds else type(self).__name__,
                       "steps": self.evaluation_config().n_steps}
        return self.record

    def evaluation_start(self, n: int, first: int) -> torch.Tensor:
        """The initial states of evaluation samples ``first`` … ``first + n − 1``."""
        raise NotImplementedError

    def evaluation_config(self):
        """The Langevin settings of the evaluation chains."""
        return self.model.sample_langevin_config

    # -- what drawing evaluation samples changed, put back by the learning curve ----------------------------------
    def state(self) -> dict:
        return {k: v for k, v in vars(self).items() if k != "model"}

    def restore(self, state: dict) -> None:
        vars(self).update(state)

    @classmethod
    def describe(cls, record: dict) -> str:
        """One phrase for a row's evaluation record (chains of 0 steps say that their starts were scored)."""
        if record.get("steps") == 0:
            return f"{record['chains']} chains, 0 Langevin steps: their starts scored unrevised"
        return f"{record['chains']} chains, {record.get('steps')} Langevin steps"


def make_sampler(name: str, model) -> ChainSampler:
    """The sampler registered as ``name``, bound to ``model``; one line when the model lacks what it needs, naming the
    samplers that fit it."""
    cls = SAMPLERS.get(name)
    missing = [a for a in cls.requires if not hasattr(model, a)]
    if missing:
        fits = [n for n in SAMPLERS.names() if all(hasattr(model, a) for a in SAMPLERS.get(n).requires)]
        raise GenbenchError(f"the {name!r} chains need a model with {', '.join(missing)}; {type(model).__name__} has "
                            f"none: its samplers are {', '.join(fits)}")
    return cls(model)


def describe_evaluation(chains: dict | None, bn_sampling: str | None = None) -> str:
    """One phrase for how a model's evaluation samples were drawn, from the record its sampler wrote (found by the
    record's ``chains`` kind), and its BatchNorm mode."""
    chains = chains or {}
    kind = chains.get("chains")
    owner = next((SAMPLERS.get(name) for name in SAMPLERS.names() if kind in SAMPLERS.get(name).kinds), None)
    if kind == "ancestral":
        text = "ancestral"
    elif owner is not None:
        text = owner.describe(chains)
    elif kind:
        text = ChainSampler.describe(chains)
    else:
        text = "not recorded"
    return f"{text}; BN {bn_sampling}" if bn_sampling else text
