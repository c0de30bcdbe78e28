"""``make gpu-check``: the whole GPU check as one prepared command that fits a 10-minute window.

Steps, in order, each a subprocess with its own time cap (a slow step is stopped and the next one still runs):

0. ``packages``: what the GPU machine lacks (torch-fidelity, jsonargparse and their needs) is installed from the
   wheels in ``.whl/`` (``make gpu-wheels`` downloads them beforehand) into ``<out>/site``; genbench runs from this
   checkout (``PYTHONPATH``), so the machine's torch is never reinstalled. wandb is imported only by
   ``logger.wandb: true``, which no step sets.
1. ``cuda-tests``: ``pytest -m cuda`` (``tests/models/test_cuda.py``): every ``speed`` lever on CUDA against the float32
   eager path, sampling on the training device after ``fit``, DDP sampling on one GPU.
2. ``perf``: ``benchmarks/perf`` on the device (genbench vs the plain loop, Langevin vs bare forward + input
   gradient, evaluation vs torch-fidelity, the levers on the CoopNets ``paper`` iteration) → ``<out>/perf/``.
3. ``paper-n50``, ``paper-n100``: the ``paper`` preset's CoopNets and DCGAN on imagenet-scenes-tiny (64×64,
   official settings) with learning curves, trained for the paper's budget or the time the step has left
   (``trainer.max_time``; the row records the iterations reached), scored with the offline metrics (the
   Inception-v3 weights cannot travel) → ``<out>/leaderboards/imagenet-scenes-tiny/paper.jsonl``.

Writes ``<out>/gpu-check.json`` (each step: command, cap, seconds, exit code, outcome) and ``<out>/gpu-check.log``.
``--dry`` runs every step at toy size on the CPU (the test suite does), so the first GPU window does not fail on a
typo, a missing package or a path. Back here, ``--collect <out>`` files the results: the perf report into
``leaderboards/perf/`` (perf.md re-rendered) and the paper rows into ``leaderboards/``.

    python benchmarks/gpu_check.py --wheels          # here, where pip reaches PyPI: .whl/ for the GPU machine
    python benchmarks/gpu_check.py [--out gpu-check-out] [--budget 300] [--dry]
    python benchmarks/gpu_check.py --collect <folder the run wrote>
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / ".whl"
#: packages the GPU machine lacks (measured: torch, lightning, torchmetrics, torchvision, scikit-image, scikit-learn,
#: opencv, matplotlib, pyyaml and rich are there) with the needs they bring that it lacks too
GPU_MACHINE_LACKS = ["torch-fidelity", "jsonargparse", "docstring-parser", "typeshed-client"]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64"]
#: share of the budget each step may take, in order; the paper rows take what the earlier steps leave
SHARES = {"packages": 0.05, "cuda-tests": 0.25, "perf": 0.3}
PAPER_MODELS = ["coopnets", "dcgan"]
OFFLINE_METRICS = "[classifier_score,synthesis_quality,classifier_fid,classifier_kid,classifier_pr,pairwise_ssim]"


class Steps:
    """Runs the steps, each with a cap, and records what each did (written after every step)."""

    def __init__(self, out: Path, env: dict, budget: float) -> None:
        self.out, self.env, self.budget, self.start = out, env, budget, time.monotonic()
        self.record: dict = {"budget_seconds": budget, "steps": []}
        self.log = (out / "gpu-check.log").open("a")

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.start)

    def say(self, text: str) -> None:
        line = f"gpu-check {time.strftime('%H:%M:%S')} {text}"
        print(line, flush=True)
        self.log.write(line + "\n")
        self.log.flush()

    def run(self, name: str, command: list[str], cap: float) -> bool:
        cap = max(1.0, min(cap, self.left()))
        self.say(f"{name}: {' '.join(command)} (cap {cap:.0f} s, {self.left():.0f} s left)")
        began = time.monotonic()
        try:
            proc = subprocess.run(command, cwd=ROOT, env=self.env, timeout=cap, stdout=self.log, stderr=subprocess.STDOUT)
            code, outcome = proc.returncode, "passed" if proc.returncode == 0 else "failed"
        except subprocess.TimeoutExpired:
            code, outcome = None, "stopped at its cap"
        seconds = round(time.monotonic() - began, 1)
        self.record["steps"].append({"step": name, "command": command, "cap_seconds": round(cap), "seconds": seconds,
                                     "exit_code": code, "outcome": outcome})
        (self.out / "gpu-check.json").write_text(json.dumps(self.record, indent=1))
        self.say(f"{name}: {outcome} in {seconds:.0f} s")
        return outcome == "passed"


def install_command(site: Path) -> list[str] | None:
    """pip installing the carried wheels into ``site`` (no index, no dependencies: nothing else is reinstalled)."""
    wheels = sorted(str(p) for p in WHEELS.glob("*.whl"))
    if not wheels:
        return None
    return [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--no-cache-dir",
            "--upgrade", "--target", str(site), *wheels]


def download_wheels(python_version: str = "3.12") -> list[Path]:
    """``make gpu-wheels``: the wheels of GPU_MACHINE_LACKS, at the versions installed here (the ones the tests
    passed with), for CPython ``python_version`` on manylinux x86-64, into ``.whl/`` (older versions there removed)."""
    from importlib.metadata import version

    pins = [f"{name}=={version(name)}" for name in GPU_MACHINE_LACKS]
    WHEELS.mkdir(exist_ok=True)
    for old in WHEELS.glob("*.whl"):
        old.unlink()
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
                    python_version, "--implementation", "cp", *[f"--platform={p}" for p in PLATFORMS], "-d", str(WHEELS),
                    *pins], check=True)
    return sorted(WHEELS.glob("*.whl"))


def missing_packages(env: dict) -> list[str]:
    """The modules genbench needs that the interpreter cannot import (with ``env``'s PYTHONPATH)."""
    probe = "import importlib.util as u; print(' '.join(m for m in ['torch_fidelity', 'jsonargparse', 'lightning', " \
            "'torchmetrics', 'torchvision', 'skimage', 'sklearn', 'cv2', 'matplotlib', 'yaml'] if u.find_spec(m) is None))"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, cwd=ROOT)
    return out.stdout.split()


def paper_command(model: str, n: int, work: Path, seconds: float, dry: bool) -> list[str]:
    cli = [sys.executable, "-m", "genbench.cli", "bench", "--model", model, "--data", "imagenet-scenes-tiny",
           "--preset", "paper", "--n", str(n), "--seed", "0", "--leaderboards", str(work / "leaderboards"),
           "--set", f"bench.metrics={OFFLINE_METRICS}", "--set", "logger.wandb=false"]
    if dry:  # toy size on the CPU: the same command, a few iterations of small nets at 16×16
        return [*cli, "--set", "trainer.accelerator=cpu", "--set", "trainer.max_iterations=2", "--set", "data.batch_size=10",
                "--set", f"trainer.max_time={{seconds: {max(30, int(seconds))}}}",
                "--set", "bench.num_samples=20", "--set", "bench.eval_every=1", "--set", "bench.curve_samples=10",
                "--set", "bench.metrics=[classifier_fid,pairwise_ssim]", "--set", "bench.table=paper-dry",
                "--set", "data.image_size=16", "--set", "bench.metric_options.ssim_samples=10",
                "--set", "bench.metric_options.classifier={epochs: 4, width: 16}",
                *(["--set", "model.num_chains=10", "--set", "model.net={widths: [8, 8, 8], n_out: 4}",
                   "--set", "model.generator_net={base_width: 8}"] if model == "coopnets" else
                  ["--set", "model.g_width=8", "--set", "model.d_width=8"])]
    return [*cli, "--set", "trainer.accelerator=gpu", "--set", f"trainer.max_time={{seconds: {max(30, int(seconds))}}}",
            "--set", "bench.eval_every=200", "--set", "bench.curve_samples=500"]


def run_check(out: Path, budget: float, dry: bool, work: Path | None = None) -> dict:
    """The steps; ``out`` receives the few result files (what a GPU window brings back), ``work`` the runs and
    rendered leaderboards (default: a fresh temporary folder)."""
    out.mkdir(parents=True, exist_ok=True)
    work = work or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "GENBENCH_RUNS": str(work / "runs"), "GENBENCH_CACHE": str(work / "cache"),
           "PYTHONPATH": os.pathsep.join(p for p in [str(out / "site"), str(ROOT), os.environ.get("PYTHONPATH")] if p)}
    if dry:
        env["GENBENCH_GPU_CHECK_DRY"] = "1"
    steps = Steps(out, env, budget)
    steps.say(f"{'dry run on the CPU' if dry else 'GPU check'} → {out}, budget {budget:.0f} s")
    # 0. packages
    install = install_command(out / "site")
    if install and missing_packages({**env, "PYTHONPATH": str(ROOT)}):
        steps.run("packages", install, SHARES["packages"] * budget)
    lacking = missing_packages(env)
    steps.record["missing_packages"] = lacking
    if lacking:
        steps.say(f"missing {', '.join(lacking)}: run `make gpu-wheels` where pip reaches PyPI and carry .whl/")
    # 1. the CUDA tests
    steps.run("cuda-tests", [sys.executable, "-m", "pytest", "-m", "cuda", "tests/models/test_cuda.py", "-q", "-p", "no:cacheprovider",
                             f"--junitxml={out / 'cuda-tests.xml'}"], SHARES["cuda-tests"] * budget)
    # 2. perf
    perf = [sys.executable, "benchmarks/perf", "--out", str(out / "perf")]
    perf += (["--shapes", "cpu", "--models", "dcgan", "--iterations", "1", "--warmup", "1", "--rounds", "1",
              "--langevin-rounds", "1", "--score-images", "64", "--host-memory", "default", "--skip", "sampling", "levers"] if dry
             else ["--iterations", "10", "--rounds", "2", "--langevin-rounds", "5", "--score-images", "5000",
                   "--host-memory", "default"])
    steps.run("perf", perf, SHARES["perf"] * budget)
    # 3. the paper rows: n = 50, then n = 100 while time remains (each model gets an equal share of what is left);
    # the dry run proves the command once, at n = 50
    for n in (50,) if dry else (50, 100):
        if steps.left() < (10 if dry else 90):
            steps.say(f"paper-n{n}: skipped, {steps.left():.0f} s left")
            break
        for i, model in enumerate(PAPER_MODELS):
            share = steps.left() / (len(PAPER_MODELS) - i)
            train = share - 60  # sampling, scoring and start-up after training
            steps.run(f"paper-n{n}-{model}", paper_command(model, n, work, train, dry), share)
    rows = out / "rows"  # the rows the paper steps wrote, one file per table
    for table in sorted((work / "leaderboards").glob("*/*.jsonl")):
        rows.mkdir(exist_ok=True)
        shutil.copyfile(table, rows / f"{table.parent.name}--{table.name}")
    steps.say(f"done in {budget - steps.left():.0f} s: " +
              ", ".join(f"{s['step']} {s['outcome']}" for s in steps.record["steps"]))
    return steps.record


def collect(folder: Path) -> list[Path]:
    """File a GPU check's results here: its perf reports into leaderboards/perf (perf.md re-rendered) and its paper
    rows appended to leaderboards/<data>/<table>.jsonl (rows already there are not appended twice)."""
    sys.path.insert(0, str(ROOT))
    from genbench.bench.leaderboard import render_leaderboards
    from genbench.results import append_row, read_rows

    written = []
    for report in sorted((folder / "perf").glob("*.json")):
        target = ROOT / "leaderboards" / "perf" / report.name
        shutil.copyfile(report, target)
        written.append(target)
    if written:
        subprocess.run([sys.executable, "benchmarks/perf", "--render-only"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    for table in sorted((folder / "rows").glob("*--*.jsonl")):
        data, name = table.name.split("--", 1)
        target = ROOT / "leaderboards" / data / name
        have = {json.dumps(r, sort_keys=True) for r in read_rows(target)[0]} if target.is_file() else set()
        for row in read_rows(table)[0]:
            if json.dumps(row, sort_keys=True) not in have:
                append_row(target, row)
        render_leaderboards(ROOT / "leaderboards", data)
        written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "gpu-check-out"), help="folder of the results (default: %(default)s)")
    parser.add_argument("--work", default=None, help="folder of the runs and rendered tables (default: a temporary one)")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds for all the steps (default: %(default)s)")
    parser.add_argument("--dry", action="store_true", help="every step at toy size on the CPU")
    parser.add_argument("--collect", default=None, help="file the results of a GPU check from this folder here")
    parser.add_argument("--wheels", action="store_true", help="download the wheels the GPU machine lacks into .whl/")
    args = parser.parse_args()
    if args.wheels:
        for path in download_wheels():
            print(path.relative_to(ROOT))
        return
    if args.collect:
        for path in collect(Path(args.collect)):
            print(path)
        return
    record = run_check(Path(args.out), args.budget, args.dry, Path(args.work) if args.work else None)
    failed = [s["step"] for s in record["steps"] if s["outcome"] != "passed"]
    sys.exit(1 if failed or record.get("missing_packages") else 0)


if __name__ == "__main__":
    main()
