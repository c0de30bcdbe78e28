"""Evaluation samples that do not depend on how many processes draw them.

The n samples are cut into chunks of ``chunk`` samples; chunk c is drawn after seeding torch with
(seed, c). Under DDP rank r draws chunks r, r + W, …; the chunks are all-gathered and put back in order,
so no sample is dropped or counted twice and the set equals the single-process set exactly.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def chunk_seed(seed: int, chunk: int) -> int:
    return (seed * 1_000_003 + chunk) % (2**63 - 1)


def draw_chunks(model, n: int, seed: int, chunks: list[int], chunk: int) -> dict[int, torch.Tensor]:
    out = {}
    state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        for c in chunks:
            torch.manual_seed(chunk_seed(seed, c))
            count = min(chunk, n - c * chunk)
            out[c] = model.sample(count, batch_size=chunk, first=c * chunk)
    finally:
        torch.set_rng_state(state)
        if cuda_state is not None:
            torch.cuda.set_rng_state_all(cuda_state)
    return out


def sample_all(model, n: int, seed: int, chunk: int = 64) -> torch.Tensor:
    """n samples in [-1, 1], identical whether drawn by one process or gathered from all DDP ranks; the model's
    evaluation chains are fixed first (``prepare_evaluation``), so no persistent state is drawn twice."""
    model.prepare_evaluation(n, seed, sync=True)
    num_chunks = (n + chunk - 1) // chunk
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        mine = draw_chunks(model, n, seed, list(range(rank, num_chunks, world)), chunk)
        gathered: list[dict[int, torch.Tensor] | None] = [None] * world
        dist.all_gather_object(gathered, {c: t.cpu() for c, t in mine.items()})
        merged = {c: t for part in gathered for c, t in (part or {}).items()}
    else:
        merged = draw_chunks(model, n, seed, list(range(num_chunks)), chunk)
    samples = torch.cat([merged[c] for c in range(num_chunks)]) if num_chunks else torch.zeros(0)
    assert samples.shape[0] == n, (samples.shape, n)
    return samples
