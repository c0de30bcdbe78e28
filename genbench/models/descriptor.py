"""Descriptor — the generative ConvNet EBM (Xie, Lu, Zhu, Wu, ICML 2016).

    p(X; θ) = exp(f(X; θ)) p0(X) / Z(θ),  p0 = N(0, s²I),  E(X) = ‖X‖²/(2s²) − f(X; θ)

Synthesis by Langevin on E; learning by maximum likelihood:
    ∂L/∂θ = mean_data ∂f/∂θ − mean_synth ∂f/∂θ,
implemented (as in the official code) by minimising  mean f(X̃) − mean f(X_data)  with Adam.

Where the chains start is the sampler named by ``chain_init`` (``genbench.samplers``): Gaussian noise ("from
scratch", the papers' setting), uniform noise (short-run MCMC), a persistent replay buffer (the PCD baseline, ``pcd``),
a generator (CoopNets), or any registered sampler.
"""

from __future__ import annotations

import torch

from genbench.errors import GenbenchError
from genbench.models.base import COMPLETIONS, MODELS, GenerativeModel
from genbench.models.completion import CompletionSettings, fill, observed_mean
from genbench.models.nets import build_energy_net, resolve_net_options
from genbench.samplers import make_sampler
from genbench.samplers.langevin import (LangevinConfig, check_clamp_saturation, descriptor_energy, frozen, langevin,
                                        reference_precision)

LANGEVIN_HINT = "lower model.langevin.step_size (or set model.langevin.grad_clip) or model.lr"


@MODELS.register("descriptor")
class Descriptor(GenerativeModel):
    """The descriptor EBM as a LightningModule.

    Args:
        ref_std: s of the reference p0 = N(0, s²I) (official 0.016); null drops the reference term.
        langevin: Langevin settings during training (official scene: 15 steps, δ = 0.002).
        sample_langevin: settings when sampling for evaluation (default: the training ones; given in part, the rest
            are a recipe's defaults).
        chain_init: the chain sampler (``genbench.samplers``): gaussian | uniform | persistent (| generator, used by
            CoopNets) or any registered one.
        init_std: std of the Gaussian chain initialisation.
        num_chains: synthesized chains per iteration (default: the data batch size; official 144).
        buffer_size, reinit_prob: replay buffer of persistent chains.
        eval_chains: how persistent models draw evaluation samples — ``fresh``: new noise chains run for
            ``eval_steps`` Langevin steps (default: the trained sampler's length, the mean steps accumulated by
            the buffer's revised chains); ``buffer``: as many *distinct* buffer states as samples (refused before
            training when the buffer is smaller), each revised once more by ``sample_langevin``. Either way no
            buffer state is scored twice; the choice and chain lengths are recorded in the row.
        eval_steps: Langevin steps of fresh evaluation chains (None: the trained chain length).
        lr, beta1, beta2: Adam on θ (official 0.007, 0.5, 0.999).
        energy_l2: weight of the L2 penalty mean(f(X)² + f(X̃)²) (IGEBM); 0 is off.
        data_noise: std of Gaussian noise added to each data batch (short-run MCMC: 0.03); 0 is off.
        spectral_norm: spectral normalisation of every layer of f.
        centre_on_data_mean: model X − μ, μ the training images' per-channel mean (subtracted from every observed
            batch, added back to every sample): the reference becomes N(μ, s²I) and noise chains start around μ, as
            the descriptor's texture code subtracts the exemplar's mean; off: the reference is centred at 0 (grey).
        net: options of the energy net (``DescriptorNet`` or ``MLPEnergy``).
    """

    samples_need_grad = True
    completion = "descriptor-langevin"
    #: a recipe's own defaults (a subclass's): the training chains over ``LangevinConfig``'s, the energy net over the net
    #: class's (the descriptor's are those classes' own)
    langevin_defaults: dict = {}
    net_defaults: dict = {}
    #: the energy net's class (None: the arch's, ``DescriptorNet`` or ``MLPEnergy``)
    energy_net_class: type | None = None
    #: whether ``centre_on_data_mean`` applies (a model whose samples are not the descriptor's chains: no)
    centring: bool = True
    added_at_neutral_default = {"centre_on_data_mean": False}

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        arch: str = "conv",
        ref_std: float | None = 0.016,
        langevin: dict | None = None,
        sample_langevin: dict | None = None,
        chain_init: str = "gaussian",
        init_std: float = 0.016,
        num_chains: int | None = None,
        buffer_size: int = 1000,
        reinit_prob: float = 0.05,
        eval_chains: str = "fresh",
        eval_steps: int | None = None,
        lr: float = 0.007,
        beta1: float = 0.5,
        beta2: float = 0.999,
        energy_l2: float = 0.0,
        data_noise: float = 0.0,
        spectral_norm: bool = False,
        centre_on_data_mean: bool = False,
        net: dict | None = None,
        bn_sampling: str = "running",
    ) -> None:
        super().__init__(image_size, channels, arch, bn_sampling=bn_sampling)
        self.save_hyperparameters()
        self.automatic_optimization = False
        if eval_chains not in ("fresh", "buffer"):
            raise GenbenchError(f"eval_chains must be 'fresh' or 'buffer', got {eval_chains!r}")
        if eval_steps is not None and (not isinstance(eval_steps, int) or eval_steps < 1):
            raise GenbenchError(f"eval_steps must be a positive integer or null, got {eval_steps!r}")
        if eval_chains == "buffer" and (chain_init != "persistent" or eval_steps is not None):
            raise GenbenchError("eval_chains: buffer needs chain_init: persistent, and its states are revised by "
                                "sample_langevin (eval_steps applies to fresh chains only)")
        if ref_std is not None and ref_std <= 0:
            raise GenbenchError(f"ref_std must be positive or null, got {ref_std}")
        if lr <= 0:
            raise GenbenchError(f"lr must be positive, got {lr}")
        self.langevin_config = LangevinConfig.from_dict({**self.langevin_defaults, **(langevin or {})}, "model.langevin")
        self.sample_langevin_config = LangevinConfig.from_dict({**self.langevin_defaults, **sample_langevin},
                                                               "model.sample_langevin") \
            if sample_langevin else self.langevin_config
        net_options = {**self.net_defaults, **(net or {})}
        if spectral_norm:
            net_options["spectral_norm"] = True
        self.energy_net = build_energy_net(arch, image_size, channels, net_options, self.energy_net_class)
        if centre_on_data_mean and not self.centring:
            raise GenbenchError(f"{type(self).__name__} draws its samples in pixel space: centre_on_data_mean is for "
                                f"the descriptor's own chains")
        if centre_on_data_mean and self.langevin_config.pixel_clamp is not None:
            raise GenbenchError("centre_on_data_mean and a pixel_clamp exclude each other: the clamp bounds pixels, the "
                                "centred chains live in X − μ")
        self.buffer = None  # a persistent sampler's replay buffer (checkpointed with the model)
        self.register_buffer("data_mean", torch.zeros(1, channels, 1, 1))  # μ (centre_on_data_mean), set at fit start
        self.sampler = make_sampler(chain_init, self)

    @classmethod
    def resolve_nested(cls, options: dict) -> dict:
        options["langevin"] = LangevinConfig.from_dict({**cls.langevin_defaults, **(options.get("langevin") or {})},
                                                       "model.langevin").to_dict()
        if options.get("sample_langevin"):
            options["sample_langevin"] = LangevinConfig.from_dict({**cls.langevin_defaults, **options["sample_langevin"]},
                                                                  "model.sample_langevin").to_dict()
        if isinstance(options.get("net"), (dict, type(None))):
            options["net"] = resolve_net_options("energy", options.get("arch", "conv"),
                                                 {**cls.net_defaults, **(options.get("net") or {})}, cls.energy_net_class)
        return options

    # -- the model's equations ----------------------------------------------------------------
    def f(self, x: torch.Tensor) -> torch.Tensor:
        """f(X; θ) per example."""
        return self.energy_net(x)

    def feature_nets(self):
        """The descriptor's net f, on the input f is given (X − μ for a centred model)."""
        offset = self.data_mean if self.hparams.centre_on_data_mean else 0.0
        return [("descriptor", self.energy_net, lambda x: self.f(x - offset))]

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """E(X) = ‖X‖²/(2s²) − f(X; θ) per example."""
        return descriptor_energy(self.f, self.hparams.ref_std)(x)

    def revise(self, x0: torch.Tensor, config: LangevinConfig | None = None, trace: bool = False,
               sampling: bool = False):
        """Langevin revision of ``x0`` under E with θ frozen → (X̃, diagnostics). ``sampling``: the chains draw
        evaluation samples (a divergence then names the sampling settings)."""
        with frozen(self.energy_net):  # E = ‖X‖²/(2s²) − f: the reference term in closed form, autograd through −f
            return langevin(x0, lambda x: -self.f(x), config or self.langevin_config, trace=trace, what="X",
                            hint=self.sampling_hint() if sampling else LANGEVIN_HINT,
                            gaussian_precision=reference_precision(self.hparams.ref_std))

    def sampling_hint(self) -> str:
        """What to lower when the evaluation chains diverge: the settings they ran with."""
        section = "model.sample_langevin" if self.hparams.sample_langevin else "model.langevin"
        return (f"while drawing evaluation samples; lower {section}.step_size (or set {section}.grad_clip)"
                + (" or model.eval_steps" if self.hparams.eval_steps else ""))

    # -- chains -----------------------------------------------------------------------------------
    def synthesize(self, n: int, trace: bool = False, x_data: torch.Tensor | None = None):
        """n revised chains for one learning step: the sampler's start → Langevin → (X̃, diagnostics); what the sampler
        keeps (persistent chains) is written back."""
        handle, x0 = self.sampler.start(x_data, n)
        x_synth, diag = self.revise(x0, trace=trace)
        self.sampler.finish(handle, x_synth, self.langevin_config.n_steps)
        return x_synth, diag

    # -- learning -------------------------------------------------------------------------------
    def descriptor_loss(self, x_data: torch.Tensor, x_synth: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """mean f(X̃) − mean f(X_data) (+ energy_l2 · mean(f_data² + f_synth²)): its θ-gradient is minus the
        ML gradient mean_data ∂f/∂θ − mean_synth ∂f/∂θ."""
        f_data = self.f(x_data)
        f_synth = self.f(x_synth)
        loss = f_synth.mean() - f_data.mean()
        if self.hparams.energy_l2 > 0:
            loss = loss + self.hparams.energy_l2 * (f_data.pow(2).mean() + f_synth.pow(2).mean())
        stats = {"f_data": f_data.detach().mean(), "f_synth": f_synth.detach().mean(),
                 "energy_gap": (f_data.detach().mean() - f_synth.detach().mean())}
        return loss, stats

    def descriptor_update(self, x_data: torch.Tensor, x_synth: torch.Tensor, optimizer) -> dict:
        loss, stats = self.descriptor_loss(x_data, x_synth)
        self.update(optimizer, loss, "descriptor loss", "lower model.lr or set model.energy_l2 > 0", check_grads=True)
        return {"descriptor_loss": loss.detach(), **stats}

    def on_fit_start(self) -> None:
        """μ of ``centre_on_data_mean``: the per-channel mean of the training images."""
        if self.hparams.centre_on_data_mean:
            images = self.training_images("centre_on_data_mean's μ is the training images' mean")
            self.data_mean = images.mean(dim=(0, 2, 3)).view(1, -1, 1, 1).to(self.data_mean)

    def observed(self, batch) -> torch.Tensor:
        """An observed batch as the model sees it: X − μ (μ = 0 unless centred), plus the data noise."""
        x = batch[0] - self.data_mean if self.hparams.centre_on_data_mean else batch[0]
        if self.hparams.data_noise > 0:
            x = x + self.hparams.data_noise * torch.randn_like(x)
        return x

    def train_iteration(self, batch) -> None:
        x = self.observed(batch)
        optimizer = self.optimizers()
        n = self.hparams.num_chains or x.shape[0]
        x_synth, diag = self.synthesize(n, trace=True, x_data=x)
        saturation = check_clamp_saturation(x_synth, batch[0], self.langevin_config.pixel_clamp,
                                            "lower model.langevin.step_size or model.lr, or set model.energy_l2 > 0",
                                            self.iteration)
        stats = self.descriptor_update(x, x_synth, optimizer)
        self.log_diagnostics({**stats, **langevin_stats(diag, "langevin"), **saturation}, prog_bar=("energy_gap",))

    def configure_optimizers(self):
        return self.adam(self.energy_net.parameters(), self.hparams.lr, (self.hparams.beta1, self.hparams.beta2))

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("state_dict", {})
        if "data_mean" not in state:  # written before centring existed: its runs were not centred
            state["data_mean"] = torch.zeros_like(self.data_mean)
        if "buffer.states" in state and "buffer.chain_steps" not in state:  # written before chain lengths were kept:
            state["buffer.chain_steps"] = torch.full((state["buffer.states"].shape[0],), -1, dtype=torch.long)  # unknown

    # -- sampling for evaluation --------------------------------------------------------------
    def check_evaluation(self, n: int) -> None:
        self.sampler.check_evaluation(n)

    def prepare_evaluation(self, n: int, seed: int, sync: bool = False) -> dict | None:
        """Fix the chains of the n evaluation samples (the sampler's policy) and return their record."""
        self.evaluation_chains = self.sampler.prepare_evaluation(n, seed, sync)
        return self.evaluation_chains

    def generate(self, n: int) -> torch.Tensor:
        """Evaluation samples: the sampler's evaluation chains, revised by its evaluation Langevin settings."""
        x0 = self.sampler.evaluation_start(n, self.sample_position)
        x = self.revise(x0, self.sampler.evaluation_config(), sampling=True)[0]
        return x + self.data_mean if self.hparams.centre_on_data_mean else x


def langevin_stats(diag, prefix: str) -> dict:
    """First/last energy and mean gradient norm of a Langevin trace (the EBM diagnostics)."""
    if diag is None or not diag.energy:
        return {}
    return {f"{prefix}_energy_start": diag.energy[0], f"{prefix}_energy_end": diag.energy[-1],
            f"{prefix}_grad_norm": sum(diag.grad_norm) / len(diag.grad_norm)}


@COMPLETIONS.register("descriptor-langevin")
def complete_with_descriptor(model: Descriptor, images: torch.Tensor, holes: torch.Tensor,
                             settings: CompletionSettings) -> torch.Tensor:
    """The learned energy as a prior for the missing pixels: they start at the observed pixels' mean colour and move
    by the model's evaluation chains (T, δ and noise as it samples) under E(X) = ‖X‖²/(2s²) − f(X), X the image
    whose observed pixels stay fixed (in X − μ for a centred model)."""
    offset = model.data_mean if model.hparams.centre_on_data_mean else 0.0
    x = images - offset
    hole = holes.expand_as(x).to(x.dtype)
    start = torch.where(hole.bool(), observed_mean(x, holes).expand_as(x), x)
    with model.sampling_mode(), frozen(model.energy_net):
        revised, _ = langevin(start, lambda z: -model.f(x * (1 - hole) + z * hole), model.sampler.evaluation_config(),
                              what="the missing pixels", hint=model.sampling_hint(),
                              gaussian_precision=reference_precision(model.hparams.ref_std))
    return fill(images, holes, revised + offset)


@MODELS.register("pcd")
class PersistentCD(Descriptor):
    """Persistent contrastive divergence: the descriptor with persistent chains in a replay buffer, each
    draw re-initialising ``reinit_prob`` of the chains from noise (the PCD row of the papers' tables)."""

    def __init__(self, chain_init: str = "persistent", buffer_size: int = 10_000, reinit_prob: float = 0.05,
                 num_chains: int | None = 144, **kwargs) -> None:
        if chain_init != "persistent":
            raise GenbenchError("pcd always uses persistent chains (chain_init: persistent)")
        super().__init__(chain_init=chain_init, buffer_size=buffer_size, reinit_prob=reinit_prob, num_chains=num_chains,
                         **kwargs)
