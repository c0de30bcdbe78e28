"""Writing files so that a reader never sees half of one: into a temp file beside the target, then a rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def write_via_temp(path: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` into a temp file unique to this call beside ``path``, then replace ``path`` with it: two writers
    at once never share a temp file, and a reader never sees half a file."""
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """``path.write_text(text)`` through ``write_via_temp``."""
    write_via_temp(path, lambda tmp: tmp.write_text(text))
