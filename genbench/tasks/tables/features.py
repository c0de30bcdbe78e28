"""Learned features for classification (the multi-grid paper, Gao et al. CVPR 2018, after DCGAN's protocol): each
trained model's feature nets (``GenerativeModel.feature_nets``: the grids' descriptors, a discriminator, a critic, an
energy net) map an image to every convolutional layer's output, each max-pooled to a ``pool_grid``×``pool_grid``
spatial grid (a smaller map is kept whole), flattened and concatenated; a linear L2-SVM (squared hinge, one-vs-rest)
on the standardised features learns from 1,000 / 2,000 / 4,000 labelled training images (class-balanced draws, one per
seed) and its test error is the row. Beside the models: the same classifier on raw pixels, and on the features of an
untrained net of each model's shape (its initial weights), so a reader sees what learning added.
``genbench table --table features`` → ``leaderboards/<data>/tasks/features-<preset>.{jsonl,md}``."""

from __future__ import annotations

import contextlib
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genbench.errors import GenbenchError
from genbench.models.base import MODELS, GenerativeModel
from genbench.runs.trainer import build
from genbench.results.published import published_table
from genbench.tasks.report import models_section, write_markdown
from genbench.tasks.rows import TableRows, scored_row
from genbench.tasks.tables.base import (Table, TaskTable, model_for, planned_datamodule, preprocessing_record, published,
                                        register_table)


@dataclass
class FeaturesTable(TaskTable):
    """The multi-grid paper's SVHN table: test error of an L2-SVM on each model's pooled feature maps.

    Args:
        data: the dataset the models learned and the classifier is scored on (SVHN in the paper; read when present).
        models: trained models with feature nets (``GenerativeModel.feature_nets``), the paper's rows.
        labels: sizes of the labelled training sets (class-balanced); draws: label draws per size (seeds 0, 1, …).
        pool_grid: each layer's feature map max-pooled to this spatial grid (DCGAN's 4×4).
        costs: the SVM's C candidates: for each method, the one with the lowest error on a stratified
            ``validation_fraction`` of the first draw of the smallest labelled set (the SVM fitted on the rest) is
            used for every size and draw — DCGAN chose on a separate 10,000-image validation set; here no row uses
            labels beyond the smallest set's.
        test_images: test images scored (a seeded subset; None: the whole held-out split).
        untrained: the models whose untrained net (their initial weights) is scored too (None: every model);
        raw_pixels: also score raw pixels.
        feature_batch: images per forward pass when computing features; also the size of the seeded batch of
            training images whose statistics a BatchNorm that samples with batch statistics uses for every image
            (``batch_independent``).
    """

    data: str = "svhn"
    models: list[str] = field(default_factory=lambda: ["pcd", "one-step-cd", "wgan", "kim-bengio", "dcgan",
                                                       "single-grid-cd", "multigrid"])
    labels: list[int] = field(default_factory=lambda: [1000, 2000, 4000])
    draws: int = 3
    pool_grid: int = 4
    costs: list[float] = field(default_factory=lambda: [0.001, 0.01, 0.1])
    validation_fraction: float = 0.2
    test_images: int | None = None
    untrained: list[str] | None = None
    raw_pixels: bool = True
    feature_batch: int = 500


def check_features(s: FeaturesTable) -> None:
    for name in s.models:
        if not has_feature_nets(name):
            raise GenbenchError(f"model {name!r} has no feature nets for the features table (GenerativeModel."
                                f"feature_nets); models with them: {', '.join(feature_models())}")
    if not s.labels or any(n < 2 for n in s.labels):
        raise GenbenchError(f"labels must be sizes of labelled sets of at least 2 images, got {s.labels}")
    stray = sorted(set(s.untrained or []) - set(s.models))
    if stray:
        raise GenbenchError(f"untrained {stray}: only models of the table ({', '.join(s.models)}) have an untrained twin")
    if s.test_images is not None and s.test_images < 1:
        raise GenbenchError(f"test_images must be a positive count or null (all), got {s.test_images}")
    if s.draws < 1 or s.pool_grid < 1 or s.feature_batch < 1:
        raise GenbenchError(f"draws, pool_grid and feature_batch must be positive, got {s.draws}, {s.pool_grid}, "
                            f"{s.feature_batch}")
    if not s.costs or any(c <= 0 for c in s.costs):
        raise GenbenchError(f"costs must be positive SVM C values, got {s.costs}")
    if not 0 < s.validation_fraction < 1:
        raise GenbenchError(f"validation_fraction must be in (0, 1), got {s.validation_fraction}")


# -- features --------------------------------------------------------------------------------------------------------

def has_feature_nets(name: str) -> bool:
    return MODELS.get(name).feature_nets is not GenerativeModel.feature_nets


def feature_models() -> list[str]:
    return [name for name in MODELS.names() if has_feature_nets(name)]


def pool_map(feature_map: torch.Tensor, grid: int) -> torch.Tensor:
    """(n, c, h, w) → (n, c·g·g): max over each cell of a g×g grid, g = min(grid, h, w)."""
    size = min(grid, *feature_map.shape[-2:])
    return F.adaptive_max_pool2d(feature_map, size).flatten(1)


@contextlib.contextmanager
def batch_independent(module: GenerativeModel, reference: torch.Tensor):
    """``module`` in ``sampling_mode``, with every BatchNorm of its feature nets that would normalise by each batch's
    own statistics (``bn_sampling: batch``) normalising by those of ``reference`` instead (a seeded batch of training
    images, labels unused), so that an image's features do not depend on the images beside it in its batch: with
    class-sorted training images, batch statistics would carry the class into every feature."""
    with module.sampling_mode(), torch.no_grad():
        norms = [m for _, net, _ in module.feature_nets() for m in net.modules()
                 if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training]

        def keep_statistics(norm, inputs, _output):  # after its own update: the batch's (biased) statistics, which
            x = inputs[0].transpose(0, 1).flatten(1)
            norm.running_mean.copy_(x.mean(dim=1))
            norm.running_var.copy_(x.var(dim=1, unbiased=False))  # BatchNorm normalised it by

        hooks = [m.register_forward_hook(keep_statistics) for m in norms]
        try:
            for _, _, forward in module.feature_nets() if norms else []:
                forward(reference)
        finally:
            for hook in hooks:
                hook.remove()
        for m in norms:
            m.eval()
        yield module


def pooled_features(module: GenerativeModel, images: torch.Tensor, grid: int, batch: int,
                    reference: torch.Tensor) -> tuple[np.ndarray, list[list[int]]]:
    """Every Conv2d output of every feature net of ``module`` (``batch_independent`` of ``reference``), pooled
    (``pool_map``) and concatenated: (n, d) float32, and the shape (c, h, w) of each layer's map."""
    shapes: list[list[int]] = []
    chunks = []
    with batch_independent(module, reference):
        for start in range(0, images.shape[0], batch):
            maps: list[torch.Tensor] = []
            hooks = [m.register_forward_hook(lambda _m, _i, out: maps.append(out))
                     for _, net, _ in module.feature_nets() for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
            try:
                for _, _, forward in module.feature_nets():
                    forward(images[start:start + batch])
            finally:
                for hook in hooks:
                    hook.remove()
            if not shapes:
                shapes = [list(m.shape[1:]) for m in maps]
            chunks.append(torch.cat([pool_map(m, grid) for m in maps], dim=1).float().numpy())
    return np.concatenate(chunks), shapes


def labelled_draw(labels: torch.Tensor, size: int, seed: int) -> np.ndarray:
    """``size`` training indices, an equal share per class (the remainder to the first classes), drawn by ``seed``."""
    classes = sorted(set(labels.tolist()))
    generator = torch.Generator().manual_seed(seed)
    out = []
    for k, label in enumerate(classes):
        pool = torch.nonzero(labels == label).flatten()
        share = size // len(classes) + (1 if k < size % len(classes) else 0)
        if share > len(pool):
            raise GenbenchError(f"a labelled set of {size} needs {share} images of class {label}; the training split "
                                f"has {len(pool)}")
        out.append(pool[torch.randperm(len(pool), generator=generator)[:share]])
    return torch.cat(out).numpy()


def standardised(train_x: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """The features less the labelled set's mean, over its standard deviation (the test set's statistics unused)."""
    mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    return [(x - mean) / std for x in (train_x, *others)]


@dataclass
class LinearSVM:
    """A linear one-vs-rest classifier: ``weights`` (d + 1, k), the last row the bias; ``classes`` the k labels."""

    weights: np.ndarray
    classes: np.ndarray

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        return x @ self.weights[:-1] + self.weights[-1]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes[self.decision_function(x).argmax(axis=1)]


def linear_svm(x: np.ndarray, y: np.ndarray, cost: float, max_newton_steps: int = 100) -> LinearSVM:
    """The L2-SVM, one-vs-rest: for each class k, min_w ½‖w‖² + C Σᵢ max(0, 1 − y_ik w·x̄ᵢ)², x̄ = (x, 1) (the bias
    penalised as a weight on a constant feature, as liblinear does), by the finite Newton method in kernel form.

    At the optimum w = Σᵢ βᵢ x̄ᵢ; with outputs o = Kβ (K = x̄ x̄ᵀ) and the active set A = {i: y_i o_i < 1}, the
    objective is quadratic and its minimiser is β_A = (K_AA + I/(2C))⁻¹ y_A, β elsewhere 0. Each step moves β
    towards it by an exact line search on the piecewise-quadratic objective; the method ends when a full step
    keeps the active set, or b is its own active set's minimiser (the optimum). Dense BLAS on n × n: with n ≤ 4,000 labelled images and thousands of
    features, far faster than liblinear's coordinate descent on the same objective."""
    x64 = torch.as_tensor(x, dtype=torch.float64)
    classes, index = np.unique(y, return_inverse=True)
    n = x64.shape[0]
    signs = -torch.ones(n, len(classes), dtype=torch.float64)
    signs[torch.arange(n), torch.as_tensor(index)] = 1
    kernel = x64 @ x64.T + 1.0
    ridge = 1 / (2 * cost)

    def minimiser(active: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        block = kernel[active][:, active] + ridge * torch.eye(len(active), dtype=torch.float64)
        return torch.cholesky_solve(targets, torch.linalg.cholesky(block))

    every = torch.arange(n)
    beta = minimiser(every, signs)  # at β = 0 every point is active: one solve for all classes
    for k in range(len(classes)):
        b, sign = beta[:, k].clone(), signs[:, k]
        for _ in range(max_newton_steps):
            out = kernel @ b
            active = (sign * out < 1).nonzero().squeeze(1)
            step = -b
            step[active] += minimiser(active, sign[active, None]).squeeze(1)
            if step.abs().max() <= 1e-9 * (1 + b.abs().max()):  # b is the minimiser of its own active set's quadratic
                break
            change = kernel @ step

            def slope(t: float) -> float:  # d/dt of the objective at b + t·step (increasing in t)
                margins = (1 - sign * (out + t * change)).clamp(min=0)
                return float((b + t * step) @ change - 2 * cost * (margins * sign) @ change)

            t = 1.0
            if slope(1.0) > 0:  # the root of the slope in (0, 1), by bisection
                low, high = 0.0, 1.0
                for _ in range(60):
                    low, high = ((low + high) / 2, high) if slope((low + high) / 2) <= 0 else (low, (low + high) / 2)
                t = (low + high) / 2
            b = b + t * step
            if t == 1.0 and torch.equal((sign * (out + change) < 1).nonzero().squeeze(1), active):
                break
        else:
            raise GenbenchError(f"the L2-SVM (C {cost}) did not reach its optimum in {max_newton_steps} Newton steps")
        beta[:, k] = b
    bias_column = torch.ones(n, 1, dtype=torch.float64)
    return LinearSVM((torch.cat([x64, bias_column], dim=1).T @ beta).numpy(), classes)


def choose_cost(x: np.ndarray, y: np.ndarray, costs: list[float], validation_fraction: float, seed: int) -> float:
    """The C of ``costs`` with the lowest error on a stratified ``validation_fraction`` of (x, y), the SVM fitted on
    the rest (features standardised by that rest)."""
    rng = np.random.default_rng(seed)
    held = np.concatenate([rng.permutation(np.flatnonzero(y == label))[:max(1, int(round(
        validation_fraction * np.sum(y == label))))] for label in np.unique(y)])
    fit = np.setdiff1d(np.arange(len(y)), held)
    fit_x, held_x = standardised(x[fit], x[held])
    errors = [float((linear_svm(fit_x, y[fit], c).predict(held_x) != y[held]).mean()) for c in costs]
    return costs[int(np.argmin(errors))]


def svm_error(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, cost: float) -> float:
    """Test error (%) of the L2-SVM of cost C learned on the standardised labelled features."""
    train_x, test_x = standardised(train_x, test_x)
    return 100.0 * float((linear_svm(train_x, train_y, cost).predict(test_x) != test_y).mean())


# -- the table ---------------------------------------------------------------------------------------------------------

def shared_datamodule(s: FeaturesTable):
    """The datamodule every model of the table learned from (set up); models that learned from differently prepared
    images are refused, since one classifier protocol scores them all on the same images."""
    names = s.models or ["dcgan"]
    configs = {name: planned_datamodule(s, name) for name in names}
    first = configs[names[0]]
    for name, dm in configs.items():
        if dm.describe() != first.describe():
            raise GenbenchError(f"models {names[0]!r} and {name!r} learned from differently prepared {s.data} images; "
                                f"the features table scores every model on the same images (align their data settings)")
    first.setup()
    return first


def evaluate_features(s: FeaturesTable, rows: TableRows, runs: Path | None, log) -> tuple[list[dict], dict]:
    if not s.models and not s.raw_pixels:
        raise GenbenchError("the features table needs models or raw_pixels")
    dm = shared_datamodule(s)
    train = dm.datasets["train"]
    train_images, train_labels = dm.images("train"), train.labels
    test_images, test_labels = dm.images(dm.heldout_split), dm.datasets[dm.heldout_split].labels
    if s.test_images is not None and s.test_images < len(test_labels):
        keep = torch.randperm(len(test_labels), generator=torch.Generator().manual_seed(s.seed))[:s.test_images]
        test_images, test_labels = test_images[keep], test_labels[keep]
    classes = len(set(train_labels.tolist()))
    if min(s.labels) < 2 * classes:
        raise GenbenchError(f"labels {s.labels}: a labelled set needs at least 2 images per class ({2 * classes} for "
                            f"the {classes} classes of {s.data}), one for the SVM and one to choose its C")
    draws = {(size, d): labelled_draw(train_labels, size, d) for size in s.labels for d in range(s.draws)}
    reference = train_images[torch.randperm(len(train_labels), generator=torch.Generator().manual_seed(s.seed))
                             [:s.feature_batch]]
    base_all = {"table": "features", "data": s.data, "split": dm.heldout_split, "n_test": int(len(test_labels)),
                "test_seed": s.seed, "feature_batch": s.feature_batch,
                "batch_norm_reference": f"{len(reference)} training images, seed {s.seed}", **preprocessing_record(dm),
                "n_train": int(len(train_labels)), "num_classes": classes, "image_size": int(train_images.shape[-1]), "pool_grid": s.pool_grid,
                "classifier": {"kind": "linear L2-SVM (squared hinge, one-vs-rest)", "costs": s.costs,
                               "validation_fraction": s.validation_fraction}}
    labels = train_labels.numpy()
    keys = ("method", "labels", "draw", "data", "split", "n_test", "test_seed", "n_train", "feature_batch",
            "batch_norm_reference", "image_size",
            "pool_grid", "classifier")
    out: list[dict] = []

    def score_all(method: str, kind: str, features, model_run: dict | None, extra: dict) -> None:
        cache: dict = {}

        def computed():
            if "x" not in cache:
                log(f"  {method}: features of {len(train_labels)} + {len(test_labels)} images ...")
                cache["x"] = features()
            return cache["x"]

        def cost() -> float:
            if "C" not in cache:  # chosen once per method, on the first draw of the smallest labelled set
                (train_x, _), _ = computed()
                first = draws[(min(s.labels), 0)]
                cache["C"] = choose_cost(train_x[first], labels[first], s.costs, s.validation_fraction, 0)
            return cache["C"]

        for (size, d), chosen in draws.items():
            base = {**base_all, "method": method, "kind": kind, "labels": size, "draw": d, "model_run": model_run,
                    **extra}

            def compute(chosen=chosen):
                (train_x, test_x), shapes = computed()
                error = svm_error(train_x[chosen], labels[chosen], test_x, test_labels.numpy(), cost())
                return {"test_error": error, "C": cost(), "feature_dim": int(train_x.shape[1]), "layers": shapes}

            row, _ = scored_row(rows, base, keys, compute, lambda result: result,
                                lambda r: f"  {method}, {r['labels']} labels, draw {r['draw']}: test error "
                                          f"{r['test_error']:.2f} % (C {r['C']}, {r['feature_dim']} features)", log)
            out.append(row)

    if s.raw_pixels:
        score_all("raw pixels", "reference", lambda: ((train_images.flatten(1).numpy(), test_images.flatten(1).numpy()),
                                                     [list(train_images.shape[1:])]), None, {})
    trained: dict = {}
    for name in s.models:
        model = model_for(trained, name, s.data, s, s.overrides, runs, log)

        def features(module):
            train_x, shapes = pooled_features(module, train_images, s.pool_grid, s.feature_batch, reference)
            test_x, _ = pooled_features(module, test_images, s.pool_grid, s.feature_batch, reference)
            return (train_x, test_x), shapes

        score_all(name, "learned", lambda: features(model.module), model.record(), {})
        if s.untrained is None or name in s.untrained:
            def untrained_features(cfg=model.cfg):
                torch.manual_seed(s.seed)
                _, fresh = build(cfg, model.datamodule)
                return features(fresh.eval())

            score_all(f"{name} (untrained)", "untrained", untrained_features, model.record(),
                      {"weights": f"initial weights, torch seed {s.seed}"})
    return out, {}


def summary(rows: list[dict], method: str, size: int) -> str:
    errors = [r["test_error"] for r in rows if r["method"] == method and r["labels"] == size]
    if not errors:
        return "—"
    if len(errors) == 1:
        return f"{errors[0]:.2f}"
    return f"{statistics.mean(errors):.2f} ± {statistics.stdev(errors):.2f}"


def render_features(s: FeaturesTable, preset: str, rows: list[dict], figure: dict, path: Path) -> list[Path]:
    first = rows[0] if rows else {}
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = [f"# Learned features for classification: {s.data}, {preset} preset", "",
             f"Rendered by `genbench table --table features --data {s.data} --preset {preset}` from the rows in "
             f"`{path.name}`.", "",
             f"Setup: each model's feature nets map an image ({first.get('image_size')}×{first.get('image_size')}) to "
             f"every convolutional layer's output (before its normalisation and non-linearity), each max-pooled to a "
             f"{s.pool_grid}×{s.pool_grid} grid (smaller maps kept whole), flattened and concatenated (DCGAN's protocol, "
             f"which the multi-grid paper follows; its exact layers could not be read, so every layer is used). A "
             f"linear L2-SVM (squared hinge, one-vs-rest; per method, C from {s.costs} chosen on a stratified "
             f"{s.validation_fraction:.0%} of the first draw of the smallest labelled set, then used for every size and "
             f"draw) on standardised features learns from class-balanced labelled training images; its error "
             f"on {first.get('n_test')} {first.get('split')} images is the row, mean ± standard deviation over "
             f"{s.draws} label draws. *raw pixels* is the same classifier on the pixels; *(untrained)* rows are the "
             f"model's nets at their initial weights. Chance: "
             f"{100 * (1 - 1 / first.get('num_classes', 10)):.0f} %.", "",
             "## Test error (%) by number of labelled images (lower is better)", "",
             "| method | " + " | ".join(f"{size:,}" for size in s.labels) + " |", "|---|" + "---|" * len(s.labels)]
    lines += [f"| {m} | " + " | ".join(summary(rows, m, size) for size in s.labels) + " |" for m in methods]
    lines += [""]
    lines += published_table(published("features"))
    lines += models_section(rows)
    write_markdown(path, lines, s, rows, "its label draw, test images and their seed, C, feature size and layer shapes, "
                                       "BatchNorm reference, model run and command")
    return [path.with_suffix(".md")]


TABLE = register_table(Table("features", "classification error of an L2-SVM on each model's pooled feature maps "
                                         "(multi-grid EBM)", FeaturesTable, check_features, evaluate_features,
                             render_features))
