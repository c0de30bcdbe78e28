"""Evaluation samples that do not depend on how many processes draw them.

The n samples are cut into chunks of ``chunk`` samples; chunk c is drawn after seeding torch with
(seed, c). Under DDP rank r draws chunks r, r + W, …; the chunks are all-gathered and put back in order,
so no sample is dropped or counted twice and the set equals the single-process set exactly.
``iter_samples`` hands the chunks on in order as they are drawn (a round of W chunks at a time under DDP), so
scoring can consume them without the whole set ever being held in memory.
"""

from __future__ import annotations

import time

import torch
import torch.distributed as dist

from genbench.runs.callbacks import PROGRESS_SECONDS, format_seconds


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


def iter_samples(model, n: int, seed: int, chunk: int = 64):
    """The n samples in [-1, 1] as chunks, in order, identical whether drawn by one process or by all DDP ranks
    (rank r draws chunks r, r + W, …; each round's chunks are all-gathered); the model's evaluation chains are fixed
    first (``prepare_evaluation``), so no persistent state is drawn twice. Every rank gets every chunk."""
    if chunk < 1:
        raise ValueError(f"chunk must be positive, got {chunk}")
    model.prepare_evaluation(n, seed, sync=True)
    num_chunks = (n + chunk - 1) // chunk
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    for first in range(0, num_chunks, world):
        if distributed:
            mine = draw_chunks(model, n, seed, [c for c in [first + rank] if c < num_chunks], chunk)
            gathered: list[dict[int, torch.Tensor] | None] = [None] * world
            dist.all_gather_object(gathered, {c: t.cpu() for c, t in mine.items()})
            merged = {c: t for part in gathered for c, t in (part or {}).items()}
        else:
            merged = draw_chunks(model, n, seed, [first], chunk)
        for c in range(first, min(first + world, num_chunks)):
            yield merged[c]


def sample_all(model, n: int, seed: int, chunk: int = 64) -> torch.Tensor:
    """The n samples of ``iter_samples`` as one tensor."""
    chunks = list(iter_samples(model, n, seed, chunk))
    samples = torch.cat(chunks) if chunks else torch.zeros(0)
    assert samples.shape[0] == n, (samples.shape, n)
    return samples


class Timed:
    """Wraps an iterator of sample chunks: adds up the seconds spent inside it (sampling, apart from scoring the
    chunks) and logs ``sample: k/total`` every ``PROGRESS_SECONDS``."""

    def __init__(self, iterator, total: int, log) -> None:
        self.iterator = iterator
        self.total = total
        self.log = log
        self.seconds = 0.0

    def __iter__(self):
        done, started, reported = 0, time.time(), time.time()
        while True:
            start = time.time()
            try:
                item = next(self.iterator)
            except StopIteration:
                self.seconds += time.time() - start
                return
            self.seconds += time.time() - start
            done += item.shape[0]
            if time.time() - reported >= PROGRESS_SECONDS:
                reported = time.time()
                rate = done / (reported - started)
                self.log(f"sample: {done}/{self.total} samples drawn and scored, {rate:.1f}/s, "
                         f"ETA {format_seconds((self.total - done) / max(rate, 1e-9))}")
            yield item
