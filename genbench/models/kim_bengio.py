"""Deep directed generative models with energy-based probability estimation (Kim & Bengio, 2016).

An energy model E(x) = −f(x) (the descriptor net) and a generator G trained against it:

    L_E = mean E(x_data) − mean E(G(h))                      (generator samples are the negatives)
    L_G = mean E(G(h)) − H(p_G),   H(p_G) ≈ Σ_BN Σ_channels ½ log(2πe σ²_channel)

the entropy of the generator estimated, as in the paper, from the batch-normalisation statistics of its
layers (a Gaussian per unit).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genbench.models.base import MODELS, GenerativeModel
from genbench.models.nets import ConvGenerator, build_energy_net


class BatchNormEntropy:
    """Collects, for each BatchNorm2d of a net, the entropy Σ_c ½ log(2πe σ²_c) of its inputs' batch statistics."""

    def __init__(self, net: nn.Module) -> None:
        self.terms: list[torch.Tensor] = []
        self.handles = [m.register_forward_hook(self._hook) for m in net.modules() if isinstance(m, nn.BatchNorm2d)]

    def _hook(self, module, inputs, output) -> None:
        var = inputs[0].transpose(0, 1).flatten(1).var(dim=1, unbiased=False)
        self.terms.append(0.5 * torch.log(2 * math.pi * math.e * (var + module.eps)).sum())

    def pop(self) -> torch.Tensor:
        total = torch.stack(self.terms).sum() if self.terms else torch.zeros(())
        self.terms = []
        return total


@MODELS.register("kim-bengio")
class KimBengio(GenerativeModel):
    """Generator trained against a deep energy model, entropy from batch-norm statistics.

    Args:
        entropy_weight: weight of H(p_G) in the generator loss.
        energy_l2: L2 penalty on energies (stabiliser; 0 is off).
        net: options of the energy net (the descriptor net).
    """

    def __init__(self, image_size: int = 64, channels: int = 3, latent_dim: int = 100, g_width: int = 64,
                 entropy_weight: float = 1.0, energy_l2: float = 0.0, lr: float = 2e-4, beta1: float = 0.5,
                 net: dict | None = None) -> None:
        super().__init__(image_size, channels)
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = ConvGenerator(latent_dim, image_size, channels, g_width, kernel_size=4, act="relu", init_std=0.02)
        self.energy_net = build_energy_net("conv", image_size, channels, {"init_std": 0.02, **(net or {})})
        self.entropy = BatchNormEntropy(self.generator)

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        return -self.energy_net(x)

    def generate(self, n: int) -> torch.Tensor:
        out = self.generator(torch.randn(n, self.hparams.latent_dim, device=self.device))
        self.entropy.pop()
        return out

    def train_iteration(self, batch) -> None:
        x = batch[0]
        opt_g, opt_e = self.optimizers()
        fake = self.generator(torch.randn(x.shape[0], self.hparams.latent_dim, device=self.device))
        entropy = self.entropy.pop()
        e_data, e_fake = self.energy(x), self.energy(fake.detach())
        e_loss = e_data.mean() - e_fake.mean()
        if self.hparams.energy_l2 > 0:
            e_loss = e_loss + self.hparams.energy_l2 * (e_data.pow(2).mean() + e_fake.pow(2).mean())
        self.update(opt_e, e_loss, "energy model loss", "lower model.lr or set model.energy_l2 > 0")
        g_loss = self.energy(fake).mean() - self.hparams.entropy_weight * entropy
        self.update(opt_g, g_loss, "generator loss", "lower model.lr")
        self.log_diagnostics({"energy_data": e_data.mean().detach(), "energy_fake": e_fake.mean().detach(),
                              "entropy": entropy.detach(), "g_loss": g_loss.detach()}, prog_bar=("energy_data", "energy_fake"))

    def configure_optimizers(self):
        betas = (self.hparams.beta1, 0.999)
        return (torch.optim.Adam(self.generator.parameters(), lr=self.hparams.lr, betas=betas),
                torch.optim.Adam(self.energy_net.parameters(), lr=self.hparams.lr, betas=betas))
