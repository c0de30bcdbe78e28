"""The ``speed`` section of a config: levers that change how fast a model computes, not what it computes (within
the tolerance the tests state). Everything is off by default: that is the reference path the tables were made
with; ``make perf`` measures each lever on and off (``leaderboards/perf.md``).

    speed:
      sync_free_langevin: true   # Langevin finiteness checks and diagnostics stay on the device, read once per chain
      channels_last: true        # nets and image batches in NHWC memory format
      bf16: true                 # the nets' forward passes under bf16 autocast; the Langevin update, the reference
                                 # term ‖x‖²/(2s²), losses and the optimiser state stay float32
      compile: true              # torch.compile of every net (nn.Module.compile: checkpoints keep their keys)
      cuda_graphs: true          # (CUDA only) the compiled nets in "reduce-overhead" mode: CUDA graphs of their passes
      fused_adam: true           # Adam's fused implementation (one kernel per parameter group)
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from genbench.errors import GenbenchError
from genbench.models.langevin import LangevinConfig


@dataclass(frozen=True)
class SpeedSettings:
    """``speed``: each lever a switch (see the module docstring); all off is the reference path."""

    sync_free_langevin: bool = False
    channels_last: bool = False
    bf16: bool = False
    compile: bool = False
    cuda_graphs: bool = False
    fused_adam: bool = False

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if not isinstance(getattr(self, f.name), bool):
                raise GenbenchError(f"speed.{f.name} must be true or false, got {getattr(self, f.name)!r}")

    @classmethod
    def from_dict(cls, options: dict | None) -> "SpeedSettings":
        options = dict(options or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise GenbenchError(f"unknown speed option(s) {unknown}; accepted: {', '.join(sorted(known))}")
        return cls(**options)

    def on(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name)]


def with_sync_free_langevin(module: nn.Module) -> None:
    """Every Langevin configuration the model holds reads its checks and trace once per chain."""
    for name, value in list(vars(module).items()):
        if isinstance(value, LangevinConfig):
            setattr(module, name, dataclasses.replace(value, deferred_checks=True))


def nets_of(module: nn.Module) -> list[nn.Module]:
    """The model's nets: its direct children that hold parameters (energy net, generator, discriminator, …)."""
    return [child for child in module.children() if any(True for _ in child.parameters())]


def apply_device_levers(module: nn.Module, speed: SpeedSettings, device: torch.device) -> None:
    """The levers that depend on the device the model runs on (applied once, at its first step or sample)."""
    if speed.cuda_graphs and device.type != "cuda":
        raise GenbenchError(f"speed.cuda_graphs needs a CUDA device; this model runs on {device.type} (turn it off)")
    if speed.channels_last:
        module.to(memory_format=torch.channels_last)
    if speed.compile or speed.cuda_graphs:
        mode = "reduce-overhead" if speed.cuda_graphs else None
        for net in nets_of(module):
            net.compile(mode=mode, dynamic=False)


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def autocast(speed: SpeedSettings, device: torch.device):
    """bf16 autocast for the nets when ``speed.bf16`` (a no-op context otherwise)."""
    if not speed.bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def adam(params, lr: float, betas: tuple[float, float], speed: SpeedSettings, **kwargs) -> torch.optim.Adam:
    """Adam, fused when ``speed.fused_adam`` (same update rule, one kernel per parameter group)."""
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), fused=True if speed.fused_adam else None, **kwargs)
