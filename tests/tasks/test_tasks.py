"""The building blocks of the completion / recovery / reconstruction tables, against closed forms."""

import math

import numpy as np
import pytest
import torch

from genbench.errors import GenbenchError
from genbench.tasks import completer, occlusion_masks, parse_corruption, region_error, region_psnr, salt_and_pepper
from genbench.tasks.reconstruction import pca_reconstruct, reconstruction_errors


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("size", [1, 20, 30, 64])
def test_masks_cover_exactly_one_square_inside_the_image(seed, size):
    masks = occlusion_masks(50, (64, 64), size, seed)
    assert masks.shape == (50, 1, 64, 64) and masks.dtype == torch.bool
    assert (masks.flatten(1).sum(dim=1) == size * size).all()
    for mask in masks[:, 0]:
        rows, cols = mask.any(dim=1).nonzero().flatten(), mask.any(dim=0).nonzero().flatten()
        assert len(rows) == len(cols) == size and rows.diff().eq(1).all() and cols.diff().eq(1).all()  # one square
    assert torch.equal(masks, occlusion_masks(50, (64, 64), size, seed))  # fixed by the seed
    if size < 64:
        assert not torch.equal(masks, occlusion_masks(50, (64, 64), size, seed + 1))
        assert len({tuple(m.nonzero()[0].tolist()) for m in masks}) > 1  # positions vary


def test_salt_and_pepper_corrupts_the_stated_fraction_with_black_or_white():
    images = torch.zeros(20, 3, 32, 32)
    for fraction in (0.5, 0.7, 0.9):
        noisy, mask = salt_and_pepper(images, fraction, seed=3)
        share = mask.float().flatten(1).mean(dim=1)
        assert (share - fraction).abs().max() <= 0.01
        values = noisy[mask.expand_as(noisy)]
        assert set(values.unique().tolist()) == {-1.0, 1.0} and 0.45 < (values > 0).float().mean() < 0.55
        assert noisy[~mask.expand_as(noisy)].eq(0).all()


def test_error_and_psnr_equal_hand_computed_values():
    target = torch.full((2, 1, 2, 2), -1.0)  # pixel value 0 on [0, 1]
    completed = target.clone()
    completed[0, 0, 0, 0] = 0.0  # 0.5 on [0, 1]
    completed[1, 0, 1, 1] = 1.0  # 1.0 on [0, 1]
    mask = torch.zeros(2, 1, 2, 2, dtype=torch.bool)
    mask[:, :, 0, :] = True  # the top row: image 0 differs there by 0.5, image 1 not at all
    assert region_error(completed, target, mask) == pytest.approx((0.25 + 0.0) / 2)
    assert region_error(completed, target) == pytest.approx((0.5 / 4 + 1.0 / 4) / 2)
    # image 0 over the mask: mse = 0.25²·… = (0.5² + 0)/2 = 0.125 → 10·log10(8); image 1: exact → +inf
    assert region_psnr(completed, target, mask) == math.inf
    assert region_psnr(completed[:1], target[:1], mask[:1]) == pytest.approx(10 * math.log10(8))
    assert region_psnr(target, target) == math.inf


def test_corruption_names_and_bad_values():
    assert parse_corruption("M30").size == 30 and parse_corruption("P.7").fraction == 0.7
    for bad, message in (("P1.5", "unknown corruption"), ("X3", "unknown corruption"), ("P.0", r"in \(0, 1\)")):
        with pytest.raises(GenbenchError, match=message):
            parse_corruption(bad)
    with pytest.raises(GenbenchError, match="does not fit"):
        occlusion_masks(2, (32, 32), 40, 0)
    with pytest.raises(GenbenchError, match="unknown completer 'magic'; known: harmonic"):
        completer("magic")


def test_harmonic_fill_reproduces_a_linear_ramp_and_keeps_observed_pixels():
    """A linear function is harmonic: Laplace inpainting restores it exactly (up to the solver)."""
    ramp = torch.linspace(-1, 1, 16).view(1, 1, 1, 16).expand(1, 3, 16, 16).clone()
    mask = occlusion_masks(1, (16, 16), 6, seed=2)
    corrupted = ramp.masked_fill(mask, 0.5)
    for name in ("harmonic", "biharmonic", "total-variation"):
        filled = completer(name)(corrupted, mask)
        assert torch.allclose(filled[~mask.expand_as(filled)], corrupted[~mask.expand_as(corrupted)])
        assert region_error(filled, ramp, mask) < 2e-3, name


def test_every_completer_beats_the_unchanged_masked_input_on_smooth_images():
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(6, 3, 4, 4, generator=generator) * 2 - 1
    images = torch.nn.functional.interpolate(coarse, size=32, mode="bilinear", align_corners=True)
    masks = occlusion_masks(6, (32, 32), 10, seed=1)
    corrupted = images.masked_fill(masks, 0.0)
    floor = region_error(completer("masked-input")(corrupted, masks), images, masks)
    errors = {name: region_error(completer(name)(corrupted, masks), images, masks)
              for name in ("harmonic", "total-variation", "biharmonic", "telea", "navier-stokes")}
    assert all(e < 0.6 * floor for e in errors.values()), (floor, errors)


def test_pca_reconstruction_error_is_the_discarded_spectrum():
    generator = torch.Generator().manual_seed(0)
    data = torch.rand(40, 1, 4, 4, generator=generator) * 2 - 1
    flat = ((data.flatten(1).double() + 1) / 2).numpy()
    singular = np.linalg.svd(flat - flat.mean(axis=0), compute_uv=False)
    for d in (1, 5, 12):
        errors = reconstruction_errors(data, pca_reconstruct(data, data, d))
        assert errors["mse"] == pytest.approx((singular[d:] ** 2).sum() / flat.size, rel=1e-6)  # float32 images
        assert errors["rmse"] == pytest.approx(np.sqrt((singular[d:] ** 2).sum() / flat.size), rel=1e-6)
    with pytest.raises(GenbenchError, match="1 ≤ d ≤ min"):
        pca_reconstruct(data, data, 17)


def _linear_generator_model(name: str, size: int = 8, d: int = 6, seed: int = 0):
    """An ABP / DCGAN model whose generator is replaced by a known linear map g(h) = A h (no BatchNorm), so
    the images it makes are exactly representable and completions can be checked against them."""
    from genbench.models import build_model

    options = {"abp": {"num_train": 4, "latent_dim": d}, "dcgan": {"latent_dim": d}}[name]
    model = build_model(name, image_size=size, channels=1, **options)
    torch.manual_seed(seed)
    linear = torch.nn.Linear(d, size * size, bias=False)
    torch.nn.init.normal_(linear.weight, std=0.3)

    class Linear(torch.nn.Module):
        latent_dim = d

        def __init__(self):
            super().__init__()
            self.map = linear

        def forward(self, h):
            return self.map(h.flatten(1)).view(-1, 1, size, size)

    model.generator = Linear()
    return model


def test_masked_posterior_inference_ignores_the_occluded_pixels():
    from genbench.models.completion import CompletionSettings, complete_with_model

    model = _linear_generator_model("abp")
    images = model.generator(torch.randn(3, 6)).detach().clamp(-1, 1)
    holes = occlusion_masks(3, (8, 8), 3, seed=0)
    settings = CompletionSettings(latent_steps=50)
    torch.manual_seed(1)
    a = complete_with_model(model, images, holes, settings)
    scrambled = torch.where(holes, torch.rand_like(images) * 2 - 1, images)  # other values in the holes
    torch.manual_seed(1)
    b = complete_with_model(model, scrambled, holes, settings)
    assert torch.equal(a, b)
    assert torch.equal(a[~holes], images[~holes])


@pytest.mark.parametrize("name", ["abp", "dcgan"])
def test_learned_completers_restore_images_their_generator_can_make(name):
    """Images made by a known linear generator, a 3×3 hole each: inferring h from the observed pixels and
    filling with g(h) beats harmonic inpainting (which cannot know the generator's structure)."""
    from genbench.models.completion import CompletionSettings, complete_with_model

    model = _linear_generator_model(name)
    torch.manual_seed(2)
    images = model.generator(torch.randn(8, 6)).detach()
    images = images / images.abs().amax(dim=(1, 2, 3), keepdim=True)  # inside [-1, 1], still in the span
    holes = occlusion_masks(8, (8, 8), 3, seed=3)
    corrupted = images.masked_fill(holes, 0.0)
    settings = CompletionSettings(latent_steps=400, latent_step_size=0.02, optimisation_steps=500)
    learned = region_error(complete_with_model(model, corrupted, holes, settings), images, holes)
    harmonic = region_error(completer("harmonic")(corrupted, holes), images, holes)
    assert learned < 0.5 * harmonic, (learned, harmonic)


def test_coopnets_completion_revises_only_the_missing_pixels():
    from genbench.models import build_model
    from genbench.models.completion import CompletionSettings, complete_with_model

    torch.manual_seed(0)
    model = build_model("coopnets", image_size=8, channels=1, latent_dim=4, num_chains=4, ref_std=1.0,
                        sample_langevin={"n_steps": 15, "step_size": 0.1},
                        net={"widths": [8, 8, 8], "n_out": 4}, generator_net={"base_width": 8})
    images = torch.rand(4, 1, 8, 8) * 2 - 1
    holes = occlusion_masks(4, (8, 8), 3, seed=0)
    torch.manual_seed(1)
    drafted = complete_with_model(model, images, holes, CompletionSettings(latent_steps=5, revision_steps=0))
    torch.manual_seed(1)
    revised = complete_with_model(model, images, holes, CompletionSettings(latent_steps=5, revision_steps=15))
    assert torch.equal(revised[~holes], images[~holes]) and torch.equal(drafted[~holes], images[~holes])
    assert not torch.allclose(revised[holes], drafted[holes])  # the descriptor moved the hole
    assert model.training  # the model's mode is restored


def test_held_out_latent_inference_starts_from_the_prior_unless_told_otherwise():
    """h = 0 for every image puts all chains of a batch at one point, where a batch-statistics BatchNorm divides by
    a near-zero variance; the default start is a prior draw per image."""
    from genbench.models.completion import CompletionSettings, masked_latent

    generator = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.BatchNorm1d(16), torch.nn.Linear(16, 4 * 4))
    generator = torch.nn.Sequential(generator, torch.nn.Unflatten(1, (1, 4, 4)))
    images, holes = torch.rand(64, 1, 4, 4) * 2 - 1, torch.zeros(64, 1, 4, 4, dtype=torch.bool)
    torch.manual_seed(0)
    prior = masked_latent(generator, images, holes, 6, 0.3, CompletionSettings(latent_steps=0))
    assert prior.std() == pytest.approx(1.0, abs=0.1) and len({tuple(h.tolist()) for h in prior}) == 64
    zero = masked_latent(generator, images, holes, 6, 0.3, CompletionSettings(latent_steps=0, latent_init="zero"))
    assert torch.equal(zero, torch.zeros(64, 6))
    with pytest.raises(GenbenchError, match="latent_init must be 'prior' or 'zero'"):
        CompletionSettings(latent_init="mean")


def test_the_models_that_can_complete_are_those_whose_class_names_a_completion():
    from genbench.models.completion import check_completer, completer_models

    energy_priors = {"descriptor", "pcd", "short-run", "descriptor-original", "multigrid", "single-grid-cd", "one-step-cd"}
    assert set(completer_models()) == {"abp", "coopnets", "dcgan", "wgan", "wgan-gp", "ebgan", "kim-bengio", *energy_priors}
    with pytest.raises(GenbenchError, match="no learned completer for 'vae'; known: abp, coopnets"):
        check_completer("vae")


def test_a_table_reuses_a_run_whose_checkpoint_predates_a_buffer_its_model_maps(tmp_path):
    """A descriptor checkpoint written before ``data_mean`` existed loads for a table as it does for a resumed fit
    (the model's ``on_load_checkpoint`` fills the buffer), with its weights intact."""
    from genbench.runs.trainer import build
    from genbench.runs.config import run_config
    from genbench.tasks.runs import load_trained

    cfg = run_config("descriptor", "digits", "smoke", None, 0, []).cfg
    _, module = build(cfg)
    state = {k: v + 1 for k, v in module.state_dict().items() if k != "data_mean"}
    (tmp_path / "checkpoints").mkdir()
    torch.save({"state_dict": state, "genbench_iteration": 7}, tmp_path / "checkpoints" / "last.ckpt")
    _, loaded = load_trained(cfg, tmp_path)
    assert loaded.iteration == 7 and torch.equal(loaded.data_mean, torch.zeros_like(loaded.data_mean))
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())
