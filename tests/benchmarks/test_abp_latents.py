"""``benchmarks/abp_latents.py``: the sets it scores come from the latent memory as its docstring says."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from abp_latents import fitted_latents, latent_sets  # noqa: E402

from genbench.models import build_model  # noqa: E402


def test_fitted_latents_have_the_memory_s_mean_and_full_covariance():
    torch.manual_seed(0)
    mixing = torch.tensor([[1.0, 0.8, 0.0, 0.0], [0.0, 1.0, -0.6, 0.0], [0.0, 0.0, 2.0, 0.5], [0.3, 0.0, 0.0, 1.5]])
    memory = torch.randn(20_000, 4) @ mixing + torch.tensor([1.0, 0.0, -1.0, 0.0])  # correlated dimensions
    drawn = fitted_latents(memory, 20_000)
    assert torch.allclose(drawn.mean(0), memory.mean(0), atol=0.08)
    assert torch.allclose(torch.cov(drawn.T), torch.cov(memory.T), atol=0.15)  # a diagonal fit misses ±0.8…1.6


def test_reconstructions_are_the_generator_on_the_stored_latents():
    torch.manual_seed(0)
    model = build_model("abp", image_size=16, channels=1, num_train=10, latent_dim=4,
                        generator_net={"base_width": 8}).eval()
    images = torch.rand(3, 1, 16, 16) * 2 - 1
    index = torch.tensor([2, 5, 7])
    sets = latent_sets(model, images, index, 3)
    assert list(sets) == ["prior", "fitted", "reconstructions", "training images"]
    with model.sampling_mode(), torch.no_grad():
        expected = model.generator(model.latents[index]).clamp(-1, 1)
    assert torch.allclose(sets["reconstructions"], expected)
    assert sets["training images"] is images and sets["prior"].shape == sets["fitted"].shape == (3, 1, 16, 16)
    model.generator = torch.nn.Unflatten(1, (4, 1, 1))  # g(h) = h: the sets show the latent vectors themselves
    model.latents.fill_(0.5)
    again = latent_sets(model, images, index, 2000)
    assert (again["fitted"] - 0.5).abs().max() < 0.1  # drawn from N(m, C) of the memory, not from N(0, I)
    assert (again["prior"] - 0.5).abs().max() > 0.5
    assert torch.allclose(again["reconstructions"], torch.full((3, 4, 1, 1), 0.5))
