"""Wasserstein GANs: W-GAN with weight clipping (Arjovsky et al., 2017) and WGAN-GP (Gulrajani et al., 2017).

    critic:    max_D  E D(x) − E D(G(h))        (D kept 1-Lipschitz by clipping or by the penalty)
    generator: min_G  −E D(G(h))
    GP = λ · E_x̂ (‖∇_x̂ D(x̂)‖₂ − 1)²,  x̂ = ε x + (1 − ε) G(h),  ε ~ U(0, 1)

One critic step per batch; the generator steps every ``n_critic`` iterations.
"""

from __future__ import annotations

import torch
from torch import nn

from genbench.models.base import MODELS, GenerativeModel
from genbench.models.nets import ConvDiscriminator, ConvGenerator


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E (‖∇_x̂ D(x̂)‖₂ − 1)² on random interpolates of real and fake (λ not included)."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1.0).pow(2).mean()


@MODELS.register("wgan")
class WGAN(GenerativeModel):
    """W-GAN with weight clipping (RMSprop 5e-5, clip 0.01, n_critic 5 — the original settings).

    Args:
        clip: every critic weight is clipped to [−clip, clip] after each critic step (wgan only).
        gp_weight: λ of the gradient penalty (wgan-gp; 0 for wgan).
        n_critic: critic steps per generator step.
        optimizer: rmsprop (W-GAN) or adam (WGAN-GP, β = (0.5, 0.9)).
    """

    def __init__(self, image_size: int = 64, channels: int = 3, latent_dim: int = 100, g_width: int = 64,
                 d_width: int = 64, lr: float = 5e-5, clip: float | None = 0.01, gp_weight: float = 0.0,
                 n_critic: int = 5, optimizer: str = "rmsprop") -> None:
        super().__init__(image_size, channels)
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = ConvGenerator(latent_dim, image_size, channels, g_width, kernel_size=4, act="relu", init_std=0.02)
        self.critic = ConvDiscriminator(image_size, channels, d_width, out_features=1, batch_norm=False, init_std=0.02)

    def generate(self, n: int) -> torch.Tensor:
        return self.generator(torch.randn(n, self.hparams.latent_dim, device=self.device))

    def clip_critic(self) -> None:
        if self.hparams.clip:
            with torch.no_grad():
                for p in self.critic.parameters():
                    p.clamp_(-self.hparams.clip, self.hparams.clip)

    def train_iteration(self, batch) -> None:
        x = batch[0]
        opt_g, opt_c = self.optimizers()
        fake = self.generate(x.shape[0]).detach()
        gap = self.critic(x).mean() - self.critic(fake).mean()
        loss = -gap
        stats = {"critic_gap": gap.detach()}
        if self.hparams.gp_weight > 0:
            gp = gradient_penalty(self.critic, x, fake)
            loss = loss + self.hparams.gp_weight * gp
            stats["gradient_penalty"] = gp.detach()
        self.update(opt_c, loss, "critic loss", "lower model.lr")
        self.clip_critic()
        if (self.iteration + 1) % self.hparams.n_critic == 0:
            g_loss = -self.critic(self.generate(x.shape[0])).mean()
            self.update(opt_g, g_loss, "generator loss", "lower model.lr")
            stats["g_loss"] = g_loss.detach()
        self.log_diagnostics(stats, prog_bar=("critic_gap",))

    def configure_optimizers(self):
        lr = self.hparams.lr
        if self.hparams.optimizer == "adam":
            make = lambda params: torch.optim.Adam(params, lr=lr, betas=(0.5, 0.9))  # noqa: E731
        else:
            make = lambda params: torch.optim.RMSprop(params, lr=lr)  # noqa: E731
        return make(self.generator.parameters()), make(self.critic.parameters())


@MODELS.register("wgan-gp")
class WGANGP(WGAN):
    """WGAN-GP: no clipping, gradient penalty λ = 10, Adam 1e-4 with β = (0.5, 0.9)."""

    def __init__(self, lr: float = 1e-4, clip: float | None = None, gp_weight: float = 10.0,
                 optimizer: str = "adam", **kwargs) -> None:
        super().__init__(lr=lr, clip=clip, gp_weight=gp_weight, optimizer=optimizer, **kwargs)
