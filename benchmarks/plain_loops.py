"""Hand-written plain-PyTorch training iterations: the yardstick ``make perf`` holds genbench's Lightning loop to.

Each function does one iteration of a model with the model's own nets and optimisers, written directly in torch
(no LightningModule method, no Langevin helper, no finiteness checks, no logging), so the ratio
plain / genbench is what the framework costs. The equations are the models' (see their module docstrings).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_langevin(config, what: str) -> None:
    """The plain loops write exact Langevin (noise = δ, no clipping or clamping): refuse a config they would
    under-compute, so that a ratio is never flattered or penalised by doing other work."""
    if config.noise_scale is not None or not config.noise or config.grad_clip or config.update_clamp or config.pixel_clamp:
        raise ValueError(f"the plain {what} loop writes exact Langevin only; this config sets {config}")


def _set_requires_grad(net: torch.nn.Module, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad_(flag)


def dcgan(module, optimizers, batch) -> None:
    """One D step on log D(x) + log(1 − D(G(h))), then one non-saturating G step."""
    opt_g, opt_d = optimizers
    x = batch[0]
    h = torch.randn(x.shape[0], module.hparams.latent_dim, device=x.device)
    fake = module.generator(h)
    real_logits, fake_logits = module.discriminator(x), module.discriminator(fake.detach())
    d_loss = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) + \
        F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    gen_logits = module.discriminator(fake)
    g_loss = F.binary_cross_entropy_with_logits(gen_logits, torch.ones_like(gen_logits))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()


def coopnets(module, optimizers, batch) -> None:
    """Draft X̂ = g(h); revise by Langevin on E(X) = ‖X‖²/(2s²) − f(X); θ on mean f(X̃) − mean f(X); α on
    mean ‖X̃ − g(h)‖²/(2σ²)."""
    opt_des, opt_gen = optimizers
    x_data = batch[0]
    hp, cfg = module.hparams, module.langevin_config
    _check_langevin(cfg, "coopnets")
    if hp.ref_std is None or hp.energy_l2 or hp.data_noise or module.latent_config.n_steps:
        raise ValueError("the plain coopnets loop writes the official iteration (s set, no energy_l2, data_noise or latent Langevin)")
    n = hp.num_chains or x_data.shape[0]
    h = torch.randn(n, hp.latent_dim, device=x_data.device)
    with torch.no_grad():
        x = module.generator(h)
    drift, s2 = cfg.step_size ** 2 / 2, 2 * hp.ref_std ** 2
    _set_requires_grad(module.energy_net, False)
    for _ in range(cfg.n_steps):
        x.requires_grad_(True)
        energy = x.flatten(1).pow(2).sum(dim=1) / s2 - module.energy_net(x)
        (grad,) = torch.autograd.grad(energy.sum(), x)
        x = (x - drift * grad + cfg.step_size * torch.randn_like(x)).detach()
    _set_requires_grad(module.energy_net, True)
    des_loss = module.energy_net(x).mean() - module.energy_net(x_data).mean()
    opt_des.zero_grad()
    des_loss.backward()
    opt_des.step()
    gen_loss = (x - module.generator(h)).flatten(1).pow(2).sum(dim=1).mean() / (2 * hp.sigma ** 2)
    opt_gen.zero_grad()
    gen_loss.backward()
    opt_gen.step()


def abp(module, optimizers, batch) -> None:
    """Langevin on −log p(h | X) = ‖h‖²/2 + ‖X − g(h)‖²/(2σ²) from each image's stored h, then α on the
    reconstruction loss."""
    x, _, index = batch[:3]
    hp, cfg = module.hparams, module.latent_config
    _check_langevin(cfg, "abp")
    if not hp.persistent_latents or len(batch) > 3:
        raise ValueError("the plain abp loop writes persistent latents on intact images only")
    h = module.latents[index].clone()
    drift, s2 = cfg.step_size ** 2 / 2, 2 * hp.sigma ** 2
    _set_requires_grad(module.generator, False)
    for _ in range(cfg.n_steps):
        h.requires_grad_(True)
        energy = h.pow(2).sum(dim=1) / 2 + (x - module.generator(h)).flatten(1).pow(2).sum(dim=1) / s2
        (grad,) = torch.autograd.grad(energy.sum(), h)
        h = (h - drift * grad + cfg.step_size * torch.randn_like(h)).detach()
    _set_requires_grad(module.generator, True)
    module.latents[index] = h
    loss = (x - module.generator(h)).flatten(1).pow(2).sum(dim=1).mean() / s2
    optimizers.zero_grad()
    loss.backward()
    optimizers.step()


PLAIN_ITERATIONS = {"dcgan": dcgan, "coopnets": coopnets, "abp": abp}
