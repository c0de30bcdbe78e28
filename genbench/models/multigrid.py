"""The multi-grid EBM and its contrastive-divergence family (Gao, Lu, Zhou, Zhu, Wu; CVPR 2018), as the official
TensorFlow code (ruiqigao/Multigrid_learning @ 968b842) runs it.

One descriptor per grid s: an EBM p_s(X; θ_s) ∝ exp f_s(X; θ_s) on s×s images of raw pixel values in [0, 255] (no
Gaussian reference). Its Langevin, as coded, has no noise term and clips to the pixel range:

    X ← clip(X + (δ²/2)·∂f_s/∂X, 0, 255),   T steps per grid (official T = 90, δ = 0.3)

and each grid learns on its own, θ_s ← Adam on  mean f_s(X̃_s) − mean f_s(D_s(X_data))  (lr 0.3, β1 0.5), D_s the block
average onto grid s. The members of the family differ only in where the chains start (their sampler,
``genbench.samplers.multigrid``):

- ``multigrid`` (multi-grid CD): from the 1×1 average of each observed image, up-sampled to the first grid; each
  grid's result, up-sampled, starts the next (grids 1 → 4 → 16 → 64 in the official code);
- ``single-grid-cd``: at the observed images, T steps, one grid (the image size);
- ``one-step-cd``: at the observed images, one step, one grid.

The images keep the table's preprocessing ([-1, 1]); the model maps them to [0, 255] and its samples back. Where the
paper and the code differ the code is followed: T = 90 (the project page says 30), no noise in the Langevin (the paper
writes Langevin dynamics with noise), the L2 weight decay of 1e-4 built but never added to the loss (so not applied),
BatchNorm with the statistics of each batch always (chains of one batch are coupled through it; data and synthesized
images are normalised separately, each call with its own batch), Xavier-uniform initialisation.

Where genbench differs from the code: a 5×5 stride-2 convolution pads 2 pixels on each side where TensorFlow's "SAME"
pads 1 before and 2 after (the same output size, shifted by one pixel); the official code draws samples only inside
training, in batches of 100, so the evaluation chains here are normalised by the statistics of each evaluation chunk
(``bench.sample_batch_size`` chains, the last chunk the remainder), recorded with the row's settings.
"""

from __future__ import annotations

import torch
from torch import nn

from genbench.errors import GenbenchError
from genbench.models.base import COMPLETIONS, MODELS, GenerativeModel
from genbench.models.completion import CompletionSettings, fill, observed_mean
from genbench.models.nets import same_conv
from genbench.samplers import make_sampler
from genbench.samplers.grids import check_grids, coarse_to_fine, default_grids, downsample, upsample
from genbench.samplers.langevin import LangevinConfig, check_clamp_saturation, frozen, langevin

#: the raw pixel range the official code samples in
PIXEL_MAX = 255.0
#: the official Langevin of every grid: T = 90 steps of δ = 0.3, no noise, clipped to [0, 255]
GRID_LANGEVIN = {"n_steps": 90, "step_size": 0.3, "noise": False, "pixel_clamp": [0.0, PIXEL_MAX]}
#: the official descriptors (widths, kernels, strides): the 4×4 grid's, the middle grids' (16×16) and the finest's (64×64)
OFFICIAL_NETS = {
    "coarsest": {"widths": [96, 128, 256], "kernels": [5, 3, 3], "strides": [2, 1, 1]},
    "middle": {"widths": [96, 128, 256, 512], "kernels": [5, 3, 3, 3], "strides": [2, 1, 1, 1]},
    "finest": {"widths": [64, 128, 256, 512], "kernels": [5, 5, 5, 5], "strides": [2, 2, 2, 2]},
}
LANGEVIN_HINT = "lower model.langevin.step_size or model.lr"


def official_net(position: int, count: int) -> dict:
    """The official descriptor of the grid at ``position`` of ``count`` learned grids: the 4×4 grid's for the first
    (when there are several), the 64×64 grid's for the last, the 16×16 grid's in between."""
    role = "finest" if position == count - 1 else "coarsest" if position == 0 else "middle"
    return {k: list(v) for k, v in OFFICIAL_NETS[role].items()}


class GridDescriptorNet(nn.Module):
    """f_s(X; θ_s) of one grid: per layer conv ("SAME" padding) → BatchNorm → leaky ReLU 0.2, then a dense layer to one
    number; Xavier-uniform weights, zero biases (the official code's layers)."""

    def __init__(self, image_size: int, channels: int, widths: list[int], kernels: list[int], strides: list[int],
                 slope: float = 0.2) -> None:
        super().__init__()
        if not len(widths) == len(kernels) == len(strides) or not widths:
            raise GenbenchError(f"a grid net's widths, kernels and strides must be non-empty lists of one length, got "
                                f"{widths}, {kernels}, {strides}")
        layers: list[nn.Module] = []
        width_in, size = channels, image_size
        for width, kernel, stride in zip(widths, kernels, strides):
            layers += [*same_conv(width_in, width, kernel, stride, size), nn.BatchNorm2d(width, eps=1e-5, momentum=1.0),
                       nn.LeakyReLU(slope)]
            width_in, size = width, -(-size // stride)
        self.features = nn.Sequential(*layers)
        self.dense = nn.Linear(width_in * size * size, 1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(self.features(x).flatten(1)).squeeze(1)


class GridEBM(GenerativeModel):
    """A descriptor per grid, learned by contrastive divergence with the chains of the class's ``sampler``.

    Args:
        grids: the learned grid sizes, coarse to fine, each dividing the next, the last the image size (the chains'
            1×1 start is the official first grid, which has no net); default: the official 4 and 16 that divide the
            image size, then the image size.
        nets: one dict per grid (``widths``, ``kernels``, ``strides``), each over the official net of its grid's role
            (the first grid's: the 4×4 net; the last's: the 64×64 net; others: the 16×16 net).
        langevin: each grid's chains (over the official T = 90, δ = 0.3, no noise, clipped to [0, 255]).
        sample_langevin: the evaluation chains (default: ``langevin``).
        lr, beta1, beta2: each grid's Adam (official 0.3, 0.5, 0.999).
        num_train: number of training images (the 1×1 averages that start evaluation chains; set by the harness).
        bn_sampling: ``batch``: BatchNorm normalises with each batch's statistics when sampling too (the code).
    """

    samples_need_grad = True
    completion = "grid-langevin"
    #: the chain sampler (``genbench.samplers``) of this member of the family
    sampler_name = "multigrid"
    #: the training chains' defaults over GRID_LANGEVIN, and the evaluation chains' (None: the training ones)
    langevin_defaults: dict = {}
    sample_langevin_defaults: dict | None = None

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        arch: str = "conv",
        grids: list[int] | None = None,
        nets: list[dict] | None = None,
        langevin: dict | None = None,
        sample_langevin: dict | None = None,
        lr: float = 0.3,
        beta1: float = 0.5,
        beta2: float = 0.999,
        num_train: int = 0,
        bn_sampling: str = "batch",
    ) -> None:
        super().__init__(image_size, channels, arch, bn_sampling=bn_sampling)
        self.save_hyperparameters()
        self.automatic_optimization = False
        if arch != "conv":
            raise GenbenchError(f"the multi-grid models are convolutional (arch: conv), got arch {arch!r}")
        if lr <= 0:
            raise GenbenchError(f"lr must be positive, got {lr}")
        self.grids = self.grid_sizes(grids, image_size)
        nets = self.net_settings(nets, self.grids)
        self.nets = nn.ModuleDict({str(size): GridDescriptorNet(size, channels, **spec)
                                   for size, spec in zip(self.grids, nets)})
        langevin, sample_langevin = self.langevin_settings(langevin, sample_langevin)
        self.langevin_config = LangevinConfig.from_dict(langevin, "model.langevin")
        self.sample_langevin_config = LangevinConfig.from_dict(sample_langevin, "model.sample_langevin")
        self.register_buffer("image_means", torch.zeros(num_train, channels))
        self.sampler = make_sampler(self.sampler_name, self)

    # -- settings ------------------------------------------------------------------------------------------------
    @classmethod
    def grid_sizes(cls, grids: list[int] | None, image_size: int) -> list[int]:
        return check_grids(default_grids(image_size) if grids is None else grids, image_size)

    @classmethod
    def net_settings(cls, nets: list[dict] | None, grids: list[int]) -> list[dict]:
        nets = [{}] * len(grids) if nets is None else nets
        if not isinstance(nets, (list, tuple)) or len(nets) != len(grids) or not all(isinstance(n, dict) for n in nets):
            raise GenbenchError(f"model.nets must be a list of one dict per grid {grids}, got {nets!r}")
        out = []
        for position, given in enumerate(nets):
            unknown = sorted(set(given) - set(OFFICIAL_NETS["finest"]))
            if unknown:
                raise GenbenchError(f"unknown model.nets option(s) {unknown}; a grid net takes widths, kernels, strides")
            out.append({**official_net(position, len(grids)), **given})
        return out

    @classmethod
    def langevin_settings(cls, langevin: dict | None, sample_langevin: dict | None) -> tuple[dict, dict]:
        """(training, evaluation) Langevin settings, each a full ``LangevinConfig`` dict over GRID_LANGEVIN."""
        train = LangevinConfig.from_dict({**GRID_LANGEVIN, **cls.langevin_defaults, **(langevin or {})},
                                         "model.langevin").to_dict()
        base = train if cls.sample_langevin_defaults is None else {**GRID_LANGEVIN, **cls.sample_langevin_defaults}
        sample = LangevinConfig.from_dict({**base, **(sample_langevin or {})}, "model.sample_langevin").to_dict()
        return train, sample

    @classmethod
    def resolve_nested(cls, options: dict) -> dict:
        size = options.get("image_size", 64)
        options["grids"] = cls.grid_sizes(options.get("grids"), size)
        options["nets"] = cls.net_settings(options.get("nets"), options["grids"])
        options["langevin"], options["sample_langevin"] = cls.langevin_settings(options.get("langevin"),
                                                                                options.get("sample_langevin"))
        return options

    # -- the model's equations --------------------------------------------------------------------------------------
    @staticmethod
    def to_pixels(x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] → [0, 255]."""
        return (x + 1.0) * (PIXEL_MAX / 2.0)

    @staticmethod
    def from_pixels(x: torch.Tensor) -> torch.Tensor:
        """[0, 255] → [-1, 1]."""
        return x * (2.0 / PIXEL_MAX) - 1.0

    def f(self, size: int, x: torch.Tensor) -> torch.Tensor:
        """f_s(X; θ_s) per example, X on the s×s grid in [0, 255]."""
        return self.nets[str(size)](x)

    def revise(self, size: int, x0: torch.Tensor, config: LangevinConfig | None = None, trace: bool = False,
               sampling: bool = False):
        """Langevin on grid ``size`` from ``x0`` with θ_s frozen: X ← clip(X + (δ²/2)·∂f_s/∂X, 0, 255) → (X̃, trace)."""
        net = self.nets[str(size)]
        hint = "while drawing evaluation samples; lower model.sample_langevin.step_size" if sampling else LANGEVIN_HINT
        with frozen(net):
            return langevin(x0, lambda x: -net(x), config or self.langevin_config, trace=trace,
                            what=f"X on the {size}×{size} grid", hint=hint)

    def chains(self, x0: torch.Tensor, config: LangevinConfig | None = None, trace: bool = False,
               sampling: bool = False) -> list[tuple[int, torch.Tensor, object]]:
        """The chains from ``x0`` through every grid, coarse to fine: (size, X̃_s, trace) per grid."""
        return coarse_to_fine(x0, self.grids, lambda size, x: self.revise(size, x, config, trace, sampling))

    def feature_nets(self):
        """Each grid's descriptor, on the image block-averaged to its grid in [0, 255] pixels."""
        return [(f"{size}×{size} descriptor", self.nets[str(size)],
                 lambda x, size=size: self.f(size, downsample(self.to_pixels(x), size))) for size in self.grids]

    # -- learning ---------------------------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        """Keep the 1×1 averages of the training images (the evaluation chains' starts)."""
        images = self.training_images("its evaluation chains start from the 1×1 averages of its training images")
        means = downsample(self.to_pixels(images), 1).flatten(1)
        self.image_means = means.to(self.image_means.device)

    def train_iteration(self, batch) -> None:
        x = self.to_pixels(batch[0])
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        handle, x0 = self.sampler.start(x, x.shape[0])
        stats: dict[str, float | torch.Tensor] = {}
        for (size, x_synth, trace), optimizer in zip(self.chains(x0, trace=True), optimizers):
            x_obs = downsample(x, size)
            saturation = check_clamp_saturation(x_synth, x_obs, self.langevin_config.pixel_clamp,
                                                "lower model.langevin.step_size or model.lr", self.iteration)
            f_obs, f_synth = self.f(size, x_obs), self.f(size, x_synth)
            loss = f_synth.mean() - f_obs.mean()
            self.update(optimizer, loss, f"{size}×{size} descriptor loss", LANGEVIN_HINT, check_grads=True)
            stats.update({f"energy_gap_{size}": (f_obs.mean() - f_synth.mean()).detach(),
                          f"grad_norm_{size}": sum(trace.grad_norm) / max(1, len(trace.grad_norm)),
                          **{f"{k}_{size}": v for k, v in saturation.items()}})
        self.sampler.finish(handle, x_synth, self.langevin_config.n_steps)
        finest = self.grids[-1]
        stats.update({"energy_gap": stats[f"energy_gap_{finest}"], "langevin_grad_norm": stats[f"grad_norm_{finest}"]})
        self.log_diagnostics(stats, prog_bar=("energy_gap",))

    def configure_optimizers(self):
        return [self.adam(self.nets[str(size)].parameters(), self.hparams.lr, (self.hparams.beta1, self.hparams.beta2))
                for size in self.grids]

    # -- sampling for evaluation ------------------------------------------------------------------------------------
    def prepare_evaluation(self, n: int, seed: int, sync: bool = False) -> dict | None:
        self.evaluation_chains = self.sampler.prepare_evaluation(n, seed, sync)
        return self.evaluation_chains

    def generate(self, n: int) -> torch.Tensor:
        """Evaluation samples: the sampler's starts (1×1 averages of training images) through every grid."""
        x0 = self.sampler.evaluation_start(n, self.sample_position)
        return self.from_pixels(self.chains(x0, self.sampler.evaluation_config(), sampling=True)[-1][1])


@COMPLETIONS.register("grid-langevin")
def complete_on_grids(model: GridEBM, images: torch.Tensor, holes: torch.Tensor,
                      settings: CompletionSettings) -> torch.Tensor:
    """The learned energies as a prior for the missing pixels, coarse to fine: the chains start at the 1×1 grid of the
    observed pixels (their mean colour) and, on each learned grid s in turn, up-sampled, revised by the model's
    evaluation chains under f_s with every cell whose pixels are all observed held at their block average (at the
    image grid: every observed pixel held)."""
    pixels, observed = model.to_pixels(images), (~holes).to(images.dtype)
    x = observed_mean(pixels, holes)
    for size in model.grids:
        seen = downsample(observed, size)
        held = (seen > 1 - 1e-6).to(images.dtype).expand(-1, images.shape[1], -1, -1)
        target = downsample(pixels * observed, size) / seen.clamp(min=1e-6)
        x = upsample(x, size) * (1 - held) + target * held
        net = model.nets[str(size)]
        with model.sampling_mode(), frozen(net):
            x, _ = langevin(x, lambda z, net=net, held=held, target=target: -net(target * held + z * (1 - held)),
                            model.sampler.evaluation_config(), what=f"the missing pixels on the {size}×{size} grid",
                            hint="while completing images; lower model.sample_langevin.step_size")
        x = x * (1 - held) + target * held
    return fill(images, holes, model.from_pixels(x))


@MODELS.register("multigrid")
class MultigridCD(GridEBM):
    """Multi-grid CD: chains from the 1×1 averages of the observed images, coarse to fine through every grid."""


@MODELS.register("single-grid-cd")
class SingleGridCD(GridEBM):
    """Single-grid CD: one grid (the image size), chains starting at the observed images, T Langevin steps."""

    sampler_name = "data"

    @classmethod
    def grid_sizes(cls, grids: list[int] | None, image_size: int) -> list[int]:
        grids = [image_size] if grids is None else check_grids(grids, image_size)
        if grids != [image_size]:
            raise GenbenchError(f"{cls.__name__} learns one grid, the image size: model.grids [{image_size}], got {grids}")
        return grids


@MODELS.register("one-step-cd")
class OneStepCD(SingleGridCD):
    """One-step CD (CD1): one grid, chains starting at the observed images, one Langevin step. Its evaluation chains
    run the official T = 90 steps from the 1×1 averages, as the other members' do."""

    langevin_defaults = {"n_steps": 1}
    sample_langevin_defaults = {}
