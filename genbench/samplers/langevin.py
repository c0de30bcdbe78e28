"""The one Langevin step every chain takes.

    x ← x − (δ²/2)·∂E/∂x + σ_noise·N(0, I),      σ_noise = δ unless decoupled

For the descriptor E(X) = ‖X‖²/(2s²) − f(X; θ); for the ABP posterior over the latent
E(h) = ‖h‖²/2 + ‖X − g(h; α)‖²/(2σ²). Gradients are taken with respect to x only: network parameters
are frozen while sampling and no graph is kept between steps. Modern options (each off by default):
noise scale decoupled from δ (0 = noise-free), per-pixel gradient clipping, per-step update clamping
and pixel clamping.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

import torch
from torch import nn

from genbench.errors import DivergenceError, GenbenchError

EnergyFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class LangevinConfig:
    """Settings of one Langevin chain.

    Attributes:
        n_steps: number of updates (0 leaves x unchanged).
        step_size: δ; the drift is (δ²/2)·∂E/∂x.
        noise: add the N(0, I) term at all.
        noise_scale: std of the noise per step; None means δ (exact Langevin).
        grad_clip: clip each element of ∂E/∂x to ±grad_clip (IGEBM); None is off.
        update_clamp: clamp each element of the per-step update to ±update_clamp (CoopFlow); None is off.
        pixel_clamp: clamp x into [lo, hi] after each step; None is off.
        deferred_checks: keep the finiteness checks and the trace on the device and read them once after the
            chain (one host–device synchronisation per chain instead of per step; a divergence is still reported
            with its first bad step). Off: checked at every step.
    """

    n_steps: int = 15
    step_size: float = 0.002
    noise: bool = True
    noise_scale: float | None = None
    grad_clip: float | None = None
    update_clamp: float | None = None
    pixel_clamp: tuple[float, float] | None = None
    deferred_checks: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.n_steps, int) or self.n_steps < 0:
            raise GenbenchError(f"langevin n_steps must be a non-negative integer, got {self.n_steps!r}")
        if not self.step_size > 0:
            raise GenbenchError(f"langevin step_size must be positive, got {self.step_size!r}")
        if self.noise_scale is not None and self.noise_scale < 0:
            raise GenbenchError(f"langevin noise_scale must be ≥ 0, got {self.noise_scale!r}")
        for name in ("grad_clip", "update_clamp"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise GenbenchError(f"langevin {name} must be positive or null, got {value!r}")
        if self.pixel_clamp is not None:
            self.pixel_clamp = (float(self.pixel_clamp[0]), float(self.pixel_clamp[1]))

    @property
    def effective_noise(self) -> float:
        if not self.noise:
            return 0.0
        return self.step_size if self.noise_scale is None else self.noise_scale

    @classmethod
    def from_dict(cls, options: dict | "LangevinConfig", what: str = "langevin") -> "LangevinConfig":
        if isinstance(options, LangevinConfig):
            return options
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(options or {}) - allowed)
        if unknown:
            raise GenbenchError(f"unknown {what} option(s) {unknown}; known: {', '.join(sorted(allowed))}")
        return cls(**(options or {}))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LangevinTrace:
    """Per-step diagnostics: mean energy and mean per-chain ‖∂E/∂x‖ before each update."""

    energy: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)


@contextlib.contextmanager
def frozen(*modules: nn.Module | None) -> Iterator[None]:
    """Temporarily stop parameters from requiring gradients (sampling must not touch θ's .grad)."""
    params = [p for m in modules if m is not None for p in m.parameters()]
    states = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, state in zip(params, states):
            p.requires_grad_(state)


def langevin(
    x: torch.Tensor,
    energy_fn: EnergyFn,
    config: LangevinConfig,
    *,
    trace: bool = False,
    what: str = "x",
    hint: str = "lower the Langevin step_size or the learning rate",
    generator: torch.Generator | None = None,
    gaussian_precision: float = 0.0,
) -> tuple[torch.Tensor, LangevinTrace | None]:
    """Run ``config.n_steps`` Langevin updates of ``x`` under the per-chain energy

        E(x) = (λ/2)·‖x‖² + U(x),   U = ``energy_fn(x) → (B,)``,  λ = ``gaussian_precision`` (1/s² of a reference
                                     N(0, s²I); 0: none)

    The Gaussian term's gradient λx is added in closed form, ∂E/∂x = λx + ∂U/∂x, so autograd differentiates U alone
    (no graph, temporaries or page faults for ‖x‖²). Returns the final x (detached) and, if ``trace``, the per-step
    diagnostics of E. NaN/Inf in the energy or its gradient raises :class:`DivergenceError` naming the step and the
    quantity. ``x`` itself is never written to: the chain is revised in place in a copy.
    """
    diagnostics = LangevinTrace() if trace else None
    x = x.detach().clone()  # the chain's own buffer, updated in place
    drift = config.step_size**2 / 2.0
    noise_std = config.effective_noise
    # drawn into, then turned into the update, every step; contiguous whatever x's memory format, so that a chain in
    # channels_last gets the same noise per element as the same chain in the default format
    noise = torch.empty(x.shape, dtype=x.dtype, device=x.device) if noise_std > 0 else None
    full_grad = torch.empty_like(x) if gaussian_precision else None  # λx + ∂U/∂x
    energies: list[torch.Tensor] = []  # deferred checks: per step, on the device
    grad_norms: list[torch.Tensor] = []
    for step in range(config.n_steps):
        with torch.enable_grad():
            x.requires_grad_(True)
            energy = energy_fn(x)
            (grad,) = torch.autograd.grad(energy.sum(), x)
        x, energy = x.detach(), energy.detach()
        if gaussian_precision:
            energy = energy + gaussian_precision / 2 * per_chain_norm(x).square()
            grad = torch.add(grad, x, alpha=gaussian_precision, out=full_grad)
        # per-chain ‖∂E/∂x‖ accumulated in float64, which no float32 (or narrower) gradient overflows: finite exactly
        # when every element of the gradient is, so one reduction is both the finiteness check and the trace (a float64
        # chain's gradient could overflow it only beyond 1e154 per element)
        grad_norm = per_chain_norm(grad, torch.float64)
        if config.deferred_checks:
            energies.append(energy.clone())  # read after the chain: never a buffer that energy_fn may write again
            grad_norms.append(grad_norm)
        else:
            check_step(step, bool(torch.isfinite(energy).all()), bool(torch.isfinite(grad_norm).all()), what, hint)
            if diagnostics is not None:
                diagnostics.energy.append(float(energy.mean()))
                diagnostics.grad_norm.append(float(grad_norm.mean()))
        if config.grad_clip is not None:
            grad = grad.clamp(-config.grad_clip, config.grad_clip)
        if noise is not None:  # update = σ_noise·ε − (δ²/2)·∂E/∂x, in the noise buffer
            update = noise.normal_(0.0, noise_std, generator=generator).add_(grad, alpha=-drift)
        else:
            update = grad.mul(-drift)
        if config.update_clamp is not None:
            update.clamp_(-config.update_clamp, config.update_clamp)
        x.add_(update)
        if config.pixel_clamp is not None:
            x.clamp_(*config.pixel_clamp)
    if energies:
        energy_table, norm_table = torch.stack(energies), torch.stack(grad_norms)  # (steps, chains)
        table = torch.stack([torch.isfinite(energy_table).all(dim=1).double(), torch.isfinite(norm_table).all(dim=1).double(),
                             energy_table.mean(dim=1).double(), norm_table.mean(dim=1)], dim=1).cpu().tolist()  # one sync
        for step, (energy_finite, grad_finite, _, _) in enumerate(table):
            check_step(step, bool(energy_finite), bool(grad_finite), what, hint)
        if diagnostics is not None:
            diagnostics.energy = [row[2] for row in table]
            diagnostics.grad_norm = [row[3] for row in table]
    return x, diagnostics


def per_chain_norm(t: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """‖t_b‖ over all but the first dimension, as one reduction in any memory format (no flattening copy)."""
    return torch.linalg.vector_norm(t, dim=tuple(range(1, t.dim())), dtype=dtype)


def check_step(step: int, energy_finite: bool, grad_finite: bool, what: str, hint: str) -> None:
    """Raise DivergenceError naming the Langevin step and the quantity that became NaN/Inf."""
    if not energy_finite:
        raise DivergenceError(f"langevin {step}", f"energy of {what}", hint)
    if not grad_finite:
        raise DivergenceError(f"langevin {step}", f"energy gradient w.r.t. {what}", hint)


def gaussian_reference_energy(x: torch.Tensor, s: float) -> torch.Tensor:
    """‖x‖²/(2s²) per chain: the energy of the reference distribution p0 = N(0, s²I)."""
    return x.flatten(1).pow(2).sum(dim=1) / (2.0 * s * s)


def descriptor_energy(f: Callable[[torch.Tensor], torch.Tensor], s: float | None) -> EnergyFn:
    """E(X) = ‖X‖²/(2s²) − f(X; θ); with s = None the reference term is dropped (uniform p0)."""
    if s is None:
        return lambda x: -f(x)
    return lambda x: gaussian_reference_energy(x, s) - f(x)


def reference_precision(s: float | None) -> float:
    """λ = 1/s² of the reference p0 = N(0, s²I), for ``langevin(..., gaussian_precision=λ)`` (0 without one)."""
    return 0.0 if s is None else 1.0 / (s * s)


def latent_posterior_energy(g: Callable[[torch.Tensor], torch.Tensor], x_obs: torch.Tensor, sigma: float,
                            mask: torch.Tensor | None = None) -> EnergyFn:
    """−log p(h | X) + const = ‖h‖²/2 + ‖X − g(h)‖²/(2σ²) per example (``mask`` keeps observed pixels only)."""

    def energy(h: torch.Tensor) -> torch.Tensor:
        residual = x_obs - g(h)
        if mask is not None:
            residual = residual * mask
        return h.flatten(1).pow(2).sum(dim=1) / 2.0 + residual.flatten(1).pow(2).sum(dim=1) / (2.0 * sigma**2)

    return energy


def check_finite(value: torch.Tensor, step: int | str, quantity: str, hint: str) -> None:
    """Raise DivergenceError if ``value`` holds NaN or Inf."""
    if not torch.isfinite(value).all():
        raise DivergenceError(step, quantity, hint)


#: share of the synthesized values on the pixel clamp's bounds beyond which the chains count as diverged
CLAMP_SATURATION_LIMIT = 0.5
#: training iterations before the saturation is judged: an untrained energy's gradient pushes fresh chains onto the
#: bounds (IGEBM's clipped steps of 0.1 per pixel, 2 cores' cut: 66 % of the values on [0, 1] at iteration 1, 14 % at
#: iteration 9, 3 % at iteration 40); a diverged chain stays on them
CLAMP_SATURATION_WARMUP = 20


def check_clamp_saturation(x_synth: torch.Tensor, x_data: torch.Tensor, clamp: tuple[float, float] | None,
                           hint: str, iteration: int) -> dict:
    """With a ``pixel_clamp``, the share of chain values sitting on the clamp's bounds (``clamp_saturation``). A chain
    whose gradient has blown up is held on the bounds by the clamp and stays finite, so the NaN/Inf check never sees
    it: more than CLAMP_SATURATION_LIMIT of the values on the bounds, and over twice the data's own share, is a
    divergence (``hint``: what to lower) from training iteration CLAMP_SATURATION_WARMUP on."""
    if clamp is None:
        return {}
    low, high = clamp
    synth = ((x_synth <= low) | (x_synth >= high)).float().mean().item()
    data = ((x_data <= low) | (x_data >= high)).float().mean().item()
    if iteration >= CLAMP_SATURATION_WARMUP and synth > max(CLAMP_SATURATION_LIMIT, 2 * data):
        raise DivergenceError("end of langevin", "the synthesized chains", hint,
                              f"have {synth:.1%} of their values on the pixel clamp [{low:g}, {high:g}] (the data: "
                              f"{data:.1%}): their gradient blew up and the clamp hides it")
    return {"clamp_saturation": synth}
