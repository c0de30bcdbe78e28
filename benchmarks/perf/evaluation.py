"""Evaluation: genbench's scoring against torch-fidelity's ``calculate_metrics`` on the same extractor and images,
and evaluation sampling with small and large chunks."""

from __future__ import annotations

import statistics
import time

import torch

from genbench.runs.trainer import build

from perf.common import CUDA, DATA, DEVICE, perf_config, sync


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
    from genbench.runs.sampling import sample_all

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
