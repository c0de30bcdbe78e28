"""On a CUDA device: every ``speed`` lever against the float32 eager path on the same device, a fit whose samples
are drawn on the training device, and DDP sampling on one GPU equal to one process. Marked ``cuda`` and skipped
where CUDA is absent (``make gpu-check`` runs them on a GPU: ``pytest -m cuda``). ``make gpu-check DRY=1`` runs the
same tests on the CPU (GENBENCH_GPU_CHECK_DRY=1; the CUDA-only lever skipped, gloo for nccl) so that a typo fails
here and not in a GPU window."""

from __future__ import annotations

import dataclasses
import os
import socket

import pytest
import torch

from genbench.models import build_model
from genbench.samplers.langevin import LangevinConfig
from genbench.models.speed import SpeedSettings

DRY = os.environ.get("GENBENCH_GPU_CHECK_DRY") == "1" and not torch.cuda.is_available()
pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not (torch.cuda.is_available() or DRY),
                                                   reason="needs a CUDA device (make gpu-check)")]

CUDA = torch.device("cpu") if DRY else torch.device("cuda", 0)
needs_cuda = pytest.mark.skipif(DRY, reason="a CUDA-only lever (dry run on the CPU)")
SMALL_COOPNETS = {"image_size": 16, "channels": 3, "num_chains": 12, "net": {"widths": [16, 32, 32], "n_out": 8},
                  "generator_net": {"base_width": 16}, "latent_langevin": {"n_steps": 3, "step_size": 0.1}}
TINY = ["bench.metrics=[pairwise_ssim]", "bench.num_samples=61", "bench.metric_options.ssim_samples=10",
        "logger.wandb=false"]


def _coopnets(speed: SpeedSettings | None = None):
    torch.manual_seed(0)
    model = build_model("coopnets", **SMALL_COOPNETS)
    if speed is not None:
        model.set_speed(speed)
    return model.to(CUDA).train()


def _revise(model, x0: torch.Tensor, config: LangevinConfig) -> torch.Tensor:
    model.ensure_levers()
    torch.manual_seed(1)
    with torch.autocast(CUDA.type, dtype=torch.bfloat16, enabled=model.speed.bf16):
        return model.revise(x0.to(CUDA), config)[0].float()


@pytest.mark.parametrize("lever, tolerance", [
    ("sync_free_langevin", 1e-5), ("channels_last", 1e-4), ("compile", 1e-4),
    pytest.param("cuda_graphs", 1e-4, marks=needs_cuda), ("bf16", 0.02)])
def test_each_lever_on_cuda_gives_the_chains_of_the_float32_eager_path(lever, tolerance):
    """Noise-free steps large enough that the energy net's gradient moves the chains: the lever's chains stay within
    ``tolerance`` of the reference chains, relative to how far the chains moved (bf16: 2 %)."""
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # float32 means float32 here
    reference, fast = _coopnets(), _coopnets(SpeedSettings(**{lever: True}))
    x0 = torch.randn(12, 3, 16, 16, generator=torch.Generator().manual_seed(2)) * 0.1
    config = LangevinConfig(n_steps=5, step_size=0.01, noise=False)
    if lever == "sync_free_langevin":
        config = dataclasses.replace(config, deferred_checks=True)
    exact = _revise(reference, x0, LangevinConfig(n_steps=5, step_size=0.01, noise=False))
    approx = _revise(fast, x0, config)
    moved = (exact - x0.to(CUDA)).norm()
    assert approx.device.type == CUDA.type and torch.isfinite(approx).all()
    assert moved > 0 and float((approx - exact).norm() / moved) < tolerance, lever


def test_fused_adam_on_cuda_takes_the_steps_of_adam():
    reference, fast = _coopnets(), _coopnets(SpeedSettings(fused_adam=True))
    (des_ref, _), (des_fast, _) = reference.configure_optimizers(), fast.configure_optimizers()
    assert des_fast.defaults["fused"]
    for step in range(3):
        for model, opt in ((reference, des_ref), (fast, des_fast)):
            torch.manual_seed(step)
            loss = model.f(torch.randn(12, 3, 16, 16, device=CUDA)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    for a, b in zip(reference.energy_net.parameters(), fast.energy_net.parameters()):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("levers", [[], ["sync_free_langevin", "channels_last", "bf16", "fused_adam", "compile"],
                                    pytest.param(["cuda_graphs", "sync_free_langevin"], marks=needs_cuda)])
def test_a_bench_run_on_cuda_samples_on_the_training_device(tmp_path, levers):
    from genbench.bench.harness import run_bench

    overrides = [f"trainer.accelerator={'cpu' if DRY else 'gpu'}", "trainer.max_iterations=4", *TINY, *[f"speed.{name}=true" for name in levers]]
    result = run_bench("coopnets", "digits", "smoke", 20, 0, overrides, leaderboards=tmp_path / "boards",
                       runs=tmp_path / "runs")
    assert result.row["sample_device"].startswith(CUDA.type)
    assert all(v["mean"] == v["mean"] for v in result.row["metrics"].values())  # no NaN score


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_sampling_on_one_gpu_equals_one_process():
    import torch.distributed as dist

    from genbench.runs.sampling import sample_all

    torch.manual_seed(0)
    model = build_model("dcgan", image_size=8, channels=1, g_width=8, d_width=8).to(CUDA)
    single = sample_all(model, 61, seed=5, chunk=8)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    if not DRY:
        torch.cuda.set_device(CUDA)
    dist.init_process_group("gloo" if DRY else "nccl", rank=0, world_size=1)
    try:
        gathered = sample_all(model, 61, seed=5, chunk=8)
    finally:
        dist.destroy_process_group()
    assert gathered.shape == (61, 1, 8, 8) and torch.equal(gathered.cpu(), single.cpu())
