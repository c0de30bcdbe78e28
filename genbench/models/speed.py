"""The ``speed`` section of a config: levers that change how fast a model computes, not what it computes (within
the tolerance the tests state). Everything is off by default: that is the reference path the tables were made
with; ``make perf`` measures each lever on and off (``leaderboards/perf.md``).

    speed:
      sync_free_langevin: true   # Langevin finiteness checks and diagnostics stay on the device, read once per chain
      channels_last: true        # nets and image batches in NHWC memory format
      bf16: true                 # the nets' forward passes under bf16 autocast; the Langevin update, the reference
                                 # term ‖x‖²/(2s²), losses and the optimiser state stay float32
      compile: true              # torch.compile of every net (nn.Module.compile: checkpoints keep their keys)
      cuda_graphs: true          # (CUDA only) the compiled nets in "reduce-overhead" mode: CUDA graphs of their passes;
                                 # experimental: never run yet by genbench's tests or reports (no GPU in those sessions)
      fused_adam: true           # Adam's fused implementation (one kernel per parameter group)
      reuse_host_memory: true    # (glibc) the C allocator keeps freed host memory for reuse: CPU tensors are not
                                 # page-faulted in afresh at every allocation; for the whole process, from the build on
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from genbench.errors import GenbenchError
from genbench.samplers.langevin import LangevinConfig


@dataclass(frozen=True)
class SpeedSettings:
    """``speed``: each lever a switch (see the module docstring); all off is the reference path."""

    sync_free_langevin: bool = False
    channels_last: bool = False
    bf16: bool = False
    compile: bool = False
    cuda_graphs: bool = False
    fused_adam: bool = False
    reuse_host_memory: bool = False

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if not isinstance(getattr(self, f.name), bool):
                raise GenbenchError(f"speed.{f.name} must be true or false, got {getattr(self, f.name)!r}")

    @classmethod
    def from_dict(cls, options: dict | None) -> "SpeedSettings":
        if options is not None and not isinstance(options, dict):
            raise GenbenchError(f"speed must be a mapping of switches (e.g. speed.bf16=true), got {options!r}")
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
    """The model's nets: its direct children that hold parameters (energy net, generator, discriminator, …), the
    members of a container of nets (the multi-grid models' ``ModuleDict`` of grid nets) in its place."""
    nets = []
    for child in module.children():
        if isinstance(child, (nn.ModuleDict, nn.ModuleList)):
            nets += nets_of(child)
        elif any(True for _ in child.parameters()):
            nets.append(child)
    return nets


def _float32_outputs(net: nn.Module, inputs, output):
    """Forward hook: a net's bf16 outputs (tensors, or tuples of them) handed on as float32, so that every loss,
    energy and chain computed from them is float32."""
    if isinstance(output, torch.Tensor):
        return output.float() if output.dtype == torch.bfloat16 else output
    if isinstance(output, tuple):
        return tuple(o.float() if isinstance(o, torch.Tensor) and o.dtype == torch.bfloat16 else o for o in output)
    return output


#: glibc ``mallopt`` parameters (malloc.h) and the values ``reuse_host_memory`` sets
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
KEPT_FREE_BYTES = 2**31 - 1  # free memory at the top of the heap is handed back to the OS only beyond this (never, in practice)
HEAP_UP_TO_BYTES = 2**30     # blocks up to this size come from the reusable heap, not from a fresh mmap each time


def reuse_freed_host_memory() -> None:
    """Make glibc's malloc keep freed memory for reuse, for the whole process (it cannot be undone).

    By default glibc serves a block larger than a dynamic threshold (at most 32 MiB) with a fresh ``mmap`` and
    unmaps it when it is freed, and it returns free memory at the top of its heap to the OS; the next allocation
    of that size then touches new pages, one page fault per 4 KiB. A training step allocates and frees its
    activations, gradients and Langevin buffers every time, so on a CPU thousands of page faults per step follow
    (2,500–4,400 measured per Langevin step of the cpu preset's CoopNets chains). With the mmap
    threshold at 1 GiB (glibc versions that refuse more than 32 MiB: no mmap at all) and the trim threshold at 2 GiB
    those blocks come from the heap and stay there: no page faults after the first step, at the price of the process
    keeping its peak memory.
    """
    try:
        mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    except (OSError, TypeError):  # no C library to load by name (Windows)
        mallopt = None
    if mallopt is None:
        raise GenbenchError("speed.reuse_host_memory needs glibc's mallopt (Linux); this C library has none (turn it off)")
    if mallopt(M_MMAP_THRESHOLD, HEAP_UP_TO_BYTES) != 1 and mallopt(M_MMAP_MAX, 0) != 1:
        raise GenbenchError("speed.reuse_host_memory: the C library refused to serve large blocks from its heap (turn it off)")
    if mallopt(M_TRIM_THRESHOLD, KEPT_FREE_BYTES) != 1:
        raise GenbenchError("speed.reuse_host_memory: the C library refused to keep freed memory (turn it off)")


def apply_build_levers(module: nn.Module, speed: SpeedSettings) -> None:
    """The levers set once when the model is built (before Lightning moves or wraps it)."""
    if speed.cuda_graphs and not torch.cuda.is_available():
        raise GenbenchError("speed.cuda_graphs needs a CUDA device and none is available here (turn it off)")
    if speed.reuse_host_memory:
        reuse_freed_host_memory()
    if speed.sync_free_langevin:
        with_sync_free_langevin(module)
    if speed.channels_last:  # before DDP is built, so its buckets see the final strides
        module.to(memory_format=torch.channels_last)
    if speed.bf16:
        for net in nets_of(module):
            net.register_forward_hook(_float32_outputs)


def apply_device_levers(module: nn.Module, speed: SpeedSettings, device: torch.device) -> None:
    """The levers that depend on the device the model runs on (applied once, at its first step or sample)."""
    if speed.cuda_graphs and device.type != "cuda":
        raise GenbenchError(f"speed.cuda_graphs needs a CUDA device; this model runs on {device.type} (turn it off)")
    if speed.compile or speed.cuda_graphs:
        # CUDA graphs need static shapes; otherwise the batch dimension may become dynamic after its first change
        # (training batches, the last partial batch and sampling chunks differ), which keeps recompiles few
        for net in nets_of(module):
            net.compile(mode="reduce-overhead" if speed.cuda_graphs else None, dynamic=False if speed.cuda_graphs else None)


def mark_step(speed: SpeedSettings) -> None:
    """With CUDA graphs, a new iteration or sample batch begins: outputs of the previous one may be overwritten."""
    if speed.cuda_graphs:
        torch.compiler.cudagraph_mark_step_begin()


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
