"""Training: seconds per iteration through the Lightning Trainer exactly as ``bench`` runs it, against a
hand-written plain-PyTorch loop of the same nets, optimisers and data loader (``plain_loops.py``)."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from genbench.runs.trainer import build, make_trainer

from perf.common import DATA, DEVICE, HOST_MEMORY, Stopwatch, in_fresh_process, memory_probe, perf_config, sync
from plain_loops import PLAIN_ITERATIONS


def genbench_iteration(model: str, shape: str, iterations: int, warmup: int, overrides: list[str] | None = None,
                       data: str = DATA) -> dict:
    """Seconds per iteration through the Trainer as ``bench`` runs it (after ``warmup`` iterations); ``shape`` is
    a shape of SHAPES or a preset's name."""
    import lightning as L

    cfg = perf_config(model, shape, warmup + iterations, overrides, data)
    L.seed_everything(0, verbose=False)
    dm, module = build(cfg)
    watch = Stopwatch()
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp, memory_probe(out):
        trainer = make_trainer(cfg, Path(tmp), callbacks=[watch.callback])
        trainer.fit(module, datamodule=dm)
    return {"seconds_per_iteration": watch.per_iteration(warmup), "batch": dm.batch_size, **out}


def plain_iteration(model: str, shape: str, iterations: int, warmup: int) -> dict:
    """Seconds per iteration of the hand-written loop over the same nets, optimisers and data loader."""
    import lightning as L

    cfg = perf_config(model, shape, warmup + iterations)
    L.seed_everything(0, verbose=False)
    dm, module = build(cfg)
    module.to(DEVICE).train()
    optimizers = module.configure_optimizers()
    step = PLAIN_ITERATIONS[model]
    marks: list[float] = []
    out: dict = {}
    with memory_probe(out):
        while len(marks) < warmup + iterations:
            for batch in dm.train_dataloader():
                batch = [t.to(DEVICE, non_blocking=True) for t in batch]
                step(module, optimizers, batch)
                sync()
                marks.append(time.perf_counter())
                if len(marks) == warmup + iterations:
                    break
    return {"seconds_per_iteration": (marks[-1] - marks[warmup - 1]) / iterations, "batch": dm.batch_size, **out}


def time_training(model: str, shape: str, iterations: int, warmup: int, rounds: int, host_memory: str, log) -> dict:
    """genbench vs plain, ``rounds`` times each, every measurement in a fresh process (which goes first alternates,
    though fresh processes make the order matter little); the median of each. ``host_memory``: ``reused`` runs both
    loops with ``speed.reuse_host_memory``'s allocator settings, so the ratio is free of page-fault noise."""
    reuse = HOST_MEMORY[host_memory]
    ours, plain = [], []
    for round_ in range(rounds):
        for loop in ((plain_iteration, genbench_iteration) if round_ % 2 else (genbench_iteration, plain_iteration)):
            result = in_fresh_process(loop, model, shape, iterations, warmup, reuse_host_memory=reuse)
            (ours if loop is genbench_iteration else plain).append(result)
    g = statistics.median(r["seconds_per_iteration"] for r in ours)
    p = statistics.median(r["seconds_per_iteration"] for r in plain)
    row = {"model": model, "shape": shape, "host_memory": host_memory, "process": "fresh", "batch": ours[0]["batch"], "genbench_seconds": g,
           "plain_seconds": p, "ratio": p / g,
           "rounds": [[o["seconds_per_iteration"], q["seconds_per_iteration"]] for o, q in zip(ours, plain)],
           "genbench_peak_memory_mib": max(r["peak_memory_mib"] for r in ours),
           "plain_peak_memory_mib": max(r["peak_memory_mib"] for r in plain),
           "peak_memory_kind": ours[0]["peak_memory_kind"]}
    log(f"  train {model:<9} {shape:<5} host memory {host_memory:<7} genbench {g:.4f} s/it, plain {p:.4f} s/it → "
        f"ratio {p / g:.3f}")
    return row
