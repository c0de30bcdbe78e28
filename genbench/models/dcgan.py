"""DCGAN (Radford et al., 2016): min_G max_D E log D(x) + E log(1 − D(G(h))), non-saturating G loss,
manual optimization (one D step, then one G step per batch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genbench.models.base import MODELS, GenerativeModel
from genbench.models.nets import ConvDiscriminator, ConvGenerator


@MODELS.register("dcgan")
class DCGAN(GenerativeModel):
    """DCGAN with the shared generator (kernel 4, ReLU) and discriminator (BN, leaky ReLU 0.2).

    Args:
        latent_dim: d of h ~ N(0, I_d).
        g_width, d_width: base channel widths of generator and discriminator.
        lr, beta1: Adam settings of both nets (DCGAN: 2e-4, 0.5).
    """

    completion = "latent-optimisation"

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        latent_dim: int = 100,
        g_width: int = 64,
        d_width: int = 64,
        lr: float = 2e-4,
        beta1: float = 0.5,
        bn_sampling: str = "running",
    ) -> None:
        super().__init__(image_size, channels, bn_sampling=bn_sampling)
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = ConvGenerator(latent_dim, image_size, channels, g_width, kernel_size=4, act="relu", init_std=0.02)
        self.discriminator = ConvDiscriminator(image_size, channels, d_width, out_features=1, init_std=0.02)

    def feature_nets(self):
        """The discriminator (the DCGAN paper's features)."""
        return [("discriminator", self.discriminator, self.discriminator)]

    def generate(self, n: int) -> torch.Tensor:
        return self.generator(torch.randn(n, self.hparams.latent_dim, device=self.device))

    def train_iteration(self, batch) -> None:
        x = batch[0]
        opt_g, opt_d = self.optimizers()
        h = torch.randn(x.shape[0], self.hparams.latent_dim, device=self.device)
        fake = self.generator(h)

        real_logits = self.discriminator(x)
        fake_logits = self.discriminator(fake.detach())
        d_loss = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) + \
            F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        self.update(opt_d, d_loss, "discriminator loss", "lower lr")

        gen_logits = self.discriminator(fake)
        g_loss = F.binary_cross_entropy_with_logits(gen_logits, torch.ones_like(gen_logits))
        self.update(opt_g, g_loss, "generator loss", "lower lr")

        self.log_diagnostics({
            "d_loss": d_loss.detach(), "g_loss": g_loss.detach(),
            "d_real": torch.sigmoid(real_logits).mean().detach(), "d_fake": torch.sigmoid(fake_logits).mean().detach(),
        }, prog_bar=("d_loss", "g_loss"))

    def configure_optimizers(self):
        betas = (self.hparams.beta1, 0.999)
        return (self.adam(self.generator.parameters(), self.hparams.lr, betas),
                self.adam(self.discriminator.parameters(), self.hparams.lr, betas))
