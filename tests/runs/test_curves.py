"""Learning curves (``bench.eval_every``): scoring while training changes nothing the model learns, the points go to
the row and the loggers, and the table draws them."""

import csv
from pathlib import Path

import pytest
import torch

from genbench.bench import run_bench
from genbench.bench.leaderboard import render_leaderboards
from genbench.results import append_row

CLASSIFIER = "bench.metric_options.classifier={width: 16, epochs: 10, batch_size: 64, lr: 0.005}"
COMMON = {
    "dcgan": ["model.g_width=8", "model.d_width=8"],
    "pcd": ["model.langevin={n_steps: 3, step_size: 0.1}", "model.net={widths: [8, 8, 8], n_out: 4}",
            "model.buffer_size=64", "model.num_chains=16"],
    "kim-bengio": ["model.latent_dim=8", "model.g_width=8", "model.net={widths: [8, 8, 8], n_out: 4}"],
}


def _bench(tmp_path: Path, model: str, name: str, curves: bool):
    overrides = ["trainer.max_iterations=6", "trainer.deterministic=true", "trainer.log_every_n_steps=1",
                 "bench.metrics=[classifier_fid, pairwise_ssim]", CLASSIFIER, "bench.num_samples=61",
                 "bench.metric_options.ssim_samples=10", *COMMON[model]]
    if curves:
        overrides += ["bench.eval_every=2", "bench.curve_samples=40"]
    return run_bench(model, "digits", "smoke", 20, 0, overrides, leaderboards=tmp_path / name / "boards",
                     runs=tmp_path / name / "runs")


@pytest.mark.parametrize("model", ["dcgan", "pcd"])
def test_curves_change_no_weight_and_record_every_point(tmp_path, model):
    plain = _bench(tmp_path, model, "plain", curves=False)
    curved = _bench(tmp_path, model, "curved", curves=True)
    a = torch.load(plain.run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    b = torch.load(curved.run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:  # BatchNorm statistics and replay buffers included
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert torch.equal(a["genbench_rng"]["torch"], b["genbench_rng"]["torch"])
    assert plain.row["metrics"] == curved.row["metrics"]  # the final samples are the same too
    curve = curved.row["curve"]
    assert plain.row["curve"] is None and [p["iteration"] for p in curve["points"]] == [2, 4, 6]
    seconds = [p["train_seconds"] for p in curve["points"]]
    assert seconds == sorted(seconds) and curve["scoring_seconds"] > 0
    assert all(set(p["scores"]) == {"classifier_fid", "pairwise_ssim"} for p in curve["points"])
    batch = curved.row["config"]["data"]["batch_size"]
    assert [p["images_seen"] for p in curve["points"]] == [2 * batch, 4 * batch, 6 * batch]
    assert curve["points"][-1]["images_seen"] == curved.row["budget"]["images_seen"]
    with open(curved.run_dir / "logs" / "metrics.csv") as fh:  # every point went to the run's loggers
        logged = [r for r in csv.DictReader(fh) if r.get("curve/classifier_fid")]
    assert len(logged) == 3


def test_curve_points_are_drawn_and_linked(tmp_path):
    table = tmp_path / "d" / "cpu.jsonl"
    for model, start in (("dcgan", 80.0), ("coopnets", 120.0)):
        points = [{"iteration": i, "train_seconds": 2.0 * i, "images_seen": 64 * i,
                   "scores": {"classifier_fid": start / (1 + i / 100)}} for i in range(0, 501, 100)]
        append_row(table, {"model": model, "n": 50, "seed": 0, "kind": "model", "feature_space": "a@1",
                           "metrics": {"classifier_fid": {"mean": points[-1]["scores"]["classifier_fid"], "std": None}},
                           "curve": {"every": 100, "samples": 500, "points": points}})
    append_row(table, {"model": "noise", "n": 50, "seed": 0, "kind": "reference", "feature_space": "a@1",
                       "metrics": {"classifier_fid": {"mean": 340.0, "std": None}}})
    render_leaderboards(tmp_path)
    figure = tmp_path / "d" / "cpu-curves.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "[cpu-curves.png](cpu-curves.png)" in (tmp_path / "d" / "cpu.md").read_text()


def test_curves_of_a_score_outside_the_preferred_ones_are_drawn(tmp_path):
    table = tmp_path / "textures" / "smoke.jsonl"
    points = [{"iteration": i, "train_seconds": float(i), "images_seen": i, "scores": {"texture_swd": 500.0 - i}}
              for i in (10, 20)]
    append_row(table, {"model": "descriptor", "n": None, "seed": 0, "kind": "model",
                       "metrics": {"texture_swd": {"mean": 480.0, "std": None}},
                       "curve": {"every": 10, "samples": 16, "points": points}})
    render_leaderboards(tmp_path)
    assert (tmp_path / "textures" / "smoke-curves.png").is_file()


def test_an_ebm_curve_point_carries_the_energy_gap_of_its_losses_and_the_gradient_norm(tmp_path, monkeypatch):
    """Each point's energy gap is the mean, over the iterations since the point before, of f(data) − f(samples) — the
    descriptor loss with its sign turned (no energy penalty here), recorded from the optimiser step itself."""
    from genbench.models.descriptor import Descriptor

    losses: list[float] = []
    original = Descriptor.update

    def recording(self, optimizer, loss, quantity, hint, check_grads=False):
        if quantity == "descriptor loss":
            losses.append(float(loss))
        return original(self, optimizer, loss, quantity, hint, check_grads)

    monkeypatch.setattr(Descriptor, "update", recording)
    points = _bench(tmp_path, "pcd", "diag", curves=True).row["curve"]["points"]
    assert len(losses) == 6 and [p["iteration"] for p in points] == [2, 4, 6]
    for index, point in enumerate(points):
        interval = losses[2 * index:2 * index + 2]
        assert point["diagnostics_iterations"] == 2
        assert point["diagnostics"]["energy_gap"] == pytest.approx(-sum(interval) / 2, rel=1e-5, abs=1e-6)
        assert point["diagnostics"]["langevin_grad_norm"] > 0
    dcgan = _bench(tmp_path, "dcgan", "gan", curves=True).row["curve"]["points"]
    assert all("diagnostics" not in p for p in dcgan)  # a model that logs none carries none


def test_kim_bengio_curve_point_carries_its_energy_gap_and_the_energy_gradient_at_its_samples(tmp_path, monkeypatch):
    """Kim & Bengio has no chains: its gap is E(G(h)) − E(x_data), L_E with its sign turned, and its gradient norm is
    ‖∂E/∂x‖ at the samples L_G moves, computed here on a separate path (autograd.grad of the summed energy)."""
    from genbench.models.kim_bengio import KimBengio

    losses: list[float] = []
    norms: list[float] = []
    update, energy = KimBengio.update, KimBengio.energy

    def recording_update(self, optimizer, loss, quantity, hint, check_grads=False):
        if quantity == "energy model loss":
            losses.append(float(loss))
        return update(self, optimizer, loss, quantity, hint, check_grads)

    def recording_energy(self, x):
        if x.requires_grad:  # L_G's call, on the generator's samples
            probe = x.detach().clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.energy_net(probe).sum(), probe)
            norms.append(float(grad.flatten(1).norm(dim=1).mean()))
        return energy(self, x)

    monkeypatch.setattr(KimBengio, "update", recording_update)
    monkeypatch.setattr(KimBengio, "energy", recording_energy)
    points = _bench(tmp_path, "kim-bengio", "kb", curves=True).row["curve"]["points"]
    assert len(losses) == len(norms) == 6 and [p["iteration"] for p in points] == [2, 4, 6]
    for index, point in enumerate(points):
        diagnostics = point["diagnostics"]
        assert set(diagnostics) == {"energy_gap", "sample_grad_norm"}
        assert diagnostics["energy_gap"] == pytest.approx(-sum(losses[2 * index:2 * index + 2]) / 2, rel=1e-5, abs=1e-6)
        assert diagnostics["sample_grad_norm"] == pytest.approx(sum(norms[2 * index:2 * index + 2]) / 2, rel=1e-4)
        assert diagnostics["sample_grad_norm"] > 0
