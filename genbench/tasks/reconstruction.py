"""Reconstruction of held-out images from d numbers: PCA with d components fitted on the training images
(scikit-learn), the baseline the ABP paper compares its generator with. Errors on [0, 1] pixel values:

    mean squared error  (1/(N·D)) Σ‖x − x̂‖²,  its root (RMSE),  and  mean absolute error  (1/(N·D)) Σ|x − x̂|.

On the fitted images themselves, the squared error is the discarded spectrum: Σ_{i>d} s_i² / (N·D), with s_i
the singular values of the centred data matrix.
"""

from __future__ import annotations

import torch

from genbench.errors import GenbenchError


def pca_reconstruct(train: torch.Tensor, test: torch.Tensor, d: int, seed: int = 0) -> torch.Tensor:
    """x̂ = μ + W Wᵀ (x − μ) with the top-d principal directions W of ``train``; shapes (N, …) and (M, …)."""
    from sklearn.decomposition import PCA

    flat_train, flat_test = train.flatten(1).double().numpy(), test.flatten(1).double().numpy()
    if not 1 <= d <= min(flat_train.shape):
        raise GenbenchError(f"PCA with d = {d} needs 1 ≤ d ≤ min(training images {flat_train.shape[0]}, "
                            f"pixels {flat_train.shape[1]})")
    pca = PCA(n_components=d, svd_solver="full", random_state=seed).fit(flat_train)
    recon = pca.inverse_transform(pca.transform(flat_test))
    return torch.from_numpy(recon).view_as(test).to(test.dtype)


def reconstruction_errors(images: torch.Tensor, reconstructed: torch.Tensor) -> dict[str, float]:
    """Mean squared error, its root and mean absolute error on [0, 1] (images in [-1, 1])."""
    diff = (images.double() - reconstructed.double()) / 2
    mse = float(diff.pow(2).mean())
    return {"mse": mse, "rmse": mse ** 0.5, "mae": float(diff.abs().mean())}


def row_rmse(errors: dict) -> float:
    """A row's RMSE: recorded, or the root of its recorded mean squared error (rows made before RMSE was recorded)."""
    return errors["rmse"] if "rmse" in errors else errors["mse"] ** 0.5
