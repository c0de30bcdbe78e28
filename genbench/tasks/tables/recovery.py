"""Recovery of corrupted training images (ABP, AAAI 2017): ABP learned from corrupted training images (its
posterior over the intact pixels), the error of its recovery of the corrupted pixels, beside non-learned
inpainting of the same pixels.
``genbench table --table recovery`` → ``leaderboards/<data>/tasks/recovery-<preset>.{jsonl,md,png}``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from genbench.data.pixels import to_unit_range
from genbench.data.corruption import parse_corruption
from genbench.data.subsets import seeded_subset
from genbench.models.completion import CompletionSettings, complete_abp
from genbench.tasks.inpaint import completer
from genbench.tasks.rows import TableRows, scored_row
from genbench.tasks.tables.base import (CorruptionTable, Table, add_corrupted_examples, check_fits, corruption_lines,
                                        first_examples, in_batches, model_for, planned_datamodule, region_scores,
                                        register_table, render_examples_table)


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


def evaluate_recovery(s: RecoveryTable, rows: TableRows, runs: Path | None, log) -> tuple[list[dict], dict]:
    check_fits(s.corruptions, planned_datamodule(s, s.model).image_size)
    inference = CompletionSettings(**s.inference)
    trained: dict = {}
    figure: dict = {"columns": {}, "labels": []}
    out = []
    for name in s.corruptions:
        corruption = parse_corruption(name)
        overrides = [*s.overrides, f"data.corruption={name}", f"data.corruption_seed={s.mask_seed}"]
        model = model_for(trained, s.model, s.data, s, overrides, runs, log)
        dataset = model.datamodule.datasets["train"]
        chosen = seeded_subset(len(dataset), s.images, s.mask_seed)
        clean = to_unit_range(dataset.images[chosen], dataset.pixel_norm)
        corrupted, holes = dataset.corrupted[chosen], dataset.masks[chosen]
        warm = model.module.training_latents(chosen, len(dataset))  # each image's learned h, the warm start
        add_corrupted_examples(figure, name, clean, corrupted, "corrupted", s.examples)

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


def render_recovery(s: RecoveryTable, preset: str, rows: list[dict], figure: dict, path: Path) -> list[Path]:
    def body(first: dict, size) -> list[str]:
        return corruption_lines(s, rows, f"{first.get('n_images')} of the {first.get('n_train')} corrupted training "
                                         "images", size)

    return render_examples_table("recovery", "Recovery of corrupted training images", "original, corrupted input, "
                                 "then each method's result", body, s, preset, rows, figure, path)


TABLE = register_table(Table("recovery", "corrupted training images recovered by the ABP that learned from them",
                             RecoveryTable, evaluate=evaluate_recovery, render=render_recovery))
