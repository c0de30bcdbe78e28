"""Deep directed generative models with energy-based probability estimation (Kim & Bengio, 2016,
arXiv 1606.03439).

The paper's energy: a Gaussian over the input, which holds the data's global mean and variance, and a
product of experts over bounded deep features φ(x) = tanh(net(x)), which holds its local structure,

    E(x) = ½ Σₚ ((xₚ − μₚ)/σₚ)² − Σᵢ softplus(wᵢᵀφ(x) + bᵢ)

with a mean μₚ and a scale σₚ = exp(sₚ) for every pixel learned with the rest (three of the authors' scripts,
taesupkim/dcgan_code ``energy_rbm_lsun_1``, ``_cifar10_1`` and ``_face_3``, learn Σₚ(gₚxₚ + bₚ)²; their other
scripts keep the experts alone or put the Gaussian on the features): the free energy of an RBM with
Gaussian visible units x and binary experts that see x through φ. ``input_gaussian=False`` keeps the
experts alone, E(x) = −Σᵢ softplus(wᵢᵀφ(x) + bᵢ) (bounded below since φ is bounded);

and a generator G trained against it:

    L_E = mean E(x_data) − mean E(G(h))                      (generator samples are the negatives)
    L_G = mean E(G(h)) − H(p_G),   H(p_G) ≈ Σ_BN Σ_channels ½ log(2πe γ²_channel)

with the generator's entropy estimated, as in the paper, from the scale parameters γ of its batch
normalisation layers (each unit a Gaussian of std γ after normalisation). An estimate from the variance of
a BatchNorm layer's *input* would do nothing: BatchNorm normalises that variance away.

Its learning diagnostics, logged every iteration: the energy gap f(data) − f(samples) = mean E(G(h)) − mean E(x_data)
(L_E's terms with the sign turned) and, since it has no chains, the mean norm ‖∂E/∂x‖ at the generator's samples: the
gradient through which L_G moves them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genbench.errors import GenbenchError
from genbench.models.base import MODELS, GenerativeModel
from genbench.models.nets import ConvGenerator, build_energy_net, resolve_net_options


def batchnorm_entropy(net: nn.Module, eps: float = 1e-8) -> torch.Tensor:
    """H ≈ Σ over the BatchNorm layers of ``net`` Σ_c ½ log(2πe γ_c²) (differentiable in γ)."""
    terms = [0.5 * torch.log(2 * math.pi * math.e * (m.weight.pow(2) + eps)).sum()
             for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine]
    return torch.stack(terms).sum() if terms else torch.zeros(())


class ExpertEnergy(nn.Module):
    """E(x) = ½ Σₚ ((xₚ − μₚ)/σₚ)² − Σᵢ softplus(wᵢᵀφ + bᵢ), φ = tanh(net(x)) flattened (every output of the feature
    net: its channels, or with a stationary net its channels at every position), ``n_experts`` experts (torch's
    Linear init, or ``expert_init_std``: w ~ N(0, std²), b = 0), a Gaussian over the input of shape ``input_shape``
    with μ = 0 and σ = 1 at the start; ``gaussian=False``: −Σᵢ softplus(wᵢᵀφ + bᵢ)."""

    def __init__(self, features: nn.Module, n_experts: int, input_shape: tuple[int, ...], gaussian: bool = True,
                 expert_init_std: float | None = None) -> None:
        super().__init__()
        self.features = features
        with torch.no_grad():  # every output of the feature net is a feature: a channel, or a channel at a position
            n_features = features.net(torch.zeros(1, *input_shape)).numel()
        self.experts = nn.Linear(n_features, n_experts)
        if expert_init_std is not None:
            nn.init.normal_(self.experts.weight, 0.0, expert_init_std)
            nn.init.zeros_(self.experts.bias)
        self.gaussian = gaussian
        if gaussian:
            self.input_mean = nn.Parameter(torch.zeros(input_shape))
            self.input_log_scale = nn.Parameter(torch.zeros(input_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phi = torch.tanh(self.features.net(x).flatten(1))
        experts = -F.softplus(self.experts(phi)).sum(dim=1)
        if not self.gaussian:
            return experts
        return 0.5 * ((x - self.input_mean) * torch.exp(-self.input_log_scale)).pow(2).flatten(1).sum(dim=1) + experts


@MODELS.register("kim-bengio")
class KimBengio(GenerativeModel):
    """Generator trained against a deep energy model, entropy from the batch-norm scales γ.

    Args:
        entropy_weight: weight of H(p_G) in the generator loss.
        n_features: bounded features φ(x) of the energy net; n_experts: experts wᵢ, bᵢ.
        input_gaussian: the paper's Gaussian term ½||(x − μ)/σ||² over the input (False: experts alone).
        energy_l2: L2 penalty on energies (stabiliser; 0 is off).
        net: options of the energy net (the descriptor net; ``stationary: true`` gives the experts every position
            of its last map, as the authors' scripts do with their 4×4 map).
        optimizer: ``adam`` (β1 = ``beta1``) or ``adagrad`` (the authors' scripts: energy 1e-3, generator 2e-3).
        g_lr: the generator's learning rate (None: ``lr``); energy_weight_decay: L2 weight decay of the energy's
            parameters (the scripts' 1e-5).
        latent_dist: ``normal`` N(0, I) or ``uniform`` U(−1, 1) (the scripts').
        bn_noise: N(0, bn_noise²) added before each of the generator's batch norms, in training and sampling (the
            scripts' 0.01).
        expert_init_std: the experts' init N(0, std²) with zero biases (the scripts' 0.01; None: torch's).
    """

    #: arguments added after rows were recorded, left out of the resolved config at these defaults
    added_at_neutral_default = {"optimizer": "adam", "g_lr": None, "energy_weight_decay": 0.0, "latent_dist": "normal",
                                "bn_noise": 0.0, "expert_init_std": None}

    completion = "latent-optimisation"

    def __init__(self, image_size: int = 64, channels: int = 3, latent_dim: int = 100, g_width: int = 64,
                 entropy_weight: float = 1.0, energy_l2: float = 0.0, lr: float = 2e-4, beta1: float = 0.5,
                 net: dict | None = None, n_features: int = 100, n_experts: int = 100, input_gaussian: bool = True,
                 bn_sampling: str = "running", optimizer: str = "adam", g_lr: float | None = None,
                 energy_weight_decay: float = 0.0, latent_dist: str = "normal", bn_noise: float = 0.0,
                 expert_init_std: float | None = None) -> None:
        super().__init__(image_size, channels, bn_sampling=bn_sampling)
        if optimizer not in ("adam", "adagrad"):
            raise GenbenchError(f"model.optimizer must be 'adam' or 'adagrad', got {optimizer!r}")
        if latent_dist not in ("normal", "uniform"):
            raise GenbenchError(f"model.latent_dist must be 'normal' or 'uniform', got {latent_dist!r}")
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = ConvGenerator(latent_dim, image_size, channels, g_width, kernel_size=4, act="relu", init_std=0.02,
                                       bn_noise=bn_noise)
        features = build_energy_net("conv", image_size, channels, self.net_options(net, n_features))
        self.energy_net = ExpertEnergy(features, n_experts, (channels, image_size, image_size), input_gaussian,
                                       expert_init_std)

    @staticmethod
    def net_options(net: dict | None, n_features: int) -> dict:
        """The energy net's options: the descriptor net with N(0, 0.02²) init and ``n_features`` outputs."""
        return {"init_std": 0.02, "n_out": n_features, **(net or {})}

    @classmethod
    def resolve_nested(cls, options: dict) -> dict:
        if isinstance(options.get("net"), (dict, type(None))):
            options["net"] = resolve_net_options("energy", "conv", cls.net_options(options.get("net"), options["n_features"]))
        return options

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        return self.energy_net(x)

    def entropy(self) -> torch.Tensor:
        return batchnorm_entropy(self.generator)

    def feature_nets(self):
        """The energy's deep feature net φ, run inside E(x)."""
        return [("energy net", self.energy_net.features, self.energy_net)]

    def latent(self, n: int) -> torch.Tensor:
        """h ~ N(0, I) or U(−1, 1) (``latent_dist``)."""
        if self.hparams.latent_dist == "uniform":
            return torch.rand(n, self.hparams.latent_dim, device=self.device) * 2 - 1
        return torch.randn(n, self.hparams.latent_dim, device=self.device)

    def generate(self, n: int) -> torch.Tensor:
        return self.generator(self.latent(n))

    def train_iteration(self, batch) -> None:
        x = batch[0]
        opt_g, opt_e = self.optimizers()
        fake = self.generator(self.latent(x.shape[0]))
        sample_grads: list[torch.Tensor] = []
        fake.register_hook(sample_grads.append)  # ∂L_G/∂x = ∂E/∂x / batch at each sample (the hook changes nothing)
        entropy = self.entropy()
        e_data, e_fake = self.energy(x), self.energy(fake.detach())
        e_loss = e_data.mean() - e_fake.mean()
        if self.hparams.energy_l2 > 0:
            e_loss = e_loss + self.hparams.energy_l2 * (e_data.pow(2).mean() + e_fake.pow(2).mean())
        self.update(opt_e, e_loss, "energy model loss", "lower model.lr or set model.energy_l2 > 0")
        g_loss = self.energy(fake).mean() - self.hparams.entropy_weight * entropy
        self.update(opt_g, g_loss, "generator loss", "lower model.lr")
        self.log_diagnostics({"energy_data": e_data.mean().detach(), "energy_fake": e_fake.mean().detach(),
                              "energy_gap": (e_fake.mean() - e_data.mean()).detach(),
                              "sample_grad_norm": sample_grads[0].flatten(1).norm(dim=1).mean() * x.shape[0],
                              "entropy": entropy.detach(), "g_loss": g_loss.detach()}, prog_bar=("energy_data", "energy_fake"))

    def configure_optimizers(self):
        hp = self.hparams
        g_lr = hp.lr if hp.g_lr is None else hp.g_lr
        if hp.optimizer == "adagrad":
            return (torch.optim.Adagrad(self.generator.parameters(), g_lr),
                    torch.optim.Adagrad(self.energy_net.parameters(), hp.lr, weight_decay=hp.energy_weight_decay))
        betas = (hp.beta1, 0.999)
        return (self.adam(self.generator.parameters(), g_lr, betas),
                self.adam(self.energy_net.parameters(), hp.lr, betas, weight_decay=hp.energy_weight_decay))
