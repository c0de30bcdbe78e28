"""The descriptor's own algorithm (Xie, Lu, Zhu, Wu, ICML 2016, "Algorithm D"), with the group's MatConvNet settings
for objects (enijkamp/coopnet @ 5f60646: ``frame_config.m`` 'object', ``train_model_dual.m``, the descriptor half of
``process_epoch_dual.m``): 36 persistent synthesized images, revised every iteration by T = 10 Langevin steps

    Y ← Y + (δ²/2)·(∂f/∂Y − Y/s²) + δ·N(0, I),   δ = 0.005, s = 0.016,

and θ learned by SGD with momentum 0.5 on the log-likelihood gradient, per layer l (the ``MatConvNetSGD`` optimiser):

    g_l = (mean_data ∂f/∂θ_l − mean_synth ∂f/∂θ_l) / (positions of layer l's output),   capped: max |g_l| ≤ 8
    m_l ← 0.5·m_l − 1e-4·θ_l (weights, not biases) + g_l,   θ_l ← θ_l + γ_t·r_l·m_l

with γ_t = 0.07 decaying log-uniformly to 0.0007 over the run in 80 equal stages (``logspace(-2, -4, 80)·100``) and
r_l the layer's factor (1, 0.5, 0.2857 for the three layers) times 1 for weights, 2 for biases. f is the MatConvNet
object net (``convNet_object.m``, ``MatConvNetObjectNet``). Where genbench differs: the synthesized images start from
N(0, s²); the schedule's stages are cut from the run's iterations (its ``trainer.max_iterations``, or epochs × batches,
read at the start of training) where the official code holds each stage for whole epochs (its ``nIteration`` counts
epochs). With the CoopNets descriptor's net instead (leaky ReLU, 64/128/256 channels, 100 outputs; no per-layer
factors) this update diverges at once on the 32×32 scenes: the energies reach 10⁸ by iteration 20 and 10³⁰ by 500.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genbench.errors import GenbenchError
from genbench.models.base import MODELS
from genbench.models.descriptor import Descriptor

#: T = 10 steps of δ = 0.005 (the 'object' setting)
ORIGINAL_LANGEVIN = {"n_steps": 10, "step_size": 0.005}


def matconvnet_rate(iteration: int, total: int, stages: int = 80) -> float:
    """The official schedule's factor at ``iteration`` of ``total``: ``logspace(-2, -4, stages)·100`` (1 → 0.01), each
    value held for ⌊total/stages⌋ iterations, the last one after."""
    per_stage = max(1, total // stages)
    stage = min(iteration // per_stage, stages - 1)
    return 10.0 ** (-2.0 * stage / (stages - 1))


class MatConvNetSGD(torch.optim.Optimizer):
    """The MatConvNet descriptor update (see the module docstring). ``positions``: each parameter's divisor (the spatial
    positions of its layer's output); ``decay``: each parameter's weight-decay factor (1 for weights, 0 for biases);
    ``rates``: each parameter's learning-rate factor (1 for weights, 2 for biases: MatConvNet's ``learningRate [1 2]``).
    ``step`` takes the gradients of the *loss* mean f(synth) − mean f(data), i.e. minus the log-likelihood gradient."""

    def __init__(self, params, lr: float, momentum: float, weight_decay: float, cap: float,
                 positions: dict[torch.nn.Parameter, int], decay: dict[torch.nn.Parameter, float],
                 rates: dict[torch.nn.Parameter, float]) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "cap": cap})
        self.positions, self.decay, self.rates = positions, decay, rates
        self.rate = 1.0  # the schedule's factor, set by the model every iteration

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = -p.grad / self.positions[p]  # ascent direction of the log-likelihood, per layer position
                largest = g.abs().max()
                if largest > group["cap"]:
                    g = g / largest * group["cap"]
                state = self.state[p]
                m = state.setdefault("momentum", torch.zeros_like(p))
                m.mul_(group["momentum"]).add_(p, alpha=-group["weight_decay"] * self.decay[p]).add_(g)
                p.add_(m, alpha=group["lr"] * self.rate * self.rates[p])


class MatConvNetObjectNet(nn.Module):
    """f(Y; θ) of the group's MatConvNet object descriptor (``convNet_object.m``): conv 4×4/2 with padding 2 → 64, ReLU,
    conv 2×2/1 with padding 2 → 128, ReLU, then a conv whose kernel covers the whole map → 2 outputs, summed. Weights
    N(0, 0.01²), biases 0 (``add_cnn_block``'s Gaussian initialisation); ``layer_rates``: each layer's learning-rate
    factor (its ``add_cnn_block`` argument), read by ``MatConvNetSGD`` through ``rates``."""

    def __init__(self, image_size: int = 64, channels: int = 3, widths: tuple[int, int] = (64, 128), n_out: int = 2,
                 layer_rates: tuple[float, float, float] = (1.0, 0.5, 0.2857), init_std: float = 0.01) -> None:
        super().__init__()
        if len(widths) != 2 or len(layer_rates) != 3:
            raise GenbenchError(f"the MatConvNet object net has two conv widths and three layer rates, got {widths} "
                                f"and {layer_rates}")
        first = nn.Conv2d(channels, widths[0], 4, 2, 2)
        second = nn.Conv2d(widths[0], widths[1], 2, 1, 2)
        size = (image_size + 4 - 4) // 2 + 1 + 4 - 2 + 1  # the map after both convs (64 → 33 → 36; 32 → 17 → 20)
        top = nn.Conv2d(widths[1], n_out, size)
        self.net = nn.Sequential(first, nn.ReLU(), second, nn.ReLU(), top)
        for conv in (first, second, top):
            nn.init.normal_(conv.weight, 0.0, init_std)
            nn.init.zeros_(conv.bias)
        self.rated_layers = [(conv, rate) for conv, rate in zip((first, second, top), layer_rates)]

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.net(y).flatten(1).sum(dim=1)

    def rate_of(self, p: nn.Parameter) -> float:
        return next(rate for conv, rate in self.rated_layers if any(p is q for q in conv.parameters()))


def layer_positions(net: nn.Module, image_size: int, channels: int) -> dict[nn.Parameter, int]:
    """Each parameter of ``net``'s convolutions and linear layers (a parametrized weight's original too) → the spatial
    positions of that layer's output (1 for a linear layer), by one forward pass of a zero image on the net's device."""
    sizes: dict[nn.Module, int] = {}
    hooks = [m.register_forward_hook(lambda module, _, out: sizes.__setitem__(module, math.prod(out.shape[2:]) or 1))
             for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    device = next(net.parameters()).device
    try:
        with torch.no_grad():
            net(torch.zeros(1, channels, image_size, image_size, device=device))
    finally:
        for hook in hooks:
            hook.remove()
    return {p: sizes[m] for m in sizes for p in m.parameters()}


@MODELS.register("descriptor-original")
class DescriptorOriginal(Descriptor):
    """Algorithm D of the descriptor paper with the group's MatConvNet optimiser (see the module).

    Args (beyond the descriptor's): momentum, weight_decay, grad_cap: the MatConvNet update's (0.5, 1e-4, 8); ``lr`` is
    its γ (0.07), decayed by the official schedule over the run.
    """

    langevin_defaults = ORIGINAL_LANGEVIN
    energy_net_class = MatConvNetObjectNet

    def __init__(self, chain_init: str = "persistent", num_chains: int | None = 36, buffer_size: int = 36,
                 reinit_prob: float = 0.0, lr: float = 0.07, momentum: float = 0.5, weight_decay: float = 1e-4,
                 grad_cap: float = 8.0, eval_steps: int | None = 1500, **kwargs) -> None:
        if chain_init != "persistent":
            raise GenbenchError("descriptor-original keeps persistent synthesized images (chain_init: persistent)")
        super().__init__(chain_init=chain_init, num_chains=num_chains, buffer_size=buffer_size, reinit_prob=reinit_prob,
                         lr=lr, eval_steps=eval_steps, **kwargs)
        self.save_hyperparameters()
        if grad_cap <= 0 or not 0 <= momentum < 1 or weight_decay < 0:
            raise GenbenchError(f"descriptor-original needs grad_cap > 0, momentum in [0, 1) and weight_decay ≥ 0, got "
                                f"{grad_cap}, {momentum}, {weight_decay}")
        self.total_iterations: int | None = None

    def configure_optimizers(self):
        net = self.energy_net
        positions = layer_positions(net, self.image_size, self.channels)
        biases = {p for name, p in net.named_parameters() if name.endswith("bias")}
        decay = {p: 0.0 if p in biases else 1.0 for p in net.parameters()}
        rates = {p: (2.0 if p in biases else 1.0) * net.rate_of(p) for p in net.parameters()}
        return MatConvNetSGD(net.parameters(), self.hparams.lr, self.hparams.momentum, self.hparams.weight_decay,
                             self.hparams.grad_cap, positions, decay, rates)

    def on_fit_start(self) -> None:
        """The run's length, for the learning-rate schedule: the iteration limit of the run, else epochs × batches."""
        super().on_fit_start()
        limits = [cb.max_iterations for cb in self.trainer.callbacks if isinstance(getattr(cb, "max_iterations", None), int)]
        total = min(limits) if limits else self.trainer.estimated_stepping_batches
        if not isinstance(total, (int, float)) or not math.isfinite(total):
            raise GenbenchError("descriptor-original decays its learning rate over the run: give trainer.max_iterations "
                                "or trainer.max_epochs")
        self.total_iterations = int(total)

    def train_iteration(self, batch) -> None:
        self.optimizers().optimizer.rate = matconvnet_rate(self.iteration, self.total_iterations or 1)
        super().train_iteration(batch)
