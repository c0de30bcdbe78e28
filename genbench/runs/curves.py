"""Learning curves: every ``bench.eval_every`` iterations, a fixed number of samples is drawn and scored while the
model trains, so a row shows how the score moved with iterations, training seconds and images seen — not only
where it ended.

Each point of an energy-based model also carries its learning diagnostics (``CURVE_DIAGNOSTICS``): the energy gap
f(data) − f(samples) and the chains' mean gradient norm ‖∂E/∂x‖ (for a model whose samples come from a generator
trained on the energy, without chains, ‖∂E/∂x‖ at those samples) that the model logs every iteration, averaged over
the iterations since the previous point, so a stalled or saturated EBM shows in its row without the logs.

Scoring never changes training: the samples are drawn from their own seeded stream (every RNG the run uses is
restored afterwards), the model's parameters and buffers (BatchNorm statistics, replay buffers, latent memories)
and its evaluation state are put back as they were, and the time spent scoring is not counted as training time.
"""

from __future__ import annotations

import time

import torch
from lightning.pytorch.callbacks import Callback

from genbench.metrics import MetricContext, SampleSet, compute_metrics, feature_spaces
from genbench.models.base import capture_rng_state, restore_rng_state
from genbench.results.schema import CURVE_DIAGNOSTICS
from genbench.runs.callbacks import log_line
from genbench.runs.sampling import chunk_seed

#: the seed of the curve's samples (the same samples' noise at every point of every run)
CURVE_SEED = 7919


class LearningCurve(Callback):
    """Every ``every`` iterations (and at the last one), score ``count`` samples with the metrics ``names`` of
    ``ctx``; each point — iteration, training seconds (scoring excluded), images seen, scores — goes to the
    run's loggers as it is computed and to ``points``. Rank 0 scores; the other ranks wait at the next step.

    The points and the training seconds so far travel in every checkpoint, so a resumed run's curve and training
    time continue from the checkpoint's (the part trained after it, lost with the stopped process, is not counted)."""

    def __init__(self, every: int, count: int, names: list[str], ctx: MetricContext, chunk: int = 256,
                 log=log_line) -> None:
        self.every = every
        self.count = count
        self.names = names
        self.ctx = ctx
        self.chunk = chunk
        self.emit = log
        self.points: list[dict] = []
        self.scoring_seconds = 0.0  # spent scoring since this process started training
        self.seconds_before = 0.0  # training seconds of the earlier processes of a resumed run
        self.scoring_before = 0.0
        self.restored = False  # whether a checkpoint gave the earlier points and seconds
        self._sums: dict[str, torch.Tensor] = {}  # diagnostics summed since the last point (on the device: no sync)
        self._counts: dict[str, int] = {}
        self._start = 0.0
        self._first_iteration = 0

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = time.monotonic()
        self._first_iteration = pl_module.iteration

    def train_seconds(self, now: float | None = None) -> float:
        """Training seconds since iteration 0: the earlier processes' and this one's, scoring excluded."""
        now = time.monotonic() if now is None else now
        return self.seconds_before + now - self._start - self.scoring_seconds

    def state_dict(self) -> dict:
        return {"points": self.points, "train_seconds": self.train_seconds() if self._start else self.seconds_before,
                "scoring_seconds": self.scoring_before + self.scoring_seconds}

    def load_state_dict(self, state_dict: dict) -> None:
        self.points = list(state_dict.get("points", []))
        self.seconds_before = float(state_dict.get("train_seconds", 0.0))
        self.scoring_before = float(state_dict.get("scoring_seconds", 0.0))
        self.restored = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        for name in CURVE_DIAGNOSTICS:
            value = trainer.callback_metrics.get(f"train/{name}")
            if value is not None:
                self._sums[name] = self._sums.get(name, 0.0) + value.detach().double()
                self._counts[name] = self._counts.get(name, 0) + 1
        if pl_module.iteration % self.every == 0 and trainer.is_global_zero:
            self.score(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        done = {p["iteration"] for p in self.points}
        if trainer.is_global_zero and pl_module.iteration not in done and pl_module.iteration > self._first_iteration:
            self.score(trainer, pl_module)

    def score(self, trainer, pl_module) -> dict:
        start = time.monotonic()
        scores = score_without_side_effects(pl_module, self.count, self.names, self.ctx, self.chunk)
        seconds = time.monotonic() - start
        point = {"iteration": pl_module.iteration,
                 "train_seconds": round(self.train_seconds(start), 2),
                 "images_seen": pl_module.iteration * trainer.train_dataloader.batch_size * trainer.world_size
                 if trainer.train_dataloader is not None else None,
                 "scores": {k: s.mean for k, s in scores.items()}, "scoring_seconds": round(seconds, 2)}
        if self._counts:
            point["diagnostics"] = {name: float(total) / self._counts[name] for name, total in self._sums.items()}
            point["diagnostics_iterations"] = max(self._counts.values())
            self._sums, self._counts = {}, {}
        self.scoring_seconds += seconds
        self.points.append(point)
        for logger in trainer.loggers:
            logger.log_metrics({f"curve/{k}": v for k, v in point["scores"].items()}, step=trainer.global_step)
        shown = ", ".join(f"{k} {v:.4g}" for k, v in {**point["scores"], **point.get("diagnostics", {})}.items())
        self.emit(f"curve: iteration {point['iteration']}, {point['train_seconds']:.0f} s of training: {shown}")
        return point


def score_without_side_effects(module, count: int, names: list[str], ctx: MetricContext, chunk: int = 256) -> dict:
    """Scores of ``count`` samples of ``module`` drawn from the curve's own seeded stream; every RNG state, the
    module's parameters, buffers, train/eval mode and evaluation state are as they were afterwards."""
    rng = capture_rng_state()
    weights = {k: v.detach().clone() for k, v in module.state_dict(keep_vars=False).items()}
    evaluation = module.evaluation_state()
    training = module.training
    try:
        module.prepare_evaluation(count, CURVE_SEED)

        def chunks():
            for index, first in enumerate(range(0, count, chunk)):
                torch.manual_seed(chunk_seed(CURVE_SEED, index))
                yield module.sample(min(chunk, count - first), batch_size=chunk, first=first)

        samples = SampleSet.from_stream(chunks(), ctx, feature_spaces(names), keep=ctx.options.ssim_samples)
        return compute_metrics(names, samples, ctx)
    finally:
        module.load_state_dict(weights)
        module.restore_evaluation_state(evaluation)
        module.train(training)
        restore_rng_state(rng)
