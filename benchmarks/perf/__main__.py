"""``python benchmarks/perf``: the speed benchmarks (``make perf``; what they measure: ``perf/__init__.py``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch

from genbench.models import MODELS
from genbench.runs.provenance import device_name, git_commit
from genbench.versions import package_versions

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/: the perf package and plain_loops
from perf import __doc__ as PERF_DOC  # noqa: E402
from perf.common import CUDA, DATA, HOST_MEMORY, ROOT, SHAPES  # noqa: E402
from perf.evaluation import time_evaluation, time_sampling  # noqa: E402
from perf.langevin import time_langevin  # noqa: E402
from perf.levers import time_levers  # noqa: E402
from perf.preset import time_preset  # noqa: E402
from perf.report import device_slug, merged, render_report  # noqa: E402
from perf.training import time_training  # noqa: E402
from plain_loops import PLAIN_ITERATIONS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=PERF_DOC.splitlines()[0])
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
