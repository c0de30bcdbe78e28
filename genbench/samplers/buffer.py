"""Persistent chains: the replay buffer of PCD and of the IGEBM recipe, saved in and restored from checkpoints."""

from __future__ import annotations

from typing import Callable

import torch

from genbench.errors import GenbenchError


class ReplayBuffer(torch.nn.Module):
    """Persistent chains (PCD / IGEBM replay buffer): ``size`` stored states; each draw re-initialises a
    fraction ``reinit_prob`` of the drawn chains from ``init_fn``. ``chain_steps`` counts the Langevin steps
    each stored state has accumulated since its (re-)initialisation — the length of the trained sampler.
    Both are registered buffers, so they are saved in and restored from checkpoints."""

    def __init__(self, size: int, shape: tuple[int, ...], reinit_prob: float, init_fn: Callable[[int], torch.Tensor]) -> None:
        super().__init__()
        if size < 1:
            raise GenbenchError(f"buffer_size must be positive, got {size}")
        if not 0.0 <= reinit_prob <= 1.0:
            raise GenbenchError(f"reinit_prob must be in [0, 1], got {reinit_prob}")
        self.reinit_prob = reinit_prob
        self.init_fn = init_fn
        self.register_buffer("states", init_fn(size).reshape(size, *shape))
        self.register_buffer("chain_steps", torch.zeros(size, dtype=torch.long))

    def __len__(self) -> int:
        return self.states.shape[0]

    def draw(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n distinct chains (indices into the buffer, states with re-initialisations applied); with n equal to
        the buffer size every chain is updated each iteration (the descriptor paper's persistent chains)."""
        if n > len(self):
            raise GenbenchError(f"{n} chains requested from a replay buffer of {len(self)}; raise buffer_size")
        index = torch.randperm(len(self), device=self.states.device)[:n]
        states = self.states[index].clone()
        fresh = torch.rand(n, device=states.device) < self.reinit_prob
        if fresh.any():
            states[fresh] = self.init_fn(int(fresh.sum())).to(states)
            self.chain_steps[index[fresh]] = 0
        return index, states

    def store(self, index: torch.Tensor, states: torch.Tensor, steps: int) -> None:
        """Write revised states back; each has run ``steps`` more Langevin steps."""
        self.states[index] = states.detach().to(self.states)
        lengths = self.chain_steps[index]
        self.chain_steps[index] = torch.where(lengths < 0, lengths, lengths + steps)  # −1: unknown (old checkpoint)

    def trained_chain_length(self) -> int | None:
        """Mean Langevin steps of the stored states that have been revised at least once (0 before training;
        None when unknown: a buffer restored from a checkpoint written before the lengths were counted)."""
        if (self.chain_steps < 0).any():
            return None
        revised = self.chain_steps[self.chain_steps > 0]
        return int(revised.float().mean().round().item()) if revised.numel() else 0
