"""The EBM recipes as their authors ran them: each recipe's net and Langevin step against the official code's update,
written here on a separate path."""

import copy
import dataclasses

import pytest

import torch
from torch import nn

from genbench.models import build_model


class ShortRunNet(nn.Module):
    """``F`` of enijkamp/short_run's train_cifar10_minimal.py, as written there (n_f = 64)."""

    def __init__(self, n_c=3, n_f=64, l=0.2):
        super().__init__()
        self.f = nn.Sequential(
            nn.Conv2d(n_c, n_f, 3, 1, 1), nn.LeakyReLU(l),
            nn.Conv2d(n_f, n_f * 2, 4, 2, 1), nn.LeakyReLU(l),
            nn.Conv2d(n_f * 2, n_f * 4, 4, 2, 1), nn.LeakyReLU(l),
            nn.Conv2d(n_f * 4, n_f * 8, 4, 2, 1), nn.LeakyReLU(l),
            nn.Conv2d(n_f * 8, 1, 4, 1, 0))

    def forward(self, x):
        return self.f(x).squeeze()


def test_short_run_is_the_official_net_and_step():
    torch.manual_seed(0)
    model = build_model("short-run", image_size=32, channels=3)
    official = ShortRunNet()
    ours = [m for m in model.energy_net.modules() if isinstance(m, nn.Conv2d)]
    theirs = [m for m in official.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.weight.shape, m.stride, m.padding) for m in ours] == [(m.weight.shape, m.stride, m.padding) for m in theirs]
    official.load_state_dict({k: v for k, v in zip(official.state_dict(), model.energy_net.state_dict().values())})
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    assert torch.allclose(model.f(x), official(x), atol=1e-5)
    assert model.hparams.chain_init == "uniform" and model.hparams.data_noise == 0.03 and model.hparams.lr == 1e-4
    torch.manual_seed(5)
    revised, _ = model.revise(x, dataclasses.replace(model.langevin_config, n_steps=3))
    torch.manual_seed(5)
    x_k = x.clone()
    for _ in range(3):  # the official sample_q: x_k.data += f_prime + 1e-2 * t.randn_like(x_k)
        x_k.requires_grad_(True)
        f_prime = torch.autograd.grad(official(x_k).sum(), [x_k])[0]
        x_k = (x_k + f_prime + 1e-2 * torch.randn_like(x_k)).detach()
    assert torch.allclose(revised, x_k, atol=1e-5)
    assert model.langevin_config.n_steps == 100


def test_igebm_step_is_the_official_update():
    """openai/ebm_code_release's langevin_step, written out: noise first, the gradient of E at the noised chains,
    clipped to ±0.01, a step of 10, the clamp to [0, 1]."""
    torch.manual_seed(0)
    model = build_model("igebm", image_size=8, channels=3, net={"width": 8})
    model.eval()  # spectral norm's power iteration held still, so both paths see the same weights
    x = torch.rand(5, 3, 8, 8)
    torch.manual_seed(3)
    revised, _ = model.revise(x, dataclasses.replace(model.langevin_config, n_steps=2))
    torch.manual_seed(3)
    x_mod = x.clone()
    for _ in range(2):
        x_mod = (x_mod + torch.randn_like(x_mod) * 0.005).requires_grad_(True)
        energy = -model.energy_net(x_mod)
        x_grad = torch.autograd.grad(energy.sum(), [x_mod])[0]
        x_mod = (x_mod - 10.0 * x_grad.clamp(-0.01, 0.01)).clamp(0, 1).detach()
    assert torch.allclose(revised, x_mod, atol=1e-6) and not torch.allclose(revised, x, atol=1e-3)
    assert model.hparams.energy_l2 == 1.0 and model.hparams.beta1 == 0.0 and model.hparams.lr == 3e-4


def test_the_replay_buffer_starts_five_percent_of_chains_afresh_once_it_holds_enough():
    torch.manual_seed(0)
    model = build_model("igebm", image_size=4, channels=1, net={"width": 4}, buffer_size=5000)
    sampler = model.sampler
    _, x = sampler.start(None, 100)  # empty buffer: every chain from U(0, 1)
    assert x.min() >= 0 and x.max() <= 1 and x.flatten(1).std(dim=1).min() > 0.1
    sampler.finish(None, torch.full((5000, 1, 4, 4), 0.5), steps=60)  # fills the buffer, first in first out
    assert int(model.replay_size) == 5000 and int(model.replay_next) == 0
    _, x = sampler.start(None, 4000)
    from_buffer = (x.flatten(1).std(dim=1) < 0.01) & ((x.flatten(1).mean(dim=1) - 0.5).abs() < 0.01)
    assert abs(1 - from_buffer.float().mean().item() - 0.05) < 0.015  # the fresh share
    sampler.finish(None, torch.zeros(10, 1, 4, 4), steps=60)
    assert int(model.replay_next) == 10 and model.replay_states[:10].max() == 0 and model.replay_states[10:].min() == 127


def test_igebm_spectral_norm_bounds_every_convolution():
    torch.manual_seed(0)
    net = build_model("igebm", image_size=8, channels=3, net={"width": 8}).energy_net
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in convs)
    net.train()
    for _ in range(50):  # power iterations
        net(torch.rand(2, 3, 8, 8))
    net.eval()
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
        assert sigma < 1.05, sigma
    unnormalised = build_model("igebm", image_size=8, channels=3, net={"width": 8, "spectral_norm": False}).energy_net
    assert not any(torch.nn.utils.parametrize.is_parametrized(m, "weight")
                   for m in unnormalised.modules() if isinstance(m, nn.Conv2d))


def test_the_descriptors_original_update_is_the_matconvnet_one():
    """Two steps of MatConvNetSGD against accumulate_gradients1 written out: the gradient divided by its layer's output
    positions and capped at 8, momentum 0.5, weight decay on weights only, each layer at its factor (1, 0.5, 0.2857)
    and biases at twice it. The gradients are scaled up so the cap engages, and the weight decay is large enough to
    show. The net is convNet_object's: 8 → 5 (4×4/2, padding 2) → 8 (2×2/1, padding 2) → 1."""
    from genbench.models.descriptor_original import matconvnet_rate

    torch.manual_seed(0)
    model = build_model("descriptor-original", image_size=8, channels=1, net={"widths": [4, 4]}, weight_decay=0.5)
    assert model.langevin_config.n_steps == 10 and model.langevin_config.step_size == 0.005 and len(model.buffer) == 36
    optimizer = model.configure_optimizers()
    params = dict(model.energy_net.named_parameters())
    sizes = {"net.0": 25, "net.2": 64, "net.4": 1}  # output positions of each conv (8 → 5 → 8 → 1)
    layer_rate = {"net.0": 1.0, "net.2": 0.5, "net.4": 0.2857}
    assert [p.shape[0] for n, p in params.items() if n.endswith("weight")] == [4, 4, 2]  # two outputs
    theta = {k: v.detach().clone() for k, v in params.items()}
    momentum = {k: torch.zeros_like(v) for k, v in params.items()}
    capped = False
    for rate in (0.5, 0.25):
        x_data, x_synth = torch.rand(7, 1, 8, 8), torch.rand(36, 1, 8, 8)
        optimizer.zero_grad()
        loss = 1e6 * (model.f(x_synth).mean() - model.f(x_data).mean())
        loss.backward()
        optimizer.rate = rate
        for name, p in params.items():
            g = -p.grad / sizes[name.rsplit(".", 1)[0]]
            if g.abs().max() > 8:
                g, capped = g / g.abs().max() * 8, True
            bias = name.endswith("bias")
            momentum[name] = 0.5 * momentum[name] - 0.5 * (0.0 if bias else 1.0) * theta[name] + g
            factor = (2.0 if bias else 1.0) * layer_rate[name.rsplit(".", 1)[0]]
            theta[name] = theta[name] + 0.07 * rate * factor * momentum[name]
        optimizer.step()
        for name, p in params.items():
            assert torch.allclose(p.detach(), theta[name], atol=1e-5, rtol=1e-5), name
    assert capped
    assert matconvnet_rate(0, 8000) == 1.0 and matconvnet_rate(7999, 8000) == pytest.approx(0.01)
    assert matconvnet_rate(100, 8000) == pytest.approx(10 ** (-2 / 79))


@pytest.mark.parametrize("name, options", [
    ("short-run", {"langevin": {"n_steps": 3}, "net": {"widths": [4, 4, 4, 4]}}),
    ("igebm", {"langevin": {"n_steps": 3}, "net": {"width": 4}, "buffer_size": 50}),
    ("descriptor-original", {"net": {"widths": [4, 4]}, "eval_steps": 3}),
])
def test_each_recipe_learns_and_samples_through_lightning(tmp_path, name, options):
    from genbench.data import build_datamodule
    from genbench.runs.sampling import sample_all
    from tests.helpers import fit

    torch.manual_seed(0)
    model = build_model(name, image_size=8, channels=1, **options)
    fit(model, build_datamodule("digits", batch_size=16), 4, tmp_path)
    assert model.iteration == 4
    samples = sample_all(model, 12, seed=0, chunk=5)
    assert samples.shape == (12, 1, 8, 8) and torch.isfinite(samples).all() and samples.abs().max() <= 1
    if name == "descriptor-original":
        assert model.total_iterations == 4 and model.buffer.trained_chain_length() == 40  # 36 chains × 4 revisions


def test_igebm_net_buffer_and_adam_follow_the_repository():
    from genbench.models.igebm import ClippedAdam, ResNetEnergy
    from genbench.samplers.replay import dequantise, quantise

    torch.manual_seed(0)
    net = ResNetEnergy(image_size=32, channels=3, width=8)
    blocks = list(net.blocks)
    assert [(b.c1.in_channels, b.c2.out_channels, b.downsample, b.bypass is not None) for b in blocks] == [
        (8, 8, True, False), (8, 8, False, False), (8, 16, True, True), (16, 16, False, False), (16, 16, True, False),
        (16, 16, False, False)]
    assert all(c.bias is None for c in net.modules() if isinstance(c, nn.Conv2d))  # the official convs: no bias
    net.train()
    net(torch.rand(2, 3, 32, 32))
    assert blocks[0].c2.weight.abs().max() < 1e-6  # lower-bounded spectral norm keeps the near-zero conv near zero
    assert torch.linalg.matrix_norm(blocks[0].c1.weight.flatten(1), ord=2) > 0.5
    q = quantise(torch.tensor([0.0, 0.5, 1.0, 1.7]))
    assert q.tolist() == [0, 127, 255, 255]
    x = dequantise(q)
    assert ((x >= q.float() / 256) & (x < (q.float() + 1) / 256)).all()
    # ClippedAdam against torch's Adam fed the gradients clipped by hand to ±(3·√(v̂) + 0.1)
    a, b = torch.nn.Parameter(torch.zeros(5)), torch.nn.Parameter(torch.zeros(5))
    ours, plain = ClippedAdam([a], lr=0.01, betas=(0.0, 0.999)), torch.optim.Adam([b], lr=0.01, betas=(0.0, 0.999))
    v, grads = torch.zeros(5), [torch.tensor([5.0, -5.0, 0.05, 1.0, -0.2]), torch.tensor([50.0, 0.3, -9.0, 0.0, 2.0])]
    for t, g in enumerate(grads, 1):
        bound = 3 * torch.sqrt(v / (1 - 0.999**t)) + 0.1
        clipped = torch.maximum(torch.minimum(g, bound), -bound)
        v = 0.999 * v + 0.001 * clipped**2
        a.grad, b.grad = g.clone(), clipped
        ours.step()
        plain.step()
        assert torch.allclose(a, b, atol=1e-7)
    unclipped = torch.nn.Parameter(torch.zeros(5))
    adam = torch.optim.Adam([unclipped], lr=0.01, betas=(0.0, 0.999))
    for g in grads:
        unclipped.grad = g.clone()
        adam.step()
    assert not torch.allclose(a, unclipped, atol=1e-4)  # the clipping changed the update


def test_igebm_evaluation_samples_are_revised_buffer_states_back_in_the_tables_range():
    from genbench.samplers.replay import dequantise, replay_langevin

    torch.manual_seed(0)
    model = build_model("igebm", image_size=8, channels=1, net={"width": 4}, buffer_size=20,
                        sample_langevin={"n_steps": 2})
    model.sampler.finish(None, torch.rand(20, 1, 8, 8) * 0.5 + 0.25, steps=60)
    record = model.prepare_evaluation(6, seed=1)
    assert record == {"chains": "replay buffer", "buffer_states": 20, "distinct": True, "steps": 2}
    torch.manual_seed(9)
    samples = model.sample(6, batch_size=6)
    twin = copy.deepcopy(model)
    torch.manual_seed(9)
    with twin.sampling_mode():
        x0 = dequantise(twin.replay_states[twin.sampler.order[:6]])
        x, _ = replay_langevin(x0, lambda y: -twin.f(y), twin.sample_langevin_config)
    assert torch.allclose(samples, x * 2 - 1, atol=1e-6) and samples.min() > -1
