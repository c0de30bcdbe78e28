"""One Langevin step of the descriptor (CoopNets' energy net, its chains) against the bare forward + input gradient
of the energy net."""

from __future__ import annotations

import statistics
import time

import torch

from genbench.runs.trainer import build

from perf.common import DEVICE, HOST_MEMORY, in_fresh_process, memory_probe, perf_config, sync


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

    from genbench.samplers.langevin import frozen

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
