"""The replay-buffer EBM of Du & Mordatch (IGEBM, NeurIPS 2019), as openai/ebm_code_release (@ 051850e) trains its
unconditional CIFAR-10 model (``train.py --num_steps=60 --batch_size=128 --step_lr=10.0 --proj_norm=0.01 --zero_kl
--replay_batch``), on images in [0, 1] (mapped from the table's [-1, 1] inside the model):

- energy E(x) = −f(x), f a ResNet with spectral norm on its convolutions;
- chains from the ``replay`` sampler (``genbench.samplers.replay``): 95 % from a buffer of 10,000 past chains, 5 % from
  U(0, 1); 60 steps of x ← clip(x + ε − 10·clip(∂E/∂x, ±0.01), 0, 1), ε ~ N(0, 0.005²) added before the gradient;
- loss mean E(data) − mean E(x̃) + 1·(mean E(data)² + mean E(x̃)²) (the ``cd`` objective with the L2 penalty), Adam 3e-4,
  β = (0, 0.999), batch 128.

Its Adam is the repository's ``custom_adam``: each gradient element is first clipped to ±(3·√(v̂) + 0.1), v̂ the
bias-corrected second moment so far (``ClippedAdam``). Spectral norm (one power iteration per training forward)
divides each conv's weight by its largest singular value σ; the second conv of each block, initialised near zero, is
divided by max(σ, 1) instead (the official lower bound), so it starts near zero.

The net is the official ``ResNet32`` — the command above adds ``--large_model`` (``ResNet32Large``: nine blocks to 512
channels, dropout 0.5 in each), cut here for 2 cores —: conv 3×3, six residual blocks (two bias-free 3×3 convs with a
leaky ReLU between them, a 3×3 conv on the bypass where the width changes; 2× average-pool after the first, third and
fifth), ReLU, a sum over positions and a Xavier-initialised dense layer to one number. Where genbench differs beyond
that: no per-channel input bias and output scale in the blocks (the official convs carry them, at 0 and 1 initially),
and no dequantisation noise on the data (the official loader adds U(0, 1/256)). The convs' random-normal weights are
scaled as He's (the official draws N(0, 1)); the spectral norm divides the scale out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from genbench.models.base import MODELS
from genbench.models.descriptor import Descriptor, langevin_stats
from genbench.samplers.langevin import check_clamp_saturation, frozen
from genbench.samplers.replay import replay_langevin

#: 60 steps of step_lr λ = δ²/2 = 10, the gradient clipped to ±0.01 per pixel, noise 0.005, pixels kept in [0, 1]
IGEBM_LANGEVIN = {"n_steps": 60, "step_size": 20.0**0.5, "noise_scale": 0.005, "grad_clip": 0.01,
                  "pixel_clamp": [0.0, 1.0]}
LANGEVIN_HINT = "lower model.langevin.step_size or model.lr"


class SpectralNorm(nn.Module):
    """Parametrization W → W / σ(W) (``lower_bound``: W / max(σ, 1)), σ the largest singular value of W as a matrix of
    its output rows, estimated by one power iteration per training forward (u, v kept as buffers)."""

    def __init__(self, weight: torch.Tensor, lower_bound: bool = False) -> None:
        super().__init__()
        rows = weight.shape[0]
        self.lower_bound = lower_bound
        u = F.normalize(torch.randn(rows), dim=0, eps=1e-12)
        self.register_buffer("u", u)
        self.register_buffer("v", F.normalize(weight.detach().flatten(1).t() @ u, dim=0, eps=1e-12))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        matrix = weight.flatten(1)
        if self.training:
            with torch.no_grad():
                self.v.copy_(F.normalize(matrix.t() @ self.u, dim=0, eps=1e-12))
                self.u.copy_(F.normalize(matrix @ self.v, dim=0, eps=1e-12))
        sigma = self.u.clone() @ matrix @ self.v.clone()  # copies: the next forward updates u, v in place
        return weight / (torch.clamp(sigma, min=1.0) if self.lower_bound else sigma)


def normed(conv: nn.Conv2d, spectral_norm: bool, lower_bound: bool = False) -> nn.Conv2d:
    if spectral_norm:
        parametrize.register_parametrization(conv, "weight", SpectralNorm(conv.weight, lower_bound))
    return conv


class ClippedAdam(torch.optim.Adam):
    """Adam after clipping each gradient element to ±(3·√(v / (1 − β₂ᵗ)) + 0.1), v the second moment before this step and
    t this step's number (the repository's ``custom_adam._apply_dense``)."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta2 = group["betas"][1]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.get(p, {})
                t = int(state["step"]) + 1 if "step" in state else 1
                v = state.get("exp_avg_sq")
                bound = 0.1 if v is None else 3 * torch.sqrt(v / (1 - beta2**t)) + 0.1
                p.grad.copy_(torch.maximum(torch.minimum(p.grad, torch.as_tensor(bound)), -torch.as_tensor(bound)))
        return super().step(closure)


class ResidualBlock(nn.Module):
    """conv 3×3 → leaky ReLU → conv 3×3 (initialised near zero, its spectral norm lower-bounded), plus the input
    (through a 3×3 conv where the width changes), then 2× average pooling (``downsample``) and a leaky ReLU."""

    def __init__(self, width_in: int, width: int, downsample: bool, spectral_norm: bool) -> None:
        super().__init__()
        self.c1 = normed(conv3x3(width_in, width), spectral_norm)
        second = conv3x3(width, width)
        nn.init.normal_(second.weight, 0.0, 1e-10)  # the official near-zero second conv
        self.c2 = normed(second, spectral_norm, lower_bound=True)
        self.bypass = normed(conv3x3(width_in, width), spectral_norm) if width_in != width else None
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.c2(F.leaky_relu(self.c1(x), 0.2)) + (self.bypass(x) if self.bypass is not None else x)
        if self.downsample:
            out = F.avg_pool2d(out, 2)
        return F.leaky_relu(out, 0.2)


def conv3x3(width_in: int, width: int) -> nn.Conv2d:
    """A bias-free 3×3 conv, "SAME" padding, He-normal weights (their scale is divided out by the spectral norm)."""
    conv = nn.Conv2d(width_in, width, 3, 1, 1, bias=False)
    nn.init.kaiming_normal_(conv.weight, nonlinearity="leaky_relu", a=0.2)
    return conv


class ResNetEnergy(nn.Module):
    """f(x) of the official ``ResNet32``: conv 3×3 → ``width``, blocks of widths w, w, 2w, 2w, 2w, 2w (down-sampling
    after the first, third and fifth), ReLU, sum over positions, dense → 1 (no spectral norm on the dense layer)."""

    def __init__(self, image_size: int = 32, channels: int = 3, width: int = 128, spectral_norm: bool = True) -> None:
        super().__init__()
        self.stem = normed(conv3x3(channels, width), spectral_norm)
        plan = [(width, width, True), (width, width, False), (width, 2 * width, True), (2 * width, 2 * width, False),
                (2 * width, 2 * width, True), (2 * width, 2 * width, False)]
        self.blocks = nn.Sequential(*(ResidualBlock(a, b, down, spectral_norm) for a, b, down in plan))
        self.dense = nn.Linear(2 * width, 1)
        nn.init.xavier_uniform_(self.dense.weight)
        nn.init.zeros_(self.dense.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.blocks(F.leaky_relu(self.stem(x), 0.2)))
        return self.dense(h.sum(dim=(2, 3))).squeeze(1)


@MODELS.register("igebm")
class IGEBM(Descriptor):
    """The replay-buffer EBM with the official CIFAR-10 recipe as its defaults (see the module)."""

    centring = False
    #: its chains clip to [0, 1] and step by the clipped gradient (``replay_langevin``): the descriptor's prior
    #: completion (Langevin on [-1, 1] pixels) is not its sampler, so it has none
    completion = None

    langevin_defaults = IGEBM_LANGEVIN
    energy_net_class = ResNetEnergy

    def __init__(self, chain_init: str = "replay", ref_std: float | None = None, lr: float = 3e-4, beta1: float = 0.0,
                 energy_l2: float = 1.0, buffer_size: int = 10_000, reinit_prob: float = 0.05,
                 num_chains: int | None = None, **kwargs) -> None:
        super().__init__(chain_init=chain_init, ref_std=ref_std, lr=lr, beta1=beta1, energy_l2=energy_l2,
                         buffer_size=buffer_size, reinit_prob=reinit_prob, num_chains=num_chains, **kwargs)

    def configure_optimizers(self):
        return ClippedAdam(self.energy_net.parameters(), lr=self.hparams.lr, betas=(self.hparams.beta1, self.hparams.beta2))

    @staticmethod
    def to_unit(x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] → [0, 1], the official pixel range."""
        return (x + 1.0) / 2.0

    def feature_nets(self):
        """The energy net, on the image in [0, 1] (the range it learned on)."""
        return [("energy net", self.energy_net, lambda x: self.f(self.to_unit(x)))]

    def revise(self, x0: torch.Tensor, config=None, trace: bool = False, sampling: bool = False):
        """The IGEBM chain from ``x0`` (in [0, 1]) with θ frozen → (x̃, diagnostics)."""
        with frozen(self.energy_net):
            return replay_langevin(x0, lambda x: -self.f(x), config or self.langevin_config, trace=trace, what="x",
                                   hint=self.sampling_hint() if sampling else LANGEVIN_HINT)

    def train_iteration(self, batch) -> None:
        x = self.to_unit(self.observed(batch))
        n = self.hparams.num_chains or x.shape[0]
        x_synth, diag = self.synthesize(n, trace=True, x_data=x)
        saturation = check_clamp_saturation(x_synth, x, self.langevin_config.pixel_clamp,
                                            "lower model.langevin.step_size or model.lr", self.iteration)
        stats = self.descriptor_update(x, x_synth, self.optimizers())
        self.log_diagnostics({**stats, **langevin_stats(diag, "langevin"), **saturation}, prog_bar=("energy_gap",))

    def generate(self, n: int) -> torch.Tensor:
        return super().generate(n) * 2.0 - 1.0
