"""EBGAN (Zhao, Mathieu, LeCun, 2017): the discriminator is an auto-encoder whose reconstruction error is
the energy D(x) = ‖Dec(Enc(x)) − x‖² / #pixels.

    L_D = D(x) + max(0, m − D(G(h))),   L_G = D(G(h)) + λ_PT · PT(S)
    PT = pulling-away term: mean over i ≠ j of cos²(S_i, S_j) on the encoder codes S of a generated batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genbench.models.base import MODELS, GenerativeModel
from genbench.models.nets import ConvDiscriminator, ConvGenerator


def pulling_away(codes: torch.Tensor) -> torch.Tensor:
    """Mean squared cosine similarity over distinct pairs of a batch's codes."""
    s = F.normalize(codes.flatten(1), dim=1)
    n = s.shape[0]
    cos2 = (s @ s.T).pow(2)
    return (cos2.sum() - cos2.diagonal().sum()) / max(1, n * (n - 1))


@MODELS.register("ebgan")
class EBGAN(GenerativeModel):
    """EBGAN with an auto-encoder discriminator (shared nets: discriminator body → code → generator).

    Args:
        margin: m of the hinge on generated energies.
        code_dim: size of the auto-encoder code.
        pt_weight: λ_PT of the pulling-away term (0.1 in the paper's EBGAN-PT; 0 is plain EBGAN).
    """

    completion = "latent-optimisation"

    def __init__(self, image_size: int = 64, channels: int = 3, latent_dim: int = 100, g_width: int = 64,
                 d_width: int = 64, code_dim: int = 128, margin: float = 1.0, pt_weight: float = 0.1,
                 lr: float = 2e-4, beta1: float = 0.5, bn_sampling: str = "running") -> None:
        super().__init__(image_size, channels, bn_sampling=bn_sampling)
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = ConvGenerator(latent_dim, image_size, channels, g_width, kernel_size=4, act="relu", init_std=0.02)
        self.encoder = ConvDiscriminator(image_size, channels, d_width, out_features=code_dim, init_std=0.02)
        self.decoder = ConvGenerator(code_dim, image_size, channels, d_width, kernel_size=4, act="relu", init_std=0.02)

    def energy(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-example reconstruction energy, codes)."""
        codes = self.encoder(x)
        return (self.decoder(codes) - x).flatten(1).pow(2).mean(dim=1), codes

    def generate(self, n: int) -> torch.Tensor:
        return self.generator(torch.randn(n, self.hparams.latent_dim, device=self.device))

    def train_iteration(self, batch) -> None:
        x = batch[0]
        opt_g, opt_d = self.optimizers()
        fake = self.generate(x.shape[0])
        e_real, _ = self.energy(x)
        e_fake, _ = self.energy(fake.detach())
        d_loss = e_real.mean() + F.relu(self.hparams.margin - e_fake).mean()
        self.update(opt_d, d_loss, "discriminator loss", "lower model.lr")
        e_gen, codes = self.energy(fake)
        g_loss = e_gen.mean()
        stats = {"d_loss": d_loss.detach(), "energy_real": e_real.mean().detach(), "energy_fake": e_fake.mean().detach()}
        if self.hparams.pt_weight > 0:
            pt = pulling_away(codes)
            g_loss = g_loss + self.hparams.pt_weight * pt
            stats["pulling_away"] = pt.detach()
        self.update(opt_g, g_loss, "generator loss", "lower model.lr")
        stats["g_loss"] = g_loss.detach()
        self.log_diagnostics(stats, prog_bar=("d_loss", "g_loss"))

    def configure_optimizers(self):
        betas = (self.hparams.beta1, 0.999)
        return (self.adam(self.generator.parameters(), self.hparams.lr, betas),
                self.adam([*self.encoder.parameters(), *self.decoder.parameters()], self.hparams.lr, betas))
