"""What every measurement shares: the shapes and targets, a fresh process per measurement, the peak-memory probe,
the CLI's effective config of a model, a stopwatch."""

from __future__ import annotations

import contextlib
import logging
import resource
import time
from pathlib import Path

import torch

from genbench.runs.config import run_config


DATA = "imagenet-scenes-tiny"


SHAPES = {"cpu": "cpu", "paper": "paper"}  # shape name → preset


LEVERS = ["sync_free_langevin", "channels_last", "bf16", "compile", "cuda_graphs", "fused_adam", "reuse_host_memory"]


TARGETS = {"training": 0.95, "langevin": 0.9, "evaluation": 1.0, "levers_paper_cuda": 3.0}


ROOT = Path(__file__).resolve().parents[2]


CUDA = torch.cuda.is_available()  # asked once: under Lightning every call probes NVML, ~0.3 ms without a GPU


DEVICE = torch.device("cuda" if CUDA else "cpu")


def sync() -> None:
    if CUDA:
        torch.cuda.synchronize()


def in_fresh_process(fn, *args, reuse_host_memory: bool = False):
    """``fn(*args)`` in a new (spawned) Python process, so that nothing an earlier measurement left behind reaches
    this one: the C allocator's heap, the process-wide ``speed.reuse_host_memory``, compiled code. With
    ``reuse_host_memory`` the process keeps freed host memory for reuse from its start (both loops of a comparison)."""
    import concurrent.futures
    import multiprocessing

    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_run_child, fn, args, reuse_host_memory).result()


def _run_child(fn, args, reuse_host_memory: bool):
    import warnings

    from genbench.models.speed import reuse_freed_host_memory

    warnings.filterwarnings("ignore", module="lightning")  # its deprecation notices, once per process otherwise
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    if reuse_host_memory:
        reuse_freed_host_memory()
    return fn(*args)


@contextlib.contextmanager
def memory_probe(out: dict):
    """Peak memory of the block: CUDA allocator peak, or the process's peak RSS (MiB) after it on a CPU."""
    if CUDA:
        torch.cuda.reset_peak_memory_stats()
    yield
    if CUDA:
        out["peak_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        out["peak_memory_kind"] = "CUDA allocator peak"
    else:
        out["peak_memory_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        out["peak_memory_kind"] = "process peak RSS so far"


def perf_config(model: str, shape: str, iterations: int, overrides: list[str] | None = None, data: str = DATA) -> dict:
    """The CLI's effective config of ``model`` at ``shape``, trained for ``iterations``. Also forgets what
    torch.compile compiled for earlier measurements: its cache is per function, so every model this process builds
    would otherwise count against the recompile limit of the next (a real run builds one)."""
    torch._dynamo.reset()
    return run_config(model, data, SHAPES.get(shape, shape), 500, 0, [
        f"trainer.max_iterations={iterations}", "trainer.checkpoint_every=1000000", "bench.grid_every=0", "bench.eval_every=0",
        "logger.wandb=false", *(overrides or [])]).cfg


class Stopwatch:
    """Timestamps at the end of every training batch (after a device synchronisation)."""

    def __init__(self) -> None:
        from lightning.pytorch.callbacks import Callback

        marks = self.marks = []

        class _Callback(Callback):
            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
                sync()
                marks.append(time.perf_counter())

        self.callback = _Callback()

    def per_iteration(self, warmup: int) -> float:
        return (self.marks[-1] - self.marks[warmup - 1]) / (len(self.marks) - warmup)


HOST_MEMORY = {"default": False, "reused": True}  # how a measurement's process treats freed host memory
