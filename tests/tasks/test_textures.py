"""The texture score (multi-scale sliced Wasserstein distance) against closed forms and the ordering it must give,
and the texture exemplars (transparency refused, scikit-image's textures offline)."""

import pytest
import torch
import torch.nn.functional as F
from skimage import data as skdata

from genbench.data import build_datamodule
from genbench.errors import GenbenchError
from genbench.metrics.swd import SWDSettings, laplacian_pyramid, sliced_wasserstein, swd


def _crops(image: torch.Tensor, count: int, size: int, seed: int, left: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    h, w = image.shape[-2:]
    half = w // 2
    out = []
    for _ in range(count):
        y = int(torch.randint(0, h - size + 1, (1,), generator=g))
        x = int(torch.randint(0, half - size + 1, (1,), generator=g)) + (0 if left else half)
        out.append(image[:, y:y + size, x:x + size])
    return torch.stack(out)


def test_the_pyramid_sums_back_to_the_image():
    x = torch.rand(2, 3, 64, 64, dtype=torch.float64)
    levels = laplacian_pyramid(x, 16)
    assert [lv.shape[-1] for lv in levels] == [64, 32, 16]
    from genbench.metrics.swd import _blur

    current = levels[-1]
    for band in reversed(levels[:-1]):
        up = torch.zeros_like(band)
        up[..., ::2, ::2] = current
        current = band + 4.0 * _blur(up)
    assert torch.allclose(current, x, atol=1e-12)


def test_sliced_wasserstein_closed_forms():
    a = torch.randn(500, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert sliced_wasserstein(a, a[torch.randperm(500)], 64, 2, g()) == pytest.approx(0.0, abs=1e-12)
    shift = torch.linspace(-1, 1, 12, dtype=torch.float64)
    expected = 0.0
    directions = g()
    for _ in range(2):  # the same directions, drawn independently here: the 1-D distance of a shift is |u·v|
        u = torch.randn(12, 64, generator=directions, dtype=torch.float64)
        expected += float((shift @ (u / u.norm(dim=0))).abs().mean()) / 2
    assert sliced_wasserstein(a, a + shift, 64, 2, g()) == pytest.approx(expected, rel=1e-9)


def test_the_texture_score_ranks_exemplar_crops_before_blurred_crops_before_noise():
    brick = torch.from_numpy(skdata.brick()).double()[None] / 127.5 - 1.0  # (1, 512, 512) grey, in [-1, 1]
    real = _crops(brick, 16, 64, 0, left=True)
    crops = _crops(brick, 16, 64, 1, left=False)
    blurred = F.avg_pool2d(F.pad(crops, (2, 2, 2, 2), mode="reflect"), 5, stride=1)
    noise = torch.randn(crops.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64).clamp(-1, 1)
    scores = {name: swd(x, real, SWDSettings())[0] for name, x in (("crops", crops), ("blurred", blurred), ("noise", noise))}
    assert scores["crops"] < scores["blurred"] < scores["noise"], scores
    assert scores["crops"] < 0.25 * scores["noise"], scores


def test_an_exemplar_with_transparency_is_refused_and_scikit_image_textures_load(tmp_path):
    from PIL import Image
    import numpy as np

    rgba = np.full((80, 80, 4), 200, dtype=np.uint8)
    rgba[20:40, 20:40, 3] = 0  # a transparent hole
    (tmp_path / "group").mkdir()
    Image.fromarray(rgba, "RGBA").save(tmp_path / "group" / "holey.png")
    with pytest.raises(GenbenchError, match="transparent"):
        build_datamodule("textures", root=str(tmp_path), texture="holey", image_size=32).setup()
    opaque = rgba.copy()
    opaque[..., 3] = 255
    Image.fromarray(opaque, "RGBA").save(tmp_path / "group" / "solid.png")
    build_datamodule("textures", root=str(tmp_path), texture="solid", image_size=32).setup()
    for name in ("brick", "grass", "gravel"):
        dm = build_datamodule("textures", texture=f"skimage/{name}", image_size=64)
        assert dm.images("train").shape[-1] == 64 and dm.class_names == [f"skimage/{name}"]


def test_shifted_copies_are_cyclic_shifts_of_the_exemplar():
    from genbench.tasks.tables.textures import shifted_copies

    exemplar = torch.arange(2 * 6 * 5, dtype=torch.float64).view(1, 2, 6, 5)
    copies = shifted_copies(exemplar, 7, seed=3)
    assert copies.shape == (7, 2, 6, 5)
    found = []
    for copy in copies:  # each copy is exactly one cyclic shift, found by brute force on a separate path
        shifts = [(dy, dx) for dy in range(6) for dx in range(5)
                  if torch.equal(copy, torch.roll(exemplar[0], (dy, dx), (-2, -1)))]
        assert len(shifts) == 1
        found.append(shifts[0])
    assert len(set(found)) > 1  # random offsets, not one
    assert torch.equal(shifted_copies(exemplar, 7, seed=3), copies)


def test_offline_exemplars_leave_out_transparent_ones(tmp_path, monkeypatch):
    from PIL import Image
    import numpy as np

    from genbench import paths
    from genbench.tasks.tables import textures

    (tmp_path / "textures" / "group").mkdir(parents=True)
    rgba = np.full((40, 40, 4), 200, dtype=np.uint8)
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "textures" / "group" / "solid.png")
    rgba[5:10, 5:10, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "textures" / "group" / "holey.png")
    monkeypatch.setattr(paths, "SHARED_DATA_DIR", tmp_path)
    assert textures.offline_exemplars() == ["skimage/brick", "skimage/grass", "skimage/gravel", "group/solid"]


@pytest.mark.slow
def test_the_textures_table_scores_synthesis_between_its_references(tmp_path):
    import json

    from genbench.tasks.tables import run_table

    boards, runs = tmp_path / "boards", tmp_path / "runs"
    written = run_table("textures", "smoke", leaderboards=boards, runs=runs, log=lambda *_: None)
    rows = [json.loads(line) for line in (boards / "textures" / "tasks" / "textures-smoke.jsonl").read_text().splitlines()]
    by_method = {r["method"]: r["scores"] for r in rows}
    assert set(by_method) == {"descriptor", "exemplar, shifted", "noise"}
    assert by_method["exemplar, shifted"]["texture_swd"] < 0.25 * by_method["noise"]["texture_swd"]
    assert all(r["exemplar"] == "skimage/brick" and r["n_samples"] == 4 for r in rows)
    assert rows[0]["model_run"]["iterations"] == 4 and rows[0]["model_run"]["model_preset"] == "textures"
    md = (boards / "textures" / "tasks" / "textures-smoke.md").read_text()
    assert "| skimage/brick |" in md and all(p.is_file() for p in written)
    again = run_table("textures", "smoke", leaderboards=boards, runs=runs, log=lambda *_: None)  # rows found, not redone
    assert len((boards / "textures" / "tasks" / "textures-smoke.jsonl").read_text().splitlines()) == 3 and again
