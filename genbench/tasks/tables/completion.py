"""Pattern completion (CoopNets, TPAMI 2018): occluded held-out images completed by trained models and by
non-learned inpainting; error and PSNR over the occluded pixels (whole-image scores recorded too).
``genbench table --table completion`` → ``leaderboards/<data>/tasks/completion-<preset>.{jsonl,md,png}``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from genbench.data.corruption import parse_corruption
from genbench.errors import GenbenchError
from genbench.models.completion import check_completer
from genbench.tasks.rows import TableRows
from genbench.tasks.tables.base import (CorruptionTable, Table, complete_heldout_images, corruption_lines, register_table,
                                        render_examples_table)

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
    return complete_heldout_images(s, "completion", rows, runs, log)


def render_completion(s: CompletionTable, preset: str, rows: list[dict], figure: dict, path: Path) -> list[Path]:
    def body(first: dict, size) -> list[str]:
        return corruption_lines(s, rows, f"{first.get('n_images')} held-out images ({first.get('split')} split)", size)

    return render_examples_table("completion", "Pattern completion", "original, corrupted input, then each method's "
                                 "result", body, s, preset, rows, figure, path)


TABLE = register_table(Table("completion", "occluded held-out images completed by trained models and inpainting "
                                           "(CoopNets)", CompletionTable, check_completion, evaluate_completion,
                             render_completion))
