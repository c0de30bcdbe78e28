"""Baselines of the papers' tables: closed forms of their loss terms, few-step fits, checkpoints."""

import lightning as L
import pytest
import torch
from torch import nn

from genbench.data import build_datamodule
from genbench.models import build_model, model_class
from genbench.models.vae import gaussian_kl
from genbench.models.wgan import gradient_penalty
from tests.helpers import fit

SMALL = {
    "vae": {"latent_dim": 8, "width": 8},
    "wgan": {"latent_dim": 8, "g_width": 8, "d_width": 8, "n_critic": 2},
    "wgan-gp": {"latent_dim": 8, "g_width": 8, "d_width": 8, "n_critic": 2},
    "ebgan": {"latent_dim": 8, "g_width": 8, "d_width": 8, "code_dim": 8, "pt_weight": 0.1},
    "infogan": {"noise_dim": 8, "g_width": 8, "d_width": 8},
    "kim-bengio": {"latent_dim": 8, "g_width": 8, "net": {"widths": [8, 8, 8], "n_out": 4}},
}


DIAGNOSTIC = {"vae": "kl", "wgan": "critic_gap", "wgan-gp": "gradient_penalty", "ebgan": "pulling_away",
              "infogan": "mi_loss", "kim-bengio": "entropy"}


def test_vae_kl_equals_closed_form():
    torch.manual_seed(0)
    mu, logvar = torch.randn(5, 4), torch.randn(5, 4)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(4), torch.ones(4))
    expected = torch.distributions.kl_divergence(q, p).sum(dim=1)
    assert torch.allclose(gaussian_kl(mu, logvar), expected, atol=1e-6)
    assert torch.allclose(gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2))


def test_gradient_penalty_zero_for_unit_norm_linear_critic_positive_otherwise():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 1))
    with torch.no_grad():
        critic[1].weight.copy_(torch.nn.functional.normalize(torch.randn(1, 12), dim=1))
    real, fake = torch.randn(16, 3, 2, 2), torch.randn(16, 3, 2, 2)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    with torch.no_grad():
        critic[1].weight.mul_(3.0)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(4.0, rel=1e-5)  # (3 − 1)²


class QuadraticCritic(nn.Module):
    """D(x) = a · ½‖x‖²: ∇ₓD = a·x, so the penalty is E(a‖x̂‖ − 1)² and d/da of it is E 2(a‖x̂‖ − 1)‖x̂‖."""

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))

    def forward(self, x):
        return self.a * 0.5 * x.flatten(1).pow(2).sum(1)


def test_gradient_penalty_of_a_nonlinear_critic_on_the_interpolates_with_its_parameter_gradient():
    real, fake = torch.randn(32, 3, 4, 4), torch.randn(32, 3, 4, 4) + 2.0
    critic = QuadraticCritic(0.7)
    torch.manual_seed(5)
    penalty = gradient_penalty(critic, real, fake)
    torch.manual_seed(5)  # the same interpolation weights, drawn here independently
    eps = torch.rand(32, 1, 1, 1)
    norm = (eps * real + (1 - eps) * fake).flatten(1).norm(dim=1)
    assert penalty.item() == pytest.approx(float(((0.7 * norm - 1) ** 2).mean()), rel=1e-5)
    (grad_a,) = torch.autograd.grad(penalty, critic.a)  # needs create_graph=True inside the penalty
    assert grad_a.item() == pytest.approx(float((2 * (0.7 * norm - 1) * norm).mean()), rel=1e-5)
    assert not torch.allclose(norm, (0.5 * real + 0.5 * fake).flatten(1).norm(dim=1))  # really random interpolates


def test_weight_clipping_keeps_every_critic_weight_inside(tmp_path):
    L.seed_everything(0)
    model = build_model("wgan", image_size=8, channels=1, clip=0.01, lr=0.1, **SMALL["wgan"])
    fit(model, build_datamodule("digits", batch_size=32), 4, tmp_path)
    assert max(p.abs().max().item() for p in model.critic.parameters()) <= 0.01 + 1e-8


def test_infogan_categorical_code_changes_samples():
    torch.manual_seed(0)
    model = build_model("infogan", image_size=8, channels=1, **SMALL["infogan"]).eval()
    z, _, cont = model.sample_codes(4)
    with torch.no_grad():
        a = model.decode(z, torch.zeros(4, dtype=torch.long), cont)
        b = model.decode(z, torch.full((4,), 3), cont)
        a2 = model.decode(z, torch.zeros(4, dtype=torch.long), cont)
    assert torch.equal(a, a2) and (a - b).abs().mean() > 1e-3


@pytest.mark.parametrize("name", list(SMALL))
def test_baseline_fits_samples_and_round_trips(name, tmp_path):
    L.seed_everything(0)
    model = build_model(name, image_size=8, channels=1, **SMALL[name])
    trainer = fit(model, build_datamodule("digits", batch_size=32), 4, tmp_path)
    samples = model.sample(6)
    assert samples.shape == (6, 1, 8, 8) and samples.abs().max() <= 1 and torch.isfinite(samples).all()
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    restored = model_class(name).load_from_checkpoint(path, weights_only=False)
    for key, value in model.state_dict().items():
        assert torch.equal(value, restored.state_dict()[key]), key
    assert f"train/{DIAGNOSTIC[name]}" in trainer.callback_metrics


@pytest.mark.parametrize("name", ["abp", "coopnets", "dcgan", "vae"])
def test_bn_sampling_batch_uses_the_sampling_batch_and_keeps_running_statistics(name):
    """``batch`` (the official CoopNets/ABP code) ignores the running statistics and leaves them as they were;
    ``running`` uses them. Defaults: batch for coopnets/abp, running for the GAN family."""
    import torch

    from genbench.models import build_model

    extra = {"num_train": 10} if name == "abp" else {}
    small = {"abp": {"generator_net": {"base_width": 8}}, "coopnets": {"generator_net": {"base_width": 8}, "num_chains": 4},
             "dcgan": {"g_width": 8, "d_width": 8}, "vae": {"width": 8}}[name]
    model = build_model(name, image_size=16, channels=3, latent_dim=8, **small, **extra)
    assert model.bn_sampling == ("batch" if name in ("abp", "coopnets") else "running")
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms
    for m in norms:  # running statistics far from anything a batch would give
        m.running_mean.fill_(50.0)
        m.running_var.fill_(1e-4)
    before = [m.running_mean.clone() for m in norms]
    model.bn_sampling = "batch"
    torch.manual_seed(0)
    batch_mode = model.sample(16)
    assert all(torch.equal(m.running_mean, b) for m, b in zip(norms, before))
    assert batch_mode.std() > 0.01 and batch_mode.abs().mean() < 0.99  # not saturated by the absurd statistics
    model.bn_sampling = "running"
    torch.manual_seed(0)
    running_mode = model.sample(16)
    assert not torch.allclose(running_mode, batch_mode, atol=1e-3)


def test_kim_bengio_entropy_is_the_batchnorm_scale_estimate_and_its_gradient_changes_the_samples():
    from genbench.models.kim_bengio import batchnorm_entropy

    torch.manual_seed(0)
    model = build_model("kim-bengio", image_size=8, channels=1, **SMALL["kim-bengio"]).eval()
    norms = [m for m in model.generator.modules() if isinstance(m, nn.BatchNorm2d)]
    gammas = torch.cat([m.weight.detach() for m in norms])
    closed_form = float((0.5 * torch.log(2 * torch.pi * torch.e * gammas.pow(2))).sum())
    assert batchnorm_entropy(model.generator).item() == pytest.approx(closed_form, rel=1e-5)
    z = torch.randn(16, model.hparams.latent_dim)
    model.generator.train()  # batch statistics: where an estimate from BatchNorm *inputs* changes nothing
    with torch.no_grad():
        before = model.generator(z)
    opt = torch.optim.Adam(model.generator.parameters(), lr=0.05)
    (-model.entropy()).backward()  # a step on the entropy term alone
    opt.step()
    with torch.no_grad():
        after = model.generator(z)
    assert (after - before).norm() > 0.02 * before.norm()  # the old input-variance estimate: < 1e-5
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    energy = model.energy(x)
    bound = -torch.nn.functional.softplus(model.energy_net.experts.weight.abs().sum(1) + model.energy_net.experts.bias).sum()
    assert energy.shape == (4,) and (energy >= bound - 1e-5).all()  # bounded below: φ = tanh(·) is bounded


def test_kim_bengio_energy_is_the_free_energy_of_an_rbm_with_gaussian_input_and_experts_over_the_features():
    """E(x) = −log Σ_h exp(−E(x, h)) over binary experts h, E(x, h) = ½||(x − μ)/σ||² − bᵀh − hᵀWφ(x):
    summed over all 2⁴ states of 4 experts in float64, apart from the model's softplus form."""
    import itertools

    torch.manual_seed(0)
    options = {**SMALL["kim-bengio"], "n_experts": 4}
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)), dtype=torch.float64)  # (16, 4)
    x = torch.rand(3, 1, 8, 8) * 2 - 1
    for input_gaussian in (True, False):
        model = build_model("kim-bengio", image_size=8, channels=1, input_gaussian=input_gaussian, **options).eval()
        net = model.energy_net
        with torch.no_grad():
            for weight in net.features.parameters():  # features of order 1, so every term of E(x) counts
                weight.normal_(0, 0.25)
            phi = torch.tanh(net.features.net(x).flatten(1)).double()
            w, b = net.experts.weight.double(), net.experts.bias.double()
            gaussian = torch.zeros(3, dtype=torch.float64)
            if input_gaussian:
                net.input_mean.normal_(0, 0.3)
                net.input_log_scale.normal_(0, 0.3)
                mean, scale = net.input_mean.double(), net.input_log_scale.double().exp()
                assert mean.shape == (1, 8, 8)
                gaussian = 0.5 * ((x.double() - mean) / scale).pow(2).flatten(1).sum(1)
            else:
                assert not hasattr(net, "input_mean")
            joint = gaussian[:, None] - states @ b - (phi @ w.T) @ states.T  # E(x, h) for every h: (3, 16)
            free_energy = -torch.logsumexp(-joint, dim=1)
        assert 0.1 < phi.abs().mean() < 0.9
        assert torch.allclose(model.energy(x).double(), free_energy, atol=1e-4)


def test_kim_bengio_authors_recipe_options_follow_their_script():
    """The options of taesupkim/dcgan_code's paper-era script, each against its definition computed here: Adagrad with
    the energy's L2 weight decay (one step in closed form), the generator's rate apart, N(0, 0.01²) before every
    batch norm (also when sampling), h ~ U(−1, 1), experts over every position of a stationary net's map, N(0, 0.01²)
    expert weights with zero biases."""
    torch.manual_seed(0)
    options = {**SMALL["kim-bengio"], "net": {"widths": [8, 8, 8], "n_out": 4, "stationary": True}, "n_experts": 16,
               "optimizer": "adagrad", "lr": 1e-3, "g_lr": 2e-3, "energy_weight_decay": 1e-5, "latent_dist": "uniform",
               "bn_noise": 0.01, "expert_init_std": 0.01}
    model = build_model("kim-bengio", image_size=8, channels=1, **options)
    experts = model.energy_net.experts
    assert experts.in_features == 4 * 2 * 2  # 4 channels at each of the 2×2 positions of the last map
    assert experts.weight.std().item() == pytest.approx(0.01, rel=0.15) and not experts.bias.any()
    norms = [i for i, m in enumerate(model.generator.net) if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(type(model.generator.net[i - 1]).__name__ == "GaussianNoise" for i in norms)
    model.eval()
    z = torch.zeros(2, 8)
    with torch.no_grad():
        assert not torch.equal(model.generator(z), model.generator(z))  # the noise is drawn when sampling too
    h = model.latent(4000)
    assert h.min() >= -1 and h.max() <= 1 and h.mean().abs() < 0.02 and h.std().item() == pytest.approx(3 ** -0.5, rel=0.02)
    opt_g, opt_e = model.configure_optimizers()
    assert isinstance(opt_e, torch.optim.Adagrad) and opt_g.defaults["lr"] == 2e-3
    theta = experts.weight.detach().clone()
    grad = torch.randn_like(theta)
    experts.weight.grad = grad.clone()
    for param in model.energy_net.parameters():
        if param is not experts.weight:
            param.grad = None
    opt_e.step()
    g = grad + 1e-5 * theta  # Adagrad's first step: θ − lr·g/(√(g²) + ε), with g the gradient plus the decay term
    assert torch.allclose(experts.weight.detach(), theta - 1e-3 * g / (g.abs() + 1e-10), atol=1e-9)
    plain = build_model("kim-bengio", image_size=8, channels=1, **SMALL["kim-bengio"])
    assert not any(type(m).__name__ == "GaussianNoise" for m in plain.generator.modules())
    assert "optimizer" not in model_class("kim-bengio").resolve_options(dict(SMALL["kim-bengio"]))  # old hashes hold


def test_wgan_follows_the_reference_critic_schedule_and_wgan_gp_algorithm_1():
    wgan = build_model("wgan", image_size=32, channels=1, **SMALL["wgan"])
    schedule = []
    for g in (0, 24, 25, 26, 499, 500, 501, 1000):
        wgan.generator_steps.fill_(g)
        schedule.append(wgan.critic_steps_now())
    assert schedule == [100, 100, 2, 2, 2, 100, 2, 100]  # martinarjovsky/WassersteinGAN main.py (n_critic 2 here)
    assert any(isinstance(m, nn.BatchNorm2d) for m in wgan.critic.modules())
    gp = build_model("wgan-gp", image_size=32, channels=1, **SMALL["wgan-gp"])
    gp.generator_steps.fill_(0)
    assert gp.critic_steps_now() == 2 and not any(isinstance(m, nn.BatchNorm2d) for m in gp.critic.modules())
    opt_g, opt_c = gp.configure_optimizers()
    assert opt_c.defaults["betas"] == (0.0, 0.9) and opt_c.defaults["lr"] == 1e-4


def test_critic_steps_per_generator_step_in_training(tmp_path):
    L.seed_everything(0)
    model = build_model("wgan", image_size=8, channels=1, warmup_critic=3, warmup_generator=2, **SMALL["wgan"])
    fit(model, build_datamodule("digits", batch_size=32), 10, tmp_path)
    assert int(model.generator_steps) == 2 + (10 - 2 * 3) // 2  # 3+3 warm-up critic steps, then 2 per step


def test_other_baseline_settings_follow_their_papers():
    assert build_model("ebgan", image_size=8, channels=1, **SMALL["ebgan"]).hparams.pt_weight == 0.1  # EBGAN-PT
    info_g, info_d = build_model("infogan", image_size=8, channels=1, **SMALL["infogan"]).configure_optimizers()
    assert (info_g.defaults["lr"], info_d.defaults["lr"]) == (1e-3, 2e-4)
    from genbench.config import compose

    assert compose("dcgan", "imagenet-scenes-tiny", "paper")["data"]["batch_size"] == 128


def test_model_yaml_holds_only_preset_changes_so_every_path_builds_the_papers_model():
    """configs/models/*.yaml carry no top-level model block: the class signature is the one home of the
    paper's settings, so `make perf`, the tests and the CLI build the same model."""
    import yaml

    from genbench.paths import configs_dir

    for path in sorted((configs_dir() / "models").glob("*.yaml")):
        assert set(yaml.safe_load(path.read_text())) <= {"presets"}, path.name
    from genbench.config import compose

    cfg = compose("coopnets", "imagenet-scenes-tiny", "paper")
    model = build_model("coopnets", **cfg["model"])
    assert model.hparams.num_chains == 144 and model.hparams.ref_std == 0.016 and model.langevin_config.n_steps == 15
    pcd = build_model("pcd")
    assert (pcd.hparams.buffer_size, pcd.hparams.num_chains, pcd.hparams.init_std) == (10_000, 144, 0.016)


def _feature_maps(net: nn.Module, x: torch.Tensor, kinds: tuple[type, ...]) -> list[tuple[int, int]]:
    """(channels, side) after each layer of the given kinds."""
    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append((o.shape[1], o.shape[-1])))
             for m in net.modules() if isinstance(m, kinds)]
    net(x)
    for h in hooks:
        h.remove()
    return shapes


def test_28px_nets_are_the_official_mnist_nets():
    """jianwen-xie/CoopNets mnist nets: generator 4×4×512 → 7×7×256 → 14×14×128 → 28×28×1 (kernel 4);
    descriptor 4×4/2 convs 64, 128, 256 with "SAME" padding (28 → 14 → 7 → 4), then a full 4×4 conv → 100."""
    coop = build_model("coopnets", image_size=28, channels=1)
    assert _feature_maps(coop.generator, torch.randn(2, 100), (nn.ConvTranspose2d,)) == \
        [(512, 4), (256, 7), (128, 14), (1, 28)]
    assert {m.kernel_size for m in coop.generator.modules() if isinstance(m, nn.ConvTranspose2d)} == {(4, 4)}
    convs = [m for m in coop.energy_net.modules() if isinstance(m, nn.Conv2d)]
    assert _feature_maps(coop.energy_net, torch.randn(2, 1, 28, 28), (nn.Conv2d,)) == \
        [(64, 14), (128, 7), (256, 4), (100, 1)]
    assert [(m.kernel_size, m.stride) for m in convs] == [((4, 4), (2, 2))] * 3 + [((4, 4), (1, 1))]
    # TF "SAME" on the 7-pixel map pads 1 before and 2 after (pad_total = (4−1)·2 + 4 − 7 = 3): output i sees
    # input rows 2i−1 … 2i+2, so input row 0 reaches output 0 only and input row 6 outputs 2 and 3
    third = nn.Sequential(*list(coop.energy_net.net)[4:6])
    for pixel, reached in ((0, {0}), (6, {2, 3})):
        x = torch.zeros(1, 128, 7, 7)
        x[..., pixel, pixel] = 1.0
        response = third(x)[0].abs().sum(0)
        assert response.shape == (4, 4)
        assert {i for i in range(4) if response[i, i] > 0} == reached and set(response.nonzero()[:, 0].tolist()) == reached
    dcgan = build_model("dcgan", image_size=28, channels=1)  # every conv generator at 28×28 is the MNIST one
    assert _feature_maps(dcgan.generator, torch.randn(2, 100), (nn.ConvTranspose2d,)) == \
        [(512, 4), (256, 7), (128, 14), (1, 28)]
    scene = build_model("coopnets")  # the scene nets are unchanged: 5×5/2, 3×3/2, 3×3/1 and kernel-5 generator
    assert [(m.kernel_size, m.stride) for m in scene.energy_net.modules() if isinstance(m, nn.Conv2d)] == \
        [((5, 5), (2, 2)), ((3, 3), (2, 2)), ((3, 3), (1, 1)), ((16, 16), (1, 1))]
    assert _feature_maps(scene.generator, torch.randn(2, 100), (nn.ConvTranspose2d,)) == \
        [(512, 4), (256, 8), (128, 16), (64, 32), (3, 64)]
