"""Texture synthesis from one exemplar (descriptor, Xie et al. ICML 2016, the texture figure): one descriptor per
exemplar learns a stationary energy f(X) = Σ_positions F(X) from the single image, its persistent chains are the
synthesis. Scored without a pretrained network by the multi-scale patch SWD against the exemplar
(``genbench.metrics.swd``), beside two reference rows scored the same way:

- ``exemplar, shifted`` (ceiling): the exemplar cyclically shifted by random offsets, i.e. random crops of the
  exemplar tiled 2×2 — what a perfect copy of the texture scores (only the seams differ from the exemplar);
- ``noise`` (floor): Gaussian noise N(0, 1) clipped to [-1, 1], as many images as the synthesis.

Pairwise SSIM among the synthesized images shows whether the chains collapsed onto one image.
``genbench table --table textures [--preset cpu|paper]`` → ``leaderboards/textures/tasks/textures-<preset>.{jsonl,md,png}``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch

from genbench import paths
from genbench.data.datasets import check_opaque, texture_files
from genbench.errors import GenbenchError
from genbench.metrics.ssim import pairwise_ssim
from genbench.metrics.swd import SWDSettings, swd
from genbench.runs.config import run_config
from genbench.runs.sampling import sample_all
from genbench.tasks.report import comparison_figure, models_section, pivot, write_markdown
from genbench.tasks.rows import TableRows, scored_row
from genbench.tasks.runs import trained_model
from genbench.tasks.tables.base import Table, register_table

SKIMAGE_EXEMPLARS = ["skimage/brick", "skimage/grass", "skimage/gravel"]
# exemplars whose licence lets their images appear in a committed figure (scikit-image: BSD; embark: MIT/Apache-2.0)
REDISTRIBUTABLE = ("skimage/", "embark/")
REFERENCES = ("exemplar, shifted", "noise")


def offline_exemplars() -> list[str]:
    """scikit-image's textures, then every opaque exemplar of the offline texture folder (``../shared/data/textures``)
    where it exists, as ``group/stem``; exemplars with transparent pixels are left out."""
    found = list(SKIMAGE_EXEMPLARS)
    root = paths.SHARED_DATA_DIR / "textures"
    for path in texture_files(root) if root.is_dir() else []:
        try:
            check_opaque(path)
        except GenbenchError:
            continue
        found.append(f"{path.parent.name}/{path.stem}")
    return found


@dataclass
class TexturesTable:
    """One descriptor per exemplar.

    Args:
        exemplars: ``textures`` data names (``skimage/brick``, ``frame-232a/stucco``, …); None: every offline one
            (``offline_exemplars``).
        model, model_preset: the model trained on each exemplar and its preset (settings of the texture experiment:
            configs/experiments/<model>-textures.yaml).
        samples: synthesized images scored per exemplar (the descriptor's persistent chains: at most their number).
        seed: training seed; reference_seed: seed of the shifts and of the noise.
        examples: synthesized images per exemplar in the figure; overrides: config overrides of every run.
    """

    data: str = "textures"
    model: str = "descriptor"
    model_preset: str = "paper"
    exemplars: list[str] | None = None
    samples: int = 8
    seed: int = 0
    reference_seed: int = 0
    examples: int = 4
    overrides: list[str] = field(default_factory=list)

    def exemplar_list(self) -> list[str]:
        return list(self.exemplars) if self.exemplars is not None else offline_exemplars()


def shifted_copies(exemplar: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """``count`` cyclic shifts of ``exemplar`` (1, C, H, W) by uniform random offsets: random H×W crops of the
    exemplar tiled 2×2."""
    generator = torch.Generator().manual_seed(seed)
    h, w = exemplar.shape[-2:]
    offsets = zip(torch.randint(0, h, (count,), generator=generator).tolist(),
                  torch.randint(0, w, (count,), generator=generator).tolist())
    return torch.cat([torch.roll(exemplar, shifts=(dy, dx), dims=(-2, -1)) for dy, dx in offsets])


def texture_scores(images: torch.Tensor, exemplar: torch.Tensor) -> dict:
    """SWD ×10³ of ``images`` against the exemplar (mean and per pyramid level) and their pairwise SSIM."""
    mean, levels = swd(images, exemplar, SWDSettings())
    ssim = pairwise_ssim(images)
    return {"texture_swd": mean, "texture_swd_levels": levels, "pairwise_ssim": ssim["pairwise_ssim"],
            "swd_settings": dataclasses.asdict(SWDSettings())}


def check_textures(s: TexturesTable) -> None:
    if not isinstance(s.samples, int) or s.samples < 2:
        raise GenbenchError(f"samples must be an integer ≥ 2 (pairwise SSIM needs two), got {s.samples!r}")


def evaluate_textures(s: TexturesTable, rows: TableRows, runs: Path | None, log) -> tuple[list[dict], dict]:
    exemplars = s.exemplar_list()
    if not exemplars:
        raise GenbenchError("the textures table has no exemplars: give --set exemplars=[skimage/brick,…]")
    out, figure = [], {"columns": {}, "labels": []}
    for name in exemplars:
        overrides = [*s.overrides, f"data.texture={name}"]
        model = trained_model(run_config(s.model, s.data, s.model_preset, None, s.seed, overrides), runs, log)
        exemplar = model.datamodule.images("train")[:1]
        candidates = {
            s.model: lambda: sample_all(model.module, s.samples, s.seed),
            "exemplar, shifted": lambda: shifted_copies(exemplar, s.samples, s.reference_seed),
            "noise": lambda: torch.randn((s.samples, *exemplar.shape[1:]),
                                         generator=torch.Generator().manual_seed(s.reference_seed)).clamp(-1, 1),
        }
        shown = name.startswith(REDISTRIBUTABLE)
        if shown:
            figure["labels"].append(name)
            figure["columns"].setdefault("exemplar", []).append(exemplar)
        for method, make in candidates.items():
            learned = method == s.model
            base = {"table": "textures", "method": method, "kind": "learned" if learned else "reference",
                    "exemplar": name, "n_samples": s.samples, "image_size": int(exemplar.shape[-1]), "data": s.data,
                    "reference_seed": None if learned else s.reference_seed,
                    "model_run": model.record() if learned else None}
            row, images = scored_row(rows, base, ("method", "exemplar", "n_samples", "image_size", "data", "reference_seed"),
                                     make, lambda result: {"scores": texture_scores(result, exemplar)},
                                     lambda r: f"  {name} {method}: SWD {r['scores']['texture_swd']:.1f}, "
                                               f"pairwise SSIM {r['scores']['pairwise_ssim']:.3f}", log)
            out.append(row)
            if shown and method != "noise":
                images = make() if images is None else images
                count = s.examples if learned else 1
                for k in range(count):
                    label = f"{method} {k + 1}" if learned else method
                    figure["columns"].setdefault(label, []).append(images[k:k + 1])
    return out, figure


def render_textures(s: TexturesTable, preset: str, rows: list[dict], figure: dict, path: Path) -> list[Path]:
    figure_path = path.with_suffix(".png")
    columns = [(label, torch.cat(parts)) for label, parts in figure["columns"].items()
               if len(parts) == len(figure["labels"])]
    size = rows[0]["image_size"] if rows else "?"
    title = f"Texture synthesis: one {s.model} per exemplar, {preset} preset ({size}x{size})"
    if columns and figure["labels"]:
        comparison_figure(figure_path, columns, figure["labels"], title)
    exemplars = list(dict.fromkeys(r["exemplar"] for r in rows))
    methods = [s.model, *REFERENCES]
    lines = [f"# {title}", "", f"Rendered by `genbench table --table textures --preset {preset}` from the rows in "
             f"`{path.name}`.", "",
             f"Setup: each exemplar at {size}×{size}; {s.samples} synthesized images per exemplar (the descriptor's "
             "persistent chains), scored against the exemplar. References scored the same way: `exemplar, shifted` "
             "(the exemplar cyclically shifted by random offsets, i.e. crops of it tiled 2×2: the ceiling) and `noise` "
             "(N(0, 1) clipped to [-1, 1]: the floor).", "",
             "## Texture SWD ×10³ against the exemplar (lower is better)", ""]
    lines += pivot(rows, lambda r: r["exemplar"], lambda r: r["method"], lambda r: r["scores"]["texture_swd"], 1,
                   exemplars, methods, "exemplar")
    lines += ["## Pairwise SSIM among the images (diversity; near 1 = collapsed onto one image)", ""]
    lines += pivot(rows, lambda r: r["exemplar"], lambda r: r["method"], lambda r: r["scores"]["pairwise_ssim"], 3,
                   exemplars, methods, "exemplar")
    hidden = [e for e in exemplars if not e.startswith(REDISTRIBUTABLE)]
    if figure["labels"]:
        lines += [f"Exemplar beside {s.examples} synthesized images and one shifted copy: [{figure_path.name}]"
                  f"({figure_path.name})", "", f"![textures]({figure_path.name})", ""]
    if hidden:
        lines += [f"Not drawn (no licence to redistribute the exemplar; read from `../shared/data/textures`): "
                  f"{', '.join(hidden)}.", ""]
    lines += models_section(rows)
    write_markdown(path, lines, s, rows, "its exemplar, sample count, image size, SWD settings, model run and command")
    return [path.with_suffix(".md"), figure_path]


TABLE = register_table(Table("textures", "one descriptor per texture exemplar, multi-scale patch SWD against it",
                             TexturesTable, check_textures, evaluate_textures, render_textures))
