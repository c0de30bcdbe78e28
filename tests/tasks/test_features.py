"""The features table (multi-grid paper): each layer's feature map pooled as DCGAN's protocol states, class-balanced
label draws, the L2-SVM on features far below chance, and the table end to end on the 8×8 digits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genbench.errors import GenbenchError
from genbench.models import build_model
from genbench.tasks.tables import run_table
from genbench.tasks.tables.features import labelled_draw, pooled_features


def grid_max_pool(x: torch.Tensor, grid: int) -> torch.Tensor:
    """Max over the cells of a grid×grid partition, by reshaping (sides divisible by grid)."""
    n, c, h, w = x.shape
    g = min(grid, h, w)
    return x.view(n, c, g, h // g, g, w // g).amax(dim=(3, 5)).flatten(1)


def test_multigrid_features_are_every_conv_map_of_every_grid_pooled_to_4x4():
    torch.manual_seed(0)
    nets = [{"widths": [8, 16, 16]}, {"widths": [8, 16, 16, 16]}, {"widths": [8, 16, 16, 32]}]
    model = build_model("multigrid", image_size=32, channels=3, nets=nets)
    images = torch.rand(6, 3, 32, 32) * 2 - 1
    features, shapes = pooled_features(model, images, grid=4, batch=6, reference=images)
    # the official layers: the 4×4 grid's stride-2 first conv, the 16×16 grid's, the 32×32 grid's four stride-2 convs
    assert shapes == [[8, 2, 2], [16, 2, 2], [16, 2, 2], [8, 8, 8], [16, 8, 8], [16, 8, 8], [16, 8, 8],
                      [8, 16, 16], [16, 8, 8], [16, 4, 4], [32, 2, 2]]
    assert features.shape == (6, sum(c * min(4, h) * min(4, w) for c, h, w in shapes))
    expected = []  # a separate path: each grid's layers run by hand on the block-averaged [0, 255] image
    with model.sampling_mode(), torch.no_grad():
        for size in model.grids:
            x = torch.nn.functional.avg_pool2d((images + 1) * 127.5, 32 // size)
            for layer in model.nets[str(size)].features:
                x = layer(x)
                if isinstance(layer, torch.nn.Conv2d):
                    expected.append(grid_max_pool(x, 4))
    assert torch.allclose(torch.from_numpy(features), torch.cat(expected, dim=1), rtol=1e-5, atol=1e-4)


def test_an_images_features_do_not_depend_on_the_images_beside_it_in_its_batch():
    # the multi-grid descriptors sample with each batch's BatchNorm statistics; class-sorted training images would
    # then carry their class into every feature through their batch-mates
    torch.manual_seed(0)
    nets = [{"widths": [8, 16, 16]}, {"widths": [8, 16, 16, 16]}, {"widths": [8, 16, 16, 32]}]
    model = build_model("multigrid", image_size=32, channels=3, nets=nets)
    images, reference = torch.rand(8, 3, 32, 32) * 2 - 1, torch.rand(5, 3, 32, 32) * 2 - 1
    together, _ = pooled_features(model, images, grid=4, batch=8, reference=reference)
    alone, _ = pooled_features(model, images, grid=4, batch=1, reference=reference)
    swapped, _ = pooled_features(model, images.flip(0), grid=4, batch=3, reference=reference)
    assert torch.allclose(torch.from_numpy(together), torch.from_numpy(alone), atol=1e-4)
    assert torch.allclose(torch.from_numpy(together), torch.from_numpy(swapped).flip(0), atol=1e-4)
    with model.sampling_mode(), torch.no_grad():  # the model itself still samples with batch statistics
        first = model.f(4, torch.nn.functional.avg_pool2d((images + 1) * 127.5, 8))
        second = model.f(4, torch.nn.functional.avg_pool2d((images[:4] + 1) * 127.5, 8))
    assert not torch.allclose(first[:4], second, atol=1e-4)


def test_label_draws_are_class_balanced_and_fixed_by_their_seed():
    labels = torch.arange(10).repeat_interleave(30)
    draw = labelled_draw(labels, 45, seed=1)
    counts = torch.bincount(labels[draw], minlength=10).tolist()
    assert counts == [5] * 5 + [4] * 5 and len(set(draw.tolist())) == 45
    assert (labelled_draw(labels, 45, seed=1) == draw).all()
    assert not (labelled_draw(labels, 45, seed=2) == draw).all()
    with pytest.raises(GenbenchError, match="needs 31 images of class 0"):
        labelled_draw(labels, 310, seed=0)


def test_a_labelled_set_too_small_for_the_classes_is_refused_before_any_training(tmp_path, monkeypatch):
    monkeypatch.setenv("GENBENCH_RUNS", str(tmp_path / "runs"))
    with pytest.raises(GenbenchError, match="at least 2 images per class"):
        run_table("features", "smoke", overrides=["labels=[12]"], leaderboards=tmp_path / "boards",
                  runs=tmp_path / "runs", log=lambda *_: None)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("last.ckpt"))


def test_features_table_end_to_end_far_below_chance_and_rerun_recomputes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("GENBENCH_RUNS", str(tmp_path / "runs"))
    boards = tmp_path / "boards"
    run_table("features", "smoke", leaderboards=boards, runs=tmp_path / "runs", log=lambda *_: None)
    jsonl = boards / "digits" / "tasks" / "features-smoke.jsonl"
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    methods = {r["method"] for r in rows}
    assert methods == {"raw pixels", "single-grid-cd", "single-grid-cd (untrained)", "dcgan", "dcgan (untrained)"}
    assert len(rows) == len(methods) * 2 * 2  # two label sizes, two draws
    assert all(r["test_error"] < 45 for r in rows)  # chance on the digits: 90 %
    for method in methods:  # more labels, lower error (averaged over the draws)
        mean = {size: sum(r["test_error"] for r in rows if r["method"] == method and r["labels"] == size) / 2
                for size in (40, 80)}
        assert mean[80] <= mean[40] + 2
    learned = next(r for r in rows if r["method"] == "single-grid-cd")
    assert learned["model_run"]["model"] == "single-grid-cd" and learned["feature_dim"] == 448
    markdown = (boards / "digits" / "tasks" / "features-smoke.md").read_text()
    assert "| raw pixels |" in markdown and "multi-grid CD + CNN classifier" in markdown and "Chance: 90 %" in markdown
    logs: list[str] = []
    run_table("features", "smoke", leaderboards=boards, runs=tmp_path / "runs", log=logs.append)
    assert len(jsonl.read_text().splitlines()) == len(rows)
    assert not any("test error" in line or "training" in line for line in logs)


def squared_hinge_objective(weights: torch.Tensor, xb: torch.Tensor, signs: torch.Tensor, cost: float) -> torch.Tensor:
    return 0.5 * weights.pow(2).sum() + cost * (1 - signs * (xb @ weights)).clamp(min=0).pow(2).sum()


@pytest.mark.parametrize("n, d", [(240, 12), (60, 200)])  # more images than features, and fewer (the table's case)
def test_the_l2_svm_minimises_the_squared_hinge_objective_as_two_separate_solvers_do(n, d):
    """The kernel-form Newton L2-SVM against the same primal objective, ½‖w‖² + C Σ max(0, 1 − y(w·x + b))² with b
    penalised as a weight on a constant feature, minimised by L-BFGS in torch (float64) and by liblinear."""
    from sklearn.svm import LinearSVC

    from genbench.tasks.tables.features import linear_svm

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    y = (x @ torch.randn(d, 3, generator=generator, dtype=torch.float64)
         + 0.5 * torch.randn(n, 3, generator=generator, dtype=torch.float64)).argmax(dim=1)
    cost = 0.05
    svm = linear_svm(x.numpy(), y.numpy(), cost)
    xb = torch.cat([x, torch.ones(n, 1, dtype=torch.float64)], dim=1)
    signs = -torch.ones(n, 3, dtype=torch.float64)
    signs[torch.arange(n), y] = 1
    w = torch.zeros(d + 1, 3, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w], max_iter=2000, tolerance_grad=1e-12, tolerance_change=1e-16,
                                  line_search_fn="strong_wolfe")

    def objective():
        optimizer.zero_grad()
        loss = squared_hinge_objective(w, xb, signs, cost)
        loss.backward()
        return loss

    optimizer.step(objective)
    ours = torch.from_numpy(svm.decision_function(x.numpy()))
    assert torch.allclose(ours, (xb @ w).detach(), atol=1e-4)
    assert (svm.predict(x.numpy()) == (xb @ w).argmax(dim=1).numpy()).all()
    liblinear = LinearSVC(C=cost, loss="squared_hinge", dual=True, tol=1e-10, max_iter=100_000).fit(x.numpy(), y.numpy())
    theirs = torch.from_numpy(np.concatenate([liblinear.coef_.T, liblinear.intercept_[None]]))
    ours_objective = squared_hinge_objective(torch.from_numpy(svm.weights), xb, signs, cost)
    assert ours_objective <= squared_hinge_objective(theirs, xb, signs, cost) + 1e-8
    assert ours_objective <= squared_hinge_objective(w.detach(), xb, signs, cost) + 1e-8
