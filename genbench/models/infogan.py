"""InfoGAN (Chen et al., 2016): a GAN whose generator input carries codes c (one categorical, several
uniform continuous) and whose discriminator has a head Q(c | x); both nets also maximise the variational
lower bound of the mutual information I(c; G(z, c)):

    L_I = CE(Q_cat(G(z, c)), c_cat) + λ_cont · ‖Q_cont(G(z, c)) − c_cont‖²/2   (fixed-variance Gaussian)
    L_D = GAN loss + λ L_I,   L_G = non-saturating GAN loss + λ L_I
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genbench.models.base import MODELS, GenerativeModel
from genbench.models.nets import ConvDiscriminator, ConvGenerator


@MODELS.register("infogan")
class InfoGAN(GenerativeModel):
    """InfoGAN with one categorical code of ``n_categories`` and ``n_continuous`` U(−1, 1) codes.

    Args:
        noise_dim: size of the incompressible noise z.
        info_weight: λ on the MI term; cont_weight: λ_cont for the continuous codes.
    """

    def __init__(self, image_size: int = 64, channels: int = 3, noise_dim: int = 62, n_categories: int = 10,
                 n_continuous: int = 2, g_width: int = 64, d_width: int = 64, info_weight: float = 1.0,
                 cont_weight: float = 0.1, lr: float = 2e-4, g_lr: float = 1e-3, beta1: float = 0.5,
                 bn_sampling: str = "running") -> None:
        super().__init__(image_size, channels, bn_sampling=bn_sampling)
        self.save_hyperparameters()
        self.automatic_optimization = False
        latent = noise_dim + n_categories + n_continuous
        self.generator = ConvGenerator(latent, image_size, channels, g_width, kernel_size=4, act="relu", init_std=0.02)
        self.discriminator = ConvDiscriminator(image_size, channels, d_width, out_features=1 + n_categories + n_continuous,
                                               init_std=0.02)

    def sample_codes(self, n: int, category: torch.Tensor | None = None):
        hp = self.hparams
        z = torch.randn(n, hp.noise_dim, device=self.device)
        if category is None:
            category = torch.randint(0, hp.n_categories, (n,), device=self.device)
        cont = torch.rand(n, hp.n_continuous, device=self.device) * 2 - 1
        return z, category, cont

    def decode(self, z: torch.Tensor, category: torch.Tensor, cont: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(category, self.hparams.n_categories).to(z)
        return self.generator(torch.cat([z, onehot, cont], dim=1))

    def heads(self, x: torch.Tensor):
        out = self.discriminator(x)
        k = self.hparams.n_categories
        return out[:, 0], out[:, 1:1 + k], out[:, 1 + k:]

    def info_loss(self, cat_logits, cont_pred, category, cont) -> torch.Tensor:
        return F.cross_entropy(cat_logits, category) + self.hparams.cont_weight * 0.5 * (cont_pred - cont).pow(2).sum(1).mean()

    def feature_nets(self):
        """The discriminator (with its latent-code heads)."""
        return [("discriminator", self.discriminator, self.discriminator)]

    def generate(self, n: int) -> torch.Tensor:
        return self.decode(*self.sample_codes(n))

    def train_iteration(self, batch) -> None:
        x = batch[0]
        opt_g, opt_d = self.optimizers()
        z, category, cont = self.sample_codes(x.shape[0])
        fake = self.decode(z, category, cont)
        real_logit, _, _ = self.heads(x)
        fake_logit, cat_logits, cont_pred = self.heads(fake.detach())
        mi_d = self.info_loss(cat_logits, cont_pred, category, cont)
        d_loss = F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit)) + \
            F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit)) + self.hparams.info_weight * mi_d
        self.update(opt_d, d_loss, "discriminator loss", "lower model.lr")
        gen_logit, cat_logits, cont_pred = self.heads(fake)
        mi_g = self.info_loss(cat_logits, cont_pred, category, cont)
        g_loss = F.binary_cross_entropy_with_logits(gen_logit, torch.ones_like(gen_logit)) + self.hparams.info_weight * mi_g
        self.update(opt_g, g_loss, "generator loss", "lower model.g_lr")
        accuracy = (cat_logits.argmax(1) == category).float().mean()
        self.log_diagnostics({"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), "mi_loss": mi_g.detach(),
                              "code_accuracy": accuracy.detach()}, prog_bar=("mi_loss",))

    def configure_optimizers(self):
        betas = (self.hparams.beta1, 0.999)
        # Chen et al. (2016), appendix: learning rate 1e-3 for G and 2e-4 for D
        return (self.adam(self.generator.parameters(), self.hparams.g_lr, betas),
                self.adam(self.discriminator.parameters(), self.hparams.lr, betas))
