"""The offline classifier: a small CNN trained on the benchmark's own training data, registered with
torch-fidelity as a feature extractor (``logits`` for the inception-style score, ``penultimate`` for FID/KID/precision-recall)
so its scores run through the same code as the real Inception's. Also the papers' "synthesis quality"
numbers from its logits: average softmax probability of the true category and top-5 error (one-category
models), or the mean top-1 probability (several categories).

A classifier *is* a feature space, like Inception's 2015-12-05 weights are for FID: its identity is
``<name>@<first 12 hex digits of the weights' SHA-256>``, recorded with every row. The classifiers of the
committed tables are shipped in ``assets/classifiers/`` (``manifest.json``: name, file, checksum, the data and
preprocessing they were trained for) and loaded whenever a benchmark's dataset, classes and preprocessing
match one, with the default classifier settings. Otherwise a classifier is trained on first use and cached
under ``$GENBENCH_CACHE/classifiers``, keyed by the dataset's description, the settings and the *content* of
its images (not their location); such a feature space is named ``<dataset>-<size>px-local@<checksum>``, so a
retrained classifier is never mistaken for the shipped one.

The classifier's held-out top-1/top-5 accuracy is stored with it and recorded with every score; one not
clearly above chance is refused (``refusal_threshold``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch_fidelity import register_feature_extractor
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from genbench.errors import GenbenchError
from genbench.files import write_via_temp
from genbench.metrics.features import FeatureSpace
from genbench.paths import ASSETS_DIR, cache_dir
from genbench.versions import package_versions

EXTRACTOR_NAME = "genbench-classifier"
CLASSIFIER_VERSION = 3
SHIPPED_DIR = ASSETS_DIR / "classifiers"
MANIFEST = "manifest.json"
#: the description fields a shipped classifier must match: what the benchmark's images are and how they look
MATCHED_FIELDS = ("dataset", "classes", "image_size", "channels", "resize", "pixel_norm", "corruption")


@dataclass
class ClassifierSettings:
    """How the offline classifier is trained (part of its cache key)."""

    width: int = 32
    epochs: int = 20
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    seed: int = 0
    max_train: int | None = None


class SmallCNN(nn.Module):
    """4 × (conv 3×3, BN, ReLU, [max-pool]) → global average pool → dropout → linear."""

    def __init__(self, channels: int, num_classes: int, width: int = 32) -> None:
        super().__init__()
        widths = [width, width * 2, width * 4, width * 8]
        layers: list[nn.Module] = []
        c_in = channels
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(c_in, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            c_in = w
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(c_in, num_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x in [-1, 1] → (penultimate features, logits)."""
        feats = self.features(x)
        return feats, self.head(feats)


class ClassifierFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity extractor over a cached genbench classifier (weights path = the cache file).
    Takes uint8 (B, 3, H, W); provides ``logits`` (IS) and ``penultimate`` (FID)."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs) -> None:
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise GenbenchError("the genbench classifier extractor needs feature_extractor_weights_path")
        bundle = load_bundle(Path(feature_extractor_weights_path))
        meta = bundle["meta"]
        self.channels = meta["channels"]
        self.net = SmallCNN(meta["channels"], meta["num_classes"], meta["settings"]["width"])
        self.net.load_state_dict(bundle["state_dict"])
        self.net.eval().to(memory_format=torch.channels_last)

    @staticmethod
    def get_provided_features_list():
        return "logits", "penultimate"

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"isc": "logits", "fid": "penultimate", "kid": "penultimate", "prc": "penultimate"}[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 32, 32, dtype=torch.uint8)

    def forward(self, x: torch.Tensor):
        x = x.float() / 127.5 - 1.0
        if self.channels == 1:
            x = x[:, :1]
        x = x.contiguous(memory_format=torch.channels_last)
        feats, logits = self.net(x)
        out = {"logits": logits.double(), "penultimate": feats.double()}
        return tuple(out[name] for name in self.features_list)


if EXTRACTOR_NAME not in FEATURE_EXTRACTORS_REGISTRY:
    register_feature_extractor(EXTRACTOR_NAME, ClassifierFeatureExtractor)


def load_bundle(path: Path) -> dict:
    """A classifier file: ``{"state_dict", "meta"}``; a truncated, foreign or incomplete file is one line."""
    try:
        bundle = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise GenbenchError(f"cannot load classifier {path} ({type(exc).__name__}); delete it to retrain") from None
    missing = [k for k in ("state_dict", "meta") if not isinstance(bundle, dict) or k not in bundle]
    if missing:
        raise GenbenchError(f"classifier {path} is not a genbench classifier (no {' or '.join(missing)}); delete it to retrain")
    meta_missing = [k for k in ("channels", "num_classes", "settings", "top1", "top5", "classes") if k not in bundle["meta"]]
    if meta_missing:
        raise GenbenchError(f"classifier {path} lacks {', '.join(meta_missing)} in its meta; delete it to retrain")
    return bundle


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class OfflineClassifier:
    """A classifier file, its record (held-out accuracy, classes, training data) and its feature-space identity.

    ``name``: the shipped name (``imagenet-scenes-tiny-32px``) or ``<dataset>-<size>px-local``; ``sha256``: of the
    weights file; ``source``: ``shipped`` or ``local``."""

    path: Path
    meta: dict
    name: str
    sha256: str
    source: str

    @property
    def num_classes(self) -> int:
        return self.meta["num_classes"]

    @property
    def identity(self) -> str:
        """The feature space's name: ``<name>@<first 12 hex digits of the weights' SHA-256>``."""
        return f"{self.name}@{self.sha256[:12]}"

    def record(self) -> dict:
        keys = ("dataset", "key", "num_classes", "top1", "top5", "n_train", "n_heldout", "train_seconds")
        return {**{k: self.meta.get(k) for k in keys}, "feature_space": self.identity, "sha256": self.sha256,
                "source": self.source}

    def feature_space(self) -> FeatureSpace:
        """The classifier as a torch-fidelity feature space: logits for the score, penultimate features for
        FID/KID/precision-recall; real-image features are cached under ``$GENBENCH_CACHE/features``."""
        return FeatureSpace("classifier", EXTRACTOR_NAME, self.path, "logits", "penultimate",
                            self.identity, cache_dir() / "features")


def classifier_key(dataset: str, data_description: dict, settings: ClassifierSettings, content: str) -> str:
    """The cache key of a locally trained classifier: dataset description (no root, no n), settings and the
    content signature of the images it is trained and scored on."""
    blob = json.dumps({"v": CLASSIFIER_VERSION, "dataset": dataset, "data": data_description, "settings": asdict(settings),
                       "content": content}, sort_keys=True)
    return f"{dataset}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def read_manifest(directory: Path = SHIPPED_DIR) -> list[dict]:
    path = directory / MANIFEST
    if not path.is_file():
        return []
    try:
        entries = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GenbenchError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); restore it from git") from None
    return entries if isinstance(entries, list) else []


_VERIFIED: dict[Path, str] = {}


def shipped_classifier(description: dict, directory: Path = SHIPPED_DIR) -> OfflineClassifier | None:
    """The shipped classifier for a benchmark of this description (dataset, classes, preprocessing), checksum
    verified; None when none is shipped for it."""
    for entry in read_manifest(directory):
        if all(entry["data"].get(k) == description.get(k) for k in MATCHED_FIELDS):
            path = directory / entry["file"]
            if not path.is_file():
                raise GenbenchError(f"shipped classifier {path} is missing; restore it (git checkout -- {path.name}) "
                                    f"or pull the project's assets")
            if path not in _VERIFIED:
                digest = file_sha256(path)
                if digest != entry["sha256"]:
                    raise GenbenchError(f"shipped classifier {path} fails its checksum (sha256 {digest[:12]}…, manifest "
                                        f"{entry['sha256'][:12]}…); restore it with git checkout, never edit it")
                _VERIFIED[path] = digest
            return OfflineClassifier(path, load_bundle(path)["meta"], entry["name"], entry["sha256"], "shipped")
    return None


def write_shipped(classifier_path: Path, name: str, directory: Path = SHIPPED_DIR) -> dict:
    """Copy a trained classifier into ``directory`` as ``<name>.pt`` and record it in the manifest."""
    meta = load_bundle(classifier_path)["meta"]
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name}.pt"
    shutil.copyfile(classifier_path, target)
    entry = {"name": name, "file": target.name, "sha256": file_sha256(target),
             "data": {k: meta["data"].get(k) for k in MATCHED_FIELDS},
             "trained_on": {k: meta["data"].get(k) for k in ("sizes", "fingerprint", "content")},
             **{k: meta[k] for k in ("settings", "top1", "top5", "n_train", "n_heldout", "train_seconds", "versions")
                if k in meta}}
    entries = [e for e in read_manifest(directory) if e["name"] != name] + [entry]
    (directory / MANIFEST).write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
    return entry


def _accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    net.eval()
    with torch.no_grad():
        logits = torch.cat([net(images[i:i + 512])[1] for i in range(0, images.shape[0], 512)])
    k = min(5, logits.shape[1])
    top5 = logits.topk(k, dim=1).indices
    return (float((top5[:, 0] == labels).float().mean()), float((top5 == labels[:, None]).any(dim=1).float().mean()))


def _augment(x: torch.Tensor, gen: torch.Generator, pad: int) -> torch.Tensor:
    """Random horizontal flips and one random shift of up to ``pad`` pixels per batch (replicate padding)."""
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    dx, dy = (int(v) for v in torch.randint(-pad, pad + 1, (2,), generator=gen))
    return torch.roll(F.pad(x, (pad,) * 4, mode="replicate"), (dy, dx), dims=(2, 3))[..., pad:-pad, pad:-pad]


def train_classifier(train_x: torch.Tensor, train_y: torch.Tensor, held_x: torch.Tensor, held_y: torch.Tensor,
                     num_classes: int, settings: ClassifierSettings, log=None) -> tuple[SmallCNN, dict]:
    """AdamW + one-cycle schedule with flips and shifts; returns the net and its held-out accuracy."""
    gen = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    net = SmallCNN(train_x.shape[1], num_classes, settings.width).to(memory_format=torch.channels_last)  # 1.4x on CPU
    opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    steps_per_epoch = max(1, (train_x.shape[0] + settings.batch_size - 1) // settings.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, settings.lr, total_steps=settings.epochs * steps_per_epoch)
    start = time.time()
    pad = max(1, train_x.shape[-1] // 16)
    last_report = start
    for epoch in range(settings.epochs):
        if log is not None and time.time() - last_report >= 30:
            last_report = time.time()
            elapsed = last_report - start
            log(f"classifier epoch {epoch}/{settings.epochs} ({elapsed:.0f} s, ETA {elapsed / epoch * (settings.epochs - epoch):.0f} s)")
        net.train()
        order = torch.randperm(train_x.shape[0], generator=gen)
        for i in range(0, train_x.shape[0], settings.batch_size):
            idx = order[i:i + settings.batch_size]
            x = _augment(train_x[idx], gen, pad).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(net(x)[1], train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    top1, top5 = _accuracy(net, held_x, held_y)
    return net, {"top1": top1, "top5": top5, "train_seconds": round(time.time() - start, 1)}


def refusal_threshold(num_classes: int) -> float:
    """The held-out top-1 a classifier must reach to score with: twice chance (at least chance + 10 points),
    capped halfway between chance and perfect so that two- and three-class datasets can pass."""
    chance = 1.0 / num_classes
    return min(max(2 * chance, chance + 0.1), chance + 0.5 * (1.0 - chance))


def require_classes(dataset: str, classes: int) -> None:
    """The classifier metrics need a labelled dataset with at least two classes: one clear line otherwise."""
    if classes < 2:
        raise GenbenchError(f"the classifier metrics need a labelled dataset with ≥ 2 classes; {dataset} has {classes} "
                            f"(drop them: --set 'bench.metrics=[pairwise_ssim]')")


def classifier_description(dm) -> dict:
    """What a classifier is trained for: the dataset's description without where it lives or the n draw."""
    return {k: v for k, v in dm.describe().items() if k not in ("root", "n_per_class")}


def get_classifier(datamodule_factory, dataset: str, settings: ClassifierSettings | None = None,
                   directory: Path | None = None, shipped: Path | None = SHIPPED_DIR, log=None) -> OfflineClassifier:
    """The classifier for ``dataset``: the shipped one matching its description (default settings only), else a
    cached local one, else one trained now on all its training images and scored on held-out ones.
    ``datamodule_factory()`` builds the dataset without n_per_class; a cache hit decodes no image. A classifier
    not clearly above chance is refused."""
    settings = settings or ClassifierSettings()
    dm = datamodule_factory()
    require_classes(dataset, dm.num_classes)
    description = classifier_description(dm)
    classifier = shipped_classifier(description, shipped) if shipped is not None and settings == ClassifierSettings() \
        else None
    if classifier is None:
        classifier = _local_classifier(dm, dataset, description, settings, directory or cache_dir() / "classifiers", log)
    threshold = refusal_threshold(classifier.num_classes)
    if classifier.meta["top1"] < threshold:
        raise GenbenchError(
            f"offline classifier for {dataset} reaches only {classifier.meta['top1']:.1%} held-out top-1 (chance "
            f"{1 / classifier.num_classes:.1%}, needed {threshold:.1%}); refusing to score with it — raise classifier "
            f"epochs or width ({classifier.path})"
        )
    return classifier


def _local_classifier(dm, dataset: str, description: dict, settings: ClassifierSettings, directory: Path,
                      log=None) -> OfflineClassifier:
    held_split = dm.heldout_split
    content = dm.content_signature(["train", held_split])
    key = classifier_key(dataset, description, settings, content)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{key}.pt"
    name = f"{dataset}-{dm.image_size}px-local"
    if path.is_file():
        return OfflineClassifier(path, load_bundle(path)["meta"], name, file_sha256(path), "local")
    if log is not None:
        log(f"training the offline classifier for {dataset} ({dm.image_size}px, {settings.epochs} epochs): no shipped "
            f"classifier matches this data, so its scores form a feature space of their own")
    train_x, train_y = dm.images("train"), dm.datasets["train"].labels
    if settings.max_train and train_x.shape[0] > settings.max_train:
        pick = torch.randperm(train_x.shape[0], generator=torch.Generator().manual_seed(settings.seed))[: settings.max_train]
        train_x, train_y = train_x[pick], train_y[pick]
    held_x, held_y = dm.images(held_split), dm.datasets[held_split].labels
    net, scores = train_classifier(train_x, train_y, held_x, held_y, dm.num_classes, settings, log)
    meta = {"dataset": dataset, "key": key, "num_classes": dm.num_classes, "classes": dm.class_names,
            "channels": dm.channels, "image_size": dm.image_size, "settings": asdict(settings),
            "data": {**description, "content": content}, "versions": package_versions(),
            "n_train": int(train_x.shape[0]), "n_heldout": int(held_x.shape[0]), **scores}
    write_via_temp(path, lambda tmp: torch.save({"state_dict": net.state_dict(), "meta": meta}, tmp))
    return OfflineClassifier(path, meta, name, file_sha256(path), "local")


def synthesis_quality(logits: torch.Tensor, target_class: int | None) -> dict[str, float]:
    """The papers' synthesis-quality numbers from classifier logits: mean softmax probability of
    ``target_class`` and top-5 error (one-category models), else the mean top-1 probability."""
    probs = logits.double().softmax(dim=1)
    if target_class is None:
        return {"top1_probability": float(probs.max(dim=1).values.mean())}
    k = min(5, probs.shape[1])
    return {"class_probability": float(probs[:, target_class].mean()),
            "top5_error": float(1.0 - (probs.topk(k, dim=1).indices == target_class).any(dim=1).float().mean())}
