"""Where an ABP run's sample quality is lost: its generator, or the gap between the prior and its latent vectors.

ABP keeps one latent vector hᵢ per training image (the persistent chains). This scores, in the run's own
classifier feature space, four sets of ``--count`` images:

- ``prior``: g(h), h ~ N(0, I), the model's samples (the table's row);
- ``fitted``: g(h), h ~ N(m, C), the Gaussian with the mean and covariance of the latent vectors;
- ``reconstructions``: g(hᵢ) for training images i drawn at random (the generator on its own latents);
- ``training images``: those images themselves.

If the reconstructions score near the training images and the prior's samples far from them, the generator
is fine and the samples are lost in the latent space: the vectors it learned from do not fill N(0, I).

    python benchmarks/abp_latents.py runs/mnist/abp/<run> [--count 1000] [--seed 0] [--png out.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml

from genbench.bench.harness import metric_setup, score_row
from genbench.errors import GenbenchError
from genbench.runs.trainer import build, run_datamodule
from genbench.tasks.reconstruction import reconstruction_errors

METRICS = ["classifier_fid", "classifier_pr", "classifier_score"]


def fitted_latents(latents: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` draws of h ~ N(m, C), m and C the mean and covariance of the rows of ``latents``."""
    mean, cov = latents.mean(0), torch.cov(latents.T)
    return torch.distributions.MultivariateNormal(mean, covariance_matrix=cov + 1e-4 * torch.eye(len(mean))).sample((count,))


def latent_sets(model, images: torch.Tensor, index: torch.Tensor, count: int) -> dict[str, torch.Tensor]:
    """The four image sets of the module docstring, from ``model``'s latent memory and ``images`` (the training
    images ``index``)."""
    latents = model.latents.detach()

    def generate(h: torch.Tensor) -> torch.Tensor:
        with model.sampling_mode(), torch.no_grad():
            return torch.cat([model.generator(chunk).clamp(-1, 1) for chunk in h.split(250)])

    return {"prior": generate(torch.randn(count, latents.shape[1])), "fitted": generate(fitted_latents(latents, count)),
            "reconstructions": generate(latents[index]), "training images": images}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="an ABP run folder (config.yaml, checkpoints/last.ckpt)")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--png", type=Path, default=None, help="36 images of each set side by side")
    args = parser.parse_args()
    cfg = yaml.safe_load((args.run / "config.yaml").read_text())
    if cfg["run"]["model"] != "abp" or not cfg["model"].get("persistent_latents", True):
        raise GenbenchError(f"{args.run} is not an ABP run with persistent latents")
    dm = run_datamodule(cfg)
    names, ctx = metric_setup(cfg, dm=dm)  # one datamodule: listed once for the metrics, set up for the model
    dm, model = build(cfg, dm)
    model.load_state_dict(torch.load(args.run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"])
    model.eval()
    torch.manual_seed(args.seed)
    train = dm.datasets["train"]
    index = torch.randperm(len(train))[:args.count]
    images = torch.stack([train[int(i)][0] for i in index])
    sets = latent_sets(model, images, index, len(index))
    eigenvalues = torch.linalg.eigvalsh(torch.cov(model.latents.T))
    print(f"{args.run}: {len(model.latents)} latent vectors, mean norm {model.latents.norm(dim=1).mean():.2f} "
          f"(N(0, I): {model.latents.shape[1] ** 0.5:.2f}), covariance eigenvalues {eigenvalues[0]:.2f} to {eigenvalues[-1]:.2f}")
    for name, x in sets.items():
        scores = score_row(METRICS, x, ctx.for_samples(len(x)))["metrics"]
        print(f"{name:>16}: " + ", ".join(f"{k} {v['mean']:.3f}" for k, v in scores.items()))
    errors = reconstruction_errors(images, sets["reconstructions"])  # on [0, 1], as the reconstruction table
    print(f"reconstruction RMSE on the training images (intensities in [0, 1]): {errors['rmse']:.4f}")
    if args.png:
        from torchvision.utils import make_grid, save_image

        grids = [make_grid(x[:36] * 0.5 + 0.5, nrow=6, padding=1) for x in sets.values()]
        save_image(make_grid(torch.stack(grids), nrow=len(grids), padding=6, pad_value=1.0), args.png)
        print(f"images: {args.png} ({', '.join(sets)}, left to right)")


if __name__ == "__main__":
    main()
