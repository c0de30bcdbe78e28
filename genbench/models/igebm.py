"""The replay-buffer EBM of Du & Mordatch (IGEBM, NeurIPS 2019), as openai/ebm_code_release (@ 051850e) trains its
unconditional CIFAR-10 model (``train.py --num_steps=60 --batch_size=128 --step_lr=10.0 --proj_norm=0.01 --zero_kl
--replay_batch``), on images in [0, 1] (mapped from the table's [-1, 1] inside the model):

- energy E(x) = −f(x), f a ResNet with spectral norm on its convolutions;
- chains from the ``replay`` sampler (``genbench.samplers.replay``): 95 % from a buffer of 10,000 past chains, 5 % from
  U(0, 1); 60 steps of x ← clip(x + ε − 10·clip(∂E/∂x, ±0.01), 0, 1), ε ~ N(0, 0.005²) added before the gradient;
- loss mean E(data) − mean E(x̃) + 1·(mean E(data)² + mean E(x̃)²) (the ``cd`` objective with the L2 penalty), Adam 3e-4,
  β = (0, 0.999), batch 128.

The net follows the official ``ResNet32`` (the repository's smaller CIFAR net; ``--large_model`` deepens it): conv 3×3,
six residual blocks (two 3×3 convs with a leaky ReLU between them, the second initialised near zero, a 3×3 conv on the
bypass where the width changes; 2× average-pool after the first, third and fifth), ReLU, a sum over positions and a
dense layer to one number. Where genbench differs: PyTorch's spectral norm (one power iteration per call) instead of
the official lower-bounded variant, no per-channel input bias and output scale in the blocks (the official convs carry
them, at 0 and 1 initially), PyTorch's default initialisation of the other convs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from genbench.models.base import MODELS
from genbench.models.descriptor import Descriptor, langevin_stats
from genbench.samplers.langevin import check_clamp_saturation, frozen
from genbench.samplers.replay import replay_langevin

#: 60 steps of step_lr λ = δ²/2 = 10, the gradient clipped to ±0.01 per pixel, noise 0.005, pixels kept in [0, 1]
IGEBM_LANGEVIN = {"n_steps": 60, "step_size": 20.0**0.5, "noise_scale": 0.005, "grad_clip": 0.01,
                  "pixel_clamp": [0.0, 1.0]}
LANGEVIN_HINT = "lower model.langevin.step_size or model.lr"


class ResidualBlock(nn.Module):
    """conv 3×3 → leaky ReLU → conv 3×3 (initialised near zero), plus the input (through a 3×3 conv where the width
    changes), then 2× average pooling (``downsample``) and a leaky ReLU."""

    def __init__(self, width_in: int, width: int, downsample: bool, spectral_norm: bool) -> None:
        super().__init__()
        sn = _spectral_norm if spectral_norm else (lambda m: m)
        self.c1 = sn(nn.Conv2d(width_in, width, 3, 1, 1))
        second = nn.Conv2d(width, width, 3, 1, 1)
        nn.init.normal_(second.weight, 0.0, 1e-10)  # the official zero-initialised second conv
        self.c2 = sn(second)
        self.bypass = sn(nn.Conv2d(width_in, width, 3, 1, 1)) if width_in != width else None
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.c2(F.leaky_relu(self.c1(x), 0.2)) + (self.bypass(x) if self.bypass is not None else x)
        if self.downsample:
            out = F.avg_pool2d(out, 2)
        return F.leaky_relu(out, 0.2)


class ResNetEnergy(nn.Module):
    """f(x) of the official ``ResNet32``: conv 3×3 → ``width``, blocks of widths w, w, 2w, 2w, 2w, 2w (down-sampling
    after the first, third and fifth), ReLU, sum over positions, dense → 1 (no spectral norm on the dense layer)."""

    def __init__(self, image_size: int = 32, channels: int = 3, width: int = 128, spectral_norm: bool = True) -> None:
        super().__init__()
        sn = _spectral_norm if spectral_norm else (lambda m: m)
        self.stem = sn(nn.Conv2d(channels, width, 3, 1, 1))
        plan = [(width, width, True), (width, width, False), (width, 2 * width, True), (2 * width, 2 * width, False),
                (2 * width, 2 * width, True), (2 * width, 2 * width, False)]
        self.blocks = nn.Sequential(*(ResidualBlock(a, b, down, spectral_norm) for a, b, down in plan))
        self.dense = nn.Linear(2 * width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.blocks(F.leaky_relu(self.stem(x), 0.2)))
        return self.dense(h.sum(dim=(2, 3))).squeeze(1)


@MODELS.register("igebm")
class IGEBM(Descriptor):
    """The replay-buffer EBM with the official CIFAR-10 recipe as its defaults (see the module)."""

    langevin_defaults = IGEBM_LANGEVIN
    energy_net_class = ResNetEnergy

    def __init__(self, chain_init: str = "replay", ref_std: float | None = None, lr: float = 3e-4, beta1: float = 0.0,
                 energy_l2: float = 1.0, buffer_size: int = 10_000, reinit_prob: float = 0.05,
                 num_chains: int | None = None, **kwargs) -> None:
        super().__init__(chain_init=chain_init, ref_std=ref_std, lr=lr, beta1=beta1, energy_l2=energy_l2,
                         buffer_size=buffer_size, reinit_prob=reinit_prob, num_chains=num_chains, **kwargs)

    @staticmethod
    def to_unit(x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] → [0, 1], the official pixel range."""
        return (x + 1.0) / 2.0

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
                                            "lower model.langevin.step_size or model.lr")
        stats = self.descriptor_update(x, x_synth, self.optimizers())
        self.log_diagnostics({**stats, **langevin_stats(diag, "langevin"), **saturation}, prog_bar=("energy_gap",))

    def generate(self, n: int) -> torch.Tensor:
        return super().generate(n) * 2.0 - 1.0
