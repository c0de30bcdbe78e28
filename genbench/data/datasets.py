"""Registered datasets. Each reads the user's standard layout and, where the project has one, falls back
to an offline copy (the shipped ``assets/`` or ``../shared/data``). Nothing downloads unless
``download: true``."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from PIL import Image

from genbench.data.base import ImageDataModule
from genbench.data.files import Collected, class_folder_items, drop_duplicate_files, first_existing, list_images
from genbench.errors import GenbenchError
from genbench.paths import ASSETS_DIR, SHARED_DATA_DIR, candidate_roots
from genbench.registry import Registry

DATASETS: Registry[type[ImageDataModule]] = Registry("dataset")

# Best reconstruction of the papers' 10 ImageNet scene categories (ILSVRC-2012 natural-scene classes;
# not named in any source read — see ../shared/reference/seed-spec.md). Folder = WordNet id.
IMAGENET_SCENE_CATEGORIES = {
    "n09193705": "alp",
    "n09246464": "cliff",
    "n09256479": "coral reef",
    "n09288635": "geyser",
    "n09332890": "lakeside",
    "n09399592": "promontory",
    "n09421951": "sandbar",
    "n09428293": "seashore",
    "n09468604": "valley",
    "n09472597": "volcano",
}


def array_ref(array: np.ndarray):
    """A lazy image reference over an in-memory HWC/HW uint8 array."""
    return lambda: Image.fromarray(array)


def _split_dirs_items(root: Path, splits: dict[str, str], classes: list[str] | None):
    out, names = {}, None
    for split, sub in splits.items():
        if (root / sub).is_dir():
            out[split], names = class_folder_items(root / sub, classes if names is None else names)
    return out, names


@DATASETS.register("imagenet-scenes")
class ImageNetScenes(ImageDataModule):
    """The user's ImageNet class-subfolder tree: ``<root>/train/<wnid or name>/*.JPEG`` (optional
    ``<root>/val/<...>``). ``categories`` picks the scene classes (default: the reconstructed 10)."""

    name = "imagenet-scenes"
    layout = "<root>/train/<category>/*.JPEG (category = WordNet id or name, e.g. n09193705 or alp)"

    def __init__(self, categories: list[str] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.categories = list(categories) if categories else list(IMAGENET_SCENE_CATEGORIES)

    def fallback_roots(self) -> list[Path]:
        return []

    def collect(self) -> Collected:
        root = first_existing(candidate_roots(self.name, self.root, self.fallback_roots()), self.name, self.layout)
        base = root / "train" if (root / "train").is_dir() else root
        present = {p.name for p in base.iterdir() if p.is_dir()}
        folders = []
        for cat in self.categories:
            aliases = [cat, *(w for w, n in IMAGENET_SCENE_CATEGORIES.items() if n == cat), IMAGENET_SCENE_CATEGORIES.get(cat, "")]
            match = next((a for a in aliases if a in present), None)
            if match is None:
                raise GenbenchError(f"category {cat!r} not found under {base}; found {sorted(present)[:12]}")
            folders.append(match)
        splits = {"train": class_folder_items(base, folders)[0]}
        if (root / "val").is_dir() and all((root / "val" / f).is_dir() for f in folders):
            splits["val"] = class_folder_items(root / "val", folders)[0]
        names = [IMAGENET_SCENE_CATEGORIES.get(f, f) for f in folders]
        return Collected(splits, names, root)


@DATASETS.register("imagenet-scenes-tiny")
class ImageNetScenesTiny(ImageNetScenes):
    """10 real ImageNet scene classes at 64×64 (Tiny ImageNet; 500 train + 50 val each), shipped in
    ``assets/imagenet-scenes-tiny``. n = 50 … 500 per class."""

    name = "imagenet-scenes-tiny"
    layout = "<root>/train/<class>/*.JPEG and <root>/val/<class>/*.JPEG"

    def __init__(self, categories: list[str] | None = None, **kwargs) -> None:
        super().__init__(categories=categories, **kwargs)
        if not categories:
            self.categories = []

    def fallback_roots(self) -> list[Path]:
        return [ASSETS_DIR / self.name, SHARED_DATA_DIR / self.name]

    def collect(self) -> Collected:
        root = first_existing(candidate_roots(self.name, self.root, self.fallback_roots()), self.name, self.layout)
        splits, names = _split_dirs_items(root, {"train": "train", "val": "val"}, self.categories or None)
        if "train" not in splits:
            raise GenbenchError(f"{root} has no train/ folder; expected layout {self.layout}")
        return Collected(splits, names, root)


@DATASETS.register("scene15")
class Scene15(ImageDataModule):
    """15 scene categories: ``<root>/train/<class>``, ``<root>/test/<class>``; byte-identical files are
    dropped (the redistributed copy has 18) so the splits are clean."""

    name = "scene15"
    layout = "<root>/train/<class>/*.jpg and <root>/test/<class>/*.jpg"

    def collect(self) -> Collected:
        root = first_existing(candidate_roots(self.name, self.root, [SHARED_DATA_DIR / self.name]), self.name, self.layout)
        splits, names = _split_dirs_items(root, {"train": "train", "test": "test"}, None)
        if "train" not in splits:
            raise GenbenchError(f"{root} has no train/ folder; expected layout {self.layout}")
        seen: set[str] = set()
        splits = {k: drop_duplicate_files(v, seen) for k, v in splits.items()}
        return Collected(splits, names, root)


@DATASETS.register("celeba")
class CelebA(ImageDataModule):
    """CelebA aligned faces: torchvision's layout ``<root>/celeba/img_align_celeba`` (with its split
    files), else a flat image folder (the offline 10k copy). Centre crop 108/178 of the width (the
    lab code's 108×108 crop), then resize."""

    name = "celeba"
    layout = "<root>/celeba/img_align_celeba/*.jpg (torchvision CelebA) or <root>/images/*.jpg"

    def __init__(self, max_images: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_images = max_images

    def preprocess(self, image: Image.Image) -> Image.Image:
        w, h = image.size
        side = round(w * 108 / 178)
        left, top = (w - side) // 2, (h - side) // 2
        return super().preprocess(image.crop((left, top, left + side, top + side)))

    def collect(self) -> Collected:
        candidates = candidate_roots(self.name, self.root, [SHARED_DATA_DIR / "celeba-10k"])
        root = first_existing(candidates, self.name, self.layout)
        if (root / "celeba" / "list_eval_partition.txt").is_file():
            from torchvision.datasets import CelebA as TVCelebA

            splits = {}
            for split, tv_split in (("train", "train"), ("val", "valid"), ("test", "test")):
                ds = TVCelebA(str(root), split=tv_split, download=self.download)
                folder = root / "celeba" / "img_align_celeba"
                splits[split] = [(folder / f, 0) for f in ds.filename]
        else:
            folder = root / "images" if (root / "images").is_dir() else root
            files = list_images(folder)
            if not files:
                raise GenbenchError(f"no images in {folder}; expected layout {self.layout}")
            splits = {"train": [(f, 0) for f in files]}
        if self.max_images:
            splits["train"] = splits["train"][: self.max_images]
        return Collected(splits, ["face"], root)


@DATASETS.register("cifar10")
class Cifar10(ImageDataModule):
    """The user's CIFAR-10: torchvision's ``<root>/cifar-10-batches-py``, else class folders ``<root>/train/<class>``
    and ``<root>/test/<class>``. No offline fallback: the offline 1,000-per-class copy is ``cifar10-subset``, whose
    tables and feature space are its own."""

    name = "cifar10"
    layout = ("<root>/cifar-10-batches-py (torchvision) or <root>/train/<class>/*.png (offline, the 1,000-per-class "
              "subset is the dataset cifar10-subset)")

    def __init__(self, image_size: int = 32, **kwargs) -> None:
        super().__init__(image_size=image_size, **kwargs)

    def collect(self) -> Collected:
        candidates = candidate_roots(self.name, self.root, [])
        if self.download:
            candidates[0].mkdir(parents=True, exist_ok=True)
        root = first_existing(candidates, self.name, self.layout)
        if (root / "cifar-10-batches-py").is_dir() or self.download:
            from torchvision.datasets import CIFAR10

            splits = {}
            for split, train in (("train", True), ("test", False)):
                ds = CIFAR10(str(root), train=train, download=self.download)
                splits[split] = [(array_ref(a), int(t)) for a, t in zip(ds.data, ds.targets)]
            return Collected(splits, list(ds.classes), root)
        splits, names = _split_dirs_items(root, {"train": "train", "test": "test"}, None)
        if "train" not in splits:
            raise GenbenchError(f"{root} has no train/ folder; expected layout {self.layout}")
        return Collected(splits, names, root)


@DATASETS.register("cifar10-subset")
class Cifar10Subset(ImageDataModule):
    """The offline CIFAR-10 stand-in: the first 1,000 training images of each class and the full test set, 32×32, as
    JPEG re-encodings (``../shared/data/cifar10-subset``; lossy, not bit-identical to the CIFAR-10 batches). A dataset
    of its own, so its tables and its classifier's feature space never meet a full CIFAR-10's (``cifar10``)."""

    name = "cifar10-subset"
    layout = "<root>/train_subset/<class>/*.jpg and <root>/test/<class>/*.jpg"

    def __init__(self, image_size: int = 32, val_fraction: float = 0.0, **kwargs) -> None:
        super().__init__(image_size=image_size, val_fraction=val_fraction, **kwargs)  # the test split is held out

    def collect(self) -> Collected:
        root = first_existing(candidate_roots(self.name, self.root, [SHARED_DATA_DIR / self.name]), self.name, self.layout)
        splits, names = _split_dirs_items(root, {"train": "train_subset", "test": "test"}, None)
        if "train" not in splits:
            raise GenbenchError(f"{root} has no train_subset/ folder; expected layout {self.layout}")
        return Collected(splits, names, root)


class _TorchvisionArrays(ImageDataModule):
    """Datasets torchvision reads from its own layout (user-supplied; ``download: true`` fetches)."""

    tv_class: str = ""
    split_arg: str = "train"  # "train" (bool) or "split" (str)

    def collect(self) -> Collected:
        import torchvision.datasets as tvd

        candidates = candidate_roots(self.name, self.root, [])
        root = candidates[0]
        if self.download:
            root.mkdir(parents=True, exist_ok=True)
        cls = getattr(tvd, self.tv_class)
        splits: dict = {}
        names: list[str] = []
        for split in ("train", "test"):
            kwargs = {"train": split == "train"} if self.split_arg == "train" else {"split": split}
            try:
                ds = cls(str(root), download=self.download, **kwargs)
            except RuntimeError as exc:
                raise GenbenchError(
                    f"no {self.name} data under {root} ({exc}); put torchvision's {self.tv_class} files there, "
                    f"set root:, or pass download: true"
                ) from None
            data = ds.data.numpy() if hasattr(ds.data, "numpy") else np.asarray(ds.data)
            if data.ndim == 4 and data.shape[1] == 3:
                data = data.transpose(0, 2, 3, 1)
            targets = ds.targets if hasattr(ds, "targets") else ds.labels
            splits[split] = [(array_ref(a), int(t)) for a, t in zip(data, np.asarray(targets))]
            names = list(getattr(ds, "classes", [])) or [str(c) for c in sorted(set(np.asarray(targets).tolist()))]
        return Collected(splits, names, root)


@DATASETS.register("mnist")
class MNIST(_TorchvisionArrays):
    """MNIST via torchvision (``<root>/MNIST/raw``); offline fallback: the official test set (idx .gz)
    in ``../shared/data/mnist-test`` — split into train/val since the train set is absent there."""

    name = "mnist"
    tv_class = "MNIST"

    def __init__(self, image_size: int = 28, channels: int = 1, **kwargs) -> None:
        super().__init__(image_size=image_size, channels=channels, **kwargs)

    def collect(self) -> Collected:
        candidates = candidate_roots(self.name, self.root, [SHARED_DATA_DIR / "mnist-test"])
        for root in candidates:
            if (root / "MNIST" / "raw").is_dir() or self.download:
                self.root = str(root)
                return super().collect()
            if (root / "t10k-images-idx3-ubyte.gz").is_file():
                images = read_idx(root / "t10k-images-idx3-ubyte.gz")
                labels = read_idx(root / "t10k-labels-idx1-ubyte.gz")
                items = [(array_ref(a), int(t)) for a, t in zip(images, labels)]
                return Collected({"train": items}, [str(i) for i in range(10)], root,
                                 {"split": "official test set only, split seeded into train/val"})
        raise GenbenchError(f"no data for 'mnist': tried {', '.join(map(str, candidates))}; expected <root>/MNIST/raw "
                            f"(torchvision) or t10k-images-idx3-ubyte.gz (set root:, $GENBENCH_DATA, or download: true)")


def read_idx(path: Path) -> np.ndarray:
    """Read an MNIST idx(.gz) file: big-endian header of dims, then uint8 data."""
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as fh:
        raw = fh.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


@DATASETS.register("fashion-mnist")
class FashionMNIST(_TorchvisionArrays):
    """Fashion-MNIST via torchvision (user-supplied: ``<root>/FashionMNIST/raw``)."""

    name = "fashion-mnist"
    tv_class = "FashionMNIST"

    def __init__(self, image_size: int = 28, channels: int = 1, **kwargs) -> None:
        super().__init__(image_size=image_size, channels=channels, **kwargs)


@DATASETS.register("svhn")
class SVHN(_TorchvisionArrays):
    """SVHN via torchvision (user-supplied: ``<root>/train_32x32.mat``, ``test_32x32.mat``)."""

    name = "svhn"
    tv_class = "SVHN"
    split_arg = "split"

    def __init__(self, image_size: int = 32, **kwargs) -> None:
        super().__init__(image_size=image_size, **kwargs)


@DATASETS.register("lsun-bedroom")
class LSUNBedroom(ImageDataModule):
    """LSUN bedrooms via torchvision's LMDB reader (user-supplied: ``<root>/bedroom_train_lmdb``;
    needs the ``lmdb`` package)."""

    name = "lsun-bedroom"
    layout = "<root>/bedroom_train_lmdb and <root>/bedroom_val_lmdb"

    def __init__(self, max_images: int | None = 100_000, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_images = max_images

    def collect(self) -> Collected:
        from torchvision.datasets import LSUN

        root = first_existing(candidate_roots(self.name, self.root, []), self.name, self.layout,
                              check=lambda p: (p / "bedroom_train_lmdb").is_dir())
        splits = {}
        for split in ("train", "val"):
            if (root / f"bedroom_{split}_lmdb").is_dir():
                ds = LSUN(str(root), classes=[f"bedroom_{split}"])
                count = len(ds) if self.max_images is None else min(len(ds), self.max_images)
                splits[split] = [((lambda i=i, ds=ds: ds[i][0]), 0) for i in range(count)]
        return Collected(splits, ["bedroom"], root)


@DATASETS.register("textures")
class Textures(ImageDataModule):
    """One texture exemplar for the descriptor's texture synthesis: ``<root>/<group>/<file>``;
    ``texture`` names the file by stem (``stucco``) or ``group/stem`` (``frame-232a/grass_obs``), or one of
    scikit-image's textures, which ship with the package (``skimage/brick``, ``skimage/grass``, ``skimage/gravel``).
    Every batch holds ``batch_size`` copies of the one image. An exemplar with transparent pixels is refused:
    converting it to RGB would paint them black."""

    name = "textures"
    layout = "<root>/<group>/<texture>.jpg|png|bmp"
    skimage_textures = ("brick", "grass", "gravel")

    def __init__(self, texture: str = "skimage/brick", image_size: int = 64, batch_size: int = 1, repeats: int = 16,
                 val_fraction: float = 0.0, **kwargs) -> None:
        super().__init__(image_size=image_size, batch_size=batch_size, val_fraction=val_fraction, **kwargs)
        self.texture = texture
        self.repeats = repeats

    def collect(self) -> Collected:
        want = self.texture.split("/")
        if want[0] == "skimage":
            if len(want) != 2 or want[1] not in self.skimage_textures:
                raise GenbenchError(f"texture {self.texture!r}: scikit-image ships "
                                    f"{', '.join('skimage/' + t for t in self.skimage_textures)}")
            item = (skimage_texture(want[1]), 0)
            return Collected({"train": [item] * self.repeats, "val": [item]}, [self.texture], None)
        root = first_existing(candidate_roots(self.name, self.root, [SHARED_DATA_DIR / "textures"]), self.name, self.layout)
        files = texture_files(root)
        match = [p for p in files if p.stem == want[-1] and (len(want) == 1 or p.parent.name == want[0])]
        if not match:
            known = sorted({f"{p.parent.name}/{p.stem}" for p in files})
            raise GenbenchError(f"texture {self.texture!r} not found under {root}; known: "
                                f"{', '.join(known + ['skimage/' + t for t in self.skimage_textures])}")
        check_opaque(match[0])
        item = (match[0], 0)
        return Collected({"train": [item] * self.repeats, "val": [item]}, [self.texture], root)


def texture_files(root: Path) -> list[Path]:
    """The exemplar images under a textures folder (``<root>/<group>/<file>``), sorted."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp"})


def skimage_texture(name: str):
    """A scikit-image texture as an in-memory image reference (no download: the file ships with the package)."""
    def load() -> Image.Image:
        from skimage import data as skdata

        return Image.fromarray(getattr(skdata, name)())

    return load


def check_opaque(path: Path) -> None:
    """Refuse, in one line, an exemplar with transparent pixels."""
    with Image.open(path) as image:
        if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
            return
        alpha = np.asarray(image.convert("RGBA"))[..., 3]
    if (alpha < 255).any():
        raise GenbenchError(f"texture exemplar {path} has transparent pixels ({(alpha < 255).mean():.1%} of them); as RGB "
                            f"they would be black — choose an opaque exemplar, or flatten it on a background first")


@DATASETS.register("digits")
class Digits(ImageDataModule):
    """scikit-learn's 1,797 real 8×8 handwritten digits (shipped with the package): fast tests."""

    name = "digits"

    def __init__(self, image_size: int = 8, channels: int = 1, val_fraction: float = 0.2, **kwargs) -> None:
        super().__init__(image_size=image_size, channels=channels, val_fraction=val_fraction, **kwargs)

    def collect(self) -> Collected:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
        items = [(array_ref(a), int(t)) for a, t in zip(images, bunch.target)]
        return Collected({"train": items}, [str(i) for i in range(10)], None)
