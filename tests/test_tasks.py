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
    with pytest.raises(GenbenchError, match="1 ≤ d ≤ min"):
        pca_reconstruct(data, data, 17)
