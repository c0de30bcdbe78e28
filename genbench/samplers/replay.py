"""The replay-buffer chains of the IGEBM recipe (Du & Mordatch, NeurIPS 2019; openai/ebm_code_release @ 051850e,
``train.py`` and ``utils.ReplayBuffer``), on images in [0, 1]:

- every chain of an iteration starts from uniform noise U(0, 1), then — once the buffer holds more states than the
  iteration has chains — each is replaced, with probability 0.95, by a state drawn (with replacement) from the buffer;
- each step adds the noise first and takes the gradient where the noise put the chain:

      x ← clip(x + ε − λ·clip(∂E/∂x |_{x+ε}, ±c), 0, 1),   ε ~ N(0, σ²I)   (official λ = 10, c = 0.01, σ = 0.005)

- every iteration's chains are appended to the buffer (first in, first out, 10,000 states), quantised to 256 levels
  and read back with uniform dequantisation noise, as the official code stores them.

Evaluation chains start from states of the buffer (distinct while the buffer holds enough) and run the model's
``sample_langevin`` steps. The buffer is the model's (``replay_states``, ``replay_size``, ``replay_next``: checkpointed).
Settings read from ``model.hparams``: ``buffer_size``, ``reinit_prob`` (the fresh share, 0.05).
"""

from __future__ import annotations

from typing import Callable

import torch

from genbench.errors import GenbenchError
from genbench.samplers.base import SAMPLERS, ChainSampler
from genbench.samplers.langevin import LangevinConfig, LangevinTrace, check_step, per_chain_norm

EnergyFn = Callable[[torch.Tensor], torch.Tensor]


def replay_langevin(x: torch.Tensor, energy_fn: EnergyFn, config: LangevinConfig, *, trace: bool = False,
                    what: str = "x", hint: str = "lower model.langevin.step_size") -> tuple[torch.Tensor, LangevinTrace | None]:
    """``config.n_steps`` IGEBM steps of ``x``: noise first, then the clipped gradient step at the noised point, then the
    pixel clamp; λ = δ²/2 (``step_size`` δ), c = ``grad_clip``, σ = ``noise_scale``, the clamp ``pixel_clamp``. NaN/Inf
    in the energy or its gradient raises DivergenceError naming the step."""
    if config.noise_scale is None or config.grad_clip is None or config.pixel_clamp is None:
        raise GenbenchError("the replay chains need langevin.noise_scale, langevin.grad_clip and langevin.pixel_clamp")
    diagnostics = LangevinTrace() if trace else None
    x = x.detach().clone()
    rate = config.step_size**2 / 2.0
    for step in range(config.n_steps):
        x = x + config.noise_scale * torch.randn_like(x)
        with torch.enable_grad():
            x.requires_grad_(True)
            energy = energy_fn(x)
            (grad,) = torch.autograd.grad(energy.sum(), x)
        x, energy = x.detach(), energy.detach()
        grad_norm = per_chain_norm(grad, torch.float64)
        check_step(step, bool(torch.isfinite(energy).all()), bool(torch.isfinite(grad_norm).all()), what, hint)
        if diagnostics is not None:
            diagnostics.energy.append(float(energy.mean()))
            diagnostics.grad_norm.append(float(grad_norm.mean()))
        x = (x - rate * grad.clamp(-config.grad_clip, config.grad_clip)).clamp(*config.pixel_clamp)
    return x, diagnostics


def quantise(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] → uint8 as the official ``compress_x_mod``: ⌊255·clip(x, 0, 1)⌋."""
    return (255 * x.clamp(0, 1)).to(torch.uint8)


def dequantise(q: torch.Tensor) -> torch.Tensor:
    """uint8 → [0, 1] as the official ``decompress_x_mod``: q/256 + U(0, 1/256)."""
    return q.float() / 256 + torch.rand(q.shape, device=q.device) / 256


@SAMPLERS.register("replay")
class ReplayChains(ChainSampler):
    """IGEBM's replay buffer (see the module)."""

    kinds = ("replay buffer",)
    #: the chains live in [0, 1]: the model maps its images there (``to_unit``)
    requires = ("to_unit",)

    def __init__(self, model) -> None:
        super().__init__(model)
        size = model.hparams.buffer_size
        if size < 1:
            raise GenbenchError(f"buffer_size must be positive, got {size}")
        model.register_buffer("replay_states", torch.zeros(size, *model.data_shape, dtype=torch.uint8))
        model.register_buffer("replay_size", torch.zeros((), dtype=torch.long))
        model.register_buffer("replay_next", torch.zeros((), dtype=torch.long))
        self.order: torch.Tensor | None = None

    def noise(self, n: int) -> torch.Tensor:
        return torch.rand(n, *self.model.data_shape, device=self.model.device)

    def draw(self, n: int) -> torch.Tensor:
        """n states of the buffer, with replacement, dequantised."""
        index = torch.randint(int(self.model.replay_size), (n,), device=self.model.replay_states.device)
        return dequantise(self.model.replay_states[index])

    def start(self, x_data: torch.Tensor, n: int) -> tuple[None, torch.Tensor]:
        x = self.noise(n)
        if int(self.model.replay_size) > n:
            kept = torch.rand(n, device=x.device) > self.model.hparams.reinit_prob
            x[kept] = self.draw(n)[kept].to(x)
        return None, x

    def finish(self, handle: None, x: torch.Tensor, steps: int) -> None:
        """Append the iteration's chains, first in, first out."""
        states, size = self.model.replay_states, len(self.model.replay_states)
        index = (int(self.model.replay_next) + torch.arange(x.shape[0], device=states.device)) % size
        states[index] = quantise(x.detach()).to(states.device)
        self.model.replay_next.fill_((int(self.model.replay_next) + x.shape[0]) % size)
        self.model.replay_size.fill_(min(size, int(self.model.replay_size) + x.shape[0]))

    def prepare_evaluation(self, n: int, seed: int, sync: bool = False) -> dict:
        filled = int(self.model.replay_size)
        generator = torch.Generator().manual_seed(seed)
        if filled == 0:
            self.order = None
        elif n <= filled:
            self.order = torch.randperm(filled, generator=generator)[:n]
        else:
            self.order = torch.randint(filled, (n,), generator=generator)
        self.record = {"chains": "replay buffer", "buffer_states": filled, "distinct": filled >= n,
                       "steps": self.evaluation_config().n_steps}
        return self.record

    def evaluation_start(self, n: int, first: int) -> torch.Tensor:
        if self.order is None or int(self.model.replay_size) == 0:  # nothing stored yet: fresh noise chains
            return self.noise(n)
        index = self.order[first:first + n].to(self.model.replay_states.device)
        return dequantise(self.model.replay_states[index])

    @classmethod
    def describe(cls, record: dict) -> str:
        which = "distinct" if record.get("distinct") else "drawn with replacement from"
        return f"replay buffer states ({which} {record['buffer_states']}) + {record['steps']} steps"
