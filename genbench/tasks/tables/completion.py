"""Pattern completion (CoopNets, TPAMI 2018): occluded held-out images completed by trained models and by
non-learned inpainting; error and PSNR over the occluded pixels (whole-image scores recorded too).
``genbench table --table completion`` → ``leaderboards/<data>/tasks/completion-<preset>.{jsonl,md,png}``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from genbench.data.corruption import parse_corruption
from genbench.data.subsets import seeded_subset
from genbench.errors import GenbenchError
from genbench.models.completion import CompletionSettings, check_completer, complete_with_model
from genbench.tasks.inpaint import completer
from genbench.tasks.rows import TableRows, scored_row
from genbench.tasks.tables.base import (CorruptionTable, Table, add_corrupted_examples, check_fits, corruption_lines,
                                        first_examples, heldout_images, in_batches, model_for, preprocessing_record,
                                        region_scores, register_table, render_examples_table)

DEFAULT_BASELINES = ["harmonic", "total-variation", "biharmonic", "telea", "navier-stokes", "masked-input"]


@dataclass
class CompletionTable(CorruptionTable):
    """Pattern completion (CoopNets, TPAMI 2018): M30/M40/M50 squares on 64×64 held-out images.

    Args:
        data: dataset (the paper used Places205 scenes; not offline, so the shipped scenes by default).
        models: learned completers (trained models whose class has a ``completion``); baselines: non-learned completers.
        corruptions: occlusions ``M<k>``; images: held-out images completed (None: the whole held-out split).
    """

    data: str = "imagenet-scenes"
    models: list[str] = field(default_factory=lambda: ["coopnets", "dcgan", "abp"])
    baselines: list[str] = field(default_factory=lambda: list(DEFAULT_BASELINES))
    corruptions: list[str] = field(default_factory=lambda: ["M30", "M40", "M50"])


def check_completion(s: CompletionTable) -> None:
    for corruption in s.corruptions:
        if parse_corruption(corruption).kind != "occlusion":
            raise GenbenchError(f"the completion table takes occlusions M<k>, got {corruption!r}")
    for model in s.models:
        check_completer(model)


def evaluate_completion(s: CompletionTable, rows: TableRows, runs: Path | None, log) -> tuple[list[dict], dict]:
    images_all, dm = heldout_images(s.data, s.model_preset, s.overrides)
    check_fits(s.corruptions, int(images_all.shape[-1]))
    chosen = seeded_subset(images_all.shape[0], s.images, s.mask_seed)
    images = images_all[chosen]
    inference = CompletionSettings(**s.inference)
    trained: dict = {}
    figure: dict = {"columns": {}, "labels": []}
    out = []
    for name in s.corruptions:
        corruption = parse_corruption(name)
        corrupted, holes = corruption.apply(images, s.mask_seed)  # too large a square fails here, in one line
        add_corrupted_examples(figure, name, images, corrupted, "input", s.examples)
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
                return in_batches(lambda a, b: complete_with_model(model.module, a, b, inference), s.batch_size, x, m)

            row, completed = scored_row(
                rows, base, ("method", "corruption", "mask_seed", "n_images", "split", "image_size", "data", "inference"),
                lambda: complete(corrupted, holes), lambda result: {"scores": region_scores(result, images, holes)},
                lambda r: f"  {name} {method}: error {r['scores'][s.region]['error']:.4f}, "
                          f"PSNR {r['scores'][s.region]['psnr']:.2f} dB", log)
            out.append(row)
            figure["columns"].setdefault(method, []).append(
                first_examples(completed, complete, s, corrupted, holes))
    return out, figure


def render_completion(s: CompletionTable, preset: str, rows: list[dict], figure: dict, path: Path) -> list[Path]:
    def body(first: dict, size) -> list[str]:
        return corruption_lines(s, rows, f"{first.get('n_images')} held-out images ({first.get('split')} split)", size)

    return render_examples_table("completion", "Pattern completion", "original, corrupted input, then each method's "
                                 "result", body, s, preset, rows, figure, path)


TABLE = register_table(Table("completion", "occluded held-out images completed by trained models and inpainting "
                                           "(CoopNets)", CompletionTable, check_completion, evaluate_completion,
                             render_completion))
