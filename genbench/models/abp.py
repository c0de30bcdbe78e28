"""ABP — the generator learned by alternating back-propagation (Han, Lu, Zhu, Wu, AAAI 2017).

    X = g(h; α) + ε,  h ~ N(0, I_d),  ε ~ N(0, σ²I)

Inferential back-propagation: Langevin on the posterior, −log p(h | X) = ‖h‖²/2 + ‖X − g(h)‖²/(2σ²),
warm-started from the latent vector kept for each training image (the official per-example memory).
Learning back-propagation: one Adam step on α minimising mean_i ‖X_i − g(h_i)‖²/(2σ²).
"""

from __future__ import annotations

import torch
from torch import nn

from genbench.errors import GenbenchError
from genbench.models.base import MODELS, GenerativeModel
from genbench.samplers.langevin import LangevinConfig, frozen, langevin, latent_posterior_energy
from genbench.models.nets import build_generator, resolve_net_options

LATENT_HINT = "lower model.latent_langevin.step_size or model.lr"
#: inferential back-propagation: 30 Langevin steps on h per iteration, δ = 0.1 (official TF code)
LATENT_LANGEVIN = {"n_steps": 30, "step_size": 0.1}


def infer_latent(generator: nn.Module, h0: torch.Tensor, x: torch.Tensor, sigma: float, config: LangevinConfig,
                 trace: bool = False, mask: torch.Tensor | None = None):
    """Langevin on p(h | X) from ``h0`` with α frozen → (h, diagnostics)."""
    with frozen(generator):
        return langevin(h0, latent_posterior_energy(generator, x, sigma, mask), config, trace=trace, what="h",
                        hint=LATENT_HINT)


def reconstruction_loss(generator: nn.Module, h: torch.Tensor, target: torch.Tensor, sigma: float,
                        mask: torch.Tensor | None = None) -> torch.Tensor:
    """mean over examples of ‖M ⊙ (X − g(h))‖²/(2σ²) (summed over pixels; M = 1 without a mask): the generator's
    learning objective, on the observed pixels only when the training images are corrupted."""
    residual = target - generator(h)
    if mask is not None:
        residual = residual * mask
    return residual.flatten(1).pow(2).sum(dim=1).mean() / (2.0 * sigma**2)


@MODELS.register("abp")
class ABP(GenerativeModel):
    """The ABP generator ("Algorithm G" of the scene table) as a LightningModule. It also learns from corrupted
    images (``data.corruption``, the recovery table): inference and learning then see the intact pixels only.

    Args:
        latent_dim: d (official 100).
        sigma: σ of the observation noise (official 0.3).
        latent_langevin: Langevin on h per iteration (steps, δ; official δ = 0.1 in TF, 0.3 in MatConvNet).
        persistent_latents: warm-start from (and write back to) one latent vector per training image.
        num_train: number of training images (size of the latent memory; set by the harness).
        lr, beta1: Adam on α (official 1e-4, 0.5).
        generator_net: options of the generator net.
    """

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        arch: str = "conv",
        latent_dim: int = 100,
        sigma: float = 0.3,
        latent_langevin: dict | None = None,
        persistent_latents: bool = True,
        num_train: int = 0,
        lr: float = 1e-4,
        beta1: float = 0.5,
        generator_net: dict | None = None,
        bn_sampling: str = "batch",
    ) -> None:
        super().__init__(image_size, channels, arch, bn_sampling=bn_sampling)
        self.save_hyperparameters()
        self.automatic_optimization = False
        if sigma <= 0:
            raise GenbenchError(f"sigma must be positive, got {sigma}")
        if persistent_latents and num_train < 1:
            raise GenbenchError("abp with persistent_latents needs num_train (the number of training images)")
        self.latent_config = LangevinConfig.from_dict(latent_langevin or LATENT_LANGEVIN, "model.latent_langevin")
        self.generator = build_generator(arch, latent_dim, image_size, channels, generator_net)
        self.register_buffer("latents", torch.randn(num_train if persistent_latents else 0, latent_dim))

    learns_from_corrupted_data = True
    completion = "masked-posterior"

    @classmethod
    def resolve_nested(cls, options: dict) -> dict:
        options["latent_langevin"] = LangevinConfig.from_dict(options.get("latent_langevin") or LATENT_LANGEVIN,
                                                              "model.latent_langevin").to_dict()
        if isinstance(options.get("generator_net"), (dict, type(None))):
            options["generator_net"] = resolve_net_options("generator", options.get("arch", "conv"), options.get("generator_net"))
        return options

    def generate(self, n: int) -> torch.Tensor:
        return self.generator(torch.randn(n, self.hparams.latent_dim, device=self.device))

    def training_latents(self, index: torch.Tensor, num_images: int) -> torch.Tensor:
        """The latent vectors h learned for training images ``index`` of a training set of ``num_images`` (the
        persistent chains, where the model kept one per image of that set), else the prior's mean, zeros."""
        if self.latents.shape[0] == num_images:
            return self.latents[index]
        return torch.zeros(len(index), self.hparams.latent_dim, device=self.latents.device)

    def train_iteration(self, batch) -> None:
        x, _, index, *observed = batch  # corrupted training images come with their mask of intact pixels
        mask = observed[0] if observed else None
        optimizer = self.optimizers()
        if self.hparams.persistent_latents:
            h0 = self.latents[index]
        else:
            h0 = torch.randn(x.shape[0], self.hparams.latent_dim, device=self.device)
        h, diag = infer_latent(self.generator, h0, x, self.hparams.sigma, self.latent_config, trace=True, mask=mask)
        if self.hparams.persistent_latents:
            self.latents[index] = h
        loss = reconstruction_loss(self.generator, h, x, self.hparams.sigma, mask)
        self.update(optimizer, loss, "generator reconstruction loss", "lower model.lr")
        pixels = x[0].numel() if mask is None else mask.expand_as(x).flatten(1).sum(dim=1).mean()
        mse = loss.detach() * 2 * self.hparams.sigma**2 / pixels
        self.log_diagnostics({"recon_loss": loss.detach(), "recon_mse": mse,
                              "latent_energy_end": diag.energy[-1] if diag.energy else float("nan"),
                              "latent_grad_norm": sum(diag.grad_norm) / max(1, len(diag.grad_norm))},
                             prog_bar=("recon_mse",))

    def configure_optimizers(self):
        return self.adam(self.generator.parameters(), self.hparams.lr, (self.hparams.beta1, 0.999))
