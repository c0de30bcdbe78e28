"""``make gpu-check DRY=1``: every step of the GPU check at toy size on the CPU, so that the first GPU window does
not fail on a typo, a missing package or a path."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_gpu_check_runs_every_step_at_toy_size_on_the_cpu(tmp_path):
    out = tmp_path / "gpu-check"
    proc = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--dry", "--out", str(out), "--budget", "900",
                           "--work", str(tmp_path / "work")],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200)
    log = (out / "gpu-check.log").read_text() if (out / "gpu-check.log").is_file() else proc.stdout
    assert proc.returncode == 0, log[-4000:]
    record = json.loads((out / "gpu-check.json").read_text())
    steps = {s["step"]: s for s in record["steps"]}
    assert list(steps) == ["cuda-tests", "perf", "paper-n50-coopnets", "paper-n50-dcgan"], list(steps)
    assert all(s["outcome"] == "passed" for s in steps.values()), steps
    assert record["missing_packages"] == []
    # the CUDA tests ran (on the CPU), not all skipped
    junit = (out / "cuda-tests.xml").read_text()
    assert 'tests="' in junit and 'skipped="' in junit
    ran = int(junit.split('tests="')[1].split('"')[0]) - int(junit.split('skipped="')[1].split('"')[0])
    assert ran >= 6, junit[:400]
    # perf wrote its report; both paper rows carry learning curves
    assert list((out / "perf").glob("*.json"))
    rows = [json.loads(line) for line in (out / "rows" / "imagenet-scenes-tiny--paper-dry.jsonl").read_text().splitlines()]
    assert sorted(r["model"] for r in rows) == ["coopnets", "dcgan"]
    assert all(r["curve"]["points"] for r in rows)


def test_collect_files_the_perf_report_and_the_rows_once(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    root = tmp_path / "repo"
    (root / "leaderboards" / "perf").mkdir(parents=True)
    folder = tmp_path / "out"
    (folder / "rows").mkdir(parents=True)
    row = {"model": "dcgan", "kind": "model", "n": 20, "seed": 0, "metrics": {}, "data": "digits"}
    (folder / "rows" / "digits--paper.jsonl").write_text(json.dumps(row) + "\n")
    monkeypatch.setattr(gpu_check, "ROOT", root)
    monkeypatch.setattr("genbench.bench.leaderboard.render_leaderboards", lambda *a, **k: None)
    for _ in range(2):
        gpu_check.collect(folder)
    lines = (root / "leaderboards" / "digits" / "paper.jsonl").read_text().splitlines()
    assert [json.loads(line)["model"] for line in lines] == ["dcgan"]
