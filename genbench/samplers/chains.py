"""The descriptor family's chain samplers, named by the descriptor's ``chain_init``:

- ``gaussian`` / ``uniform``: every chain starts from noise, N(0, init_std²) or U(−1, 1) ("from scratch", short-run);
- ``persistent``: a replay buffer of chains (PCD, the IGEBM recipe), a fraction re-initialised from N(0, init_std²) at
  each draw; evaluation from fresh noise chains run to the trained chain length, or from distinct buffer states;
- ``generator``: CoopNets' generator drafts X̂ = g(h), revised by the descriptor.

Settings read from ``model.hparams``: ``chain_init``, ``init_std``, ``eval_steps``; ``buffer_size``, ``reinit_prob``
and ``eval_chains`` (persistent); ``sample_from`` (generator).
"""

from __future__ import annotations

import dataclasses

import torch

from genbench.errors import GenbenchError
from genbench.samplers.base import SAMPLERS, ChainSampler
from genbench.samplers.buffer import ReplayBuffer
from genbench.samplers.langevin import LangevinConfig


def with_steps(config: LangevinConfig, steps: int | None) -> LangevinConfig:
    """``config`` run for ``steps`` steps (unchanged when None or equal)."""
    return config if steps is None or steps == config.n_steps else dataclasses.replace(config, n_steps=steps)


class NoiseChains(ChainSampler):
    """Chains started from noise at every iteration and for every evaluation sample (``eval_steps`` Langevin steps
    when set, else ``sample_langevin``'s)."""

    def noise(self, n: int) -> torch.Tensor:
        """n noise images: U(−1, 1) for ``chain_init: uniform``, else N(0, init_std²)."""
        buffer = getattr(self.model, "buffer", None)
        device = buffer.states.device if buffer is not None else self.model.device
        shape = (n, *self.model.data_shape)
        if self.model.hparams.chain_init == "uniform":
            return torch.rand(shape, device=device) * 2 - 1
        return torch.randn(shape, device=device) * self.model.hparams.init_std

    def start(self, x_data: torch.Tensor, n: int) -> tuple[None, torch.Tensor]:
        return None, self.noise(n)

    def evaluation_config(self) -> LangevinConfig:
        return with_steps(self.model.sample_langevin_config, self.model.hparams.eval_steps)

    def evaluation_start(self, n: int, first: int) -> torch.Tensor:
        return self.noise(n)


@SAMPLERS.register("gaussian")
class GaussianChains(NoiseChains):
    kinds = ("gaussian",)


@SAMPLERS.register("uniform")
class UniformChains(NoiseChains):
    kinds = ("uniform",)


@SAMPLERS.register("persistent")
class PersistentChains(NoiseChains):
    """A replay buffer of ``buffer_size`` chains on the model (``model.buffer``, checkpointed); each training draw takes
    n distinct chains and re-initialises ``reinit_prob`` of them from N(0, init_std²).

    Evaluation (``eval_chains``): ``fresh`` — new noise chains run for ``eval_steps`` steps (default: the trained chain
    length, the mean steps the buffer's revised chains accumulated); ``buffer`` — as many *distinct* buffer states as
    samples (refused before training when the buffer is smaller), each revised once more by ``sample_langevin``.
    Either way no buffer state is scored twice."""

    kinds = ("buffer", "fresh")

    def __init__(self, model) -> None:
        super().__init__(model)
        hp = model.hparams
        model.buffer = ReplayBuffer(hp.buffer_size, model.data_shape, hp.reinit_prob, self.noise)
        self.order: torch.Tensor | None = None  # buffer states of the evaluation samples (prepare_evaluation)
        self.config: LangevinConfig | None = None

    @property
    def buffer(self) -> ReplayBuffer:
        return self.model.buffer

    def start(self, x_data: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.buffer.draw(n)

    def finish(self, handle: torch.Tensor, x: torch.Tensor, steps: int) -> None:
        self.buffer.store(handle, x, steps)

    def check_evaluation(self, n: int) -> None:
        if self.model.hparams.eval_chains == "buffer" and n > len(self.buffer):
            raise GenbenchError(f"{n} evaluation samples need {n} distinct buffer states but the replay buffer holds "
                                f"{len(self.buffer)}; raise model.buffer_size or set model.eval_chains: fresh")

    def evaluation_langevin(self, trained: int | None = None) -> LangevinConfig:
        """``sample_langevin`` run for ``eval_steps`` steps if set; fresh chains default to the trained chain length
        ``trained`` (at least ``sample_langevin``'s steps)."""
        config = self.model.sample_langevin_config
        steps = self.model.hparams.eval_steps
        if steps is None and self.model.hparams.eval_chains == "fresh":
            trained = self.buffer.trained_chain_length() if trained is None else trained
            if trained is None:
                raise GenbenchError("this checkpoint predates chain-length tracking, so the trained chain length is "
                                    "unknown; set model.eval_steps (or model.eval_chains: buffer)")
            steps = max(trained, config.n_steps)
        return with_steps(config, steps)

    def evaluation_config(self) -> LangevinConfig:
        return self.config or self.evaluation_langevin()

    def prepare_evaluation(self, n: int, seed: int, sync: bool = False) -> dict:
        """With ``sync`` (all ranks call it) the trained chain length is averaged over DDP ranks, whose buffers differ,
        so every rank runs the same."""
        self.order = None
        trained = self.buffer.trained_chain_length()
        if sync and trained is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
            total = torch.tensor([float(trained)], device=self.buffer.chain_steps.device)
            torch.distributed.all_reduce(total)
            trained = int(round(total.item() / torch.distributed.get_world_size()))
        self.config = self.evaluation_langevin(trained)
        steps = self.config.n_steps
        if self.model.hparams.eval_chains == "buffer":
            self.check_evaluation(n)
            self.order = torch.randperm(len(self.buffer), generator=torch.Generator().manual_seed(seed))[:n]
            drawn = self.buffer.chain_steps[self.order.to(self.buffer.chain_steps.device)]
            self.record = {"chains": "buffer", "distinct_states": n, "buffer_size": len(self.buffer), "extra_steps": steps,
                           "accumulated_steps_mean": round(drawn.float().mean().item(), 1),
                           "never_revised": int((drawn == 0).sum())}
        else:
            self.record = {"chains": "fresh", "init": "gaussian", "steps": steps, "trained_chain_length": trained}
        return self.record

    def evaluation_start(self, n: int, first: int) -> torch.Tensor:
        if self.order is not None:
            index = self.order[first:first + n]
            return self.buffer.states[index.to(self.buffer.states.device)]
        return self.noise(n)

    @classmethod
    def describe(cls, record: dict) -> str:
        if record["chains"] == "buffer":
            return f"{record['distinct_states']} distinct buffer states + {record['extra_steps']} steps"
        return super().describe(record)


@SAMPLERS.register("generator")
class GeneratorChains(ChainSampler):
    """CoopNets: the chains start from the generator's drafts X̂ = g(h), h ~ N(0, I) (``model.draft``), for training
    (the handle is h, which the generator then learns to map to the revised X̃) and for evaluation (revised by
    ``sample_langevin``, or not at all with ``sample_from: generator``)."""

    kinds = ("generator drafts",)
    requires = ("draft",)

    def start(self, x_data: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.draft(n)

    def evaluation_config(self) -> LangevinConfig:
        config = self.model.sample_langevin_config
        return with_steps(config, 0) if self.model.hparams.sample_from == "generator" else config

    def prepare_evaluation(self, n: int, seed: int, sync: bool = False) -> dict:
        self.record = {"chains": "generator drafts", "revision_steps": self.evaluation_config().n_steps}
        return self.record

    def evaluation_start(self, n: int, first: int) -> torch.Tensor:
        return self.model.draft(n)[1]

    @classmethod
    def describe(cls, record: dict) -> str:
        return f"generator drafts + {record['revision_steps']} Langevin steps"
