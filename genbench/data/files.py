"""Finding and reading image files: class-folder trees, one-line refusals of unreadable or badly named files,
duplicates, and a signature of what a list of images holds."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Union

import numpy as np
from PIL import Image

from genbench.errors import GenbenchError

ImageRef = Union[Path, Callable[[], Image.Image]]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


@dataclass
class Collected:
    """What a dataset found on disk: labelled image references per split and the class names."""

    splits: dict[str, list[tuple[ImageRef, int]]]
    class_names: list[str]
    root: Path | None = None
    notes: dict[str, str] = field(default_factory=dict)


def list_images(folder: Path) -> list[Path]:
    """The image files of ``folder``, sorted; a file name that is not valid UTF-8 is refused in one line (it could
    not be recorded in a row, a fingerprint or a JSON file)."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    for path in files:
        try:
            path.name.encode("utf-8")
        except UnicodeEncodeError:
            raise GenbenchError(f"image file name {os.fsencode(path.name)!r} in {os.fsdecode(os.fsencode(folder))!r} is not "
                                f"valid UTF-8; rename it (e.g. convmv -f latin1 -t utf8)") from None
    return files


#: above this many bytes a split's content signature uses file sizes and modification times instead of the bytes
CONTENT_HASH_LIMIT = 256 * 2**20


def content_signature(items: list[tuple["ImageRef", int]]) -> str:
    """A hash of what a list of image references holds, independent of where it lives: the file bytes (names
    relative to their class folder) while they total at most ``CONTENT_HASH_LIMIT``, else sizes and
    modification times (cheap on a large tree); in-memory images (torchvision arrays) by their pixels."""
    h = hashlib.sha256()
    paths = [ref for ref, _ in items if isinstance(ref, Path)]
    by_bytes = sum(p.stat().st_size for p in paths) <= CONTENT_HASH_LIMIT
    h.update(b"bytes" if by_bytes else b"stat")
    for ref, label in items:
        h.update(f"|{label}|".encode())
        if isinstance(ref, Path):
            h.update("/".join(ref.parts[-2:]).encode())
            if by_bytes:
                h.update(hashlib.sha1(ref.read_bytes()).digest())
            else:
                stat = ref.stat()
                h.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
        else:
            h.update(np.ascontiguousarray(np.asarray(ref())).tobytes())
    return h.hexdigest()[:16]


def open_image(ref: "ImageRef") -> Image.Image:
    """An image file or in-memory image, decoded; unreadable files and decompression bombs are one line, and
    16-bit greyscale is scaled to 8 bits (``convert`` would saturate every pixel above 255)."""
    try:
        image = Image.open(ref) if isinstance(ref, Path) else ref()
        image.load()
    except Image.DecompressionBombError as exc:
        raise GenbenchError(f"refusing image {ref}: {exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise GenbenchError(f"cannot read image {ref}: {exc}") from None
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        array = np.asarray(image).astype(np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(np.round(array * (255.0 / top)), 0, 255).astype(np.uint8), "L")
    return image


def class_folder_items(root: Path, classes: list[str] | None = None) -> tuple[list[tuple[ImageRef, int]], list[str]]:
    """Images of a ``root/<class>/*.jpg`` tree, classes in sorted order unless given."""
    if not root.is_dir():
        raise GenbenchError(f"data folder {root} does not exist; expected {root}/<class>/<image files>")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes is None:
        classes = found
    if not classes:
        raise GenbenchError(f"{root} has no class subfolders; expected {root}/<class>/<image files>")
    missing = [c for c in classes if c not in found]
    if missing:
        raise GenbenchError(f"{root} lacks class folders {missing}; found {found}")
    items: list[tuple[ImageRef, int]] = []
    for label, name in enumerate(classes):
        files = list_images(root / name)
        if not files:
            raise GenbenchError(f"class folder {root / name} holds no images")
        items.extend((path, label) for path in files)
    return items, list(classes)


def drop_duplicate_files(items: list[tuple[ImageRef, int]], seen: set[str]) -> list[tuple[ImageRef, int]]:
    """Keep the first file of each byte-identical group (``seen`` carries hashes across splits)."""
    kept = []
    for ref, label in items:
        if isinstance(ref, Path):
            digest = hashlib.sha1(ref.read_bytes()).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
        kept.append((ref, label))
    return kept


def first_existing(candidates: list[Path], name: str, layout: str, check: Callable[[Path], bool] | None = None) -> Path:
    """The first candidate root that exists (and passes ``check``), or one actionable error."""
    for path in candidates:
        if path.is_dir() and (check is None or check(path)):
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise GenbenchError(f"no data for {name!r}: tried {tried}; expected layout {layout} (set root: or $GENBENCH_DATA)")
