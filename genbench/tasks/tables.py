"""The papers' tables beyond sampling, one command each: ``genbench table --table <name> --data <d> --preset <p>``.

- ``completion`` (CoopNets): occluded held-out images completed by trained models and non-learned inpainting;
  error and PSNR over the occluded pixels (whole-image scores recorded too).
- ``recovery`` (ABP): ABP learned from corrupted training images (posterior over the intact pixels), error of
  its recovery of the corrupted pixels, beside non-learned inpainting of the same pixels.
- ``reconstruction`` (ABP): held-out images reconstructed from d numbers, ABP (h inferred, g(h)) vs PCA.
- ``synthesis-quality``: one-category models × n through the bench harness; true-class probability, top-5 error
  and pairwise SSIM vs n (the slides' three-panel figure).
- ``is-vs-n``: every model × n as a sweep over the bench harness (the scene table of the papers).
- ``textures`` (descriptor): one descriptor per texture exemplar; multi-scale patch SWD against the exemplar.

A table's settings are its dataclass's defaults (the papers' protocol) changed by the ``presets:`` block of
``configs/tables/<name>.yaml`` and ``--set key=value``. Trained models come from finished runs of the same
config or are trained once (``genbench.tasks.runs``). Rows go to
``leaderboards/<data>/tasks/<table>-<preset>.jsonl``; a row already there (same method, corruption, seed,
counts and model config) is not recomputed. Markdown and a PNG of examples are rendered beside it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch

from genbench.config import configs_dir, deep_merge, load_yaml, parse_override
from genbench.data.corruption import parse_corruption
from genbench.errors import GenbenchError
from genbench.tasks.completion import CompletionSettings, LEARNED, complete_abp, complete_with_model, masked_latent
from genbench.tasks.grids import IsVsNTable, SynthesisQualityTable, run_is_vs_n, run_synthesis_quality
from genbench.tasks.inpaint import completer
from genbench.tasks.reconstruction import pca_reconstruct, reconstruction_errors, row_rmse
from genbench.tasks.report import comparison_figure, models_section, pivot, published_block, write_markdown
from genbench.tasks.rows import TableRows, scored_row
from genbench.tasks.runs import TrainedModel, trained_model
from genbench.tasks.scores import region_error, region_psnr
from genbench.tasks.textures import TexturesTable, render_textures, run_textures

DEFAULT_BASELINES = ["harmonic", "total-variation", "biharmonic", "telea", "navier-stokes", "masked-input"]


@dataclass
class TaskTable:
    """Settings every table of trained models shares.

    Args:
        model_preset: the preset its models are trained with; n, seed: their training images and seed.
        images: images scored (None: all of the table's split).
        inference: ``CompletionSettings`` of the learned methods; batch_size: images per batch at evaluation.
        examples: images per row block of the PNG; overrides: config overrides for the models' runs.
    """

    model_preset: str = "paper"
    n: int | None = None
    seed: int = 0
    images: int | None = None
    inference: dict = field(default_factory=dict)
    batch_size: int = 100
    examples: int = 2
    overrides: list[str] = field(default_factory=list)


@dataclass
class CorruptionTable(TaskTable):
    """A table of corrupted images. mask_seed: seed of the corruptions (the mask set is fixed by it); region:
    ``mask`` (the papers' reading: the corrupted pixels) or ``image`` for the table (both are recorded in every row)."""

    mask_seed: int = 0
    region: str = "mask"


@dataclass
class CompletionTable(CorruptionTable):
    """Pattern completion (CoopNets, TPAMI 2018): M30/M40/M50 squares on 64×64 held-out images.

    Args:
        data: dataset (the paper used Places205 scenes; not offline, so the shipped scenes by default).
        models: learned completers (trained models); baselines: non-learned completers.
        corruptions: occlusions ``M<k>``; images: held-out images completed (None: the whole held-out split).
    """

    data: str = "imagenet-scenes"
    models: list[str] = field(default_factory=lambda: ["coopnets", "dcgan", "abp"])
    baselines: list[str] = field(default_factory=lambda: list(DEFAULT_BASELINES))
    corruptions: list[str] = field(default_factory=lambda: ["M30", "M40", "M50"])


@dataclass
class RecoveryTable(CorruptionTable):
    """Recovery of corrupted training images (ABP, AAAI 2017): ABP learns from the corrupted images themselves.

    Args:
        data, model: what is trained (CelebA faces and ABP in the paper).
        corruptions: ``P.<x>`` salt-and-pepper fractions and ``M<k>`` occlusions; one ABP per corruption.
        images: training images whose recovery is scored (None: all); baselines: non-learned inpainting of the
            same pixels (the mask is known to every method).
        inference: masked-posterior Langevin after learning, warm-started from each image's learned latent vector.
    """

    data: str = "celeba"
    model: str = "abp"
    corruptions: list[str] = field(default_factory=lambda: ["P.5", "P.7", "P.9", "M20", "M30"])
    baselines: list[str] = field(default_factory=lambda: ["harmonic", "biharmonic", "telea", "masked-input"])


@dataclass
class ReconstructionTable(TaskTable):
    """Reconstruction of held-out images from d numbers (ABP, AAAI 2017): ABP with latent dimension d vs PCA
    with d components fitted on the same training images.

    Args:
        dims: the latent dimensions / numbers of components d.
        images: held-out images reconstructed (None: the whole held-out split).
        inference: Langevin on h for each held-out image from a prior draw h ~ N(0, I) (all pixels observed).
    """

    data: str = "celeba"
    model: str = "abp"
    dims: list[int] = field(default_factory=lambda: [20, 60, 100, 200])
    inference: dict = field(default_factory=lambda: {"latent_steps": 300})
    examples: int = 4


TABLES: dict[str, type] = {"completion": CompletionTable, "recovery": RecoveryTable,
                           "reconstruction": ReconstructionTable, "synthesis-quality": SynthesisQualityTable,
                           "is-vs-n": IsVsNTable, "textures": TexturesTable}


def table_file(name: str) -> Path:
    return configs_dir() / "tables" / f"{name}.yaml"


def table_settings(name: str, preset: str, overrides: list[str] | None = None, data: str | None = None):
    """The settings of table ``name`` under ``preset`` (the YAML's ``presets.<preset>`` block; ``paper`` is the
    dataclass defaults) with ``key=value`` overrides and ``data``."""
    if name not in TABLES:
        raise GenbenchError(f"unknown table {name!r}; known: {', '.join(TABLES)}")
    spec = load_yaml(table_file(name)) if table_file(name).is_file() else {}
    presets = spec.get("presets") or {}
    if preset != "paper" and preset not in presets:
        raise GenbenchError(f"table {name!r} has no preset {preset!r}; known: {', '.join(['paper', *presets])}")
    values = dict(presets.get(preset) or {})
    for text in overrides or []:
        values = deep_merge(values, parse_override(text))
    if data:
        values["data"] = data
    cls = TABLES[name]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise GenbenchError(f"unknown {name} table option(s) {unknown}; accepted: {', '.join(sorted(known))}")
    settings = cls(**values)
    check_settings(name, settings)
    return settings


def check_settings(name: str, s) -> None:
    """Bad values a user can give, refused before anything runs."""
    for corruption in getattr(s, "corruptions", []):
        parsed = parse_corruption(corruption)
        if name == "completion" and parsed.kind != "occlusion":
            raise GenbenchError(f"the completion table takes occlusions M<k>, got {corruption!r}")
    for baseline in getattr(s, "baselines", []):
        completer(baseline)
    for model in s.models if isinstance(s, CompletionTable) else []:
        if model not in LEARNED:
            raise GenbenchError(f"no learned completer for {model!r}; known: {', '.join(LEARNED)}")
    if getattr(s, "region", "mask") not in ("mask", "image"):
        raise GenbenchError(f"region must be 'mask' or 'image', got {s.region!r}")
    if getattr(s, "images", None) is not None and s.images < 1:
        raise GenbenchError(f"images must be a positive count or null (all), got {s.images}")
    if isinstance(s, TexturesTable) and (not isinstance(s.samples, int) or s.samples < 2):
        raise GenbenchError(f"samples must be an integer ≥ 2 (pairwise SSIM needs two), got {s.samples!r}")
    for d in getattr(s, "dims", []):
        if not isinstance(d, int) or d < 1:
            raise GenbenchError(f"dims must be positive integers, got {d!r}")
    CompletionSettings(**getattr(s, "inference", {}))


def published(name: str) -> dict | None:
    return (load_yaml(table_file(name)) if table_file(name).is_file() else {}).get("published")


# -- shared pieces -----------------------------------------------------------------------------------------------

def pick(total: int, count: int | None, seed: int) -> torch.Tensor:
    """``count`` distinct indices of ``total`` (sorted; all when None), fixed by ``seed``."""
    if count is None or count >= total:
        return torch.arange(total)
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:count].sort().values


def in_batches(fn, batch_size: int, *tensors: torch.Tensor) -> torch.Tensor:
    return torch.cat([fn(*(t[i:i + batch_size] for t in tensors)) for i in range(0, tensors[0].shape[0], batch_size)])


def first_examples(result: torch.Tensor | None, method, s, *inputs: torch.Tensor) -> torch.Tensor:
    """The figure's examples: the first ``s.examples`` results of the evaluation itself, or (for a row reused from
    the JSONL) of the method run on the evaluation's first batch — never on the examples alone, since a BatchNorm
    that normalises with batch statistics would then see another batch than the scored one."""
    if result is None:
        result = method(*(x[:s.batch_size] for x in inputs))
    return result[:s.examples]


def region_scores(completed: torch.Tensor, target: torch.Tensor, holes: torch.Tensor) -> dict:
    """Error and PSNR over the corrupted pixels (``mask``) and over the whole image (``image``)."""
    return {"mask": {"error": region_error(completed, target, holes), "psnr": region_psnr(completed, target, holes)},
            "image": {"error": region_error(completed, target), "psnr": region_psnr(completed, target)}}


def model_for(cache: dict, name: str, data: str, s, overrides: list[str], runs: Path | None, log) -> TrainedModel:
    key = (name, tuple(overrides))
    if key not in cache:
        cache[key] = trained_model(name, data, s.model_preset, s.n, s.seed, overrides, runs, log)
    return cache[key]


def preprocessing_record(dm) -> dict:
    """``{"preprocessing": …}`` for held-out images resized or normalised otherwise than the datamodule's
    defaults (crop, x/127.5 − 1): part of the key of a row that has no model run to carry it (``scored_row``)."""
    if (dm.resize, dm.pixel_norm) == ("crop", "fixed"):
        return {}
    return {"preprocessing": {"resize": dm.resize, "pixel_norm": dm.pixel_norm}}


def heldout_images(data: str, preset: str, overrides: list[str]) -> tuple[torch.Tensor, object]:
    """The held-out real images of ``data`` under the preprocessing of ``preset``'s table, and the datamodule."""
    from genbench.config import compose
    from genbench.data import build_datamodule

    cfg = compose(None, data, preset, overrides)
    dm = build_datamodule(data, **cfg["data"])
    return dm.images(dm.heldout_split), dm


# -- completion ---------------------------------------------------------------------------------------------------

def check_fits(corruptions: list[str], side: int) -> None:
    """Every occluding square fits the table's images (checked before any training)."""
    for name in corruptions:
        corruption = parse_corruption(name)
        if corruption.kind == "occlusion" and corruption.size > side:
            raise GenbenchError(f"{name}: an occluding square of {corruption.size}×{corruption.size} does not fit in "
                                f"the table's {side}×{side} images")


def run_completion(s: CompletionTable, rows: TableRows, runs: Path | None, log) -> tuple[list[dict], dict]:
    images_all, dm = heldout_images(s.data, s.model_preset, s.overrides)
    check_fits(s.corruptions, int(images_all.shape[-1]))
    chosen = pick(images_all.shape[0], s.images, s.mask_seed)
    images = images_all[chosen]
    inference = CompletionSettings(**s.inference)
    trained: dict = {}
    figure: dict = {"columns": {}, "labels": []}
    out = []
    for name in s.corruptions:
        corruption = parse_corruption(name)
        corrupted, holes = corruption.apply(images, s.mask_seed)  # too large a square fails here, in one line
        figure["labels"] += [f"{name} #{i + 1}" for i in range(min(s.examples, len(images)))]
        figure["columns"].setdefault("original", []).append(images[:s.examples])
        figure["columns"].setdefault("input", []).append(corrupted[:s.examples])
        for method in [*s.models, *s.baselines]:
            learned = method in s.models
            model = model_for(trained, method, s.data, s, s.overrides, runs, log) if learned else None
            base = {"table": "completion", "method": method, "kind": "learned" if learned else "baseline",
                    **corruption.record(s.mask_seed), "n_images": len(images), "split": dm.heldout_split,
                    "image_size": int(images.shape[-1]), "data": s.data, **preprocessing_record(dm),
                    "model_run": model.record() if model else None,
                    "inference": inference.record() if learned else None}

            def complete(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
                if model is None:
                    return completer(method)(x, m)
                torch.manual_seed(s.mask_seed)
                return in_batches(lambda a, b: complete_with_model(method, model.module, a, b, inference), s.batch_size, x, m)

            row, completed = scored_row(
                rows, base, ("method", "corruption", "mask_seed", "n_images", "split", "image_size", "data", "inference"),
                lambda: complete(corrupted, holes), lambda result: {"scores": region_scores(result, images, holes)},
                lambda r: f"  {name} {method}: error {r['scores'][s.region]['error']:.4f}, "
                          f"PSNR {r['scores'][s.region]['psnr']:.2f} dB", log)
            out.append(row)
            figure["columns"].setdefault(method, []).append(
                first_examples(completed, complete, s, corrupted, holes))
    return out, figure


# -- recovery -----------------------------------------------------------------------------------------------------

def run_recovery(s: RecoveryTable, rows: TableRows, runs: Path | None, log) -> tuple[list[dict], dict]:
    from genbench.bench.harness import effective_config
    from genbench.data import build_datamodule
    from genbench.data.base import to_unit_range

    planned = build_datamodule(s.data, **effective_config(s.model, s.data, s.model_preset, s.n, s.seed, s.overrides)["data"])
    check_fits(s.corruptions, planned.image_size)
    inference = CompletionSettings(**s.inference)
    trained: dict = {}
    figure: dict = {"columns": {}, "labels": []}
    out = []
    for name in s.corruptions:
        corruption = parse_corruption(name)
        overrides = [*s.overrides, f"data.corruption={name}", f"data.corruption_seed={s.mask_seed}"]
        model = model_for(trained, s.model, s.data, s, overrides, runs, log)
        dataset = model.datamodule.datasets["train"]
        chosen = pick(len(dataset), s.images, s.mask_seed)
        clean = to_unit_range(dataset.images[chosen], dataset.pixel_norm)
        corrupted, holes = dataset.corrupted[chosen], dataset.masks[chosen]
        latents = getattr(model.module, "latents", None)  # each training image's learned h, the warm start
        warm = latents[chosen] if latents is not None and latents.shape[0] == len(dataset) else \
            torch.zeros(len(clean), model.module.hparams.latent_dim)
        figure["labels"] += [f"{name} #{i + 1}" for i in range(min(s.examples, len(clean)))]
        figure["columns"].setdefault("original", []).append(clean[:s.examples])
        figure["columns"].setdefault("corrupted", []).append(corrupted[:s.examples])

        def recover_learned(x, m, h0):
            torch.manual_seed(s.mask_seed)
            return in_batches(lambda a, b, c: complete_abp(model.module, a, b, inference, c), s.batch_size, x, m, h0)

        for method in [s.model, *s.baselines]:
            learned = method == s.model
            base = {"table": "recovery", "method": method, "kind": "learned" if learned else "baseline",
                    **corruption.record(s.mask_seed), "n_images": len(clean), "split": "train",
                    "n_train": len(dataset), "image_size": int(clean.shape[-1]), "data": s.data,
                    "model_run": model.record(), "inference": inference.record() if learned else None,
                    "corrupted_fraction": float(holes.float().mean())}
            recover = (lambda x, m, h0: recover_learned(x, m, h0)) if learned else (lambda x, m, h0: completer(method)(x, m))
            row, recovered = scored_row(
                rows, base, ("method", "corruption", "mask_seed", "n_images", "image_size", "data", "inference"),
                lambda: recover(corrupted, holes, warm), lambda result: {"scores": region_scores(result, clean, holes)},
                lambda r: f"  {name} {method}: error {r['scores'][s.region]['error']:.4f}", log)
            out.append(row)
            figure["columns"].setdefault(method, []).append(
                first_examples(recovered, recover, s, corrupted, holes, warm))
    return out, figure


# -- reconstruction -----------------------------------------------------------------------------------------------

def run_reconstruction(s: ReconstructionTable, rows: TableRows, runs: Path | None, log) -> tuple[list[dict], dict]:
    from genbench.bench.harness import effective_config
    from genbench.data import build_datamodule

    planned_cfg = effective_config(s.model, s.data, s.model_preset, s.n, s.seed, s.overrides)
    planned = build_datamodule(s.data, **planned_cfg["data"])
    pixels = planned.channels * planned.image_size ** 2
    for d in s.dims:  # before any training
        if d > min(planned.num_train, pixels):
            raise GenbenchError(f"d = {d} exceeds the {planned.num_train} training images or the {pixels} pixels per "
                                f"image of {s.data}; PCA and the comparison need d ≤ {min(planned.num_train, pixels)}")
    inference = CompletionSettings(**s.inference)
    figure: dict = {"columns": {}, "labels": []}
    out = []
    trained: dict = {}
    for d in s.dims:
        model = model_for(trained, s.model, s.data, s, [*s.overrides, f"model.latent_dim={d}"], runs, log)
        dm = model.datamodule
        held_all = dm.images(dm.heldout_split)
        chosen = pick(held_all.shape[0], s.images, s.seed)
        held, train = held_all[chosen], dm.images("train")
        if not figure["labels"]:
            figure["labels"] = [f"#{i + 1}" for i in range(min(s.examples, len(held)))]
            figure["columns"]["original"] = [held[:s.examples]]
        no_holes = torch.zeros(held.shape[0], 1, *held.shape[-2:], dtype=torch.bool)

        def abp_reconstruct(x: torch.Tensor) -> torch.Tensor:
            torch.manual_seed(s.seed)
            module = model.module

            def one(a, b):
                with module.sampling_mode():
                    h = masked_latent(module.generator, a, b, module.hparams.latent_dim, module.hparams.sigma, inference)
                    with torch.no_grad():
                        return module.generator(h).clamp(-1, 1)

            return in_batches(one, s.batch_size, x, no_holes[:x.shape[0]])

        for method in (s.model, "pca"):
            learned = method == s.model
            base = {"table": "reconstruction", "method": method, "kind": "learned" if learned else "baseline", "d": d,
                    "n_images": len(held), "split": dm.heldout_split, "n_train": int(train.shape[0]),
                    "image_size": int(held.shape[-1]), "data": s.data, "model_run": model.record(),
                    "inference": inference.record() if learned else None}
            reconstruct = abp_reconstruct if learned else (lambda x: pca_reconstruct(train, x, d, s.seed))
            row, reconstructed = scored_row(
                rows, base, ("method", "d", "n_images", "split", "n_train", "image_size", "data", "inference"),
                lambda: reconstruct(held), lambda result: {"errors": reconstruction_errors(held, result)},
                lambda r: f"  d={d} {method}: RMSE {row_rmse(r['errors']):.4f}, mean abs error {r['errors']['mae']:.4f}", log)
            out.append(row)
            figure["columns"][f"{method} d={d}"] = [first_examples(reconstructed, reconstruct, s, held)]
    return out, figure


# -- rendering ----------------------------------------------------------------------------------------------------

TITLES = {"completion": "Pattern completion", "recovery": "Recovery of corrupted training images",
          "reconstruction": "Reconstruction of held-out images: ABP vs PCA"}


def render_task_table(name: str, s, preset: str, rows: list[dict], figure: dict, path: Path) -> list[Path]:
    """``<table>-<preset>.md`` and ``<table>-<preset>.png`` beside the JSONL."""
    figure_path = path.with_suffix(".png")
    columns = [(label, torch.cat(parts)) for label, parts in figure["columns"].items()]
    size = int(columns[0][1].shape[-1]) if columns else "?"
    title = f"{TITLES[name]}: {s.data}, {preset} preset ({size}x{size})"
    if columns:
        comparison_figure(figure_path, columns, figure["labels"], title)
    lines = [f"# {title}", "", f"Rendered by `genbench table --table {name} --data {s.data} --preset {preset}` from the "
             f"rows in `{path.name}`.", ""]
    first = rows[0] if rows else {}
    if name in ("completion", "recovery"):
        region = "the corrupted pixels" if s.region == "mask" else "the whole image"
        where = (f"{first.get('n_images')} held-out images ({first.get('split')} split)" if name == "completion" else
                 f"{first.get('n_images')} of the {first.get('n_train')} corrupted training images")
        lines += [f"Setup: {where}, {size}×{size}; corruptions {', '.join(s.corruptions)} (mask seed {s.mask_seed}); "
                  f"scores over {region}, pixel values in [0, 1]. Learned rows: models of the `{s.model_preset}` preset "
                  f"(see Models); baselines are non-learned inpainting given the same mask.", ""]
        methods = list(dict.fromkeys(r["method"] for r in rows))
        lines += [f"## Error: mean |x̂ − x| over {region} (lower is better)", ""]
        lines += pivot(rows, lambda r: r["corruption"], lambda r: r["method"], lambda r: r["scores"][s.region]["error"],
                       4, s.corruptions, methods)
        lines += [f"## PSNR (dB) over {region} (higher is better)", ""]
        lines += pivot(rows, lambda r: r["corruption"], lambda r: r["method"], lambda r: r["scores"][s.region]["psnr"],
                       2, s.corruptions, methods)
    else:
        lines += [f"Setup: {first.get('n_images')} held-out images ({first.get('split')} split), {size}×{size}; "
                  f"PCA fitted on the {first.get('n_train')} training images the ABP models learned from; errors on "
                  "pixel values in [0, 1].", ""]
        errors = (("root-mean-square error, the published tables' error most likely (see Notes)", row_rmse),
                  ("mean absolute error", lambda e: e["mae"]), ("mean squared error", lambda e: e["mse"]))
        for label, value in errors:
            lines += [f"## Reconstruction {label} (lower is better)", ""]
            lines += pivot(rows, lambda r: r["method"], lambda r: f"d={r['d']}", lambda r, v=value: v(r["errors"]), 4,
                           [s.model, "pca"], [f"d={d}" for d in s.dims])
    lines += published_block(published(name))
    shown = "original, then each method's reconstruction" if name == "reconstruction" else \
        "original, corrupted input, then each method's result"
    lines += [f"Examples ({shown}): [{figure_path.name}]({figure_path.name})", "",
              f"![examples]({figure_path.name})", ""]
    lines += models_section(rows)
    write_markdown(path, lines, s, rows)
    return [path.with_suffix(".md"), figure_path]


RUNNERS = {"completion": run_completion, "recovery": run_recovery, "reconstruction": run_reconstruction,
           "textures": run_textures}


def run_table(name: str, preset: str = "cpu", data: str | None = None, overrides: list[str] | None = None,
              leaderboards: Path | None = None, runs: Path | None = None, log=print) -> list[Path]:
    """Train what is missing, evaluate, append rows, render Markdown + PNG; returns the files written."""
    from genbench.paths import leaderboard_dir

    settings = table_settings(name, preset, overrides, data)
    boards = leaderboards or leaderboard_dir()
    if name == "is-vs-n":
        return run_is_vs_n(settings, boards, log)
    if name == "synthesis-quality":
        return run_synthesis_quality(settings, preset, published(name), boards, log)
    path = boards / settings.data / "tasks" / f"{name}-{preset}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = TableRows(path)
    log(f"table {name} ({preset}) on {settings.data} → {path}")
    produced, figure = RUNNERS[name](settings, rows, runs, log)
    if name == "textures":
        return render_textures(settings, preset, produced, figure, path)
    return render_task_table(name, settings, preset, produced, figure, path)
