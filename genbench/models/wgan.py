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
    """W-GAN with weight clipping, as in Arjovsky et al. (2017) and their reference code (martinarjovsky/WassersteinGAN):
    RMSprop 5e-5, clip 0.01, a DCGAN critic with BatchNorm, and the critic schedule of that code —
    ``warmup_critic`` (100) critic steps per generator step for the first ``warmup_generator`` (25) generator
    steps and at every ``boost_every``-th (500th), ``n_critic`` (5) otherwise.

    Args:
        clip: every critic weight is clipped to [−clip, clip] after each critic step (wgan only).
        gp_weight: λ of the gradient penalty (wgan-gp; 0 for wgan).
        n_critic: critic steps per generator step outside the warm-up/boost steps.
        warmup_critic, warmup_generator, boost_every: the reference schedule (warmup_critic None turns it off).
        critic_batch_norm: BatchNorm in the critic (W-GAN's DCGAN critic: yes; WGAN-GP: no, it breaks the
            per-sample penalty).
        optimizer: rmsprop (W-GAN) or adam (WGAN-GP) with ``betas``.
    """

    completion = "latent-optimisation"

    def __init__(self, image_size: int = 64, channels: int = 3, latent_dim: int = 100, g_width: int = 64,
                 d_width: int = 64, lr: float = 5e-5, clip: float | None = 0.01, gp_weight: float = 0.0,
                 n_critic: int = 5, warmup_critic: int | None = 100, warmup_generator: int = 25, boost_every: int = 500,
                 critic_batch_norm: bool = True, optimizer: str = "rmsprop", betas: tuple[float, float] = (0.5, 0.999),
                 bn_sampling: str = "running") -> None:
        super().__init__(image_size, channels, bn_sampling=bn_sampling)
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = ConvGenerator(latent_dim, image_size, channels, g_width, kernel_size=4, act="relu", init_std=0.02)
        self.critic = ConvDiscriminator(image_size, channels, d_width, out_features=1, batch_norm=critic_batch_norm,
                                        init_std=0.02)
        # schedule state (in the checkpoint): generator steps taken, critic steps since the last one
        self.register_buffer("generator_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("critic_steps", torch.zeros((), dtype=torch.long))

    def critic_steps_now(self) -> int:
        """Critic steps before the next generator step (the reference schedule)."""
        g = int(self.generator_steps)
        hp = self.hparams
        boost = hp.n_critic if hp.warmup_critic is None else hp.warmup_critic
        return boost if g < hp.warmup_generator or g % hp.boost_every == 0 else hp.n_critic

    def feature_nets(self):
        """The critic."""
        return [("critic", self.critic, self.critic)]

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
        self.critic_steps += 1
        if int(self.critic_steps) >= self.critic_steps_now():
            g_loss = -self.critic(self.generate(x.shape[0])).mean()
            self.update(opt_g, g_loss, "generator loss", "lower model.lr")
            stats["g_loss"] = g_loss.detach()
            self.generator_steps += 1
            self.critic_steps.zero_()
        self.log_diagnostics(stats, prog_bar=("critic_gap",))

    def configure_optimizers(self):
        lr = self.hparams.lr
        if self.hparams.optimizer == "adam":
            make = lambda params: self.adam(params, lr, tuple(self.hparams.betas))  # noqa: E731
        else:
            make = lambda params: torch.optim.RMSprop(params, lr=lr)  # noqa: E731
        return make(self.generator.parameters()), make(self.critic.parameters())


@MODELS.register("wgan-gp")
class WGANGP(WGAN):
    """WGAN-GP (Gulrajani et al. 2017, Algorithm 1): no clipping, gradient penalty λ = 10, Adam 1e-4 with
    β = (0, 0.9), 5 critic steps per generator step throughout, no BatchNorm in the critic."""

    def __init__(self, lr: float = 1e-4, clip: float | None = None, gp_weight: float = 10.0,
                 optimizer: str = "adam", betas: tuple[float, float] = (0.0, 0.9), warmup_critic: int | None = None,
                 critic_batch_norm: bool = False, **kwargs) -> None:
        super().__init__(lr=lr, clip=clip, gp_weight=gp_weight, optimizer=optimizer, betas=betas,
                         warmup_critic=warmup_critic, critic_batch_norm=critic_batch_norm, **kwargs)
