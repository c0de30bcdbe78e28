"""VAE (Kingma & Welling, 2014) with the shared nets: encoder = the DCGAN discriminator body with 2d outputs
(μ, log σ²), decoder = the shared generator.

    ELBO(x) = E_q(h|x) log p(x|h) − KL(q(h|x) ‖ N(0, I)),  log p(x|h) = −‖x − g(h)‖²/(2σ²) + const
    KL = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)
"""

from __future__ import annotations

import torch

from genbench.errors import GenbenchError
from genbench.models.base import MODELS, GenerativeModel
from genbench.models.nets import ConvDiscriminator, build_generator


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) per example = ½ Σ (μ² + σ² − 1 − log σ²)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


@MODELS.register("vae")
class VAE(GenerativeModel):
    """Gaussian VAE.

    Args:
        latent_dim: d.
        sigma: std of the Gaussian decoder p(x|h) (sets the weight of reconstruction vs KL).
        kl_weight: β on the KL term (1 is the ELBO).
        lr, beta1: Adam.
    """

    def __init__(self, image_size: int = 64, channels: int = 3, latent_dim: int = 100, sigma: float = 0.3,
                 kl_weight: float = 1.0, lr: float = 2e-4, beta1: float = 0.5, width: int = 64, bn_sampling: str = "running") -> None:
        super().__init__(image_size, channels, bn_sampling=bn_sampling)
        self.save_hyperparameters()
        self.automatic_optimization = False
        if sigma <= 0:
            raise GenbenchError(f"sigma must be positive, got {sigma}")
        self.encoder = ConvDiscriminator(image_size, channels, width, out_features=2 * latent_dim)
        self.decoder = build_generator("conv", latent_dim, image_size, channels,
                                       {"base_width": width, "kernel_size": 4, "act": "relu", "init_std": 0.02})

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(-20, 10)

    def elbo_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction −log p(x|h) up to a constant, KL) per example, with one reparameterised sample."""
        mu, logvar = self.encode(x)
        h = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        recon = (x - self.decoder(h)).flatten(1).pow(2).sum(dim=1) / (2 * self.hparams.sigma**2)
        return recon, gaussian_kl(mu, logvar)

    def train_iteration(self, batch) -> None:
        x = batch[0]
        optimizer = self.optimizers()
        recon, kl = self.elbo_terms(x)
        loss = recon.mean() + self.hparams.kl_weight * kl.mean()
        self.update(optimizer, loss, "negative ELBO", "lower model.lr")
        self.log_diagnostics({"neg_elbo": (recon + kl).mean().detach(), "recon": recon.mean().detach(),
                              "kl": kl.mean().detach()}, prog_bar=("neg_elbo",))

    def generate(self, n: int) -> torch.Tensor:
        return self.decoder(torch.randn(n, self.hparams.latent_dim, device=self.device))

    def configure_optimizers(self):
        return self.adam(self.parameters(), self.hparams.lr, (self.hparams.beta1, 0.999))
