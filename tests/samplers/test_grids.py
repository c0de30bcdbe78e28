"""The multi-grid EBM's grids against closed forms and against the official code's fixed convolutions, and its
coarse-to-fine schedule."""

import pytest
import torch
import torch.nn.functional as F

from genbench.errors import GenbenchError
from genbench.samplers.grids import (check_grids, coarse_to_fine, default_grids, downsample, draw_images, ratio,
                                     upsample)


def _block_means_by_loops(x: torch.Tensor, size: int) -> torch.Tensor:
    """D(X)[c, i, j] = (1/r²) Σ_{a,b<r} X[c, r·i + a, r·j + b], written out."""
    r = x.shape[-1] // size
    out = torch.zeros(*x.shape[:2], size, size, dtype=torch.float64)
    for i in range(size):
        for j in range(size):
            out[..., i, j] = x[..., r * i:r * (i + 1), r * j:r * (j + 1)].double().sum(dim=(-1, -2)) / r**2
    return out


@pytest.mark.parametrize("from_size, to_size", [(16, 4), (16, 1), (32, 16), (28, 7), (8, 8)])
def test_downsampling_is_the_block_average(from_size, to_size):
    x = torch.rand(3, 2, from_size, from_size, generator=torch.Generator().manual_seed(from_size))
    assert torch.allclose(downsample(x, to_size).double(), _block_means_by_loops(x, to_size), atol=1e-6)


@pytest.mark.parametrize("from_size, to_size", [(1, 4), (4, 16), (16, 32), (7, 28)])
def test_upsampling_replicates_each_pixel_into_its_block(from_size, to_size):
    y = torch.rand(2, 3, from_size, from_size, generator=torch.Generator().manual_seed(to_size))
    r = to_size // from_size
    up = upsample(y, to_size)
    for i in range(to_size):
        for j in range(to_size):
            assert torch.equal(up[..., i, j], y[..., i // r, j // r])
    assert torch.allclose(downsample(up, from_size), y, atol=1e-6)  # D(U(Y)) = Y


@pytest.mark.parametrize("from_size, to_size", [(64, 16), (16, 4), (64, 1)])
def test_the_grids_equal_the_official_fixed_convolutions(from_size, to_size):
    """The official code: a stride-r conv whose weight is 1/r² on each channel's own input; a stride-r transposed conv
    of ones."""
    r = from_size // to_size
    x = torch.rand(2, 3, from_size, from_size, generator=torch.Generator().manual_seed(1))
    weight = torch.zeros(3, 3, r, r)
    for c in range(3):
        weight[c, c] = 1.0 / r**2
    assert torch.allclose(downsample(x, to_size), F.conv2d(x, weight, stride=r), atol=1e-6)
    y = torch.rand(2, 3, to_size, to_size, generator=torch.Generator().manual_seed(2))
    ones = torch.zeros(3, 3, r, r)
    for c in range(3):
        ones[c, c] = 1.0
    assert torch.equal(upsample(y, from_size), F.conv_transpose2d(y, ones, stride=r))


def test_grids_that_do_not_divide_are_refused_in_one_line():
    with pytest.raises(GenbenchError, match="does not divide"):
        ratio(16, 28)
    with pytest.raises(GenbenchError, match="end at the image size 32"):
        check_grids([4, 16], 32)
    with pytest.raises(GenbenchError, match="does not divide"):
        check_grids([4, 10, 20], 20)
    assert default_grids(64) == [4, 16, 64] and default_grids(32) == [4, 16, 32] and default_grids(28) == [4, 28]


def test_coarse_to_fine_starts_each_grid_from_the_previous_grids_result_up_sampled():
    seen = []

    def revise(size, x):  # a stand-in revision that adds the grid size, so each grid's input is traceable
        seen.append((size, x.clone()))
        return x + size, None

    x0 = torch.full((2, 3, 1, 1), 10.0)
    out = coarse_to_fine(x0, [4, 16, 32], revise)
    assert [s for s, _ in seen] == [4, 16, 32]
    assert torch.equal(seen[0][1], torch.full((2, 3, 4, 4), 10.0))
    assert torch.equal(seen[1][1], upsample(out[0][1], 16)) and torch.equal(seen[2][1], upsample(out[1][1], 32))
    assert torch.equal(out[-1][1], torch.full((2, 3, 32, 32), 10.0 + 4 + 16 + 32))


def test_evaluation_draws_are_distinct_until_there_are_more_samples_than_images():
    index, replaced = draw_images(50, 40, seed=3)
    assert not replaced and len(set(index.tolist())) == 40
    index, replaced = draw_images(50, 120, seed=3)
    assert replaced and index.shape == (120,) and set(index.tolist()) <= set(range(50))
    assert torch.equal(draw_images(50, 120, seed=3)[0], index)  # seeded
