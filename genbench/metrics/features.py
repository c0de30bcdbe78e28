"""One feature pass per image set, and the scores computed from it with torch-fidelity's pure
features→metric functions.

A *feature space* is a torch-fidelity feature extractor with a logits layer (for the inception-style
score) and a pool layer (for FID, KID, precision/recall): the offline classifier (``logits`` /
``penultimate``) or the real Inception-v3 (``logits_unbiased`` / ``2048``). Images go in as uint8,
quantised by rounding; features come out in float64.

- IS  = exp(E_x KL(p(y|x) ‖ p(y))): ``isc_features_to_metric``, 10 splits, shuffle seed 2020, population std.
- FID = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½): ``fid_features_to_statistics`` + ``fid_statistics_to_metric``.
- KID = unbiased MMD² with the cubic polynomial kernel (x·y/d + 1)³, mean ± std over random subsets:
  ``kid_features_to_metric``.
- Precision/recall (Kynkäänniemi et al. 2019): the fraction of generated samples inside the k-NN balls
  of the real ones and vice versa: ``prc_features_to_metric``.

Real images' features are computed once per (feature space, dataset, split, content of the split's images)
and cached under ``$GENBENCH_CACHE`` (``features/`` for the offline classifier, ``inception/`` for Inception).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric
from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric
from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset

from genbench.data.pixels import to_uint8
from genbench.data.subsets import seeded_subset
from genbench.errors import GenbenchError
from genbench.files import write_via_temp

FEATURES_VERSION = 2
ISC_SHUFFLE_SEED = 2020  # torch-fidelity's fixed seed: the samples are shuffled before the splits
KID_SEED = 2020


@dataclass(frozen=True)
class FeatureSpace:
    """A torch-fidelity extractor and the two layers genbench reads from it."""

    name: str  # "classifier" or "inception": the prefix of the scores' protocols
    extractor: str  # registered torch-fidelity name
    weights: Path
    logits_layer: str
    pool_layer: str
    identity: str  # what the cache key and the protocols name: classifier key, weights file
    cache_dir: Path

    def describe(self) -> str:
        return self.identity


@dataclass
class Features:
    """What one pass of an extractor over an image set gives: logits and pool features (float64)."""

    logits: torch.Tensor
    pool: torch.Tensor

    @property
    def count(self) -> int:
        return self.pool.shape[0]


class Uint8Images(Dataset):
    """A torch-fidelity input: (N, C, H, W) images in [-1, 1] → uint8 RGB tensors (grey tiled to 3)."""

    def __init__(self, images: torch.Tensor) -> None:
        if images.dtype != torch.uint8:
            images = to_uint8(images)
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        self.images = images.contiguous()

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


def make_extractor(space: FeatureSpace):
    """``space``'s torch-fidelity extractor (weights loaded once; reuse it for every chunk of a sample set)."""
    return create_feature_extractor(space.extractor, [space.logits_layer, space.pool_layer], cuda=torch.cuda.is_available(),
                                    feature_extractor_weights_path=str(space.weights), verbose=False)


def extract_features(images: torch.Tensor, space: FeatureSpace, batch_size: int = 256, extractor=None) -> Features:
    """One pass of ``space``'s extractor over ``images`` in [-1, 1] (N, C, H, W) or uint8."""
    extractor = extractor if extractor is not None else make_extractor(space)
    out = get_featuresdict_from_dataset(Uint8Images(images), extractor, batch_size, torch.cuda.is_available(),
                                        save_cpu_ram=True, verbose=False)
    return Features(logits=out[space.logits_layer].double(), pool=out[space.pool_layer].double())


def concat_features(parts: list[Features]) -> Features:
    return Features(torch.cat([p.logits for p in parts]), torch.cat([p.pool for p in parts]))


# -- scores from features (torch-fidelity's pure functions) ------------------------------------------

def inception_style_score(logits: torch.Tensor, splits: int) -> tuple[float, float]:
    """exp(E KL(p(y|x) ‖ p(y))) over ``splits`` splits after torch-fidelity's seeded shuffle: (mean, std)."""
    if logits.shape[0] < splits:
        raise GenbenchError(f"an inception-style score needs at least {splits} samples (one per split), got "
                            f"{logits.shape[0]}; score more samples (bench.num_samples) or lower metric_options.splits")
    out = isc_features_to_metric(logits, splits=splits, shuffle=True, rng_seed=ISC_SHUFFLE_SEED)
    return out[KEY_METRIC_ISC_MEAN], out[KEY_METRIC_ISC_STD]


def frechet_distance(fake: torch.Tensor, real: torch.Tensor) -> float:
    """FID between two feature sets (statistics in float64)."""
    for what, feats in (("generated", fake), ("real", real)):
        if feats.shape[0] < 2:
            raise GenbenchError(f"FID needs at least 2 {what} images, got {feats.shape[0]}")
    value = fid_statistics_to_metric(fid_features_to_statistics(fake.double()), fid_features_to_statistics(real.double()),
                                     verbose=False)[KEY_METRIC_FID]
    if not math.isfinite(value):
        raise GenbenchError("FID is not finite (degenerate feature covariance); score more samples")
    return value


def resolve_kid_subset_size(requested: int | None, n_fake: int, n_real: int) -> int:
    """The KID subset size: ``requested``, else min(1000, n_fake, n_real); one clear error if too large."""
    size = requested if requested is not None else min(1000, n_fake, n_real)
    if size < 2:
        raise GenbenchError(f"KID needs subsets of at least 2 images; got {size} (n_fake {n_fake}, n_real {n_real})")
    if size > min(n_fake, n_real):
        raise GenbenchError(
            f"KID subset size {size} exceeds the {n_fake} generated / {n_real} real images; lower "
            f"bench.metric_options.kid_subset_size or score more samples (bench.num_samples)")
    return size


def kernel_distance(fake: torch.Tensor, real: torch.Tensor, subsets: int, subset_size: int | None) -> tuple[float, float, int]:
    """KID (unbiased MMD², cubic polynomial kernel) mean ± std over ``subsets`` random subsets; returns the
    subset size used too. Kernels in float32: 1.8x faster on a CPU, within 1e-7 of float64 on real features."""
    size = resolve_kid_subset_size(subset_size, fake.shape[0], real.shape[0])
    out = kid_features_to_metric(fake.float(), real.float(), kid_subsets=subsets, kid_subset_size=size, rng_seed=KID_SEED,
                                 verbose=False)
    return out[KEY_METRIC_KID_MEAN], out[KEY_METRIC_KID_STD], size


def check_neighbourhood(k: int, n_fake: int, n_real: int) -> None:
    if k < 1:
        raise GenbenchError(f"bench.metric_options.pr_neighborhood must be at least 1, got {k}")
    if min(n_fake, n_real) <= k:
        raise GenbenchError(f"precision/recall with a {k}-NN neighbourhood needs more than {k} generated and real "
                            f"images, got {n_fake} and {n_real}; lower bench.metric_options.pr_neighborhood or score more samples")


def precision_recall(fake: torch.Tensor, real: torch.Tensor, k: int) -> tuple[float, float]:
    """Improved precision and recall with k-NN balls (features in float32 for the distances)."""
    check_neighbourhood(k, fake.shape[0], real.shape[0])
    out = prc_features_to_metric(fake.float(), real.float(), prc_neighborhood=k, prc_batch_size=10000,
                                 save_cpu_ram=True, verbose=False)
    return out[KEY_METRIC_PRECISION], out[KEY_METRIC_RECALL]


# -- cached real-image features ------------------------------------------------------------------------

@dataclass
class Reference:
    """The real images a feature-space metric compares against, and where that set came from."""

    features: Features
    meta: dict  # dataset, split, count, data fingerprint, cache file

    def describe(self) -> str:
        return f"{self.meta['count']} real {self.meta['split']} images of {self.meta['dataset']}"


def reference_key(space: FeatureSpace, description: dict, split: str, max_images: int, content: str) -> str:
    blob = json.dumps({"v": FEATURES_VERSION, "space": space.identity, "pool": space.pool_layer, "data": description,
                       "split": split, "max": max_images, "content": content}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def load_reference(path: Path) -> Reference:
    try:
        bundle = torch.load(path, map_location="cpu", weights_only=True)
        reference = Reference(Features(bundle["logits"], bundle["pool"]), bundle["meta"])
        if reference.features.logits.shape[0] != reference.features.pool.shape[0] or reference.features.count < 1:
            raise ValueError("inconsistent feature counts")
        return reference
    except Exception as exc:  # truncated, foreign or from another version
        raise GenbenchError(f"cached real-image features {path} are unreadable ({type(exc).__name__}); delete the file "
                            f"to recompute them") from None


def reference_features(space: FeatureSpace, datamodule, split: str, max_images: int, batch_size: int = 256) -> Reference:
    """Features of the real ``split`` images of ``datamodule`` (a seeded subset of ``max_images`` where it
    holds more), computed once and cached, keyed by the split's content; a cache hit decodes no image."""
    plan = datamodule.plan()
    if split not in plan:
        raise GenbenchError(f"{datamodule.name} has no {split!r} split for the metrics' real images; it has "
                            f"{', '.join(plan)} (set bench.metric_options.reference_split)")
    description = {k: v for k, v in datamodule.describe().items() if k not in ("root", "n_per_class")}
    content = datamodule.content_signature([split])
    key = reference_key(space, description, split, max_images, content)
    path = space.cache_dir / f"{space.identity}.real-{datamodule.name}-{split}-{key}.pt"
    if path.is_file():
        return load_reference(path)
    images = datamodule.images(split)
    if images.shape[0] > max_images:
        images = images[seeded_subset(images.shape[0], max_images, 0)]
    features = extract_features(images, space, batch_size)
    meta = {"dataset": datamodule.name, "split": split, "count": features.count, "of": len(plan[split]),
            "fingerprint": description["fingerprint"], "content": content, "space": space.identity, "file": path.name}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_via_temp(path, lambda tmp: torch.save({"logits": features.logits, "pool": features.pool, "meta": meta}, tmp))
    return Reference(features, meta)
