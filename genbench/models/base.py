"""What every model shares: the registry, ``sample(n)`` in [-1, 1], an iteration counter that does not
depend on how many optimizers step (Lightning's ``global_step`` counts each ``optimizer.step()``), and
logging of diagnostics."""

from __future__ import annotations

import contextlib
import random
from typing import Callable

import lightning as L
import numpy as np
import torch

from genbench.config import plain, signature_defaults
from genbench.errors import DivergenceError, GenbenchError
from genbench.models.speed import (SpeedSettings, adam, apply_build_levers, apply_device_levers, autocast, mark_step,
                                   to_channels_last)
from genbench.registry import Registry
from genbench.samplers.langevin import check_finite

MODELS: Registry[type["GenerativeModel"]] = Registry("model")
#: how a trained model fills missing pixels: completion kind → ``complete(model, images, holes, settings)``; a model
#: class names its kind in ``completion``, and a model file may register a kind of its own
COMPLETIONS: Registry = Registry("completion")


def capture_rng_state() -> dict:
    """torch / CUDA / NumPy / Python RNG states in types ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


class GenerativeModel(L.LightningModule):
    """Base LightningModule of every genbench model.

    Subclasses implement ``train_iteration(batch)`` and ``generate(n)``; ``sample(n)`` batches ``generate`` in
    eval mode and returns images clipped to [-1, 1].
    """

    #: whether sampling needs autograd (Langevin): then the harness samples under no_grad, not inference_mode
    samples_need_grad: bool = False
    #: whether training accepts corrupted images with a mask of intact pixels (``data.corruption``; ABP)
    learns_from_corrupted_data: bool = False
    #: how a trained model fills missing pixels (a kind registered in ``COMPLETIONS``); None: it cannot
    completion: str | None = None

    def __init__(self, image_size: int = 64, channels: int = 3, arch: str = "conv", bn_sampling: str = "running") -> None:
        super().__init__()
        if arch not in ("conv", "mlp"):
            raise GenbenchError(f"arch must be 'conv' or 'mlp', got {arch!r}")
        if bn_sampling not in ("batch", "running"):
            raise GenbenchError(f"bn_sampling must be 'batch' or 'running', got {bn_sampling!r}")
        self.bn_sampling = bn_sampling
        self.image_size = image_size
        self.channels = channels
        self.arch = arch
        self.iteration = 0
        self.resumed_from_iteration = 0  # set when a checkpoint is loaded
        self.sample_position = 0  # index of the next evaluation sample (see ``sample``)
        self.evaluation_chains: dict | None = None
        self.speed = SpeedSettings()
        self._levers_device: torch.device | None = None

    # -- the effective settings -----------------------------------------------------------------------------------
    #: constructor arguments added after rows were recorded, each with the default that reproduces those rows: at that
    #: default they are left out of the effective config, so the rows keep their hash and a sweep does not rerun them
    added_at_neutral_default: dict = {}

    @classmethod
    def resolve_options(cls, options: dict) -> dict:
        """Every constructor argument with the value a model built from ``options`` gets: the given one, else the
        signature's default; nested settings (Langevin chains, nets) resolved the same way. This is what a run's
        effective config records and hashes, so a changed default changes the hash (``added_at_neutral_default``:
        the arguments left out at their neutral default)."""
        resolved = {**signature_defaults(cls), **options}
        for key, neutral in cls.added_at_neutral_default.items():
            if key in resolved and resolved[key] == neutral:
                del resolved[key]
        return plain(cls.resolve_nested(resolved))

    def feature_nets(self) -> list[tuple[str, torch.nn.Module, Callable[[torch.Tensor], object]]]:
        """The nets whose convolutional feature maps are the model's learned features (the features table of the
        multi-grid paper), as (label, net, forward): ``forward(images in [-1, 1])`` runs ``net`` on the input the model
        gives it. Empty: the model has no such net."""
        return []

    def training_images(self, purpose: str) -> torch.Tensor:
        """All training images of the datamodule being fitted, for a model that derives a setting from them
        (``purpose``: what for, named in the error when it is fitted without a datamodule)."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None:
            raise GenbenchError(f"{type(self).__name__} needs a datamodule: {purpose}")
        return datamodule.train_images()

    @classmethod
    def resolve_nested(cls, options: dict) -> dict:
        """Fill the nested settings of resolved ``options`` (none here)."""
        return options

    # -- speed levers (``genbench.models.speed``; all off by default) ---------------------------------------------
    def set_speed(self, speed: SpeedSettings) -> None:
        """Turn on the ``speed`` levers (the device-dependent ones at the first step or sample)."""
        self.speed = speed
        apply_build_levers(self, speed)

    def ensure_levers(self) -> None:
        if self._levers_device != self.device:
            apply_device_levers(self, self.speed, self.device)
            self._levers_device = self.device

    def adam(self, params, lr: float, betas: tuple[float, float], **kwargs) -> torch.optim.Adam:
        return adam(params, lr, betas, self.speed, **kwargs)

    @property
    def data_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    def generate(self, n: int) -> torch.Tensor:
        """n samples (no clipping, current mode)."""
        raise NotImplementedError

    def check_evaluation(self, n: int) -> None:
        """Refuse, before training, an evaluation of n samples the model cannot draw (default: any n)."""

    def prepare_evaluation(self, n: int, seed: int, sync: bool = False) -> dict | None:
        """Called before the n evaluation samples are drawn (by every rank, with ``sync``, in ``sample_all``);
        returns what the row records about where the samples come from (here: ancestral sampling)."""
        self.evaluation_chains = {"chains": "ancestral"}
        return self.evaluation_chains

    def evaluation_state(self) -> dict:
        """What drawing evaluation samples sets on the model and on its chain sampler (``prepare_evaluation``,
        ``sample``), for ``restore_evaluation_state``."""
        sampler = getattr(self, "sampler", None)
        return {"sample_position": self.sample_position, "evaluation_chains": self.evaluation_chains,
                "sampler": sampler.state() if sampler is not None else None}

    def restore_evaluation_state(self, state: dict) -> None:
        self.sample_position, self.evaluation_chains = state["sample_position"], state["evaluation_chains"]
        if state["sampler"] is not None:
            self.sampler.restore(state["sampler"])

    @contextlib.contextmanager
    def sampling_mode(self):
        """Eval mode for drawing from the model; BatchNorm normalises with its running statistics
        (``bn_sampling: running``) or with those of each batch (``batch``, the official CoopNets/ABP code), and
        the running statistics are left untouched either way. Restores the previous mode afterwards."""
        was_training = self.training
        self.eval()
        norms = [m for m in self.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        kept = [{k: v.clone() for k, v in m.state_dict().items()} for m in norms] if self.bn_sampling == "batch" else []
        for m in norms if kept else []:
            m.train()
        try:
            yield
        finally:
            for m, state in zip(norms, kept):
                m.load_state_dict(state)
            self.train(was_training)

    def sample(self, n: int, batch_size: int = 256, first: int = 0) -> torch.Tensor:
        """n samples on the CPU, drawn in ``sampling_mode``. Images (``arch: conv``) are clipped to [-1, 1],
        low-dimensional ``mlp`` data are returned as they are. ``first`` is the position of the first of these
        samples in the whole evaluation set (``sample_position`` while ``generate`` runs)."""
        chunks = []
        self.ensure_levers()
        with self.sampling_mode(), torch.no_grad(), autocast(self.speed, self.device):
            for start in range(0, n, batch_size):
                mark_step(self.speed)
                self.sample_position = first + start
                x = self.generate(min(batch_size, n - start))
                chunks.append((x.clamp(-1, 1) if self.arch == "conv" else x).cpu())
        return torch.cat(chunks) if chunks else torch.zeros(0, *self.data_shape)

    def update(self, optimizer, loss: torch.Tensor, quantity: str, hint: str, check_grads: bool = False) -> None:
        """One manual optimisation step on ``loss``; NaN/Inf in the loss (or, with ``check_grads``, in a
        gradient) raises DivergenceError before the parameters are touched."""
        check_finite(loss, "loss", quantity, hint)
        optimizer.zero_grad()
        self.manual_backward(loss)
        if check_grads:
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        check_finite(p.grad, "backward", f"gradient of the {quantity}", hint)
        optimizer.step()

    def log_diagnostics(self, values: dict[str, float | torch.Tensor], prog_bar: tuple[str, ...] = ()) -> None:
        for key, value in values.items():
            self.log(f"train/{key}", value, prog_bar=key in prog_bar, on_step=True, on_epoch=False)

    def train_iteration(self, batch) -> None:
        """One training iteration on ``batch = (x, label, index)`` (all optimizer steps of the model)."""
        raise NotImplementedError

    def training_step(self, batch, batch_idx):
        self.ensure_levers()
        mark_step(self.speed)
        if self.speed.channels_last:
            batch = [to_channels_last(batch[0]), *batch[1:]]
        try:
            with autocast(self.speed, self.device):
                self.train_iteration(batch)
        except DivergenceError as exc:
            if str(exc.step).startswith("iteration"):
                raise
            raise DivergenceError(f"iteration {self.iteration} ({exc.step})", exc.quantity, exc.hint, exc.condition) from None
        self.iteration += 1

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["genbench_iteration"] = self.iteration
        checkpoint["genbench_rng"] = capture_rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.iteration = int(checkpoint.get("genbench_iteration", 0))
        self.resumed_from_iteration = self.iteration
        self._pending_rng = checkpoint.get("genbench_rng")

    def on_train_start(self) -> None:
        """Restore the RNG states of a resumed run (after Lightning's own restore, before the first batch)."""
        state = getattr(self, "_pending_rng", None)
        if state is not None:
            restore_rng_state(state)
            self._pending_rng = None

    def validation_step(self, batch, batch_idx):  # models may override with their own diagnostics
        return None
