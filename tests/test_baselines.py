"""Baselines of the papers' tables: closed forms of their loss terms, few-step fits, checkpoints."""

import lightning as L
import pytest
import torch
from torch import nn

from genbench.data import build_datamodule
from genbench.models import build_model, model_class
from genbench.models.vae import gaussian_kl
from genbench.models.wgan import gradient_penalty
from tests.test_ebm import fit

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
