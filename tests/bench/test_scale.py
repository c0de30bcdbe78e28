"""Running at scale: resume, DDP, W&B offline, sweeps, checkpoints that fail clearly."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from genbench.bench import read_rows, run_bench, run_fit
from genbench.cli import main
from genbench.runs.sampling import sample_all

TINY = ["bench.metrics=[pairwise_ssim]", "bench.num_samples=61", "bench.metric_options.ssim_samples=10"]


def _state(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def test_resume_gives_the_same_final_weights(tmp_path):
    common = ["trainer.max_iterations=null", "trainer.deterministic=true", "data.batch_size=128",
              "model.langevin={n_steps: 3, step_size: 0.1}", "model.net={widths: [8, 8, 8], n_out: 4}",
              "model.buffer_size=64", "model.num_chains=16"]
    full = run_fit("pcd", "digits", "smoke", None, 0, [*common, "trainer.max_epochs=2"], runs=tmp_path / "a")
    half = run_fit("pcd", "digits", "smoke", None, 0, [*common, "trainer.max_epochs=1"], runs=tmp_path / "b")
    resumed = run_fit("pcd", "digits", "smoke", None, 0, ["trainer.max_epochs=2"], resume=str(half))
    a, b = _state(full), _state(resumed)
    assert a["genbench_iteration"] == b["genbench_iteration"] == 2 * 12
    assert b["state_dict"].keys() == a["state_dict"].keys() and "buffer.states" in a["state_dict"]
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert torch.equal(a["genbench_rng"]["torch"], b["genbench_rng"]["torch"])


@pytest.mark.slow
@pytest.mark.parametrize("stop, total, extra", [
    (5, 9, []),                                  # inside the first epoch (iteration 5 of 12)
    (14, 17, []),                                # inside the second epoch
    (6, 8, ["trainer.limit_train_batches=3"]),   # exactly at an epoch's end, epochs cut to 3 batches
])
def test_mid_epoch_resume_of_a_two_optimizer_model_gives_the_same_final_weights(tmp_path, stop, total, extra):
    """What a sweep does after a crash: resume from the last.ckpt written where the run stopped."""
    common = ["trainer.deterministic=true", "data.batch_size=128", "trainer.checkpoint_every=100",
              "model.g_width=8", "model.d_width=8", *extra]
    full = run_fit("dcgan", "digits", "smoke", None, 0, [*common, f"trainer.max_iterations={total}"], runs=tmp_path / "a")
    half = run_fit("dcgan", "digits", "smoke", None, 0, [*common, f"trainer.max_iterations={stop}"], runs=tmp_path / "b")
    assert _state(half)["genbench_iteration"] == stop
    resumed = run_fit("dcgan", "digits", "smoke", None, 0, [f"trainer.max_iterations={total}"], resume=str(half))
    a, b = _state(full), _state(resumed)
    assert a["genbench_iteration"] == b["genbench_iteration"] == total
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    for opt_a, opt_b in zip(a["optimizer_states"], b["optimizer_states"]):  # both Adams, moments included
        for k, state in opt_a["state"].items():
            assert torch.equal(state["exp_avg"], opt_b["state"][k]["exp_avg"])


def test_a_resumable_loader_skips_batches_once_with_worker_processes_too():
    from torch.utils.data import TensorDataset

    from genbench.data.loading import ResumableDataLoader

    data = TensorDataset(torch.arange(10))
    for workers in (0, 1):
        loader = ResumableDataLoader(data, batch_size=2, skip_batches=2, num_workers=workers,
                                     persistent_workers=workers > 0)
        assert len(loader) == 5  # Lightning counts the whole epoch
        assert [b[0].tolist() for b in loader] == [[4, 5], [6, 7], [8, 9]], workers
        assert [b[0].tolist() for b in loader][0] == [0, 1]  # the next epoch is whole


def _ddp_sampling_worker(rank, world, port, out):
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    from genbench.models import build_model

    model = build_model("dcgan", image_size=8, channels=1, g_width=8, d_width=8)
    samples = sample_all(model, 61, seed=5, chunk=8)
    if rank == 0:
        torch.save(samples, out)
    dist.destroy_process_group()


def test_ddp_sampling_equals_one_process_without_drops_or_duplicates(tmp_path):
    from genbench.models import build_model

    torch.manual_seed(0)
    model = build_model("dcgan", image_size=8, channels=1, g_width=8, d_width=8)
    single = sample_all(model, 61, seed=5, chunk=8)
    out = tmp_path / "ddp.pt"
    mp.spawn(_ddp_sampling_worker, args=(2, 29517, str(out)), nprocs=2, join=True)
    gathered = torch.load(out)
    assert gathered.shape == (61, 1, 8, 8)  # 61 = 7 chunks of 8 + 5, not divisible by 2 ranks
    assert torch.equal(gathered, single)
    assert len({tuple(x.flatten().tolist()) for x in gathered}) == 61


def test_cpu_ddp_bench_writes_one_row(tmp_path):
    env = {**os.environ, "GENBENCH_RUNS": str(tmp_path / "runs")}
    cmd = [sys.executable, "-m", "genbench.cli", "bench", "--model", "dcgan", "--data", "digits", "--devices", "2",
           "--leaderboards", str(tmp_path / "boards"), "--set", "trainer.accelerator=cpu", "--set", "trainer.max_iterations=3",
           "--set", "model.g_width=8", "--set", "model.d_width=8", *sum((["--set", t] for t in TINY), [])]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows, bad = read_rows(tmp_path / "boards" / "digits" / "smoke.jsonl")
    assert bad == [] and len(rows) == 1
    assert rows[0]["world_size"] == 2 and rows[0]["n_samples"] == 61
    assert len(list((tmp_path / "runs" / "digits" / "dcgan").iterdir())) == 1  # one run folder for both ranks


def test_wandb_offline_without_credentials(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    result = run_bench("dcgan", "digits", "smoke", 20, 0, ["trainer.max_iterations=2", "logger.wandb=true",
                       "bench.grid_every=1", *TINY], leaderboards=tmp_path / "boards", runs=tmp_path / "runs")
    assert result.row["wandb"] == "offline"
    assert list((result.run_dir / "wandb").glob("offline-run-*"))
    assert len(list((result.run_dir / "grids").glob("*.png"))) == 2


def test_unreachable_wandb_never_fails_the_run(tmp_path):
    env = {**os.environ, "WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9", "HOME": str(tmp_path),
           "GENBENCH_RUNS": str(tmp_path / "runs")}
    env.pop("WANDB_MODE", None)
    cmd = [sys.executable, "-m", "genbench.cli", "bench", "--model", "dcgan", "--data", "digits", "--n", "20", "--wandb",
           "--leaderboards", str(tmp_path / "boards"), "--set", "trainer.max_iterations=2", "--set", "logger.mode=online",
           "--set", "logger.init_timeout=5", *sum((["--set", t] for t in TINY), [])]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,), _ = read_rows(tmp_path / "boards" / "digits" / "smoke.jsonl")
    assert row["wandb"] == "offline (fallback)"
    assert list((Path(row["run_dir"]) / "wandb").glob("offline-run-*"))


def test_corrupt_checkpoint_is_one_line(tmp_path, capsys):
    bad = tmp_path / "runs" / "x" / "checkpoints" / "last.ckpt"
    bad.parent.mkdir(parents=True)
    good = run_fit("dcgan", "digits", "smoke", 20, 0, ["trainer.max_iterations=2"], runs=tmp_path / "r")
    bad.write_bytes((good / "checkpoints" / "last.ckpt").read_bytes()[:5000])
    capsys.readouterr()  # the training's progress lines
    assert main(["bench", "--resume", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is corrupt or truncated" in err and len(err.splitlines()) == 1


def test_sweep_skips_finished_rows_and_records_failures(tmp_path, monkeypatch):
    monkeypatch.setenv("GENBENCH_RUNS", str(tmp_path / "runs"))
    sweep = tmp_path / "grid.yaml"
    sweep.write_text("method: grid\nparameters:\n  model: {value: dcgan}\n  data: {value: digits}\n"
                     "  n: {values: [20, 5000]}\n  seed: {value: 0}\n  preset: {value: smoke}\n")
    boards = tmp_path / "boards"
    overrides = ["trainer.max_iterations=2", "model.g_width=8", "model.d_width=8", *TINY]
    argv = ["sweep", "--config", str(sweep), "--leaderboards", str(boards), *sum((["--set", t] for t in overrides), [])]
    assert main(argv) == 2  # one job failed; the other finished
    rows, _ = read_rows(boards / "digits" / "smoke.jsonl")
    failures, _ = read_rows(boards / "digits" / "smoke.failures.jsonl")
    assert [(r["model"], r["n"]) for r in rows] == [("dcgan", 20)]
    assert len(failures) == 1 and failures[0]["n"] == 5000 and "n_per_class=5000 exceeds" in failures[0]["error"]
    from genbench.bench.sweep import run_sweep

    outcome = run_sweep(sweep, overrides, leaderboards=boards, log=lambda *_: None)
    assert len(outcome["skipped"]) == 1 and len(outcome["failed"]) == 1 and not outcome["done"]
    assert len(read_rows(boards / "digits" / "smoke.jsonl")[0]) == 1  # no duplicate row
    from genbench.bench.sweep import expand_grid

    job = next(j for j in expand_grid(sweep) if j.n == 20)
    table = boards / "digits" / "smoke.jsonl"
    assert job.table(job.resolve(overrides), boards) == table and job.finished(job.resolve(overrides), table)
    # another config: the row is not this job's
    assert not job.finished(job.resolve([*overrides, "model.lr=0.001"]), table)


def test_show_prints_config_metrics_and_paths(tmp_path, capsys):
    result = run_bench("dcgan", "digits", "smoke", 20, 0, ["trainer.max_iterations=2", *TINY],
                       leaderboards=tmp_path / "boards", runs=tmp_path / "runs")
    assert main(["show", str(result.run_dir)]) == 0
    out = capsys.readouterr().out
    assert "pairwise_ssim" in out and "checkpoint" in out and "seed 0" in out
    assert json.loads((result.run_dir / "result.json").read_text())["metrics"]


def test_resumed_bench_records_where_it_resumed(tmp_path):
    fitted = run_fit("dcgan", "digits", "smoke", 20, 0, ["trainer.max_iterations=2", *TINY], runs=tmp_path / "r")
    result = run_bench("dcgan", "digits", "smoke", 20, 0, ["trainer.max_iterations=4"], resume=str(fitted),
                       leaderboards=tmp_path / "boards")
    assert result.row["resumed_from_iteration"] == 2 and result.row["iterations"] == 4


def test_a_resumed_bench_continues_its_curve_and_training_time_from_the_checkpoint(tmp_path):
    curve = ["bench.eval_every=1", "bench.curve_samples=20", *TINY]
    first = run_bench("dcgan", "digits", "smoke", 20, 0, ["trainer.max_iterations=2", *curve], runs=tmp_path / "r",
                      leaderboards=tmp_path / "boards")
    resumed = run_bench("dcgan", "digits", "smoke", 20, 0, ["trainer.max_iterations=4", *curve],
                        resume=str(first.run_dir), leaderboards=tmp_path / "boards")
    points = resumed.row["curve"]["points"]
    assert [p["iteration"] for p in points] == [1, 2, 3, 4]
    assert points[:2] == first.row["curve"]["points"]  # the first process's points, as it scored them
    seconds = [p["train_seconds"] for p in points]
    assert seconds == sorted(seconds) and seconds[2] > first.row["curve"]["points"][1]["train_seconds"]
    assert [p["images_seen"] for p in points] == [i * points[0]["images_seen"] for i in (1, 2, 3, 4)]
    wall = resumed.row["budget"]["wall_seconds"]
    assert wall is not None and wall > resumed.row["train_seconds"]  # the earlier process's seconds are counted
    scoring = resumed.row["curve"]["scoring_seconds"]  # both processes' scoring (each rounded to 0.01 s)
    assert scoring >= first.row["curve"]["scoring_seconds"]
    assert abs(scoring - sum(p["scoring_seconds"] for p in points)) <= 0.03


def test_sweep_runs_column_by_column_in_the_listed_order(tmp_path):
    """Every model at the first listed n before the next n: an interrupted sweep leaves whole columns."""
    from genbench.bench.sweep import expand_grid

    grid = tmp_path / "grid.yaml"
    grid.write_text("method: grid\nparameters:\n  model: {values: [vae, dcgan]}\n  data: {value: digits}\n"
                    "  n: {values: [500, 50]}\n  preset: {value: cpu}\n")
    jobs = [(j.n, j.model) for j in expand_grid(grid)]
    assert jobs == [(500, "vae"), (500, "dcgan"), (50, "vae"), (50, "dcgan")]
    assert {j.preset for j in expand_grid(grid)} == {"cpu"}


@pytest.mark.fault
def test_sigterm_checkpoints_the_stop_point_exits_143_and_the_resume_continues(tmp_path):
    """What SLURM sends before preempting a job: the run keeps its state at the iteration it stopped at, says so in one
    line, exits 128 + 15, and a resume from its folder trains on to the end."""
    import signal
    import time

    env = {**os.environ, "GENBENCH_RUNS": str(tmp_path / "runs"), "PYTHONUNBUFFERED": "1"}
    env.pop("GENBENCH_RUN_DIR", None)
    common = ["model.g_width=8", "model.d_width=8", "trainer.checkpoint_every=50", "data.batch_size=16"]
    argv = [sys.executable, "-m", "genbench.cli", "fit", "--model", "dcgan", "--data", "digits",
            "--set", "trainer.max_iterations=1000", *sum((["--set", c] for c in common), [])]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "runs").rglob("last.ckpt")):
        time.sleep(0.05)  # iteration 50 is checkpointed: training runs
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("genbench:")]
    assert len(lines) == 1 and "stopped by SIGTERM at iteration" in lines[0], err[-2000:]
    stopped = int(lines[0].split("at iteration ")[1].split(";")[0])
    run_dir = next((tmp_path / "runs").rglob("last.ckpt")).parent.parent
    assert 50 <= stopped < 1000 and _state(run_dir)["genbench_iteration"] == stopped  # saved at the stop point
    os.environ.pop("GENBENCH_RUN_DIR", None)
    run_fit(None, None, resume=str(run_dir))
    assert _state(run_dir)["genbench_iteration"] == 1000


@pytest.mark.parametrize("code", [143, -15])
def test_a_sweep_job_stopped_by_a_signal_is_recorded_as_interrupted_and_run_again(tmp_path, monkeypatch, code):
    """A child that exits 143 (genbench after checkpointing on SIGTERM) or dies by the signal is not "done": it is
    recorded as interrupted, and the next sweep starts it again (it resumes from its checkpoint)."""
    from genbench.bench.sweep import Job, run_jobs

    job = Job("dcgan", "digits", 20, 0, "smoke", ("model.g_width=8", "model.d_width=8"))
    started = []

    def child(argv, **kwargs):
        started.append(argv)
        return subprocess.CompletedProcess(argv, code, "", "genbench: stopped by SIGTERM at iteration 7; …")

    monkeypatch.setattr(subprocess, "run", child)
    boards = tmp_path / "boards"
    outcome = run_jobs([job], "sweep t", "t.yaml", leaderboards=boards, log=lambda text: None)
    assert outcome["done"] == [] and outcome["failed"] == [job]
    failures, _ = read_rows(boards / "digits" / "smoke.failures.jsonl")
    assert failures[-1]["interrupted"] is True and failures[-1]["exit_code"] == code
    outcome = run_jobs([job], "sweep t", "t.yaml", leaderboards=boards, log=lambda text: None)
    assert len(started) == 2 and outcome["skipped"] == []  # run again, not skipped


@pytest.mark.fault
def test_a_checkpoint_cut_short_by_a_file_size_limit_is_one_line_and_leaves_no_partial_file(tmp_path):
    import resource

    env = {**os.environ, "GENBENCH_RUNS": str(tmp_path / "runs")}
    env.pop("GENBENCH_RUN_DIR", None)
    argv = [sys.executable, "-m", "genbench.cli", "fit", "--model", "dcgan", "--data", "digits", "--set",
            "trainer.max_iterations=4", "--set", "trainer.checkpoint_every=2"]

    def limit():  # files up to 200 kB: the logs and the config fit, the smoke DCGAN's checkpoint (megabytes) does not
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    proc = subprocess.run(argv, env=env, capture_output=True, text=True, preexec_fn=limit, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("genbench:")]
    assert len(lines) == 1 and "could not write the checkpoint in" in lines[0] and "then resume" in lines[0]
    assert not list((tmp_path / "runs").rglob("*.tmp"))
