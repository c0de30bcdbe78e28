"""The multi-grid EBM and its CD family: the official Langevin step, where each member's chains start, the official
nets, the evaluation chains' starts, and a learning run."""

import pytest
import torch

from genbench.data import build_datamodule
from genbench.errors import GenbenchError
from genbench.models import build_model
from genbench.runs.sampling import sample_all
from genbench.samplers import describe_evaluation
from genbench.samplers.grids import downsample, upsample
from tests.helpers import fit

SMALL = {"image_size": 8, "channels": 1, "nets": [{"widths": [8, 8, 8]}, {"widths": [8, 8, 8, 8]}]}


def _official_step(net, x: torch.Tensor, delta: float) -> torch.Tensor:
    """x ← clip(x + ½δ²·∂(Σ f)/∂x, 0, 255): the official Langevin step, by autograd on a separate path."""
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(net(x).sum(), x)
    return (x + 0.5 * delta**2 * grad).clamp(0, 255).detach()


def test_a_grid_revision_is_the_official_noise_free_clipped_step():
    torch.manual_seed(0)
    model = build_model("multigrid", **SMALL, langevin={"n_steps": 3, "step_size": 2.0})
    x = torch.rand(6, 1, 4, 4) * 255
    expected = x
    net = model.nets["4"]
    for _ in range(3):
        expected = _official_step(net, expected, 2.0)
    revised, _ = model.revise(4, x)
    assert torch.allclose(revised, expected, atol=1e-4)
    assert not torch.equal(revised, x)  # the step moved the chains (a test of a no-op would pass otherwise)


def test_one_step_cd_chains_start_at_the_data_and_take_one_step():
    torch.manual_seed(0)
    model = build_model("one-step-cd", image_size=8, channels=1, nets=[{"widths": [8, 8, 8, 8]}])
    assert model.grids == [8] and model.langevin_config.n_steps == 1 and model.sample_langevin_config.n_steps == 90
    x_data = torch.rand(5, 1, 8, 8) * 255
    _, x0 = model.sampler.start(x_data, 5)
    assert torch.equal(x0, x_data)
    (size, x_synth, _), = model.chains(x0)
    assert size == 8 and torch.allclose(x_synth, _official_step(model.nets["8"], x_data, 0.3), atol=1e-4)


def test_single_grid_cd_runs_the_full_steps_from_the_data_and_multigrid_from_the_averages():
    scd = build_model("single-grid-cd", image_size=8, channels=1, nets=[{"widths": [8, 8, 8, 8]}])
    assert scd.grids == [8] and scd.langevin_config.n_steps == 90
    x_data = torch.rand(5, 1, 8, 8) * 255
    assert torch.equal(scd.sampler.start(x_data, 5)[1], x_data)
    mcd = build_model("multigrid", **SMALL)
    _, start = mcd.sampler.start(x_data, 5)
    assert start.shape == (5, 1, 1, 1) and torch.allclose(start.flatten(), x_data.mean(dim=(1, 2, 3)))
    with pytest.raises(GenbenchError, match="learns one grid"):
        build_model("single-grid-cd", image_size=8, channels=1, grids=[4, 8])


@pytest.mark.parametrize("size, role_grids, features", [(64, [4, 16, 64], {4: 2 * 2 * 256, 16: 8 * 8 * 512, 64: 4 * 4 * 512}),
                                                        (32, [4, 16, 32], {4: 2 * 2 * 256, 16: 8 * 8 * 512, 32: 2 * 2 * 512})])
def test_the_default_nets_are_the_official_descriptors(size, role_grids, features):
    model = build_model("multigrid", image_size=size, channels=3)
    assert model.grids == role_grids
    for grid, net in model.nets.items():
        convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
        norms = [m for m in net.features if isinstance(m, torch.nn.BatchNorm2d)]
        assert len(norms) == len(convs) and net.dense.in_features == features[int(grid)] and net.dense.out_features == 1
    assert [c.out_channels for c in model.nets["4"].features if isinstance(c, torch.nn.Conv2d)] == [96, 128, 256]
    finest = [c for c in model.nets[str(size)].features if isinstance(c, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in finest] == [(w, (5, 5), (2, 2)) for w in (64, 128, 256, 512)]


def test_evaluation_chains_start_from_the_averages_of_drawn_training_images():
    model = build_model("multigrid", **SMALL, num_train=4)
    model.image_means.copy_(torch.tensor([[10.0], [20.0], [30.0], [40.0]]))
    record = model.prepare_evaluation(3, seed=5)
    assert record["with_replacement"] is False and record["training_images"] == 4
    starts = model.sampler.evaluation_start(3, 0).flatten().tolist()
    assert len(set(starts)) == 3 and set(starts) <= {10.0, 20.0, 30.0, 40.0}
    record = model.prepare_evaluation(9, seed=5)
    assert record["with_replacement"] is True
    assert set(model.sampler.evaluation_start(9, 0).flatten().tolist()) <= {10.0, 20.0, 30.0, 40.0}
    assert "1×1 averages of training images, grids 1×1 → 4×4 → 8×8" in describe_evaluation(record, "batch")


def test_the_family_learns_and_samples_from_the_training_averages(tmp_path):
    """A few iterations on real digits: the training images' averages are kept, the energy gap is logged per grid,
    and evaluation samples come out in [-1, 1] with their record."""
    for name in ("multigrid", "single-grid-cd", "one-step-cd"):
        torch.manual_seed(0)
        dm = build_datamodule("digits", batch_size=32)
        nets = SMALL["nets"] if name == "multigrid" else [{"widths": [8, 8, 8, 8]}]
        model = build_model(name, image_size=8, channels=1, nets=nets, langevin={"n_steps": 4},
                            sample_langevin={"n_steps": 4})
        fit(model, dm, 3, tmp_path)
        dm.setup()
        expected = downsample(model.to_pixels(dm.train_images()), 1).flatten(1)
        assert torch.allclose(model.image_means, expected)
        samples = sample_all(model, 20, seed=1, chunk=8)
        assert samples.shape == (20, 1, 8, 8) and samples.abs().max() <= 1
        assert model.evaluation_chains["chains"] in ("multigrid", "1x1 averages")


def test_the_models_pixels_are_the_tables_images_rescaled():
    x = torch.tensor([-1.0, 0.0, 1.0])
    model = build_model("multigrid", **SMALL)
    assert model.to_pixels(x).tolist() == [0.0, 127.5, 255.0]
    assert torch.equal(model.from_pixels(model.to_pixels(x)), x)
    assert torch.equal(upsample(downsample(torch.ones(1, 1, 8, 8), 1), 8), torch.ones(1, 1, 8, 8))
