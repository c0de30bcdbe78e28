"""User-facing errors: each carries one actionable line that the CLI prints without a traceback."""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when the message is empty)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class GenbenchError(Exception):
    """An error the user can fix (bad path, unknown name, bad config value, missing weights)."""


class DivergenceError(GenbenchError):
    """An EBM or sampler produced NaN/Inf; the message names the step, quantity and the knob to lower."""

    def __init__(self, step: int | str, quantity: str, hint: str, condition: str = "is NaN or Inf") -> None:
        self.step = step
        self.quantity = quantity
        self.hint = hint
        self.condition = condition
        super().__init__(f"diverged at step {step}: {quantity} {condition}; {hint}")


class Interrupted(GenbenchError):
    """Training stopped by a signal (SIGTERM: a scheduler's preemption or time limit) after the state at the stop point
    was checkpointed; the command exits with ``exit_code`` (128 + the signal's number, as a shell reports it)."""

    def __init__(self, message: str, exit_code: int = 143) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Terminated(BaseException):
    """SIGTERM outside training (while setting up, scoring, rendering): raised by genbench's handler so that every
    ``finally`` runs — temp files removed, locks released — and the command exits 143 in one line. Not an
    ``Exception``, so no ``except Exception`` that keeps a row from a failed picture swallows it."""
