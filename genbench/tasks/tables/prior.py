"""Learning a prior (the multi-grid paper, Gao et al. CVPR 2018): held-out images corrupted by a mask, a doodle and
salt-and-pepper noise, recovered with each contrastive-divergence variant's learned energy as the prior (Langevin on
the missing pixels only, the observed ones fixed: the ``descriptor-langevin`` and ``grid-langevin`` completions),
beside the Context Encoder trained for each corruption (the paper's CE) and non-learned inpainting.
``genbench table --table prior`` → ``leaderboards/<data>/tasks/prior-<preset>.{jsonl,md,png}``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from genbench.data.corruption import parse_corruption
from genbench.errors import GenbenchError
from genbench.models.completion import check_completer
from genbench.paths import runs_dir
from genbench.tasks.context_encoder import ContextEncoderSettings, context_encoder
from genbench.tasks.rows import TableRows
from genbench.tasks.tables.base import (CorruptionTable, Table, complete_heldout_images, corruption_lines, register_table,
                                        render_examples_table)

#: the paper's name of each corruption kind (its columns "mask", "doodle", "pepper")
PAPER_NAMES = {"central": "mask", "doodle": "doodle", "salt-and-pepper": "pepper"}


@dataclass
class PriorTable(CorruptionTable):
    """The multi-grid paper's prior table on 64×64 faces.

    Args:
        data: faces (CelebA in the paper; the offline faces here).
        models: the learned priors: persistent, one-step, single-grid and multi-grid CD (PCD, CD1, SCD, MCD). The
            last three share the multi-grid paper's BatchNorm nets on [0, 255] pixels; ``pcd`` is genbench's
            persistent descriptor (its own net, a Gaussian reference and noisy Langevin on [-1, 1]; docs/models.md).
        corruptions: the paper's mask (``C32``: the central 32×32 square, the Context Encoder's region), doodle
            (``D8``: 8 free-form strokes, ``genbench.data.corruption.doodle_masks``; the paper does not define its
            strokes) and pepper (``P.5``: salt-and-pepper on half the pixels; the paper does not give the fraction).
        context_encoder: ``ContextEncoderSettings`` of the CE column (one per corruption); None: no CE.
        baselines: non-learned inpainting of the same pixels.
    """

    data: str = "celeba"
    models: list[str] = field(default_factory=lambda: ["pcd", "one-step-cd", "single-grid-cd", "multigrid"])
    corruptions: list[str] = field(default_factory=lambda: ["C32", "D8", "P.5"])
    context_encoder: dict | None = field(default_factory=dict)
    baselines: list[str] = field(default_factory=lambda: ["harmonic", "telea", "masked-input"])


def check_prior(s: PriorTable) -> None:
    for model in s.models:
        check_completer(model)
    if s.context_encoder is not None:
        known = {f.name for f in fields(ContextEncoderSettings)}
        unknown = sorted(set(s.context_encoder) - known)
        if unknown:
            raise GenbenchError(f"unknown context_encoder option(s) {unknown}; accepted: {', '.join(sorted(known))}")
        ContextEncoderSettings(**s.context_encoder)


def evaluate_prior(s: PriorTable, rows: TableRows, runs: Path | None, log) -> tuple[list[dict], dict]:
    trained = {}
    if s.context_encoder is not None:
        settings = ContextEncoderSettings(**s.context_encoder)

        def train_ce(corruption, images, fingerprint):
            ce = context_encoder(images, corruption, settings, s.data, fingerprint, runs or runs_dir(), log)
            return ce.complete, ce.record

        trained["context-encoder"] = (asdict(settings), train_ce)
    return complete_heldout_images(s, "prior", rows, runs, log, trained)


def render_prior(s: PriorTable, preset: str, rows: list[dict], figure: dict, path: Path) -> list[Path]:
    def body(first: dict, size) -> list[str]:
        named = ", ".join(f"{c} = {PAPER_NAMES.get(parse_corruption(c).kind, c)}" for c in s.corruptions)
        lines = corruption_lines(s, rows, f"{first.get('n_images')} held-out images ({first.get('split')} split)", size)
        return [f"The paper's corruptions: {named}. The learned priors revise only the missing pixels, from the "
                f"observed pixels' mean colour, with the model's own evaluation chains (the multi-grid model coarse "
                f"to fine, each grid holding its wholly observed cells); *context-encoder* is the paper's CE, an "
                f"encoder–decoder trained for each corruption on the training images.", "", *lines]

    return render_examples_table("prior", "Learning a prior: recovery of corrupted images", "original, corrupted "
                                 "input, then each method's result", body, s, preset, rows, figure, path)


TABLE = register_table(Table("prior", "corrupted held-out images recovered with each CD variant's energy as the "
                                      "prior, beside a Context Encoder (multi-grid EBM)", PriorTable, check_prior,
                             evaluate_prior, render_prior))
