"""The ``speed`` levers change how fast, not what, a model computes: each is compared with the reference path
(all off) on a small net, on the CPU where the lever runs there."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import torch

from genbench.errors import GenbenchError
from genbench.models import build_model
from genbench.samplers.langevin import LangevinConfig
from genbench.models.speed import SpeedSettings

SMALL_COOPNETS = {"image_size": 16, "channels": 3, "num_chains": 12, "net": {"widths": [16, 32, 32], "n_out": 8},
                  "generator_net": {"base_width": 16}, "latent_langevin": {"n_steps": 3, "step_size": 0.1}}


def _coopnets(speed: SpeedSettings | None = None, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model("coopnets", **SMALL_COOPNETS)
    if speed is not None:
        model.set_speed(speed)
    return model.train()


def _revise(model, x0: torch.Tensor, config: LangevinConfig, seed: int = 1) -> torch.Tensor:
    model.ensure_levers()
    torch.manual_seed(seed)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=model.speed.bf16):
        return model.revise(x0, config)[0]


@pytest.mark.parametrize("options, message", [
    ({"bf17": True}, "unknown speed option(s) ['bf17']; accepted: bf16, channels_last, compile"),
    ({"bf16": "yes"}, "speed.bf16 must be true or false"),
    (True, "speed must be a mapping of switches (e.g. speed.bf16=true), got True"),
])
def test_bad_speed_settings_are_one_line(options, message):
    with pytest.raises(GenbenchError) as info:
        SpeedSettings.from_dict(options)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unknown_speed_key_in_a_config_fails_before_building():
    from genbench.runs.config import run_config

    with pytest.raises(GenbenchError, match=r"unknown speed option\(s\) \['fast'\]"):
        run_config("coopnets", "digits", "smoke", None, 0, ["speed.fast=true"]).cfg


def test_cuda_graphs_without_cuda_is_refused_in_one_line():
    from genbench.models.speed import apply_device_levers

    if torch.cuda.is_available():  # refused for a model placed on the CPU
        with pytest.raises(GenbenchError, match="speed.cuda_graphs needs a CUDA device; this model runs on cpu"):
            apply_device_levers(_coopnets(), SpeedSettings(cuda_graphs=True), torch.device("cpu"))
    else:  # refused when the model is built
        with pytest.raises(GenbenchError, match="speed.cuda_graphs needs a CUDA device and none is available here"):
            _coopnets(SpeedSettings(cuda_graphs=True))


def test_sync_free_switch_defers_every_langevin_check_and_changes_no_sample():
    reference, fast = _coopnets(), _coopnets(SpeedSettings(sync_free_langevin=True))
    configs = [v for v in vars(fast).values() if isinstance(v, LangevinConfig)]
    assert len(configs) >= 3 and all(c.deferred_checks for c in configs)  # training, sampling, latent chains
    assert not any(c.deferred_checks for c in vars(reference).values() if isinstance(c, LangevinConfig))
    x0 = torch.randn(12, 3, 16, 16) * 0.1
    config = dataclasses.replace(reference.langevin_config, n_steps=6)
    assert torch.equal(_revise(reference, x0, config), _revise(fast, x0, dataclasses.replace(config, deferred_checks=True)))


def test_bf16_autocast_keeps_the_chains_float32_and_close_to_the_float32_path():
    reference, fast = _coopnets(), _coopnets(SpeedSettings(bf16=True))
    x0 = torch.randn(12, 3, 16, 16) * 0.1
    # noise-free steps large enough that the energy net's gradient moves the chains visibly
    config = LangevinConfig(n_steps=5, step_size=0.01, noise=False)
    exact, approx = _revise(reference, x0, config), _revise(fast, x0, config)
    assert approx.dtype == torch.float32  # the update and the reference term stay float32
    moved = (exact - x0).norm()
    assert moved > 0 and (approx - exact).norm() / moved < 0.02
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        f_bf16 = fast.f(x0)
    f_fp32 = reference.f(x0).detach()
    assert f_bf16.dtype == torch.float32
    assert (f_bf16 - f_fp32).abs().max() < 0.05 * f_fp32.std() + 1e-3


def test_a_training_iteration_in_bf16_stays_close_to_float32():
    """Adam's first step normalises each gradient element, so bf16 rounding of tiny gradients flips some signs:
    the update is compared by direction (cosine) and size; another batch's update is the scale of 'different'."""
    def update(speed, batch_seed):
        model = _coopnets(speed)
        before = torch.cat([p.detach().flatten() for p in model.parameters()])
        model.optimizers = lambda opts=model.configure_optimizers(): opts
        model.manual_backward = lambda loss: loss.backward()
        model.log_diagnostics = lambda *a, **k: None
        torch.manual_seed(batch_seed)
        batch = [torch.rand(12, 3, 16, 16) * 2 - 1, torch.zeros(12, dtype=torch.long), torch.arange(12)]
        model.training_step(batch, 0)
        return torch.cat([p.detach().flatten() for p in model.parameters()]) - before

    exact, approx, other = update(SpeedSettings(), 3), update(SpeedSettings(bf16=True), 3), update(SpeedSettings(), 4)
    cosine = torch.nn.functional.cosine_similarity
    assert cosine(exact, approx, dim=0) > 0.97 > 0.8 > cosine(exact, other, dim=0)  # measured: 0.99 vs 0.4
    assert approx.norm() / exact.norm() == pytest.approx(1.0, abs=0.02)


def test_channels_last_changes_no_result_and_reaches_the_batches():
    reference, fast = _coopnets(), _coopnets(SpeedSettings(channels_last=True))
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in fast.parameters() if p.dim() == 4)
    assert not all(p.is_contiguous(memory_format=torch.channels_last) for p in reference.parameters() if p.dim() == 4)
    x0 = torch.randn(12, 3, 16, 16) * 0.1
    config = dataclasses.replace(reference.langevin_config, n_steps=4)
    assert torch.allclose(_revise(reference, x0, config), _revise(fast, x0, config), atol=1e-5)
    seen = []
    fast.train_iteration = lambda batch: seen.append(batch[0])
    fast.training_step([torch.randn(12, 3, 16, 16), torch.zeros(12, dtype=torch.long), torch.arange(12)], 0)
    assert seen[0].is_contiguous(memory_format=torch.channels_last)


def test_bf16_hands_every_net_output_on_as_float32():
    """Under bf16 the nets compute in bf16 but what they return is float32, so a GAN's losses are float32 too."""
    torch.manual_seed(0)
    model = build_model("dcgan", image_size=16, channels=3, g_width=8, d_width=8)
    model.set_speed(SpeedSettings(bf16=True))
    model.optimizers = lambda opts=model.configure_optimizers(): opts
    model.manual_backward = lambda loss: loss.backward()
    logged, inner = {}, []
    model.log_diagnostics = lambda values, **k: logged.update(values)
    first_conv = next(m for m in model.discriminator.modules() if isinstance(m, torch.nn.Conv2d))
    first_conv.register_forward_hook(lambda m, i, o: inner.append(o.dtype))
    model.training_step([torch.rand(8, 3, 16, 16) * 2 - 1, torch.zeros(8, dtype=torch.long), torch.arange(8)], 0)
    assert inner and all(dtype == torch.bfloat16 for dtype in inner)  # inside the nets autocast is on
    assert logged and all(v.dtype == torch.float32 for v in logged.values())  # what leaves them is float32


def test_fused_adam_takes_the_same_steps_as_adam():
    reference, fast = _coopnets(), _coopnets(SpeedSettings(fused_adam=True))
    (des_ref, _), (des_fast, _) = reference.configure_optimizers(), fast.configure_optimizers()
    assert des_fast.defaults["fused"] and not des_ref.defaults.get("fused")
    for step in range(3):
        for model, opt in ((reference, des_ref), (fast, des_fast)):
            torch.manual_seed(step)
            loss = model.f(torch.randn(12, 3, 16, 16)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    for a, b in zip(reference.energy_net.parameters(), fast.energy_net.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile on a CPU needs a C compiler")
def test_compiled_nets_give_the_same_chains_and_keep_checkpoint_keys():
    reference, fast = _coopnets(), _coopnets(SpeedSettings(compile=True))
    keys = list(fast.state_dict())
    x0 = torch.randn(12, 3, 16, 16) * 0.1
    config = dataclasses.replace(reference.langevin_config, n_steps=3)
    exact, compiled = _revise(reference, x0, config), _revise(fast, x0, config)
    assert fast.energy_net._compiled_call_impl is not None and reference.energy_net._compiled_call_impl is None
    assert torch.allclose(exact, compiled, atol=1e-5)
    after = list(fast.state_dict())  # a checkpoint of the compiled model loads into an eager one and back
    assert after == keys and not any("_orig_mod" in k for k in after)


def test_levers_run_through_fit_and_sampling(tmp_path):
    from genbench.bench.harness import run_fit
    from genbench.tasks.runs import load_trained

    levers = ["sync_free_langevin", "channels_last", "bf16", "fused_adam"]
    overrides = ["trainer.max_iterations=4", *[f"speed.{name}=true" for name in levers]]
    folder = run_fit("coopnets", "digits", "smoke", overrides=overrides, runs=tmp_path)
    from genbench.runs.config import run_config

    cfg = run_config("coopnets", "digits", "smoke", None, 0, overrides).cfg
    _, module = load_trained(cfg, folder)
    assert module.speed.on() == levers and module.iteration == 4
    samples = module.sample(20, batch_size=10)
    assert samples.dtype == torch.float32 and torch.isfinite(samples).all() and samples.std() > 0


PAGE_FAULT_PROBE = """
import resource, sys, torch
from genbench.models.speed import SpeedSettings, apply_build_levers
apply_build_levers(torch.nn.Linear(2, 2), SpeedSettings(reuse_host_memory=sys.argv[1] == "on"))
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(2):  # warm-up (the intra-op threads start, the heap settles): 40 MiB, above the largest mmap
    torch.empty(10 * 2**20).fill_(1.0)  # threshold glibc sets by itself (32 MiB)
counts = []
for _ in range(7):
    before = faults()
    torch.empty(10 * 2**20).fill_(1.0)  # allocated, touched, freed
    counts.append(faults() - before)
print(sorted(counts)[3])  # the median: the heap may still move once (one 40 MiB block faulted in afresh)
"""


def test_reuse_host_memory_stops_the_page_faults_of_repeated_allocations():
    """A 40 MiB tensor allocated and freed again and again: glibc maps fresh pages each time (10,240 page faults of
    4 KiB), unless ``reuse_host_memory`` keeps the freed block for reuse (run in fresh processes: it is for the whole
    process and cannot be undone)."""
    import subprocess
    import sys

    faults = {}
    for switch in ("off", "on"):
        result = subprocess.run([sys.executable, "-c", PAGE_FAULT_PROBE, switch], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        faults[switch] = float(result.stdout.split()[-1])
    if faults["off"] < 1000:
        pytest.skip(f"this kernel maps the block without 4 KiB page faults ({faults['off']:.0f} per allocation, "
                    "e.g. transparent huge pages): nothing for the lever to remove")
    assert faults["on"] < 100 < 1000 < faults["off"], faults


def test_reuse_host_memory_without_mallopt_is_one_line(monkeypatch):
    import ctypes

    from genbench.models import speed

    monkeypatch.setattr(ctypes, "CDLL", lambda name: object())  # a C library without mallopt (macOS, say)
    with pytest.raises(GenbenchError, match=r"speed.reuse_host_memory needs glibc's mallopt \(Linux\)"):
        speed.reuse_freed_host_memory()


class _RefusingLibc:
    """A C library whose mallopt accepts only the parameters named (returns 1) and records every call."""

    def __init__(self, accepted: set[int]) -> None:
        self.accepted, self.calls = accepted, []

    def mallopt(self, parameter: int, value: int) -> int:
        self.calls.append((parameter, value))
        return int(parameter in self.accepted)


def test_reuse_host_memory_falls_back_where_glibc_refuses_a_1_gib_threshold_and_refuses_in_one_line(monkeypatch):
    import ctypes

    from genbench.models import speed

    older = _RefusingLibc({speed.M_MMAP_MAX, speed.M_TRIM_THRESHOLD})  # an older glibc: at most 32 MiB of threshold
    monkeypatch.setattr(ctypes, "CDLL", lambda name: older)
    speed.reuse_freed_host_memory()
    assert older.calls == [(speed.M_MMAP_THRESHOLD, 2**30), (speed.M_MMAP_MAX, 0), (speed.M_TRIM_THRESHOLD, 2**31 - 1)]
    stub = _RefusingLibc(set())  # musl's mallopt: refuses everything
    monkeypatch.setattr(ctypes, "CDLL", lambda name: stub)
    with pytest.raises(GenbenchError, match="refused to serve large blocks from its heap") as info:
        speed.reuse_freed_host_memory()
    assert "\n" not in str(info.value)
