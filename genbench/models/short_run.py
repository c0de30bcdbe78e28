"""Short-run MCMC EBM (Nijkamp, Hill, Zhu, Wu; NeurIPS 2019), as the official ``train_cifar10_minimal.py``
(enijkamp/short_run @ d779e9a) runs it: the descriptor's learning with chains that start from uniform noise at every
iteration and run K non-convergent steps

    x ← x + ∂f/∂x + 0.01·N(0, I),   K = 100,   x₀ ~ U(−1, 1)

(genbench's Langevin with δ = √2, so that δ²/2 = 1, and the noise decoupled at 0.01), no Gaussian reference, no
normalisation in f, no energy penalty, data noise 0.03 on every observed batch, Adam 1e-4 / β = (0.9, 0.999), 64
chains (the batch). f: conv 3×3/1 → 64, 4×4/2 → 128, 4×4/2 → 256, 4×4/2 → 512 (leaky ReLU 0.2), conv 4×4 valid → 1,
PyTorch's default initialisation. Where genbench differs: observed batches are an epoch's shuffle, not drawn with
replacement.
"""

from __future__ import annotations

import math

from genbench.models.base import MODELS
from genbench.models.descriptor import Descriptor

#: K = 100 steps of x ← x + ∂f/∂x + 0.01·N: δ²/2 = 1 and the noise decoupled from δ
SHORT_RUN_LANGEVIN = {"n_steps": 100, "step_size": math.sqrt(2.0), "noise_scale": 0.01}
#: the official net (n_f = 64)
SHORT_RUN_NET = {"widths": [64, 128, 256, 512], "kernels": [3, 4, 4, 4], "strides": [1, 2, 2, 2], "n_out": 1,
                 "init_std": None}


@MODELS.register("short-run")
class ShortRun(Descriptor):
    """The short-run EBM: the descriptor with the official short-run recipe as its defaults (see the module)."""

    langevin_defaults = SHORT_RUN_LANGEVIN
    net_defaults = SHORT_RUN_NET

    def __init__(self, chain_init: str = "uniform", ref_std: float | None = None, lr: float = 1e-4, beta1: float = 0.9,
                 data_noise: float = 0.03, num_chains: int | None = None, **kwargs) -> None:
        super().__init__(chain_init=chain_init, ref_std=ref_std, lr=lr, beta1=beta1, data_noise=data_noise,
                         num_chains=num_chains, **kwargs)
