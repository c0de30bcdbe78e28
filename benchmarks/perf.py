"""Speed benchmarks (``make perf``): genbench measured against plain PyTorch (training, Langevin and lever
measurements each in a fresh process).

For each shape (``cpu``: the cpu preset at 32×32; ``paper``: the paper preset at 64×64, CoopNets with 144 chains),
models built from the same effective config as the CLI:

- training: seconds per iteration through the Lightning Trainer exactly as ``bench`` runs it (its callbacks, CSV
  logging, data loader) vs a hand-written plain-PyTorch loop of the same nets, optimisers and data loader
  (``benchmarks/plain_loops.py``); ratio = plain / genbench (1.0: no cost; target ≥ 0.95);
- one Langevin step of the descriptor (CoopNets' energy net, its chains) vs the bare forward + input gradient of
  the energy net; ratio = bare / genbench (target ≥ 0.9);
- both with the default C allocator and with freed host memory reused (``speed.reuse_host_memory``'s settings in
  both loops: no page faults per allocation);
- evaluation: images/s of genbench's scoring (IS + FID + KID in the offline classifier's features, real features
  cached) vs torch-fidelity's ``calculate_metrics`` on the same extractor and images (target ≥ 1.0); and
  evaluation sampling images/s with small vs large chunks on the device;
- the ``speed`` levers (``genbench/models/speed.py``) on and off, one at a time and all together, on the CoopNets
  iteration, with the energy statistics of chains revised from the same start and noise (levers must not change
  the samples' distribution);
- peak memory (CUDA: allocator peak per measurement; CPU: the peak RSS of the measurement's process).

Writes ``leaderboards/perf/<device>.json`` and re-renders ``leaderboards/perf.md`` from every JSON there.

    python benchmarks/perf.py [--shapes cpu paper] [--iterations 20] [--host-memory default reused] [--skip …] [--merge]
    python benchmarks/perf.py --preset cpu [--budget 150]   # the cpu preset's per-model iteration counts
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plain_loops import PLAIN_ITERATIONS  # noqa: E402

from genbench.bench.harness import build, device_name, effective_config, make_trainer, package_versions  # noqa: E402
from genbench.models import MODELS  # noqa: E402
from genbench.models.speed import autocast  # noqa: E402

DATA = "imagenet-scenes-tiny"
SHAPES = {"cpu": "cpu", "paper": "paper"}  # shape name → preset
LEVERS = ["sync_free_langevin", "channels_last", "bf16", "compile", "cuda_graphs", "fused_adam", "reuse_host_memory"]
TARGETS = {"training": 0.95, "langevin": 0.9, "evaluation": 1.0, "levers_paper_cuda": 3.0}
ROOT = Path(__file__).resolve().parent.parent


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
    return effective_config(model, data, SHAPES.get(shape, shape), 500, 0, [
        f"trainer.max_iterations={iterations}", "trainer.checkpoint_every=1000000", "bench.grid_every=0", "bench.eval_every=0",
        "logger.wandb=false", *(overrides or [])])


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


HOST_MEMORY = {"default": False, "reused": True}  # how a measurement's process treats freed host memory


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


def time_langevin(shape: str, rounds: int, host_memory: str, log) -> dict:
    """One descriptor Langevin step (``Descriptor.revise`` as training runs it, with its trace) vs the bare forward
    + input gradient of the energy net, on CoopNets' chains at ``shape``; also with the sync-free checks. Measured in
    a fresh process (``host_memory``: ``reused`` with ``speed.reuse_host_memory``'s allocator settings)."""
    row = in_fresh_process(langevin_timings, shape, rounds, reuse_host_memory=HOST_MEMORY[host_memory])
    row.update(host_memory=host_memory, process="fresh")
    log(f"  langevin {shape:<5} host memory {host_memory:<7} {row['chains']} chains: genbench "
        f"{row['genbench_seconds_per_step'] * 1e3:.2f} ms/step (sync-free {row['genbench_sync_free_seconds_per_step'] * 1e3:.2f}), "
        f"bare {row['bare_seconds_per_step'] * 1e3:.2f}, plain step {row['plain_seconds_per_step'] * 1e3:.2f} → ratio "
        f"{row['ratio']:.3f} / {row['ratio_sync_free']:.3f}")
    return row


def langevin_timings(shape: str, rounds: int) -> dict:
    """The measurements of ``time_langevin``, in the current process: the four variants interleaved ``rounds`` times
    (their order shuffled each round, so that none always follows another); the median of each."""
    import dataclasses
    import random

    from genbench.models.langevin import frozen

    cfg = perf_config("coopnets", shape, 1)
    _, module = build(cfg)
    module.to(DEVICE).train()
    n = module.hparams.num_chains or cfg["data"]["batch_size"]
    config = module.langevin_config
    x0 = torch.randn(n, *module.data_shape, device=DEVICE) * 0.1

    def ours(checks_deferred: bool) -> float:
        run = dataclasses.replace(config, deferred_checks=checks_deferred)
        sync()
        start = time.perf_counter()
        module.revise(x0, run, trace=True)
        sync()
        return (time.perf_counter() - start) / run.n_steps

    def bare() -> float:
        net = module.energy_net
        sync()
        start = time.perf_counter()
        with frozen(net):
            for _ in range(config.n_steps):
                x = x0.detach().requires_grad_(True)
                torch.autograd.grad(net(x).sum(), x)
        sync()
        return (time.perf_counter() - start) / config.n_steps

    def plain() -> float:
        """The same update written inline (reference term, drift, noise), without checks or diagnostics."""
        net, drift, s2 = module.energy_net, config.step_size ** 2 / 2, 2 * module.hparams.ref_std ** 2
        sync()
        start = time.perf_counter()
        with frozen(net):
            x = x0.detach()
            for _ in range(config.n_steps):
                x.requires_grad_(True)
                (grad,) = torch.autograd.grad((x.flatten(1).pow(2).sum(dim=1) / s2 - net(x)).sum(), x)
                x = (x - drift * grad + config.step_size * torch.randn_like(x)).detach()
        sync()
        return (time.perf_counter() - start) / config.n_steps

    variants = {"genbench": lambda: ours(False), "genbench_sync_free": lambda: ours(True), "bare": bare, "plain": plain}
    for measure in variants.values():  # warm-up
        measure()
    timings: dict[str, list[float]] = {name: [] for name in variants}
    order = random.Random(0)
    out: dict = {}
    with memory_probe(out):
        for _ in range(rounds):
            for name in order.sample(list(variants), len(variants)):
                timings[name].append(variants[name]())
    med = {k: statistics.median(v) for k, v in timings.items()}
    return {"shape": shape, "chains": n, "steps": config.n_steps, "image_size": module.image_size, "rounds": rounds,
            "genbench_seconds_per_step": med["genbench"], "genbench_sync_free_seconds_per_step": med["genbench_sync_free"],
            "bare_seconds_per_step": med["bare"], "plain_seconds_per_step": med["plain"],
            "ratio": med["bare"] / med["genbench"], "ratio_to_plain": med["plain"] / med["genbench"],
            "ratio_sync_free": med["bare"] / med["genbench_sync_free"], **out}


def time_evaluation(shape: str, count: int, log) -> dict:
    """Scoring ``count`` images (IS + FID + KID, offline classifier) with genbench vs torch-fidelity's
    ``calculate_metrics`` on the same extractor, real features cached by both (each warmed up first)."""
    import torch_fidelity

    from genbench.metrics import MetricContext, compute_metrics
    from genbench.metrics.classifier import EXTRACTOR_NAME
    from genbench.metrics.features import Uint8Images

    cfg = perf_config(None, shape, 1)
    data_options = {k: v for k, v in cfg["data"].items() if k != "n_per_class"}
    ctx = MetricContext(DATA, data_options, {"kid_subsets": 100})
    ctx.reference("classifier")  # trains/caches the classifier and the real features
    real = ctx.benchmark_data().images("train")
    generator = torch.Generator().manual_seed(0)
    picks = torch.randint(0, real.shape[0], (count,), generator=generator)
    samples = (real[picks] + 0.1 * torch.randn(count, *real.shape[1:], generator=generator)).clamp(-1, 1)
    metrics = ["classifier_score", "classifier_fid", "classifier_kid"]
    kid_size = min(1000, count, real.shape[0])
    fidelity_args = dict(input1=Uint8Images(samples), input2=Uint8Images(real), input2_cache_name=f"genbench-perf-{shape}-{ctx.classifier().meta['key']}",
                         isc=True, fid=True, kid=True, kid_subsets=100, kid_subset_size=kid_size, isc_splits=10,
                         feature_extractor=EXTRACTOR_NAME, feature_extractor_weights_path=str(ctx.classifier().path),
                         batch_size=256, cuda=CUDA, verbose=False, save_cpu_ram=True)

    def ours() -> float:
        fresh = MetricContext(DATA, data_options, {"kid_subsets": 100})
        start = time.perf_counter()
        compute_metrics(metrics, samples, fresh)
        return time.perf_counter() - start

    def theirs() -> float:
        start = time.perf_counter()
        torch_fidelity.calculate_metrics(**fidelity_args)
        return time.perf_counter() - start

    ours(), theirs()  # warm-up: both caches filled
    g, f = statistics.median(ours() for _ in range(2)), statistics.median(theirs() for _ in range(2))
    row = {"shape": shape, "images": count, "metrics": metrics, "genbench_images_per_second": count / g,
           "fidelity_images_per_second": count / f, "ratio": f / g}
    log(f"  evaluation {shape:<5} {count} images: genbench {count / g:.0f} img/s, torch-fidelity {count / f:.0f} img/s → "
        f"ratio {f / g:.3f}")
    return row


def time_sampling(shape: str, count: int, chunks: list[int], log) -> dict:
    """Evaluation sampling of CoopNets (generator drafts revised by Langevin) on the device: images/s per chunk."""
    from genbench.bench.sampling import sample_all

    cfg = perf_config("coopnets", shape, 1)
    _, module = build(cfg)
    module.to(DEVICE)
    sample_all(module, min(count, chunks[0]), 0, chunk=chunks[0])  # warm-up
    rates = {}
    for chunk in chunks:
        sync()
        start = time.perf_counter()
        sample_all(module, count, 1, chunk=chunk)
        sync()
        rates[str(chunk)] = count / (time.perf_counter() - start)
    log(f"  sampling {shape:<5} {count} CoopNets samples: " + ", ".join(f"chunk {c}: {r:.0f} img/s" for c, r in rates.items()))
    return {"shape": shape, "images": count, "images_per_second_by_chunk": rates}


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


# -- the cpu preset's iteration counts ------------------------------------------------------------------------------

def time_preset(names: list[str], preset: str, iterations: int, budget: float, data: str = DATA) -> list[dict]:
    """Seconds per iteration of each model as ``preset`` configures it on ``data`` (through the Trainer), and the
    iterations that fill ``budget`` seconds: the numbers a tier's ``trainer.max_iterations`` come from."""
    rows = []
    for name in names:
        result = genbench_iteration(name, preset, iterations, 2, data=data)
        configured = effective_config(name, data, preset, None, 0)["trainer"].get("max_iterations")
        seconds = result["seconds_per_iteration"]
        rows.append({"model": name, **result, "budget_iterations": int(budget / seconds), "configured_iterations": configured,
                     "configured_seconds": configured * seconds if configured else None})
    return rows


# -- the report -------------------------------------------------------------------------------------------------------

def device_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def verdict(value: float, target: float) -> str:
    return "meets" if value >= target else f"misses by {100 * (1 - value / target):.1f} %"


def render_report(folder: Path) -> Path:
    """``leaderboards/perf.md`` from every ``leaderboards/perf/*.json`` (one section per device)."""
    lines = ["# Performance: genbench vs plain PyTorch", "",
             "Rendered by `make perf` from the JSON reports in `perf/` (one per device). Training, Langevin and lever "
             "entries marked `\"process\": \"fresh\"` in the JSON each ran in a fresh process (older ones, and evaluation "
             "and sampling, in the one process of `make perf`): **training** = plain-loop seconds / genbench seconds per iteration (through the "
             "Trainer as `bench` runs it; 1.0 = no cost, target ≥ 0.95); **Langevin** = bare forward + input-gradient "
             "seconds / genbench seconds per step (target ≥ 0.9); **evaluation** = genbench images/s / torch-fidelity "
             "images/s on the same extractor (target ≥ 1.0). Levers: `speed.*` switches on the CoopNets iteration, "
             "speed-up over all off, and the shift of the mean energy of chains revised from the same start and noise, "
             "in standard errors (|shift| ≲ 2: same distribution within noise).", ""]
    for path in sorted(folder.glob("*.json")):
        report = json.loads(path.read_text())
        lines += [f"## {report['device']}", "",
                  f"`{path.name}`: torch {report['versions'].get('torch')}, lightning {report['versions'].get('lightning')}, "
                  f"{report['threads']} threads, commit {report.get('git_commit')}, {report['date']}.", ""]
        remeasured = sorted({f"{r['measured']['date']} (commit {r['measured']['git_commit'][:12]})"
                             for section in SECTION_KEYS for r in report.get(section, []) if r.get("measured")})
        if len(remeasured) > 1:
            lines += [f"Measured in {len(remeasured)} sessions (`--merge`): {'; '.join(remeasured)}; each entry of the JSON "
                      "records its own.", ""]
        if report.get("training"):
            lines += ["### Training iteration", "", "| model | shape | host memory | batch | genbench s/it | plain s/it | ratio | target 0.95 | peak memory MiB (genbench / plain) |",
                      "|---|---|---|---|---|---|---|---|---|"]
            for r in report["training"]:
                lines.append(f"| {r['model']} | {r['shape']} | {r.get('host_memory', 'default')} | {r['batch']} | "
                             f"{r['genbench_seconds']:.4f} | {r['plain_seconds']:.4f} | "
                             f"{r['ratio']:.3f} | {verdict(r['ratio'], TARGETS['training'])} | {r['genbench_peak_memory_mib']:.0f} / "
                             f"{r['plain_peak_memory_mib']:.0f} ({r['peak_memory_kind']}) |")
            lines.append("")
        if report.get("langevin"):
            lines += ["### Langevin step (descriptor, CoopNets chains)", "",
                      "| shape | host memory | chains × steps | genbench ms/step | sync-free ms/step | bare ms/step | ratio | ratio sync-free | target 0.9 | plain step ms (same update inline) |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
            for r in report["langevin"]:
                lines.append(f"| {r['shape']} ({r['image_size']}×{r['image_size']}) | {r.get('host_memory', 'default')} | "
                             f"{r['chains']} × {r['steps']} | "
                             f"{r['genbench_seconds_per_step'] * 1e3:.2f} | {r['genbench_sync_free_seconds_per_step'] * 1e3:.2f} | "
                             f"{r['bare_seconds_per_step'] * 1e3:.2f} | {r['ratio']:.3f} | {r['ratio_sync_free']:.3f} | "
                             f"{verdict(max(r['ratio'], r['ratio_sync_free']), TARGETS['langevin'])} | "
                             f"{format(r['plain_seconds_per_step'] * 1e3, '.2f') if 'plain_seconds_per_step' in r else '—'} |")
            lines.append("")
        if report.get("evaluation"):
            lines += ["### Evaluation", "", "| shape | images | genbench img/s | torch-fidelity img/s | ratio | target 1.0 |",
                      "|---|---|---|---|---|---|"]
            for r in report["evaluation"]:
                lines.append(f"| {r['shape']} | {r['images']} | {r['genbench_images_per_second']:.0f} | "
                             f"{r['fidelity_images_per_second']:.0f} | {r['ratio']:.3f} | {verdict(r['ratio'], TARGETS['evaluation'])} |")
            lines.append("")
        if report.get("sampling"):
            lines += ["Evaluation sampling of CoopNets on the device (`bench.sample_batch_size`), images/s by chunk:", ""]
            for r in report["sampling"]:
                lines.append(f"- {r['shape']}: " + ", ".join(f"chunk {c}: {v:.0f}" for c, v in r["images_per_second_by_chunk"].items()))
            lines.append("")
        if report.get("levers"):
            lines += ["### Levers (`speed.*`) on the CoopNets iteration", "",
                      "| shape | levers on | s/it | speed-up | mean E(X̃) ± std | shift (s.e.) | peak memory MiB |", "|---|---|---|---|---|---|---|"]
            for r in report["levers"]:
                lines.append(f"| {r['shape']} | {r['levers']} | {r['seconds_per_iteration']:.4f} | ×{r['speedup']:.2f} | "
                             f"{r['energy']['mean']:.1f} ± {r['energy']['std']:.1f} | {r['energy_shift_in_standard_errors']:+.2f} | "
                             f"{r['peak_memory_mib']:.0f} |")
            lines.append("")
            if not any(r["levers"] == "cuda_graphs" for r in report["levers"]):
                lines += ["`cuda_graphs` needs a CUDA device: not measured here.", ""]
        notes = path.with_suffix(".notes.md")  # written by people: why a target is missed (the JSON carries the numbers)
        if notes.is_file():
            lines += ["### Notes", "", notes.read_text().strip(), ""]
    out = folder.parent / "perf.md"
    out.write_text("\n".join(lines))
    return out


SECTION_KEYS = {"training": ("model", "shape", "host_memory"), "langevin": ("shape", "host_memory"), "evaluation": ("shape",),
                "sampling": ("shape",), "levers": ("shape", "levers")}


def entry_key(row: dict, keys: tuple[str, ...]) -> tuple:
    """What a report entry measures (entries written before host memory was a variant measured the default)."""
    return tuple(row.get(k, "default") if k == "host_memory" else row[k] for k in keys)


def merged(earlier: dict | None, report: dict) -> dict:
    """``earlier`` (same device) with the measurements of ``report`` put in place of the ones they repeat (new ones
    appended); each entry records the commit and date it was measured at."""
    if earlier is None:
        return report
    out = dict(report)
    for section, keys in SECTION_KEYS.items():
        stamp = {"git_commit": report["git_commit"], "date": report["date"]}
        fresh = {entry_key(r, keys): {**r, "measured": stamp} for r in report[section]}
        rows = []
        for r in earlier.get(section, []):
            key = entry_key(r, keys)
            rows.append(fresh.pop(key) if key in fresh else
                        {**r, "measured": r.get("measured") or {"git_commit": earlier["git_commit"], "date": earlier["date"]}})
        out[section] = rows + list(fresh.values())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--models", nargs="*", default=list(PLAIN_ITERATIONS), choices=list(PLAIN_ITERATIONS))
    parser.add_argument("--iterations", type=int, default=None, help="timed iterations (default: 20 cpu shape, 5 paper)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=None,
                        help="alternations of genbench and plain, median taken (default: 3 cpu shape, 2 paper)")
    parser.add_argument("--langevin-rounds", type=int, default=None, help="interleaved Langevin rounds (default: 15 cpu shape, 5 paper)")
    parser.add_argument("--host-memory", nargs="*", default=list(HOST_MEMORY), choices=list(HOST_MEMORY),
                        help="training and Langevin comparisons with the default allocator and/or with freed host memory "
                             "reused (speed.reuse_host_memory's settings, in both loops)")
    parser.add_argument("--score-images", type=int, default=10_000)
    parser.add_argument("--score-shapes", nargs="*", default=None,
                        help="shapes of the evaluation benchmark (default: both on CUDA, cpu on a CPU: the paper shape's "
                             "classifier takes minutes to train there)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["training", "langevin", "evaluation", "sampling", "levers"])
    parser.add_argument("--out", default=str(ROOT / "leaderboards" / "perf"), help="folder of the JSON reports")
    parser.add_argument("--render-only", action="store_true", help="re-render perf.md from the JSON reports")
    parser.add_argument("--merge", action="store_true",
                        help="keep this device's earlier measurements, replacing only those measured again now")
    parser.add_argument("--preset", default=None, help="only: seconds per iteration of every model as this preset configures it")
    parser.add_argument("--budget", type=float, default=150.0, help="training seconds per model (with --preset)")
    parser.add_argument("--preset-models", nargs="*", default=None, choices=MODELS.names(),
                        help="with --preset: only these models (default: all)")
    parser.add_argument("--data", default=DATA, help="dataset of the --preset timings (default: %(default)s)")
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)  # no per-fit banners between the measurements
    folder = Path(args.out)
    if args.render_only:
        print(render_report(folder))
        return
    if args.preset:
        rows = time_preset(args.preset_models or MODELS.names(), args.preset, args.iterations or 5, args.budget, args.data)
        print(f"device: {device_name()}   preset {args.preset} on {args.data}, budget {args.budget:.0f} s per model")
        print(f"{'model':<12} {'s/iteration':>12} {'budget iters':>13} {'configured':>11} {'≈ seconds':>10}")
        for r in rows:
            seconds = f"{r['configured_seconds']:.0f}" if r["configured_seconds"] else "—"
            print(f"{r['model']:<12} {r['seconds_per_iteration']:>12.3f} {r['budget_iterations']:>13} "
                  f"{str(r['configured_iterations']):>11} {seconds:>10}")
        return
    from genbench.bench.harness import git_commit

    log = print
    name = device_name()
    report = {"device": name, "versions": package_versions(), "threads": torch.get_num_threads(), "git_commit": git_commit(),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "settings": vars(args),
              "training": [], "langevin": [], "evaluation": [], "sampling": [], "levers": []}
    score_shapes = args.score_shapes if args.score_shapes is not None else (list(SHAPES) if CUDA else ["cpu"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{device_slug(name)}.json"
    earlier = json.loads(path.read_text()) if args.merge and path.is_file() else None
    log(f"make perf on {name} → {path}")

    def keep() -> None:  # after every measurement: an interrupted run keeps what it measured
        path.write_text(json.dumps(merged(earlier, report), indent=1))

    for shape in args.shapes:
        iterations = args.iterations or (20 if shape == "cpu" else 5)
        rounds = args.rounds or (3 if shape == "cpu" else 2)
        for host_memory in args.host_memory:
            if "training" not in args.skip:
                for model in args.models:
                    report["training"].append(time_training(model, shape, iterations, args.warmup, rounds, host_memory, log))
                    keep()
            if "langevin" not in args.skip:
                langevin_rounds = args.langevin_rounds or (15 if shape == "cpu" else 5)
                report["langevin"].append(time_langevin(shape, langevin_rounds, host_memory, log))
                keep()
        if "evaluation" not in args.skip and shape in score_shapes:
            report["evaluation"].append(time_evaluation(shape, args.score_images, log))
            keep()
        if "sampling" not in args.skip:
            report["sampling"].append(time_sampling(shape, 1024, [64, 1024], log))
            keep()
        if "levers" not in args.skip:
            report["levers"] += time_levers(shape, iterations, args.warmup, log)
            keep()
    log(f"wrote {path} and {render_report(folder)}")


if __name__ == "__main__":
    main()
