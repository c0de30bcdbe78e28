"""CoopNets — cooperative learning of the descriptor and the generator via MCMC teaching
(Xie, Lu, Gao, Zhu, Wu; AAAI 2018, TPAMI 2018). One iteration, in the official code's order:

    G0  h ~ N(0, I), X̂ = g(h; α)                          (the generator drafts)
    D1  X̃ = Langevin_E(X̂), E(X) = ‖X‖²/(2s²) − f(X; θ)    (the descriptor revises)
    G1  optional: h ← Langevin on p(h | X̃)                  (latent_langevin.n_steps > 0)
    D2  θ ← Adam on mean f(X̃) − mean f(X_data)              (descriptor learns from data vs X̃)
    G2  α ← Adam on mean ‖X̃ − g(h)‖²/(2σ²)                  (generator learns the known h → X̃)
"""

from __future__ import annotations

import torch

from genbench.errors import GenbenchError
from genbench.models.abp import infer_latent, reconstruction_loss
from genbench.models.base import MODELS
from genbench.models.descriptor import Descriptor, langevin_stats
from genbench.models.nets import build_generator, resolve_net_options
from genbench.samplers.langevin import LangevinConfig

#: G1 (Langevin on h given the revised images): off in the official code (0 steps; δ = 0.1 when turned on)
LATENT_LANGEVIN = {"n_steps": 0, "step_size": 0.1}


@MODELS.register("coopnets")
class CoopNets(Descriptor):
    """CoopNets: a :class:`Descriptor` whose chains start from a generator that it teaches (the ``generator``
    sampler: drafts for training and for evaluation).

    Args (beyond the descriptor's):
        latent_dim: d (official 100).
        sigma: σ of the generator's observation noise (official 0.3).
        latent_langevin: G1 Langevin on h (official: 0 steps, δ = 0.1); n_steps > 0 turns the variant on.
        gen_lr, gen_beta1: Adam on α (official 1e-4, 0.5).
        sample_from: what ``sample`` returns: ``revised`` X̃ (scored in the papers) or the ``generator``'s X̂.
        generator_net: options of the generator net.
        num_chains: chains per iteration (official: 144, a 12×12 grid, against 100 observed images).
        bn_sampling: ``batch`` — the official code samples with BatchNorm in training mode (statistics of the
            sampling batch of h ~ N(0, I)); ``running`` uses the running averages.
    """

    centring = False

    completion = "cooperative"

    def __init__(
        self,
        latent_dim: int = 100,
        sigma: float = 0.3,
        latent_langevin: dict | None = None,
        gen_lr: float = 1e-4,
        gen_beta1: float = 0.5,
        sample_from: str = "revised",
        generator_net: dict | None = None,
        chain_init: str = "generator",
        bn_sampling: str = "batch",
        num_chains: int | None = 144,
        **kwargs,
    ) -> None:
        if chain_init != "generator":
            raise GenbenchError("coopnets chains always start from the generator (chain_init: generator)")
        if sample_from not in ("revised", "generator"):
            raise GenbenchError(f"sample_from must be 'revised' or 'generator', got {sample_from!r}")
        if sigma <= 0:
            raise GenbenchError(f"sigma must be positive, got {sigma}")
        if kwargs.get("eval_steps") is not None or kwargs.get("eval_chains", "fresh") != "fresh":
            raise GenbenchError("coopnets evaluates generator drafts revised by sample_langevin; set "
                                "model.sample_langevin.n_steps instead of eval_chains / eval_steps")
        super().__init__(chain_init=chain_init, bn_sampling=bn_sampling, num_chains=num_chains, **kwargs)
        self.save_hyperparameters()
        self.latent_config = LangevinConfig.from_dict(latent_langevin or LATENT_LANGEVIN, "model.latent_langevin")
        self.generator = build_generator(self.arch, latent_dim, self.image_size, self.channels, generator_net)

    @classmethod
    def resolve_nested(cls, options: dict) -> dict:
        options = super().resolve_nested(options)
        options["latent_langevin"] = LangevinConfig.from_dict(options.get("latent_langevin") or LATENT_LANGEVIN,
                                                              "model.latent_langevin").to_dict()
        if isinstance(options.get("generator_net"), (dict, type(None))):
            options["generator_net"] = resolve_net_options("generator", options.get("arch", "conv"), options.get("generator_net"))
        return options

    def draft(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """G0: h ~ N(0, I) and X̂ = g(h) (no gradient to α here)."""
        h = torch.randn(n, self.hparams.latent_dim, device=self.device)
        with torch.no_grad():
            x = self.generator(h)
        return h, x.clone() if self.speed.cuda_graphs else x  # a CUDA graph's output buffer is reused at its next replay

    def train_iteration(self, batch) -> None:
        x = self.observed(batch)
        opt_des, opt_gen = self.optimizers()
        n = self.hparams.num_chains or x.shape[0]
        h, x_draft = self.sampler.start(x, n)                                         # G0
        x_revised, des_diag = self.revise(x_draft, trace=True)                        # D1
        gen_diag = None
        if self.latent_config.n_steps > 0:                                           # G1
            h, gen_diag = infer_latent(self.generator, h, x_revised, self.hparams.sigma, self.latent_config, trace=True)
        stats = self.descriptor_update(x, x_revised, opt_des)                         # D2
        gen_loss = reconstruction_loss(self.generator, h, x_revised, self.hparams.sigma)  # G2
        self.update(opt_gen, gen_loss, "generator loss", "lower model.gen_lr")
        stats.update({"generator_loss": gen_loss.detach(),
                      "revision_distance": (x_revised - x_draft).flatten(1).norm(dim=1).mean()})
        stats.update(langevin_stats(des_diag, "langevin"))
        stats.update(langevin_stats(gen_diag, "latent_langevin"))
        self.log_diagnostics(stats, prog_bar=("energy_gap", "generator_loss"))

    def configure_optimizers(self):
        return (self.adam(self.energy_net.parameters(), self.hparams.lr, (self.hparams.beta1, self.hparams.beta2)),
                self.adam(self.generator.parameters(), self.hparams.gen_lr, (self.hparams.gen_beta1, 0.999)))
