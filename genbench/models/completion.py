"""How a trained model fills the missing pixels of an image from its observed ones (``holes``: (n, 1, H, W), True
where a pixel is missing; images in [-1, 1]). A model class names its way in ``completion``, a kind registered in
``COMPLETIONS`` (these three here; a model file may register its own):

- ``masked-posterior`` (ABP): h from the masked posterior, −log p(h | X_obs) = ‖h‖²/2 + ‖M ⊙ (X − g(h))‖²/(2σ²) (Langevin, the model's
  latent step size), then g(h) fills the hole;
- ``cooperative`` (CoopNets): the same inference through its generator, the draft g(h), then descriptor Langevin on the missing
  pixels only (the observed ones stay clamped) — the CoopNets paper's completion;
- ``latent-optimisation`` (DCGAN and the other GANs): h minimising the masked reconstruction ‖M ⊙ (X − G(h))‖² + ½‖h‖² by Adam (latent
  optimisation, the papers' DCGAN column), then G(h) fills the hole;
- ``descriptor-langevin`` (the descriptor family, in ``descriptor.py``) and ``grid-langevin`` (the multi-grid family, in
  ``multigrid.py``): the learned energy as a prior — Langevin on the missing pixels only, from the observed pixels'
  mean colour.

Observed pixels are returned unchanged by every completer. ``reconstruct`` is the masked-posterior inference with
every pixel observed: g(h) for held-out images (the reconstruction table).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genbench.errors import GenbenchError
from genbench.models.abp import infer_latent
from genbench.models.base import COMPLETIONS, MODELS
from genbench.samplers.langevin import LangevinConfig, frozen, langevin


@dataclass
class CompletionSettings:
    """How learned completers infer: ``latent_steps`` Langevin steps on h of ``latent_step_size`` (ABP,
    CoopNets) from ``latent_init`` — ``prior``: h ~ N(0, I); ``zero``: h = 0 for every image, which puts every chain
    of a batch at one point, so a generator whose BatchNorm normalises with the batch's statistics divides by a
    near-zero variance there (measured on the cpu ABP: the chains ran off to ‖h‖/√d ≈ 200–860 and every face
    came out alike) —, ``revision_steps`` descriptor Langevin steps on the hole (CoopNets; its own step size),
    ``optimisation_steps`` Adam steps of ``optimisation_lr`` on h (GANs)."""

    latent_steps: int = 100
    latent_step_size: float = 0.1
    latent_init: str = "prior"
    revision_steps: int = 15
    optimisation_steps: int = 300
    optimisation_lr: float = 0.05

    def __post_init__(self) -> None:
        if self.latent_init not in ("prior", "zero"):
            raise GenbenchError(f"inference latent_init must be 'prior' or 'zero', got {self.latent_init!r}")

    def record(self) -> dict:
        return dict(self.__dict__)


def fill(images: torch.Tensor, holes: torch.Tensor, proposal: torch.Tensor) -> torch.Tensor:
    """Observed pixels from ``images``, missing ones from ``proposal``."""
    return torch.where(holes.expand_as(images), proposal.clamp(-1, 1), images)


def observed_mean(images: torch.Tensor, holes: torch.Tensor) -> torch.Tensor:
    """(n, c, 1, 1): each image's per-channel mean over its observed pixels (the 1×1 grid of what is observed)."""
    observed = (~holes).to(images.dtype)
    return (images * observed).sum(dim=(2, 3), keepdim=True) / observed.sum(dim=(2, 3), keepdim=True).clamp(min=1)


def masked_latent(generator, images: torch.Tensor, holes: torch.Tensor, latent_dim: int, sigma: float,
                  settings: CompletionSettings, h0: torch.Tensor | None = None) -> torch.Tensor:
    """h ~ p(h | observed pixels) by Langevin from ``h0`` (default: ``settings.latent_init``); the missing pixels do
    not enter the energy."""
    observed = (~holes).to(images.dtype)
    if h0 is None:
        shape = (images.shape[0], latent_dim)
        h0 = torch.randn(shape, device=images.device) if settings.latent_init == "prior" else \
            torch.zeros(shape, device=images.device)
    config = LangevinConfig(n_steps=settings.latent_steps, step_size=settings.latent_step_size)
    h, _ = infer_latent(generator, h0, images * observed, sigma, config, mask=observed)
    return h


@COMPLETIONS.register("masked-posterior")
def complete_abp(model, images: torch.Tensor, holes: torch.Tensor, settings: CompletionSettings,
                 h0: torch.Tensor | None = None) -> torch.Tensor:
    with model.sampling_mode():
        h = masked_latent(model.generator, images, holes, model.hparams.latent_dim, model.hparams.sigma, settings, h0)
        with torch.no_grad():
            return fill(images, holes, model.generator(h))


@COMPLETIONS.register("cooperative")
def complete_coopnets(model, images: torch.Tensor, holes: torch.Tensor, settings: CompletionSettings) -> torch.Tensor:
    with model.sampling_mode():
        h = masked_latent(model.generator, images, holes, model.hparams.latent_dim, model.hparams.sigma, settings)
        with torch.no_grad():
            draft = fill(images, holes, model.generator(h))
        hole = holes.expand_as(images).to(images.dtype)
        energy = model.energy

        def clamped_energy(x: torch.Tensor) -> torch.Tensor:  # only the missing pixels move
            return energy(images * (1 - hole) + x * hole)

        config = LangevinConfig(**{**model.sample_langevin_config.to_dict(), "n_steps": settings.revision_steps})
        with frozen(model.energy_net):
            revised, _ = langevin(draft, clamped_energy, config, what="completion")
        return fill(images, holes, revised)


@COMPLETIONS.register("latent-optimisation")
def complete_gan(model, images: torch.Tensor, holes: torch.Tensor, settings: CompletionSettings) -> torch.Tensor:
    observed = (~holes).to(images.dtype)
    generator = model.generator
    with model.sampling_mode(), frozen(generator):
        h = torch.zeros(images.shape[0], generator.latent_dim, device=images.device, requires_grad=True)
        optimizer = torch.optim.Adam([h], lr=settings.optimisation_lr)
        for _ in range(settings.optimisation_steps):
            optimizer.zero_grad()
            residual = (images - generator(h)) * observed
            loss = residual.flatten(1).pow(2).sum(dim=1).sum() + 0.5 * h.pow(2).sum()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            return fill(images, holes, generator(h))


def reconstruct(model, images: torch.Tensor, settings: CompletionSettings) -> torch.Tensor:
    """g(h) with h ~ p(h | X) inferred from every pixel of ``images`` (ABP's reconstruction of held-out images)."""
    no_holes = torch.zeros(images.shape[0], 1, *images.shape[-2:], dtype=torch.bool)
    with model.sampling_mode():
        h = masked_latent(model.generator, images, no_holes, model.hparams.latent_dim, model.hparams.sigma, settings)
        with torch.no_grad():
            return model.generator(h).clamp(-1, 1)


def completer_models() -> list[str]:
    """The registered models that can fill missing pixels (a ``completion`` of their class)."""
    return [name for name in MODELS.names() if MODELS.get(name).completion is not None]


def check_completer(name: str) -> None:
    if name not in completer_models():
        raise GenbenchError(f"no learned completer for {name!r}; known: {', '.join(completer_models())}")


def complete_with_model(model, images: torch.Tensor, holes: torch.Tensor,
                        settings: CompletionSettings | None = None) -> torch.Tensor:
    """Fill ``holes`` of ``images`` with the trained ``model``, the way its class names in ``completion``."""
    if type(model).completion is None:
        raise GenbenchError(f"{type(model).__name__} has no learned completer; known: {', '.join(completer_models())}")
    return COMPLETIONS.get(type(model).completion)(model, images, holes, settings or CompletionSettings())
