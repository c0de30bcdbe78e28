"""The multi-grid EBM and its CD family: the official Langevin step, where each member's chains start, the official
nets, the evaluation chains' starts, and a learning run."""

import copy

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
    """Steps large enough to push pixels past [0, 255], so the clip is exercised too."""
    torch.manual_seed(0)
    model = build_model("multigrid", **SMALL, langevin={"n_steps": 3, "step_size": 300.0})
    x = torch.rand(6, 1, 4, 4) * 255
    expected = x
    net = model.nets["4"]
    for _ in range(3):
        expected = _official_step(net, expected, 300.0)
    revised, _ = model.revise(4, x)
    assert torch.allclose(revised, expected, atol=1e-3)
    assert (revised == 0).any() or (revised == 255).any()  # the clip held some pixels
    assert ((revised - x).abs() > 1).any()  # the steps moved the chains


def test_one_step_cd_chains_start_at_the_data_and_take_one_step():
    torch.manual_seed(0)
    model = build_model("one-step-cd", image_size=8, channels=1, nets=[{"widths": [8, 8, 8, 8]}],
                        langevin={"step_size": 100.0})
    assert model.grids == [8] and model.langevin_config.n_steps == 1 and model.sample_langevin_config.n_steps == 90
    x_data = torch.rand(5, 1, 8, 8) * 255
    _, x0 = model.sampler.start(x_data, 5)
    assert torch.equal(x0, x_data)
    (size, x_synth, _), = model.chains(x0)
    one_step = _official_step(model.nets["8"], x_data, 100.0)
    assert size == 8 and torch.allclose(x_synth, one_step, atol=1e-3)
    assert ((x_synth - x_data).abs() > 0.5).any()  # one step, visibly (zero steps would leave the data)
    assert not torch.allclose(_official_step(model.nets["8"], one_step, 100.0), x_synth, atol=1e-3)  # not two


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
    official = {4: [(96, 5, 2), (128, 3, 1), (256, 3, 1)], 16: [(96, 5, 2), (128, 3, 1), (256, 3, 1), (512, 3, 1)],
                size: [(64, 5, 2), (128, 5, 2), (256, 5, 2), (512, 5, 2)]}
    for grid, layers in official.items():
        net = model.nets[str(grid)]
        convs = [c for c in net.features if isinstance(c, torch.nn.Conv2d)]
        assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == layers, grid
        assert all(isinstance(m, torch.nn.LeakyReLU) and m.negative_slope == 0.2
                   for m in net.features if isinstance(m, torch.nn.LeakyReLU))
        assert all(m.eps == 1e-5 for m in net.features if isinstance(m, torch.nn.BatchNorm2d))
        assert all(torch.count_nonzero(c.bias) == 0 for c in [*convs, net.dense])  # zero biases
        fan = convs[0].in_channels * 25 + convs[0].out_channels * 25  # Xavier-uniform bound √(6 / (fan_in + fan_out))
        assert convs[0].weight.abs().max() <= (6 / fan) ** 0.5 and convs[0].weight.abs().max() > 0.8 * (6 / fan) ** 0.5
    assert model.bn_sampling == "batch" and model.hparams.lr == 0.3 and model.hparams.beta1 == 0.5


def test_evaluation_chains_start_from_the_averages_of_drawn_training_images():
    model = build_model("multigrid", **SMALL, num_train=4)
    model.image_means.copy_(torch.tensor([[10.0], [20.0], [30.0], [40.0]]))
    record = model.prepare_evaluation(3, seed=5)
    assert record["with_replacement"] is False and record["training_images"] == 4
    starts = model.sampler.evaluation_start(3, 0).flatten().tolist()
    assert len(set(starts)) == 3 and set(starts) <= {10.0, 20.0, 30.0, 40.0}
    later = model.sampler.evaluation_start(2, 1).flatten().tolist()  # samples 1 and 2 of the same draw
    assert later == starts[1:3]
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


def test_each_grid_learns_data_against_its_own_chains_normalised_apart():
    """One iteration: grid g's loss is mean f_g(X̃_g) − mean f_g(D_g(X)), each term through the net on its own batch
    (BatchNorm statistics of data and of chains apart), stepped by grid g's own Adam; the chains are recomputed here
    on a copy (they carry no noise)."""
    torch.manual_seed(0)
    model = build_model("multigrid", **SMALL, langevin={"n_steps": 3, "step_size": 5.0})
    optimizers = model.configure_optimizers()
    assert [o.param_groups[0]["params"] for o in optimizers] == [list(model.nets[str(g)].parameters()) for g in (4, 8)]
    assert all(o.param_groups[0]["lr"] == 0.3 and o.param_groups[0]["betas"] == (0.5, 0.999) for o in optimizers)
    recorded = []
    model.optimizers = lambda: optimizers
    model.update = lambda optimizer, loss, quantity, hint, check_grads=False: recorded.append((optimizer, float(loss)))
    model.log_diagnostics = lambda *args, **kwargs: None
    x = torch.rand(6, 1, 8, 8) * 2 - 1
    twin = copy.deepcopy(model)
    pixels = twin.to_pixels(x)
    expected, joint = [], []
    for size, synth, _ in twin.chains(downsample(pixels, 1)):
        obs = downsample(pixels, size)
        expected.append(float(twin.f(size, synth).mean() - twin.f(size, obs).mean()))
        both = twin.f(size, torch.cat([synth, obs]))
        joint.append(float(both[:6].mean() - both[6:].mean()))
    model.train_iteration((x, None, None))
    assert [o for o, _ in recorded] == optimizers
    assert [loss for _, loss in recorded] == pytest.approx(expected, rel=1e-4, abs=1e-4)
    assert [loss for _, loss in recorded] != pytest.approx(joint, rel=1e-3)  # normalising them together differs


def test_evaluation_samples_are_the_finest_grids_chains_back_in_the_tables_range():
    torch.manual_seed(0)
    model = build_model("multigrid", **SMALL, num_train=5, langevin={"n_steps": 2, "step_size": 5.0})
    model.image_means.copy_(torch.tensor([[20.0], [60.0], [100.0], [140.0], [230.0]]))
    model.prepare_evaluation(4, seed=2)
    samples = model.sample(4, batch_size=4)
    twin = copy.deepcopy(model)
    start = twin.image_means[twin.sampler.order[:4]].view(4, 1, 1, 1)
    with twin.sampling_mode():
        chains = twin.chains(start, twin.sample_langevin_config)
    assert torch.allclose(samples, twin.from_pixels(chains[-1][1]), atol=1e-5)
    assert samples.min() > -1 and samples.max() < 1  # inside the range, so the clip to [-1, 1] hides nothing here
