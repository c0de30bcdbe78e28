"""The Langevin sampler against closed forms."""

import pytest
import torch
from torch import nn

from genbench.errors import DivergenceError, GenbenchError
from genbench.models.abp import infer_latent
from genbench.samplers.buffer import ReplayBuffer
from genbench.samplers.langevin import LangevinConfig, frozen, langevin


def test_gaussian_energy_recovers_mean_and_variance():
    torch.manual_seed(0)
    mu, sigma2, delta = torch.tensor([1.0, -2.0, 0.5]), 0.25, 0.05
    energy = lambda x: (x - mu).pow(2).sum(dim=1) / (2 * sigma2)  # noqa: E731
    x, trace = langevin(torch.zeros(8000, 3), energy, LangevinConfig(n_steps=1500, step_size=delta), trace=True)
    # the discretised chain's stationary variance is σ²/(1 − δ²/(4σ²)) (0.06 % above σ² here)
    expected_var = sigma2 / (1 - delta**2 / (4 * sigma2))
    assert torch.allclose(x.mean(dim=0), mu, atol=0.02)  # std of the estimate ≈ 0.006
    assert torch.allclose(x.var(dim=0), torch.full((3,), expected_var), rtol=0.06)  # std ≈ 1.6 %
    assert len(trace.energy) == 1500 and trace.energy[0] > trace.energy[-1]
    assert trace.energy[-1] == pytest.approx(1.5, rel=0.1)  # E[E] = d/2 at equilibrium


def test_broken_drift_sign_fails_the_moment_check():
    """The same check fails for the wrong sign of the drift (so the test above can fail)."""
    torch.manual_seed(0)
    mu = torch.tensor([1.0, -2.0])
    energy = lambda x: -(x - mu).pow(2).sum(dim=1) / 0.5  # noqa: E731  (sign flipped)
    x, _ = langevin(torch.zeros(500, 2), energy, LangevinConfig(n_steps=200, step_size=0.05))
    assert not torch.allclose(x.mean(dim=0), mu, atol=0.05)


def test_noise_free_langevin_descends_to_the_mode():
    mu = torch.tensor([3.0, -1.0])
    energy = lambda x: (x - mu).pow(2).sum(dim=1) / 2  # noqa: E731
    x, _ = langevin(torch.zeros(4, 2), energy, LangevinConfig(n_steps=2000, step_size=0.2, noise=False))
    assert torch.allclose(x, mu.expand(4, 2), atol=1e-4)


def test_decoupled_noise_scale_sets_the_spread():
    energy = lambda x: 0.0 * x.sum(dim=1)  # noqa: E731  flat energy: pure diffusion
    torch.manual_seed(0)
    x, _ = langevin(torch.zeros(20000, 1), energy, LangevinConfig(n_steps=4, step_size=1.0, noise_scale=0.01))
    assert x.std().item() == pytest.approx(0.02, rel=0.03)  # √4 · 0.01


def test_clipping_and_clamping():
    energy = lambda x: -100.0 * x.sum(dim=1)  # noqa: E731  gradient −100 everywhere
    cfg = LangevinConfig(n_steps=1, step_size=1.0, noise=False, grad_clip=0.1)
    assert torch.allclose(langevin(torch.zeros(2, 3), energy, cfg)[0], torch.full((2, 3), 0.05))
    cfg = LangevinConfig(n_steps=1, step_size=1.0, noise=False, update_clamp=0.01)
    assert torch.allclose(langevin(torch.zeros(2, 3), energy, cfg)[0], torch.full((2, 3), 0.01))
    cfg = LangevinConfig(n_steps=3, step_size=1.0, noise=False, pixel_clamp=(-1, 1))
    assert langevin(torch.zeros(2, 3), energy, cfg)[0].max() == 1.0


def test_sampling_leaves_parameters_untouched():
    """Langevin differentiates w.r.t. x only: even with the net *not* frozen, no parameter gradient is
    accumulated or value changed (an implementation calling energy.backward() would fill ``.grad``), and
    ``frozen`` turns requires_grad off inside and restores it after."""
    net = nn.Linear(4, 1)
    values = [p.detach().clone() for p in net.parameters()]
    x, _ = langevin(torch.randn(8, 4), lambda x: net(x).squeeze(1), LangevinConfig(n_steps=5, step_size=0.1))
    assert all(p.grad is None for p in net.parameters())
    assert all(torch.equal(p, v) for p, v in zip(net.parameters(), values))
    assert not x.requires_grad and x.grad_fn is None
    net.weight.requires_grad_(False)  # a caller's own setting survives
    with frozen(net):
        assert not any(p.requires_grad for p in net.parameters())
    assert [p.requires_grad for p in net.parameters()] == [False, True]


@pytest.mark.parametrize("options", [{"step_size": 0}, {"step_size": -0.1}, {"n_steps": -1}, {"n_steps": 2.5},
                                     {"noise_scale": -1}, {"grad_clip": 0}])
def test_bad_settings_are_rejected_at_config_time(options):
    with pytest.raises(GenbenchError, match="langevin"):
        LangevinConfig.from_dict(options)


def test_unknown_setting_is_rejected():
    with pytest.raises(GenbenchError, match="unknown langevin option"):
        LangevinConfig.from_dict({"steps": 3})


def test_divergence_names_step_and_quantity():
    energy = lambda x: x.pow(4).sum(dim=1) * 1e30  # noqa: E731
    with pytest.raises(DivergenceError, match=r"step langevin 1: energy of X is NaN or Inf; lower"):
        langevin(torch.full((2, 2), 10.0), energy, LangevinConfig(n_steps=5, step_size=1.0), what="X")


def test_abp_inference_matches_linear_gaussian_posterior():
    """g(h) = W h: p(h | x) = N(C Wᵀx/σ², C), C = (I + WᵀW/σ²)⁻¹."""
    torch.manual_seed(1)
    d, D, sigma, delta = 3, 6, 0.5, 0.1
    W = 0.5 * torch.randn(D, d, dtype=torch.float64)
    x = torch.randn(1, D, dtype=torch.float64)
    generator = nn.Linear(d, D, bias=False).double()
    generator.weight.data.copy_(W)
    precision = torch.eye(d, dtype=torch.float64) + W.T @ W / sigma**2
    C = torch.linalg.inv(precision)
    m = (C @ W.T @ x.T / sigma**2).squeeze(1)
    # the discretised chain is exact in mean; its covariance is C (I − δ²P/4)⁻¹ (here within 3 % of C)
    C_chain = C @ torch.linalg.inv(torch.eye(d, dtype=torch.float64) - delta**2 * precision / 4)
    chains = 8000
    h, _ = infer_latent(generator, torch.zeros(chains, d, dtype=torch.float64), x.expand(chains, D), sigma,
                        LangevinConfig(n_steps=1500, step_size=delta))
    scale = C.diag().sqrt()
    assert torch.allclose(h.mean(dim=0), m, atol=float(4 * scale.max() / chains**0.5))
    cov = torch.cov(h.T)
    assert torch.allclose(cov, C_chain, atol=float(0.05 * C.diag().max()))
    assert torch.allclose(cov.diag(), C.diag(), rtol=0.08)


def test_replay_buffer_reinitialises_a_fraction_and_stores():
    torch.manual_seed(0)
    buf = ReplayBuffer(1000, (2,), reinit_prob=0.2, init_fn=lambda n: torch.full((n, 2), 7.0))
    buf.states.zero_()
    index, states = buf.draw(500)
    assert len(set(index.tolist())) == 500
    fresh = (states == 7.0).all(dim=1).float().mean().item()
    assert 0.15 < fresh < 0.25
    buf.store(index, torch.ones(500, 2), steps=3)
    assert buf.states[index].eq(1).all() and "states" in buf.state_dict() and "chain_steps" in buf.state_dict()
    assert buf.chain_steps[index].eq(3).all() and buf.chain_steps.sum() == 3 * 500
    with pytest.raises(GenbenchError, match="raise buffer_size"):
        buf.draw(1001)


def test_deferred_checks_give_the_same_trajectory_and_trace():
    """Reading the finiteness checks and diagnostics once per chain (one host–device synchronisation) changes
    nothing: same seed, same chain, same per-step trace (float32, no compile)."""
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))

    def energy(x):
        return x.pow(2).sum(dim=1) / 2 - net(x).squeeze(1)

    runs = []
    for deferred in (False, True):
        torch.manual_seed(3)
        config = LangevinConfig(n_steps=25, step_size=0.1, deferred_checks=deferred)
        with frozen(net):
            runs.append(langevin(torch.randn(32, 6), energy, config, trace=True))
    (x_a, trace_a), (x_b, trace_b) = runs
    assert torch.equal(x_a, x_b)
    assert trace_a.energy == pytest.approx(trace_b.energy, rel=1e-6, abs=1e-6) and len(trace_b.energy) == 25
    assert trace_a.grad_norm == pytest.approx(trace_b.grad_norm, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("deferred", [False, True])
def test_a_divergence_is_reported_with_its_first_step_with_or_without_deferred_checks(deferred):
    """E(x) = −x⁴ with a large step: the chain blows up to Inf/NaN at some step; both modes name the same step."""
    from genbench.errors import DivergenceError

    def energy(x):
        return -x.pow(4).sum(dim=1)

    with pytest.raises(DivergenceError) as info:
        langevin(torch.full((4, 2), 2.0), energy, LangevinConfig(n_steps=50, step_size=1.0, noise=False,
                                                                 deferred_checks=deferred))
    # x grows as x ← x + 2x³ : 2 → 18 → 11682 → 3e12 → 6e37 (energy −x⁴ overflows float32 at step 3)
    assert "langevin 3" in str(info.value) and "energy of x" in str(info.value)


@pytest.mark.parametrize("deferred", [False, True])
def test_a_nan_gradient_under_a_finite_energy_is_caught(deferred):
    """E(x) = Σ√|x| is finite at x = 0 but its gradient there is NaN (sign(0)·∞): the gradient check, not the energy's,
    must name step 0, in both modes."""
    energy = lambda x: x.abs().sqrt().sum(dim=1)  # noqa: E731
    with pytest.raises(DivergenceError, match=r"step langevin 0: energy gradient w.r.t. x is NaN or Inf"):
        langevin(torch.zeros(3, 2), energy, LangevinConfig(n_steps=4, step_size=0.1, deferred_checks=deferred))


@pytest.mark.parametrize("deferred", [False, True])
def test_a_huge_finite_gradient_is_no_divergence(deferred):
    """∂E/∂x = 10³⁰ is finite in float32 though its square is not: with the gradient clipped the chain is fine, so the
    check (a per-chain norm accumulated in float64) must not call it a divergence; x moves by δ²/2 · clip per step."""
    energy = lambda x: 1e30 * x.sum(dim=1)  # noqa: E731
    config = LangevinConfig(n_steps=3, step_size=1.0, noise=False, grad_clip=0.1, deferred_checks=deferred)
    x, trace = langevin(torch.zeros(2, 3), energy, config, trace=True)
    assert torch.allclose(x, torch.full((2, 3), -0.15))
    assert trace.grad_norm == pytest.approx([3**0.5 * 1e30] * 3, rel=1e-6)


def test_the_chain_is_revised_in_its_own_buffer():
    """The in-place update never writes into the caller's starting point, and two runs from it with the same seed agree."""
    x0 = torch.randn(5, 4)
    kept = x0.clone()
    energy = lambda x: x.pow(2).sum(dim=1) / 2  # noqa: E731
    config = LangevinConfig(n_steps=6, step_size=0.3)
    torch.manual_seed(0)
    first, _ = langevin(x0, energy, config)
    torch.manual_seed(0)
    second, _ = langevin(x0, energy, config)
    assert torch.equal(x0, kept) and torch.equal(first, second) and not torch.equal(first, x0)
    assert first.data_ptr() != x0.data_ptr()


@pytest.mark.parametrize("deferred", [False, True])
def test_the_gaussian_reference_term_in_closed_form_matches_autograd(deferred):
    """E(x) = (λ/2)‖x‖² + U(x): passing λ as ``gaussian_precision`` (its gradient λx applied in closed form) gives the
    chain and trace that autograd through the whole energy gives, from the same seed (the clip applies to the whole
    gradient λx + ∂U/∂x, and it bites here: ‖λx‖ reaches 4·|x| ≈ 8 per coordinate at the start)."""
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    precision = 4.0

    def potential(x):
        return -net(x).squeeze(1)

    def whole(x):
        return precision * x.pow(2).sum(dim=1) / 2 + potential(x)

    runs = []
    for energy, closed_form in ((whole, 0.0), (potential, precision)):
        torch.manual_seed(5)
        with frozen(net):
            config = LangevinConfig(n_steps=30, step_size=0.05, grad_clip=2.0, deferred_checks=deferred)
            runs.append(langevin(torch.randn(64, 6), energy, config, trace=True, gaussian_precision=closed_form))
    (x_a, trace_a), (x_b, trace_b) = runs
    assert torch.allclose(x_a, x_b, atol=1e-5) and not torch.allclose(x_a, torch.zeros_like(x_a), atol=0.1)
    assert trace_a.energy == pytest.approx(trace_b.energy, rel=1e-5)
    assert trace_a.grad_norm == pytest.approx(trace_b.grad_norm, rel=1e-5)


def test_gaussian_reference_alone_has_the_discretised_chains_variance():
    """U = 0, λ = 1/s²: the chain samples N(0, s²) up to the discretisation, variance s²/(1 − δ²/(4s²))."""
    torch.manual_seed(0)
    s2, delta = 0.09, 0.05
    x, _ = langevin(torch.zeros(20000, 2), lambda x: x.sum(dim=1) * 0.0, LangevinConfig(n_steps=800, step_size=delta),
                    gaussian_precision=1 / s2)
    expected = s2 / (1 - delta**2 / (4 * s2))
    assert x.mean().abs() < 0.01
    assert torch.allclose(x.var(dim=0), torch.full((2,), expected), rtol=0.04)


def test_a_channels_last_chain_gets_the_same_noise_as_a_contiguous_one():
    """The noise is drawn per element, whatever the memory format of the chain: from the same seed a chain stored
    channels_last (speed.channels_last) and the same chain stored contiguously end equal."""
    energy = lambda x: x.pow(2).flatten(1).sum(dim=1) / 2  # noqa: E731
    x0 = torch.randn(4, 3, 5, 5)
    config = LangevinConfig(n_steps=5, step_size=0.2)
    ends = []
    for start in (x0, x0.contiguous(memory_format=torch.channels_last)):
        torch.manual_seed(2)
        ends.append(langevin(start, energy, config)[0].contiguous())
    assert torch.allclose(ends[0], ends[1], atol=1e-6)
