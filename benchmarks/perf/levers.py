"""The ``speed`` levers on and off, one at a time and all together, on the CoopNets iteration, with the energy
statistics of chains revised from the same start and noise."""

from __future__ import annotations

import math

import torch

from genbench.models.speed import autocast
from genbench.runs.trainer import build

from perf.common import CUDA, DEVICE, LEVERS, in_fresh_process, perf_config
from perf.training import genbench_iteration


def lever_sets() -> list[tuple[str, list[str]]]:
    """(name, the levers on): all off, each applicable lever alone, all applicable levers together."""
    applicable = [lever for lever in LEVERS if lever != "cuda_graphs" or CUDA]
    return [("off", []), *[(lever, [lever]) for lever in applicable], ("all", applicable)]


def energy_statistics(shape: str, levers: list[str], seed: int = 0) -> dict:
    """Mean and std over chains of E(X̃) after one training-length revision of generator drafts, from the same
    initial weights, drafts and noise (seeded), with ``levers`` on."""
    import lightning as L

    cfg = perf_config("coopnets", shape, 1, [f"speed.{lever}=true" for lever in levers])
    L.seed_everything(seed, verbose=False)
    _, module = build(cfg)
    module.to(DEVICE).train()
    module.ensure_levers()
    torch.manual_seed(seed + 1)
    with autocast(module.speed, DEVICE):
        _, drafts = module.draft(module.hparams.num_chains or cfg["data"]["batch_size"])
        revised, _ = module.revise(drafts)
    with torch.no_grad():
        energy = module.energy(revised.float()).double()
    return {"mean": float(energy.mean()), "std": float(energy.std()), "chains": int(energy.shape[0])}


def lever_row(shape: str, levers: list[str], iterations: int, warmup: int) -> dict:
    """Seconds per CoopNets iteration and energy statistics with ``levers`` on (run in a fresh process: some levers,
    ``reuse_host_memory``, are for the whole process)."""
    overrides = [f"speed.{lever}=true" for lever in levers]
    timing = genbench_iteration("coopnets", shape, iterations, warmup + (3 if {"compile", "cuda_graphs"} & set(levers) else 0),
                                overrides)
    return {**timing, "energy": energy_statistics(shape, levers)}


def time_levers(shape: str, iterations: int, warmup: int, log) -> list[dict]:
    rows = []
    reference = None
    for name, levers in lever_sets():
        measured = in_fresh_process(lever_row, shape, levers, iterations, warmup)
        stats = measured.pop("energy")
        reference = reference or stats  # the first set is all off
        standard_error = reference["std"] / math.sqrt(reference["chains"])
        rows.append({"shape": shape, "levers": name, "on": levers, "process": "fresh", **measured, "energy": stats,
                     "energy_shift_in_standard_errors": (stats["mean"] - reference["mean"]) / standard_error})
    off = rows[0]["seconds_per_iteration"]
    for row in rows:
        row["speedup"] = off / row["seconds_per_iteration"]
        log(f"  levers {shape:<5} {row['levers']:<18} {row['seconds_per_iteration']:.4f} s/it ×{row['speedup']:.2f}  "
            f"energy {row['energy']['mean']:.1f} ± {row['energy']['std']:.1f} (shift {row['energy_shift_in_standard_errors']:+.2f} s.e.)")
    return rows
