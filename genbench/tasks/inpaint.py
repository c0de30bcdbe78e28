"""Non-learned completers, the baselines of the completion table (in the spirit of its MRF-ℓ2 / MRF-ℓ1 and
interpolation columns). Each takes images in [-1, 1], shape (n, c, H, W), and masks (n, 1, H, W), True where
a pixel is missing, and returns the images with the missing pixels filled (observed pixels unchanged).

- ``harmonic``: ℓ2 / Laplace — Δu = 0 inside the hole, u = observed on its border (a sparse linear solve);
- ``total-variation``: ℓ1 — min Σ|∇u| with u = observed outside the hole (Chambolle–Pock primal–dual);
- ``biharmonic``: scikit-image's ``inpaint_biharmonic``;
- ``telea``, ``navier-stokes``: OpenCV's ``cv2.inpaint`` (INPAINT_TELEA, INPAINT_NS), radius 3, on 8-bit images;
- ``masked-input``: returns the corrupted input unchanged (the floor any completer must beat).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from genbench.errors import GenbenchError

Completer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _each_channel(fill: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Completer:
    """Lift a (H, W) float fill to (n, c, H, W) tensors; observed pixels are kept exactly."""

    def complete(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        out = images.detach().double().cpu().numpy().copy()
        holes = masks.cpu().numpy()[:, 0].astype(bool)
        for i in range(out.shape[0]):
            if holes[i].any():
                for c in range(out.shape[1]):
                    out[i, c][holes[i]] = fill(out[i, c], holes[i])[holes[i]]
        return torch.from_numpy(out).to(images.dtype)

    return complete


def harmonic_fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Solve the discrete Laplace equation (4-neighbour mean) on the hole with the observed pixels as boundary."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    height, width = image.shape
    index = -np.ones((height, width), dtype=np.int64)
    ys, xs = np.nonzero(hole)
    index[ys, xs] = np.arange(len(ys))
    rows, cols, vals = [np.arange(len(ys))], [np.arange(len(ys))], [np.zeros(len(ys))]
    rhs = np.zeros(len(ys))
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        vals[0][inside] += 1.0  # degree of each unknown pixel
        unknown = inside.copy()
        unknown[inside] = hole[ny[inside], nx[inside]]
        rows.append(np.nonzero(unknown)[0])
        cols.append(index[ny[unknown], nx[unknown]])
        vals.append(-np.ones(unknown.sum()))
        known = inside & ~unknown
        np.add.at(rhs, np.nonzero(known)[0], image[ny[known], nx[known]])
    matrix = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(ys),) * 2)
    filled = image.copy()
    filled[ys, xs] = spsolve(matrix.tocsr(), rhs)
    return filled


def total_variation_fill(image: np.ndarray, hole: np.ndarray, iterations: int = 500) -> np.ndarray:
    """min_u Σ_pixels |∇u|₂ subject to u = image off the hole: Chambolle & Pock (2011), Algorithm 1, with
    forward differences, τ = σ = 1/√8 (τσ‖∇‖² ≤ 1), started from the harmonic fill."""
    u = harmonic_fill(image, hole)
    u_bar = u.copy()
    p = np.zeros((2, *image.shape))
    step = 1 / np.sqrt(8.0)
    for _ in range(iterations):
        grad = np.zeros_like(p)
        grad[0, :-1] = u_bar[1:] - u_bar[:-1]
        grad[1, :, :-1] = u_bar[:, 1:] - u_bar[:, :-1]
        p = p + step * grad
        p /= np.maximum(1.0, np.sqrt((p ** 2).sum(axis=0)))
        div = np.zeros_like(u)  # div = −∇ᵀ p
        div[:-1] += p[0, :-1]
        div[1:] -= p[0, :-1]
        div[:, :-1] += p[1, :, :-1]
        div[:, 1:] -= p[1, :, :-1]
        u_new = u + step * div
        u_new[~hole] = image[~hole]
        u_bar = 2 * u_new - u
        u = u_new
    return u


def biharmonic(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    from skimage.restoration import inpaint_biharmonic

    out = images.detach().double().cpu().numpy().copy()
    for i in range(out.shape[0]):
        hole = masks[i, 0].cpu().numpy().astype(bool)
        if hole.any():
            filled = inpaint_biharmonic(out[i].transpose(1, 2, 0), hole, channel_axis=-1).transpose(2, 0, 1)
            out[i][:, hole] = filled[:, hole]
    return torch.from_numpy(out).to(images.dtype)


def _opencv(flag_name: str) -> Completer:
    def complete(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        import cv2

        flag = getattr(cv2, flag_name)
        pixels = ((images.detach().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        out = images.detach().cpu().clone()
        for i in range(images.shape[0]):
            hole = masks[i, 0].cpu().numpy().astype(np.uint8)
            if hole.any():
                picture = np.ascontiguousarray(pixels[i].permute(1, 2, 0).numpy())
                filled = cv2.inpaint(picture, hole, 3, flag)
                filled = torch.from_numpy(filled.reshape(picture.shape)).permute(2, 0, 1).to(images.dtype) / 127.5 - 1
                out[i] = torch.where(masks[i].cpu(), filled, out[i])
        return out

    return complete


def masked_input(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    return images.clone()


COMPLETERS: dict[str, Completer] = {
    "harmonic": _each_channel(harmonic_fill),
    "total-variation": _each_channel(total_variation_fill),
    "biharmonic": biharmonic,
    "telea": _opencv("INPAINT_TELEA"),
    "navier-stokes": _opencv("INPAINT_NS"),
    "masked-input": masked_input,
}


def completer(name: str) -> Completer:
    if name not in COMPLETERS:
        raise GenbenchError(f"unknown completer {name!r}; known: {', '.join(COMPLETERS)}")
    return COMPLETERS[name]
