import pytest
import torch

from genbench.data import DATASETS, build_datamodule
from genbench.data.datasets import IMAGENET_SCENE_CATEGORIES
from genbench.errors import GenbenchError


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(GenbenchError, match="unknown dataset 'nope'.*imagenet-scenes-tiny"):
        build_datamodule("nope")


def test_unknown_option_is_one_clear_error():
    with pytest.raises(GenbenchError, match="unknown data .*option.*'colour'"):
        build_datamodule("digits", colour=3)


def test_required_datasets_are_registered():
    for name in ["imagenet-scenes", "imagenet-scenes-tiny", "scene15", "celeba", "cifar10", "cifar10-subset", "mnist",
                 "textures", "svhn", "fashion-mnist", "lsun-bedroom", "digits"]:
        assert name in DATASETS


@pytest.mark.parametrize("n", [50, 137])
def test_n_per_class_exact_and_deterministic(n):
    a = build_datamodule("imagenet-scenes-tiny", n_per_class=n)
    b = build_datamodule("imagenet-scenes-tiny", n_per_class=n)
    a.setup(), b.setup()
    counts = torch.bincount(a.datasets["train"].labels, minlength=10)
    assert counts.tolist() == [n] * 10
    assert a.file_lists["train"] == b.file_lists["train"]
    assert torch.equal(a.datasets["train"].images, b.datasets["train"].images)
    other = build_datamodule("imagenet-scenes-tiny", n_per_class=n, subset_seed=1)
    other.setup()
    assert other.file_lists["train"] != a.file_lists["train"]
    assert len(a.datasets["val"]) == 500  # the shipped val split is untouched


def test_values_in_unit_range_and_shapes():
    dm = build_datamodule("imagenet-scenes-tiny", n_per_class=5, batch_size=16)
    x, y, idx = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 3, 64, 64) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and x.min() < -0.9 and x.max() > 0.9
    assert y.dtype == torch.long and idx.max() < 50


def test_minmax_normalisation_spans_full_range_per_image():
    dm = build_datamodule("imagenet-scenes-tiny", n_per_class=2, pixel_norm="minmax", resize="stretch")
    x = dm.train_images()
    assert torch.allclose(x.amin(dim=(1, 2, 3)), torch.full((20,), -1.0))
    assert torch.allclose(x.amax(dim=(1, 2, 3)), torch.full((20,), 1.0))


def test_digits_split_is_seeded_and_disjoint():
    def split(seed):
        dm = build_datamodule("digits", subset_seed=seed)
        dm.setup()
        return dm.datasets["train"].images, dm.datasets["val"].images

    train, val = split(0)
    assert train.shape[0] + val.shape[0] == 1797 and abs(val.shape[0] - 0.2 * 1797) < 10
    assert train.shape[1:] == (1, 8, 8)
    again_train, again_val = split(0)
    assert torch.equal(again_val, val) and torch.equal(again_train, train)  # the same seed, the same split
    assert not torch.equal(split(1)[1], val)  # another seed, another split
    train_rows = {bytes(x.numpy()) for x in train}
    shared = train_rows & {bytes(x.numpy()) for x in val}
    assert shared <= _duplicates_in_digits()  # only images the dataset itself holds twice appear on both sides


def _duplicates_in_digits() -> set[bytes]:
    """Images that occur more than once among scikit-learn's digits (their copies may fall on both sides)."""
    from collections import Counter

    import numpy as np
    from sklearn.datasets import load_digits

    images = np.round(load_digits().images * (255.0 / 16.0)).astype(np.uint8)
    counts = Counter(bytes(a) for a in images)
    return {k for k, c in counts.items() if c > 1}


def test_tests_never_see_the_users_data_roots_or_weights():
    import os

    from genbench import paths

    for key in ("GENBENCH_DATA", "GENBENCH_INCEPTION_WEIGHTS"):
        assert key not in os.environ
    assert paths.DEFAULT_DATA_DIR != paths.Path.home() / "genbench-data"
    assert paths.cache_dir() != paths.Path.home() / ".cache" / "genbench"
    assert all(str(paths.Path.home() / "genbench-data") not in str(r) for r in paths.candidate_roots("x", None, []))


def test_n_per_class_larger_than_class_fails():
    dm = build_datamodule("imagenet-scenes-tiny", n_per_class=501)
    with pytest.raises(GenbenchError, match="n_per_class=501 exceeds the 500 training images"):
        dm.setup()


def test_missing_root_names_the_expected_path(tmp_path):
    dm = build_datamodule("imagenet-scenes", root=str(tmp_path / "absent"))
    with pytest.raises(GenbenchError, match=r"absent.*expected layout <root>/train/<category>"):
        dm.setup()


def test_folder_without_class_subfolders(tmp_path):
    (tmp_path / "train").mkdir()
    dm = build_datamodule("imagenet-scenes-tiny", root=str(tmp_path))
    with pytest.raises(GenbenchError, match="no class subfolders"):
        dm.setup()


def test_genbench_data_overrides_every_root(tmp_path, monkeypatch):
    monkeypatch.setenv("GENBENCH_DATA", str(tmp_path))
    with pytest.raises(GenbenchError, match=str(tmp_path / "scene15")):
        build_datamodule("scene15").setup()


def test_imagenet_scenes_reads_a_user_tree_by_wnid(tmp_path):
    from PIL import Image

    for i, wnid in enumerate(list(IMAGENET_SCENE_CATEGORIES)[:2]):
        folder = tmp_path / "train" / wnid
        folder.mkdir(parents=True)
        for j in range(4):
            Image.new("RGB", (80, 60), (40 * i, 20 * j, 100)).save(folder / f"{wnid}_{j}.JPEG")
    dm = build_datamodule("imagenet-scenes", root=str(tmp_path), categories=["alp", "n09246464"], n_per_class=3, val_fraction=0.25)
    dm.setup()
    assert dm.class_names == ["alp", "cliff"]
    assert torch.bincount(dm.datasets["train"].labels).tolist() == [3, 3]
    assert dm.datasets["train"].images.shape[1:] == (3, 64, 64)


@pytest.mark.slow
def test_offline_fallbacks_load(needs_shared):
    needs_shared("scene15", "cifar10-subset", "mnist-test")
    for name, kwargs, classes in [("scene15", {"image_size": 32}, 15), ("cifar10-subset", {}, 10), ("mnist", {}, 10)]:
        dm = build_datamodule(name, **kwargs)
        dm.setup()
        assert dm.num_classes == classes


def test_scene15_drops_byte_identical_files(needs_shared):
    needs_shared("scene15")
    dm = build_datamodule("scene15", image_size=16)
    dm.setup()
    assert sum(len(d) for d in dm.datasets.values()) == 4485 - 18


def test_texture_unknown_name_lists_known(needs_shared):
    needs_shared("textures")
    build_datamodule("textures", texture="frame-232a/stucco").setup()
    with pytest.raises(GenbenchError, match="texture 'marble' not found.*embark/bricks.*skimage/brick"):
        build_datamodule("textures", texture="marble").setup()
    with pytest.raises(GenbenchError, match=r"bricks.png has transparent pixels \(16\.7% of them\)"):
        build_datamodule("textures", texture="bricks").setup()  # an inpainting example: its disc would turn black


def test_a_seeded_subset_is_distinct_sorted_and_fixed_by_its_seed():
    from genbench.data.subsets import seeded_subset

    chosen = seeded_subset(50, 10, 3)
    assert chosen.tolist() == sorted(set(chosen.tolist())) and len(chosen) == 10 and 0 <= chosen.min() and chosen.max() < 50
    assert torch.equal(seeded_subset(50, 10, 3), chosen) and not torch.equal(seeded_subset(50, 10, 4), chosen)
    assert seeded_subset(50, None, 3).tolist() == list(range(50)) == seeded_subset(50, 80, 3).tolist()
