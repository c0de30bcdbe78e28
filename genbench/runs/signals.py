"""SIGTERM, what schedulers send to preempt or end a job: inside ``trainer.fit`` Lightning's handler lets the
iteration finish, the state at the stop point is checkpointed and ``train`` raises ``Interrupted`` (exit 143); at any
other moment (setting up, scoring, rendering) genbench's handler raises ``Terminated``, so every ``finally`` runs —
temp files removed, locks released — and the command exits 143 in one line."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

from genbench.errors import Terminated

_fitting = False


@contextlib.contextmanager
def fitting() -> Iterator[None]:
    """Around ``trainer.fit``: SIGTERM is Lightning's to handle (its handler calls the one it found, which then does
    nothing)."""
    global _fitting
    _fitting, before = True, _fitting
    try:
        yield
    finally:
        _fitting = before


def terminate_outside_fitting(signum, frame) -> None:
    if not _fitting:
        raise Terminated()


def install_sigterm_handler() -> None:
    signal.signal(signal.SIGTERM, terminate_outside_fitting)
