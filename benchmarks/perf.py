"""Speed benchmarks (``make perf``): training iterations/s and images/s of every model, and descriptor
Langevin steps/s, on the current device at a fixed batch. Not part of the tests; prints a table and
optionally writes JSON (``--out``) with the device and package versions.

    python benchmarks/perf.py [--models coopnets dcgan] [--image-size 64] [--batch 64] [--iterations 5]
    python benchmarks/perf.py --preset cpu [--budget 150]   # each model as the preset configures it

With ``--preset`` every model is built from its effective config for that preset and dataset (nets, Langevin
steps, batch size, image size) and the table reports the iterations that fill ``--budget`` seconds: the
numbers the ``cpu`` preset's ``trainer.max_iterations`` come from.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from genbench.bench.harness import device_name, package_versions
from genbench.models import MODELS, build_model
from genbench.models.langevin import LangevinConfig

EXTRA = {"abp": {"num_train": 10_000}}


def time_model(name: str, size: int, batch: int, iterations: int, device: torch.device, options: dict | None = None) -> dict:
    model = build_model(name, **{"image_size": size, "channels": 3, **EXTRA.get(name, {}), **(options or {})}).to(device)
    model.trainer = None
    optimizers = model.configure_optimizers()
    optimizers = list(optimizers) if isinstance(optimizers, (tuple, list)) else [optimizers]
    model.optimizers = lambda: optimizers if len(optimizers) > 1 else optimizers[0]  # outside a Trainer
    model.manual_backward = lambda loss: loss.backward()
    model.log_diagnostics = lambda *a, **k: None
    x = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    batch_data = (x, torch.zeros(batch, dtype=torch.long, device=device), torch.arange(batch, device=device))
    model.train_iteration(batch_data)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iterations):
        model.train_iteration(batch_data)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / iterations
    return {"model": name, "seconds_per_iteration": seconds, "images_per_second": batch / seconds}


def preset_settings(name: str, data: str, preset: str) -> tuple[dict, int, int, int | None]:
    """(model options, image size, batch size, configured iterations) of ``name`` under ``preset`` on ``data``."""
    from genbench.config import compose

    cfg = compose(name, data, preset)
    size = int(cfg["data"].get("image_size", 64))
    return dict(cfg["model"]), size, int(cfg["data"].get("batch_size", 64)), cfg["trainer"].get("max_iterations")


def time_preset(names: list[str], data: str, preset: str, iterations: int, budget: float, device: torch.device) -> list[dict]:
    """Seconds per iteration of each model as ``preset`` configures it, and the iterations that fill ``budget``."""
    rows = []
    for name in names:
        options, size, batch, configured = preset_settings(name, data, preset)
        result = time_model(name, size, batch, iterations, device, options)
        result.update(image_size=size, batch=batch, configured_iterations=configured,
                      budget_iterations=int(budget / result["seconds_per_iteration"]),
                      configured_seconds=configured * result["seconds_per_iteration"] if configured else None)
        rows.append(result)
    return rows


def time_langevin(size: int, batch: int, steps: int, device: torch.device) -> dict:
    model = build_model("descriptor", image_size=size, channels=3).to(device)
    x = torch.randn(batch, 3, size, size, device=device) * 0.1
    config = LangevinConfig(n_steps=steps, step_size=0.002)
    model.revise(x, config)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    model.revise(x, config)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"langevin_steps_per_second": steps / seconds, "chains": batch}


def time_scoring(count: int, size: int, data: str = "imagenet-scenes-tiny") -> dict:
    """Scoring ``count`` samples with every default metric vs its floor: one classifier forward pass over the
    samples plus loading the cached real-image features (the classifier and features are cached first)."""
    from genbench.metrics import DEFAULT_METRICS, MetricContext, compute_metrics
    from genbench.metrics.features import extract_features

    warm = MetricContext(data, {"image_size": size})
    warm.reference("classifier")  # trains/caches the classifier and the real features on first use
    held = warm.benchmark_data().images("train")
    generator = torch.Generator().manual_seed(0)
    picks = torch.randint(0, held.shape[0], (count,), generator=generator)
    samples = (held[picks] + 0.1 * torch.randn(count, *held.shape[1:], generator=generator)).clamp(-1, 1)
    start = time.perf_counter()
    extract_features(samples, warm.space("classifier"))
    forward = time.perf_counter() - start
    fresh = MetricContext(data, {"image_size": size})
    start = time.perf_counter()
    fresh.reference("classifier")
    reference = time.perf_counter() - start
    fresh = MetricContext(data, {"image_size": size})
    start = time.perf_counter()
    compute_metrics(DEFAULT_METRICS, samples, fresh)
    total = time.perf_counter() - start
    floor = forward + reference
    return {"samples": count, "image_size": size, "metrics": DEFAULT_METRICS, "seconds": total,
            "forward_seconds": forward, "cached_reference_seconds": reference, "ratio_to_floor": total / floor,
            "target_ratio": 1.2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=MODELS.names())
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--score-samples", type=int, default=10_000, help="samples of the scoring benchmark (0: skip)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--preset", default=None, help="time each model as this preset configures it")
    parser.add_argument("--data", default="imagenet-scenes-tiny", help="dataset whose preset settings apply")
    parser.add_argument("--budget", type=float, default=150.0, help="training seconds per model (with --preset)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.preset:
        rows = time_preset(args.models, args.data, args.preset, args.iterations, args.budget, device)
        print(f"device: {device_name()}   preset {args.preset} on {args.data}, budget {args.budget:.0f} s per model")
        print(f"{'model':<12} {'s/iteration':>12} {'images/s':>10} {'budget iters':>13} {'configured':>11} {'≈ seconds':>10}")
        for r in rows:
            seconds = f"{r['configured_seconds']:.0f}" if r["configured_seconds"] else "—"
            print(f"{r['model']:<12} {r['seconds_per_iteration']:>12.3f} {r['images_per_second']:>10.1f} "
                  f"{r['budget_iterations']:>13} {str(r['configured_iterations']):>11} {seconds:>10}")
        configured = sum(r["configured_seconds"] or 0 for r in rows)
        print(f"training time of one column of the table (every model at one n): {configured / 60:.1f} min; "
              f"three n: {3 * configured / 60:.1f} min, plus sampling and scoring (recorded per row)")
        if args.out:
            with open(args.out, "w") as fh:
                json.dump({"device": device_name(), "versions": package_versions(), "settings": vars(args),
                           "threads": torch.get_num_threads(), "models": rows}, fh, indent=1)
        return
    results = [time_model(m, args.image_size, args.batch, args.iterations, device) for m in args.models]
    langevin = time_langevin(args.image_size, args.batch, 15, device)
    print(f"device: {device_name()}   image size {args.image_size}, batch {args.batch}")
    print(f"{'model':<12} {'s/iteration':>12} {'images/s':>10}")
    for r in results:
        print(f"{r['model']:<12} {r['seconds_per_iteration']:>12.3f} {r['images_per_second']:>10.1f}")
    print(f"descriptor Langevin: {langevin['langevin_steps_per_second']:.1f} steps/s on {langevin['chains']} chains")
    scoring = time_scoring(args.score_samples, args.image_size) if args.score_samples else None
    if scoring:
        print(f"scoring {scoring['samples']} samples at {scoring['image_size']}x{scoring['image_size']} with "
              f"{', '.join(scoring['metrics'])}: {scoring['seconds']:.1f} s = {scoring['ratio_to_floor']:.2f}x "
              f"(one classifier pass {scoring['forward_seconds']:.1f} s + cached real features "
              f"{scoring['cached_reference_seconds']:.2f} s; target <= {scoring['target_ratio']}x)")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"device": device_name(), "versions": package_versions(), "settings": vars(args),
                       "models": results, "langevin": langevin, "scoring": scoring}, fh, indent=1)


if __name__ == "__main__":
    main()
